"""`imsnn merge`: join the JSON results of the shards of one `imsnn simulate` selection."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("merge", help="join `imsnn simulate --shard` results into one",
                       description="Join the JSON results of the shards of one `imsnn simulate` "
                                   "selection into the result of the whole selection (the same "
                                   "predictions, counts, means and distributions as one run). "
                                   "Refuses shards of different models, datasets, splits or "
                                   "precisions, and sets with gaps or overlaps.")
    p.add_argument("shards", nargs="+", metavar="SHARD.json")
    p.add_argument("-o", "--output", required=True, metavar="OUT.json")
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
