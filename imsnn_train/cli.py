"""The `imsnn` console script: one entry point for the training subcommands
(imsnn_train.commands) and the deployment ones (imsnn_lava.commands, which never need torch).
Nothing here imports torch or Lava: each command imports them when it runs."""

from __future__ import annotations

import argparse
import importlib
import sys

from imsnn_lava.commands import COMMAND_MODULES as DEPLOY_COMMANDS
from imsnn_train.commands import COMMAND_MODULES as TRAIN_COMMANDS
from imsnn_train.errors import ImsnnError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imsnn",
        description="Train ISI-modulated spiking networks and deploy them bit-exactly in Lava.",
    )
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


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
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
