"""Exception types of the deployment side (numpy/h5py only)."""


class ImsnnError(Exception):
    """Base class of every error imsnn reports to users as a clear message."""


class ModelFileError(ImsnnError):
    """A model file is unreadable, malformed, out of range, or of an unknown version.

    The message names the file and the field, and says what was expected.
    """


class FixedPointError(ImsnnError):
    """A value cannot be represented in Loihi fixed point. The message names the layer."""


class SimulationError(ImsnnError):
    """A Lava simulation failed (a process model raised, timed out, or was interrupted)."""


class DataError(ImsnnError):
    """A dataset file is missing, corrupt, or fails its checksum. The message names the file."""
