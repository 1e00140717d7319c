"""`imsnn merge`: join the JSON results of the shards of one `imsnn simulate` selection."""

from __future__ import annotations

import argparse

from imsnn_lava.commands.common import add_command, add_output


def register(sub) -> None:
    p = add_command(
        sub, "merge", help="join `imsnn simulate --shard` results into one",
        description="Join the JSON results of the shards of one `imsnn simulate` selection into "
                    "the result of the whole selection (the same predictions, counts, means and "
                    "distributions as one run). Refuses shards of different models, datasets, "
                    "splits or precisions, and sets with gaps or overlaps.",
        examples=["imsnn simulate model.h5 -n 0 --shard 1/2 -o s1.json",
                  "imsnn simulate model.h5 -n 0 --shard 2/2 -o s2.json",
                  "imsnn merge s1.json s2.json -o model-lava.json"])
    p.add_argument("shards", nargs="+", metavar="SHARD.json",
                   help="results of imsnn simulate --shard, in any order")
    add_output(p, what="the merged results JSON", metavar="OUT.json", required=True)
    p.set_defaults(func=_merge)


def _merge(args: argparse.Namespace) -> int:
    from imsnn_lava.analysis.result import all_agree, merge, table
    from imsnn_lava.analysis.runresult import dumps, read_json_object
    from imsnn_lava.outputs import ensure_writable_file, write_json_atomic

    payloads = [read_json_object(path, "an `imsnn simulate --json` result")
                for path in args.shards]
    ensure_writable_file(args.output, "merged result")
    merged = merge(payloads, list(args.shards))
    print(table(merged))
    write_json_atomic(args.output, merged, dumps=dumps)
    print(f"merged {len(payloads)} shards: {args.output}")
    return 0 if all_agree(merged) else 1
