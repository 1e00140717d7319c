"""The IR: the model file's typed, frozen schema, its reader and writer, and the fixed-point
numerics (numpy + h5py only; never Lava, never torch).

    nodes.py        EncodingSpec, LayerSpec (one frozen node per layer), FixedLayer,
                    ReferenceData, ModelFile; the layout of the HDF5 file
    reader.py       HDF5 -> IR, every field validated (errors name the file and field)
    writer.py       IR -> HDF5, atomically, with the content digest
    digest.py       per-field sha256 digests and their total, in a canonical order
    consistency.py  a fixed-point file's integer tables re-derived from its real weights
    h5safe.py       defensive typed access to HDF5 (what fuzzing taught)
    fixed_point.py  Loihi's integer formats and every conversion, both directions
"""

from imsnn_lava.ir.nodes import (
    FORMAT_NAME,
    FORMAT_VERSION,
    LAYER_TYPES,
    MAX_ELEMENTS,
    MAX_LAYERS,
    MAX_PHI,
    MAX_STEPS,
    PRECISIONS,
    EncodingSpec,
    FixedLayer,
    LayerSpec,
    ModelFile,
    ReferenceData,
    check,
    conv_out_hw,
)
from imsnn_lava.ir.reader import read
from imsnn_lava.ir.writer import write

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "LAYER_TYPES", "MAX_ELEMENTS", "MAX_LAYERS",
           "MAX_PHI", "MAX_STEPS", "PRECISIONS", "EncodingSpec", "FixedLayer", "LayerSpec",
           "ModelFile", "ReferenceData", "check", "conv_out_hw", "read", "write"]
