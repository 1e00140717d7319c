"""What every `imsnn` subcommand shares: the help layout (an Examples block, every default
shown), the one output option (-o/--output, old spellings kept as hidden aliases), progress bars
(on only when stdout is a terminal), the precision choice of a model file, "did you mean".

Torch-free and Lava-free: `imsnn --help` imports this and nothing heavy.
"""

from __future__ import annotations

import argparse
import difflib
import sys
import textwrap

HELP_WIDTH = 88  # columns of a description (argparse wraps the options itself)
SUGGESTION_CUTOFF = 0.6  # difflib similarity below which no "did you mean" is offered


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and the Examples epilog as written; every option's default appended to its
    help ("off" for a flag), unless the help already says what the default is."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text.lower() or action.default is argparse.SUPPRESS:
            return text
        if not action.option_strings:
            return text  # positionals
        if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
            return f"{text} (default: off)" if action.default in (False, None) else text
        if action.default is None:
            return text
        return f"{text} (default: %(default)s)"


def add_command(sub, name: str, *, help: str, description: str,  # noqa: A002 - argparse's name
                examples: list[str]) -> argparse.ArgumentParser:
    """A subcommand parser with the shared help layout and an Examples block."""
    epilog = "Examples:\n" + "\n".join(f"  {line}" for line in examples)
    return sub.add_parser(name, help=help, description=textwrap.fill(description, HELP_WIDTH),
                          epilog=epilog, formatter_class=HelpFormatter)


def add_output(p: argparse.ArgumentParser, *, what: str, metavar: str, required: bool = False,
               old: tuple[str, ...] = (), default: str | None = None) -> None:
    """-o/--output; earlier spellings (`old`, e.g. --json, --out) still work but are not shown."""
    text = f"write {what} here" + ("" if required else
                                   f" (default: {default or 'not written'})")
    p.add_argument("-o", "--output", dest="output", metavar=metavar, required=required,
                   help=text)
    for spelling in old:
        p.add_argument(spelling, dest="output", metavar=metavar, help=argparse.SUPPRESS)


def add_progress(p: argparse.ArgumentParser) -> None:
    """--progress / --no-progress; neither: bars only when stdout is a terminal."""
    group = p.add_mutually_exclusive_group()
    group.add_argument("--progress", dest="progress", action="store_true", default=None,
                       help="show progress bars (default: only when stdout is a terminal)")
    group.add_argument("--no-progress", dest="progress", action="store_false",
                       help="no progress bars")


def progress_enabled(args: argparse.Namespace, stream=None) -> bool:
    """The --progress / --no-progress choice, else whether stdout is a terminal."""
    flag = getattr(args, "progress", None)
    if flag is not None:
        return bool(flag)
    stream = stream or sys.stdout
    return bool(getattr(stream, "isatty", lambda: False)())


def add_precision(p: argparse.ArgumentParser) -> None:
    """--fixed-point / --float; neither: the model file's own precision."""
    group = p.add_mutually_exclusive_group()
    group.add_argument("--fixed-point", dest="precision", action="store_const", const="fixed",
                       help="Lava's bit-accurate fixed_pt models (a file exported with "
                            "--fixed-point) (default: the file's own precision)")
    group.add_argument("--float", dest="precision", action="store_const", const="float",
                       help="Lava's floating-point models (default: the file's own precision)")


def resolve_precision(args: argparse.Namespace, model, path: str) -> tuple[bool, str]:
    """(fixed?, a line saying which precision runs and why)."""
    from imsnn_lava.errors import ImsnnError

    own = model.precision
    chosen = getattr(args, "precision", None)
    if chosen is None:
        other = "--float" if own == "fixed" else "--fixed-point"
        how = f"the file's own; {other} to choose" if own == "fixed" else "the file's own"
        return own == "fixed", f"precision: {_words(own)} ({how})"
    if chosen == "fixed" and own != "fixed":
        raise ImsnnError(f"{path}: a float model file; export with --fixed-point to run it "
                         "in fixed point")
    return chosen == "fixed", f"precision: {_words(chosen)} (--{_flag(chosen)})"


def _words(precision: str) -> str:
    return "fixed point" if precision == "fixed" else "floating point"


def _flag(precision: str) -> str:
    return "fixed-point" if precision == "fixed" else "float"


def suggest(word: str, choices) -> str:
    """"; did you mean 'x'?" for the closest of `choices`, or "" if none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=SUGGESTION_CUTOFF)
    return f"; did you mean '{close[0]}'?" if close else ""
