"""Training subcommands of the `imsnn` console script (the deployment ones are in
imsnn_lava.commands).

Each module defines `register(subparsers)`, which adds its parser(s) and sets
`func=<callable(args) -> int>` as the default. Modules import heavy dependencies
(torch, Lava) inside their functions, so `imsnn --help` stays fast.
"""

COMMAND_MODULES = ("imsnn_train.commands.train",  # train, evaluate, export
                   "imsnn_train.commands.sweep")
