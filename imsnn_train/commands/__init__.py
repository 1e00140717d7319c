"""Subcommands of the `imsnn` console script.

Each module defines `register(subparsers)`, which adds its parser(s) and sets
`func=<callable(args) -> int>` as the default. Modules import heavy dependencies
(torch, Lava) inside their functions, so `imsnn --help` stays fast.
"""

COMMAND_MODULES = (
    "imsnn_train.commands.data",
    "imsnn_train.commands.train",
    "imsnn_train.commands.lava",
    "imsnn_train.commands.report",
    "imsnn_lava.commands.nir_import",
)
