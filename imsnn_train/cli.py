"""The `imsnn` console script: one entry point for the training subcommands
(imsnn_train.commands) and the deployment ones (imsnn_lava.commands, which never need torch).
Nothing here imports torch or Lava: each command imports them when it runs."""

from __future__ import annotations

import argparse
import importlib
import sys

from imsnn_lava import __version__
from imsnn_lava.commands import COMMAND_MODULES as DEPLOY_COMMANDS
from imsnn_lava.commands.common import suggest
from imsnn_train.commands import COMMAND_MODULES as TRAIN_COMMANDS
from imsnn_train.errors import ImsnnError

EPILOG = """The usual path (what `make demo` runs):
  imsnn data fetch mnist
  imsnn train --config deploy/configs/demo_imsnn.toml -o runs/demo/imsnn
  imsnn export runs/demo/imsnn/checkpoint.pt -o runs/demo/imsnn.h5 --fixed-point
  imsnn verify runs/demo/imsnn.h5
  imsnn simulate runs/demo/imsnn.h5 -n 500 -o runs/demo/imsnn-lava.json
  imsnn report runs/demo/*-lava.json -o runs/demo/report

imsnn COMMAND --help shows each command's options and examples."""


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
        return int(args.func(args) or 0)
    except ImsnnError as exc:
        print(f"imsnn {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # disk full, permission denied, ... while reading or writing a file
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"imsnn {args.command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"imsnn {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
