"""A fixed-point model file's two descriptions of each layer must agree (numpy only).

A fixed-point ISI layer keeps its real values (the trained weight, mu and sigma) beside the
integer tables Lava runs (table_mant, table_exp). Export derives the tables from the real
values with the quantize pass (imsnn_lava.ir.quantize); the reader derives them again, with
the same pass at the file's own scale, and refuses a file whose tables differ: a float run
of the file (Lava's float models, reference.simulate(fixed=False)) uses the real values, a
fixed-point run the integers, and both must describe the same network.
(A plain layer's real weights are its integers over the scale, and du, dv, vth are stored
as registers only, so those agree by construction; plain layers are checked all the same.)
"""

from __future__ import annotations

import numpy as np

from imsnn_lava.errors import FixedPointError, ModelFileError
from imsnn_lava.ir.nodes import FixedLayer, ModelFile


def check_layers(model: ModelFile, where: str) -> None:
    """Raise ModelFileError naming the file and the first layer whose stored integers differ
    from its real values quantized at its stored scale."""
    if not model.fixed:
        return
    from imsnn_lava.ir.quantize import quantize_layer  # numerics imports ir: import late

    for i, layer in enumerate(model.layers, start=1):
        stored = layer.fixed
        try:
            derived = quantize_layer(layer, scale=stored.scale)
        except FixedPointError as exc:
            raise ModelFileError(f"{where}: layer {layer.name} (layer/{i}): its real values "
                                 f"cannot be quantized at its scale {stored.scale}: "
                                 f"{exc}") from None
        problem = _difference(stored, derived)
        if problem:
            raise ModelFileError(
                f"{where}: layer {layer.name} (layer/{i}): {problem}: the integer tables do "
                f"not match the float weights quantized at the file's scale {stored.scale} "
                "(the file is inconsistent or was changed after export)")


def _difference(stored: FixedLayer, derived: FixedLayer) -> str | None:
    if not np.array_equal(stored.table.exp, derived.table.exp):
        k = int(np.flatnonzero(stored.table.exp != derived.table.exp)[0])
        return (f"table_exp[{k}] = {int(stored.table.exp[k])}, derived "
                f"{int(derived.table.exp[k])}")
    diff = stored.table.mant != derived.table.mant
    if diff.any():
        idx = tuple(int(x) for x in np.argwhere(diff)[0])
        return (f"table_mant{list(idx)} = {int(stored.table.mant[idx])}, derived "
                f"{int(derived.table.mant[idx])} ({int(diff.sum())} of {diff.size} differ)")
    return None
