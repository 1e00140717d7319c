"""Errors the CLI reports as one clear line (exit code 2) instead of a traceback."""

from imsnn_lava.errors import DataError, ImsnnError, ModelFileError

__all__ = ["ImsnnError", "DataError", "ConfigError", "ModelFileError"]


class ConfigError(ImsnnError):
    """A config file or override is invalid. The message names the field and what is expected."""
