"""Running a sweep's points: each step is an `imsnn` subprocess, skipped when its output exists.

Per point, in DIR/points/:
    NAME.point.json   what the point is (base config, overrides, simulation settings)
    NAME/             `imsnn train --resume` (a checkpoint per epoch: a killed sweep resumes
                      the point's training at its last complete epoch)
    NAME.h5           `imsnn export --fixed-point`
    NAME-lava.json    `imsnn simulate --fixed-point [--lowered-counts]`
    NAME.log          every step's output

Up to `jobs` points run at once, one torch thread each unless the overrides say otherwise.
Ctrl-C or SIGTERM stops every running step with SIGTERM (training keeps its last checkpoint,
Lava ends its processes) and waits for them; the next `imsnn sweep` continues.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from imsnn_lava.outputs import write_json_atomic
from imsnn_train.errors import ConfigError
from imsnn_train.sweep.grid import Point

POINTS_DIR = "points"
POINT_FORMAT = "imsnn-sweep-point"
POINT_VERSION = 1
STOP_TIMEOUT_S = 60.0  # after SIGTERM, a step has this long to end before it is killed
POLL_S = 0.5  # the main thread wakes this often (so Ctrl-C is seen at once)
EXIT_DISAGREES = 1  # imsnn simulate: Lava differs from the reference
DEFAULT_OVERRIDES = ("train.threads=1",)  # unless the overrides set train.threads


@dataclass(frozen=True)
class Settings:
    base_config: str
    overrides: tuple[str, ...]  # applied to every point, before the point's own values
    num_samples: int  # imsnn simulate -n (0 = the whole test split)
    lowered: bool  # imsnn simulate --lowered-counts

    def point_record(self, point: Point) -> dict:
        return {"format": POINT_FORMAT, "version": POINT_VERSION, "name": point.name,
                "base_config": self.base_config, "overrides": list(self.overrides),
                "values": [list(v) for v in point.values],
                "simulate": {"num_samples": self.num_samples, "lowered": self.lowered}}


@dataclass
class Step:
    kind: str  # train | export | simulate
    argv: list[str]
    output: Path


@dataclass
class Outcome:
    point: Point
    done: list[str] = field(default_factory=list)  # steps run now
    skipped: list[str] = field(default_factory=list)  # steps whose output existed
    failed: str | None = None  # "step: exit code N: last line of its log"


def points_dir(out_dir: Path) -> Path:
    return out_dir / POINTS_DIR


def with_defaults(overrides: tuple[str, ...]) -> tuple[str, ...]:
    keys = {o.split("=", 1)[0].strip() for o in overrides}
    return tuple(d for d in DEFAULT_OVERRIDES if d.split("=", 1)[0] not in keys) + overrides


def _imsnn(*args: str) -> list[str]:
    return [sys.executable, "-m", "imsnn_train.cli", *args]


def steps_of(point: Point, settings: Settings, out_dir: Path) -> list[Step]:
    where = points_dir(out_dir)
    run, model, result = where / point.name, where / f"{point.name}.h5", \
        where / f"{point.name}-lava.json"
    simulate = ["simulate", str(model), "--fixed-point", "-n", str(settings.num_samples),
                "--no-progress", "-o", str(result)]
    if settings.lowered:
        simulate.insert(-2, "--lowered-counts")
    return [
        Step("train", _imsnn("train", "--config", settings.base_config, "-o", str(run),
                             "--resume", "--no-progress", *settings.overrides,
                             *point.overrides, f"name={point.name}"),
             run / "metrics.json"),
        Step("export", _imsnn("export", str(run / "checkpoint.pt"), "-o", str(model),
                              "--fixed-point"), model),
        Step("simulate", _imsnn(*simulate), result),
    ]


def prepare(points: list[Point], settings: Settings, out_dir: Path) -> None:
    """Write each point's record; refuse a point that exists with other settings (its training
    could not resume), and drop a simulation made with other simulation settings."""
    where = points_dir(out_dir)
    where.mkdir(parents=True, exist_ok=True)
    for point in points:
        path = where / f"{point.name}.point.json"
        record = settings.point_record(point)
        if path.exists():
            try:
                old = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ConfigError(f"{path}: not a readable sweep point record ({exc})") from None
            for key in ("base_config", "overrides", "values"):
                if old.get(key) != record[key]:
                    raise ConfigError(
                        f"{path}: point {point.name} exists with {key} {old.get(key)!r}, not "
                        f"{record[key]!r}; use another -o, or the same config and overrides")
            if old.get("simulate") != record["simulate"]:
                (where / f"{point.name}-lava.json").unlink(missing_ok=True)
        write_json_atomic(path, record)


class StepRunner:
    """Runs step subprocesses and can stop every one of them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: set[subprocess.Popen] = set()
        self.stopping = threading.Event()

    def run(self, step: Step, log_path: Path) -> int:
        with open(log_path, "a", encoding="utf-8") as log:
            log.write(f"$ {' '.join(step.argv[1:])}\n")
            log.flush()
            with self._lock:
                if self.stopping.is_set():
                    return -int(signal.SIGTERM)
                # its own session: a terminal's Ctrl-C reaches the sweep, which stops the steps
                proc = subprocess.Popen(step.argv, stdout=log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
                self._live.add(proc)
            try:
                return proc.wait()
            finally:
                with self._lock:
                    self._live.discard(proc)

    def stop(self) -> None:
        """SIGTERM to every running step, then wait (kill after STOP_TIMEOUT_S)."""
        with self._lock:
            self.stopping.set()
            live = list(self._live)
        for proc in live:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for proc in live:
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _last_line(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1].strip() if lines else ""


def run_point(point: Point, settings: Settings, out_dir: Path, runner: StepRunner,
              on_step=lambda point, step: None) -> Outcome:
    outcome = Outcome(point)
    log_path = points_dir(out_dir) / f"{point.name}.log"
    for step in steps_of(point, settings, out_dir):
        if step.output.exists():
            outcome.skipped.append(step.kind)
            on_step(point, step)
            continue
        if runner.stopping.is_set():
            outcome.failed = f"{step.kind}: not started (sweep stopped)"
            return outcome
        rc = runner.run(step, log_path)
        if rc != 0:
            why = ("Lava disagrees with the reference" if step.kind == "simulate"
                   and rc == EXIT_DISAGREES else _last_line(log_path))
            outcome.failed = f"{step.kind}: exit code {rc}: {why} (log: {log_path})"
            return outcome
        outcome.done.append(step.kind)
        on_step(point, step)
    return outcome


def run_points(points: list[Point], settings: Settings, out_dir: Path, jobs: int,
               on_step=lambda point, step: None) -> list[Outcome]:
    """Every point, up to `jobs` at once; outcomes in the points' order."""
    runner = StepRunner()
    pool = ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="sweep")
    futures = {pool.submit(run_point, p, settings, out_dir, runner, on_step): i
               for i, p in enumerate(points)}
    try:
        pending = set(futures)
        while pending:
            _, pending = wait(pending, timeout=POLL_S, return_when=FIRST_COMPLETED)
    except BaseException:  # Ctrl-C, SIGTERM (raised here by the CLI's handler)
        runner.stop()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    outcomes: list[Outcome | None] = [None] * len(points)
    for future, i in futures.items():
        outcomes[i] = future.result()
    return outcomes
