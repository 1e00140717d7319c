"""`imsnn report RESULT.json [...] -o DIR`: an HTML + PNG comparison of runs, with energy."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "report",
        help="compare runs (results JSON) in an HTML page with figures and energy estimates",
        description=(
            "Read result files written by `imsnn simulate --json` or `imsnn evaluate --json` "
            "and write DIR/index.html (opens without a server), its PNG figures, "
            "DIR/summary.md and DIR/summary.json. Energy per inference comes from a per-event "
            "profile (counted events x energy per event); what the profile leaves out is "
            "listed in the report. A run is a baseline if its synapse is 'plain' or its name "
            "contains 'baseline'; each run is compared with the first baseline of its dataset."
        ),
    )
    parser.add_argument("results", nargs="+", metavar="RESULT.json", help="result files")
    parser.add_argument("-o", "--out", required=True, metavar="DIR",
                        help="output folder (created if missing)")
    parser.add_argument("--profile", default="loihi", metavar="loihi|cmos45_ann|PATH",
                        help="energy profile: a built-in name or a JSON profile file "
                             "(default: loihi)")
    parser.set_defaults(func=_report)


def _report(args: argparse.Namespace) -> int:
    from imsnn_lava.analysis.report import build_report
    from imsnn_lava.outputs import writing

    # build_report checks the output folder before any work (report.prepare_out_dir)
    with writing(args.out, "report"):
        out = build_report(args.results, args.out, profile=args.profile)
    print(out.table)
    print(out.footer)
    print(f"report: {out.out_dir / 'index.html'} ({len(out.files)} files)")
    return 0
