"""CLI conventions: --version, Examples and defaults in every help, one -o/--output (old
spellings still work), did-you-mean, --print-config, progress bars only on a terminal, the
model file's own precision."""

from __future__ import annotations

import argparse
import io
import json
import re
from pathlib import Path

import pytest

from imsnn_lava.commands import common
from imsnn_train import cli

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "deploy" / "configs" / "demo_imsnn.toml"
WRITERS = {"train": "--out", "evaluate": "--json", "export": None, "simulate": "--json",
           "merge": None, "report": "--out", "import": None}


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    out = {}
    for name, sub in cli._subcommands(parser).items():
        if name == "data":
            out.update({f"data {k}": v for k, v in cli._subcommands(sub).items()})
        else:
            out[name] = sub
    return out


def test_version(capsys):
    from imsnn_lava import __version__

    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.strip() == f"imsnn {__version__}"


@pytest.mark.parametrize("name", sorted(_commands()))
def test_every_help_has_examples_and_every_option_help_and_default(name):
    sub = _commands()[name]
    text = sub.format_help()
    assert "Examples:\n  imsnn " in text, name
    for action in sub._actions:
        if action.help == argparse.SUPPRESS or isinstance(action, argparse._HelpAction):
            continue
        assert action.help, f"{name} {action.option_strings or action.dest}: no help"
        if action.option_strings and not action.required:
            shown = common.HelpFormatter("x")._get_help_string(action)
            assert "default" in shown.lower() or isinstance(action, argparse._StoreFalseAction)\
                , f"{name} {action.option_strings}: no default shown"


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_one_output_option_and_old_spellings_hidden(name):
    sub = _commands()[name]
    opts = {o: a for a in sub._actions for o in a.option_strings}
    assert opts["-o"].dest == "output" and opts["--output"] is opts["-o"]
    old = WRITERS[name]
    if old:
        assert opts[old].dest == "output" and opts[old].help == argparse.SUPPRESS
        assert not re.search(rf"{old}(?![a-z-])", sub.format_help())


def test_unknown_command_suggests(capsys):
    assert cli.main(["simulat", "m.h5"]) == 2
    err = capsys.readouterr().err
    assert "unknown command 'simulat'; did you mean 'simulate'?" in err


def test_unknown_config_key_suggests(tmp_path, capsys):
    assert cli.main(["train", "--config", str(CONFIG), "-o", str(tmp_path / "r"),
                     "model.isi.gat=full"]) == 2
    err = capsys.readouterr().err
    assert "unknown field(s) ['gat'] (did you mean 'model.isi.gate'?)" in err
    assert not (tmp_path / "r").exists()


def test_print_config_applies_overrides_and_trains_nothing(tmp_path, capsys):
    out = tmp_path / "r"
    assert cli.main(["train", "--config", str(CONFIG), "-o", str(out), "--print-config",
                     "train.epochs=7", "train.activity_l1=0.0003"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["train"]["epochs"] == 7 and cfg["train"]["activity_l1"] == 3e-4
    assert cfg["name"] == "demo_imsnn" and not out.exists()
    printed = tmp_path / "printed.json"  # what it prints loads as a config
    printed.write_text(json.dumps(cfg))
    from imsnn_train import config

    assert config.to_dict(config.load(printed)) == cfg


class _Stream(io.StringIO):
    def __init__(self, tty: bool):
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


@pytest.mark.parametrize("argv, tty, expected", [
    ([], True, True), ([], False, False), (["--progress"], False, True),
    (["--no-progress"], True, False)])
def test_progress_bars_follow_the_terminal_unless_told(argv, tty, expected):
    p = argparse.ArgumentParser()
    common.add_progress(p)
    assert common.progress_enabled(p.parse_args(argv), _Stream(tty)) is expected


class _Model:
    def __init__(self, precision):
        self.precision = precision


@pytest.mark.parametrize("argv, own, fixed, says", [
    ([], "fixed", True, "fixed point (the file's own; --float to choose)"),
    ([], "float", False, "floating point (the file's own)"),
    (["--float"], "fixed", False, "floating point (--float)"),
    (["--fixed-point"], "fixed", True, "fixed point (--fixed-point)")])
def test_precision_is_the_files_own_unless_told(argv, own, fixed, says):
    p = argparse.ArgumentParser()
    common.add_precision(p)
    got, line = common.resolve_precision(p.parse_args(argv), _Model(own), "m.h5")
    assert got is fixed and line == f"precision: {says}"


def test_fixed_point_on_a_float_file_is_refused():
    from imsnn_lava.errors import ImsnnError

    p = argparse.ArgumentParser()
    common.add_precision(p)
    with pytest.raises(ImsnnError, match="--fixed-point"):
        common.resolve_precision(p.parse_args(["--fixed-point"]), _Model("float"), "m.h5")
    with pytest.raises(SystemExit):
        p.parse_args(["--fixed-point", "--float"])
