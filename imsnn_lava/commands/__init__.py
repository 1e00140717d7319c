"""Deployment subcommands of the `imsnn` console script (never torch).

Each module defines `register(subparsers)`, which adds its parser and sets
`func=<callable(args) -> int>`; Lava and the heavy modules are imported inside the functions.
"""

COMMAND_MODULES = (
    "imsnn_lava.commands.data",
    "imsnn_lava.commands.nir_import",
    "imsnn_lava.commands.verify",
    "imsnn_lava.commands.simulate",
    "imsnn_lava.commands.merge",
    "imsnn_lava.commands.report",
    "imsnn_lava.commands.resources",
)
