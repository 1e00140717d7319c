"""`imsnn sweep`: train, export, simulate and cost a grid of configs; results with fronts."""

from __future__ import annotations

import argparse
from pathlib import Path

from imsnn_lava.commands.common import add_command, add_output, add_progress, progress_enabled
from imsnn_lava.outputs import ensure_writable_dir
from imsnn_train.errors import ConfigError


def register(sub) -> None:
    p = add_command(
        sub, "sweep", help="train and simulate a grid of configs; results table and fronts",
        description="Every combination of the --grid values is a point: the base config with "
                    "those overrides, trained, exported in fixed point, simulated in Lava on "
                    "the test split with the stock-lowered network's counts, and costed. "
                    "Steps whose output exists are skipped and training resumes from its last "
                    "epoch, so a stopped sweep continues where it stopped; sweeps of several "
                    "base configs can share one folder. Ends with DIR/results.md, "
                    "DIR/results.json and the report DIR/report/index.html (Pareto fronts).",
        examples=["imsnn sweep --config deploy/configs/mnist_dense_baseline.toml "
                  "--grid train.activity_l1=0,1e-4,3e-4,1e-3 -o runs/sweep train.epochs=2",
                  "imsnn sweep --config deploy/configs/mnist_dense_imsnn.toml "
                  "--grid model.isi.gate_strength=0.25,0.5,1 --grid model.isi.phi_max=4,16 "
                  "-o runs/sweep --jobs 2 train.epochs=2",
                  "imsnn sweep --config deploy/configs/demo_imsnn.toml "
                  "--grid train.activity_l1=0,1e-3 -o runs/sweep --dry-run"])
    p.add_argument("--config", required=True, metavar="BASE.toml",
                   help="the base config every point starts from")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="a config key and its values (repeat for more keys; every combination "
                        "is a point); e.g. model.isi.gate_strength=0.25,0.5,1")
    add_output(p, what="the sweep folder (points/, results.md, results.json, report/)",
               metavar="DIR", required=True)
    p.add_argument("--jobs", type=int, default=1,
                   help="points run at once (each with one torch thread unless the "
                        "overrides set train.threads)")
    p.add_argument("-n", "--num-samples", type=int, default=0,
                   help="test samples each point is simulated on in Lava (0 = all)")
    p.add_argument("--no-lowered", dest="lowered", action="store_false",
                   help="skip the stock-lowered network's counts (default: counted)")
    p.add_argument("--dry-run", action="store_true",
                   help="list the points and their state, run nothing")
    add_progress(p)
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="overrides for every point, e.g. train.epochs=2")
    p.set_defaults(func=_sweep)


def _plan(args: argparse.Namespace):
    from imsnn_train import config
    from imsnn_train.sweep import grid as grids
    from imsnn_train.sweep.runner import Settings, with_defaults

    if args.jobs < 1:
        raise ConfigError("--jobs: expected >= 1")
    if args.num_samples < 0:
        raise ConfigError("-n: expected >= 0 (0 = all)")
    if any(o.split("=", 1)[0].strip() == "name" for o in args.overrides):
        raise ConfigError("name=...: a sweep names its points itself (config name + values)")
    grid = grids.parse_grid(args.grid)
    fixed = with_defaults(tuple(args.overrides))
    base = config.load(args.config, list(fixed))
    points = grids.expand(base.name, grid)
    for point in points:  # every point's config is valid before anything runs
        try:
            config.load(args.config, [*fixed, *point.overrides])
        except ConfigError as exc:
            raise ConfigError(f"point {point.name}: {exc}") from None
    return points, Settings(str(args.config), fixed, args.num_samples, args.lowered)


def _state(point, settings, out: Path) -> str:
    from imsnn_train.sweep.runner import steps_of

    steps = steps_of(point, settings, out)
    done = [s.kind for s in steps if s.output.exists()]
    if len(done) == len(steps):
        return "done"
    if (steps[0].output.parent / "checkpoint.pt").exists() and "train" not in done:
        return "training started (resumes)"
    return "to do" if not done else f"done: {', '.join(done)}"


def _sweep(args: argparse.Namespace) -> int:
    from imsnn_lava.runtime.progress import progress_bar
    from imsnn_train.sweep import runner, table

    points, settings = _plan(args)
    out = Path(args.output)
    if args.dry_run:
        print(f"{len(points)} point(s) from {args.config} into {out}:")
        for point in points:
            print(f"  {point.name}: {' '.join(point.overrides) or '(base)'} "
                  f"[{_state(point, settings, out)}]")
        return 0
    ensure_writable_dir(out, "sweep folder")
    runner.prepare(points, settings, out)
    steps = 3 * len(points)
    bar = progress_bar(total=steps, desc="sweep", unit="step", disable=not progress_enabled(args))

    def on_step(point, step) -> None:
        bar.set_postfix_str(f"{point.name}: {step.kind}", refresh=False)
        bar.update(1)

    try:
        outcomes = runner.run_points(points, settings, out, args.jobs, on_step)
    finally:
        bar.close()
    failed = [o for o in outcomes if o.failed]
    rows, report_dir = table.build(out)
    if rows:
        print((out / "results.md").read_text(encoding="utf-8"))
        print(f"results: {out / 'results.md'}, {out / 'results.json'}; report: "
              f"{report_dir / 'index.html'}")
    ran = sum(len(o.done) for o in outcomes)
    print(f"sweep: {len(points)} point(s), {ran} step(s) run, "
          f"{sum(len(o.skipped) for o in outcomes)} already done, {len(failed)} failed")
    for o in failed:
        print(f"  {o.point.name}: {o.failed}")
    if failed:
        raise ConfigError(f"{len(failed)} of {len(points)} point(s) failed (see above)")
    return 0
