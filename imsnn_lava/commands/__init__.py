"""Subcommands of the `imsnn` console script that live on the deployment side (no torch).

Each module defines `register(subparsers)`, as imsnn_train.commands' modules do; the list of
registered modules is imsnn_train.commands.COMMAND_MODULES.
"""
