"""`imsnn report RESULT.json [...] -o DIR`: an HTML + PNG comparison of runs, with energy."""

from __future__ import annotations

import argparse

from imsnn_lava.commands.common import add_command, add_output


def register(sub: argparse._SubParsersAction) -> None:
    parser = add_command(
        sub, "report",
        help="compare runs (results JSON) in an HTML page with figures and energy estimates",
        description=(
            "Read result files written by `imsnn simulate -o` or `imsnn evaluate -o` and write "
            "DIR/index.html (opens without a server), its PNG figures, DIR/summary.md and "
            "DIR/summary.json. Energy per inference (uJ) comes from a per-event profile "
            "(counted events x energy per event); what the profile leaves out is listed in the "
            "report. Each run is compared with the baseline of the same dataset and "
            "architecture (layer shapes, T, encoding): the plain-synapse run without an "
            "activity regulariser, read from the results' own fields, never from names; "
            "--baseline chooses it instead."
        ),
        examples=["imsnn report runs/demo/baseline-lava.json runs/demo/imsnn-lava.json "
                  "-o runs/demo/report",
                  "imsnn report bench/results/reproduce/runs/*.json -o rep "
                  "--baseline mnist_dense_baseline",
                  "imsnn report a.json b.json -o rep --profile my_chip.json"])
    parser.add_argument("results", nargs="+", metavar="RESULT.json", help="result files")
    add_output(parser, what="the report folder (created if missing)", metavar="DIR",
               required=True, old=("--out",))
    parser.add_argument("--profile", default="loihi", metavar="loihi|cmos45_ann|PATH",
                        help="energy profile: a built-in name or a JSON profile file")
    parser.add_argument("--baseline", action="append", metavar="RUN", default=None,
                        help="compare the runs of RUN's dataset and architecture with RUN (a "
                             "run name or result file; repeat for several groups) (default: "
                             "the plain-synapse run without activity regulariser)")
    parser.set_defaults(func=_report)


def _report(args: argparse.Namespace) -> int:
    from imsnn_lava.analysis.report import build_report
    from imsnn_lava.outputs import writing

    # build_report checks the output folder before any work (report.prepare_out_dir)
    with writing(args.output, "report"):
        out = build_report(args.results, args.output, profile=args.profile,
                           baselines=args.baseline or ())
    print(out.table)
    print(out.footer)
    print(f"report: {out.out_dir / 'index.html'} ({len(out.files)} files)")
    return 0
