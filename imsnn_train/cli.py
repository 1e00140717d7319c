"""The `imsnn` console script: one entry point for the training subcommands
(imsnn_train.commands) and the deployment ones (imsnn_lava.commands, which never need torch).
Nothing here imports torch or Lava: each command imports them when it runs.

SIGTERM stops a command the way Ctrl-C does: the handler raises `Terminated` (a
KeyboardInterrupt) wherever the program is, so every cleanup that handles Ctrl-C runs (a
half-written file is removed, training keeps its last checkpoint, Lava's processes are ended
and its shared memory freed), and the command exits 143 instead of 130.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
from contextlib import contextmanager

from imsnn_lava import __version__
from imsnn_lava.commands import COMMAND_MODULES as DEPLOY_COMMANDS
from imsnn_lava.commands.common import suggest
from imsnn_train.commands import COMMAND_MODULES as TRAIN_COMMANDS
from imsnn_train.errors import ImsnnError

EXIT_OK = 0
EXIT_ERROR = 2
EXIT_INTERRUPTED = 128 + signal.SIGINT  # 130: Ctrl-C (SIGINT)
EXIT_TERMINATED = 128 + signal.SIGTERM  # 143: SIGTERM
EXIT_EPILOG = f"""exit status: {EXIT_OK} success; 1 a check failed (verify, simulate: Lava disagrees
with the reference); {EXIT_ERROR} error (message on stderr); {EXIT_INTERRUPTED} interrupted by
Ctrl-C (SIGINT); {EXIT_TERMINATED} stopped by SIGTERM. Both signals stop cleanly: no half-written
file is left, training keeps its last complete checkpoint (continue with --resume), and every
Lava process is ended and its shared memory freed."""


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: raised where the program is, so that Ctrl-C's cleanup runs."""


def _sigterm_handler(owner: int):
    def on_sigterm(signum, frame):
        if os.getpid() != owner:
            # a process forked from this one (Lava's actors, its shared-memory manager)
            # inherits the handler: it carries on, and the owner's cleanup ends it (a SIGTERM
            # sent to the whole process group would otherwise end each one on its own, before
            # the owner could stop Lava and free its shared memory)
            return
        # one clean stop: a second SIGTERM during the cleanup (which has its own time limits)
        # is ignored; SIGKILL still ends the process at once
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated()
    return on_sigterm


@contextmanager
def sigterm_as_interrupt():
    """Install the SIGTERM handler for the duration (main thread only; restored after)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _sigterm_handler(os.getpid()))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)

USAGE_EPILOG = """The usual path (what `make demo` runs):
  imsnn data fetch mnist
  imsnn train --config deploy/configs/demo_imsnn.toml -o runs/demo/imsnn
  imsnn export runs/demo/imsnn/checkpoint.pt -o runs/demo/imsnn.h5 --fixed-point
  imsnn verify runs/demo/imsnn.h5
  imsnn simulate runs/demo/imsnn.h5 -n 500 -o runs/demo/imsnn-lava.json
  imsnn report runs/demo/*-lava.json -o runs/demo/report

imsnn COMMAND --help shows each command's options and examples."""

EPILOG = USAGE_EPILOG + "\n\n" + EXIT_EPILOG


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imsnn",
        description="Train ISI-modulated spiking networks and deploy them bit-exactly in Lava.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"imsnn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    data, *deploy = DEPLOY_COMMANDS
    for name in (data, *TRAIN_COMMANDS, *deploy):
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a command module not yet present
            if exc.name == name:
                continue
            raise
        module.register(sub)
    for subparser in sub.choices.values():  # every command's help ends with the exit codes
        subparser.epilog = (subparser.epilog + "\n\n" if subparser.epilog else "") + EXIT_EPILOG
    return parser


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _unknown_command(parser: argparse.ArgumentParser, argv: list[str]) -> str | None:
    """"imsnn: unknown command 'X'; did you mean 'Y'?" for a first word that is no command."""
    words = [a for a in argv if not a.startswith("-")]
    if not words or argv[0].startswith("-"):
        return None
    names = _subcommands(parser)
    if words[0] in names:
        return None
    return (f"imsnn: unknown command '{words[0]}'{suggest(words[0], names)} "
            f"(commands: {', '.join(names)}; imsnn --help)")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    unknown = _unknown_command(parser, argv)
    if unknown:
        print(unknown, file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    try:
        with sigterm_as_interrupt():
            return int(args.func(args) or 0)
    except ImsnnError as exc:
        print(f"imsnn {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:  # disk full, permission denied, ... while reading or writing a file
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"imsnn {args.command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_ERROR
    except Terminated:
        print(f"imsnn {args.command}: terminated (SIGTERM)", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print(f"imsnn {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
