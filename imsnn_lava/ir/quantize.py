"""The quantize pass (IR -> IR): a float model file becomes its Loihi fixed-point form
(numpy only; the numerics are in imsnn_lava.ir.fixed_point)."""

from __future__ import annotations

from imsnn_lava.ir import fixed_point as fp
from imsnn_lava.ir.nodes import FixedLayer, LayerSpec, ModelFile
from imsnn_lava.numerics import isi

# the defaults of imsnn_train.config.QuantConfig (tests/test_nir.py checks they agree)
DEFAULT_MAX_SCALE_LOG2 = 12
DEFAULT_NETX_COMPATIBLE = True


def quantize_layer(spec: LayerSpec, max_scale_log2: int = DEFAULT_MAX_SCALE_LOG2,
                   netx_compatible: bool = DEFAULT_NETX_COMPATIBLE,
                   scale: int | None = None) -> FixedLayer:
    """The Loihi fixed-point form of one layer; FixedPointError names the layer if impossible.

    netx_compatible: plain layers keep every weight within one 8-bit mantissa (exponent 0), as
    lava-dl netx reads dense weights as 8-bit values and ignores exponents.
    scale: use this real -> integer factor instead of choosing one (the reader re-derives a
    file's tables at the file's own scale, imsnn_lava.ir.consistency)."""
    table = isi.weight_table(spec)
    if scale is None:
        flat = table.reshape(table.shape[0], table.shape[1], -1)
        scale = fp.choose_scale(flat, spec.vth, max_scale_log2, spec.name,
                                exponent_zero=netx_compatible and spec.synapse == "plain")
    return FixedLayer(
        scale=scale,
        table=fp.quantize_table(table, scale, spec.name),
        du=fp.decay_to_int(spec.du, fp.DU_OFFSET, f"layer {spec.name} du"),
        dv=fp.decay_to_int(spec.dv, fp.DV_OFFSET, f"layer {spec.name} dv"),
        vth=fp.threshold_to_int(spec.vth, scale, spec.name),
    )


def quantize_model(model: ModelFile, max_scale_log2: int = DEFAULT_MAX_SCALE_LOG2,
                   netx_compatible: bool = DEFAULT_NETX_COMPATIBLE) -> ModelFile:
    """The fixed-point model: every layer with its integers, and the real values (du, dv,
    vth) set to what the integers represent."""
    layers = []
    for spec in model.layers:
        fx = quantize_layer(spec, max_scale_log2, netx_compatible)
        layers.append(spec.replace(fixed=fx, du=fp.int_to_decay(fx.du, fp.DU_OFFSET),
                                   dv=fp.int_to_decay(fx.dv, fp.DV_OFFSET),
                                   vth=fx.vth / fx.scale))
    return model.replace(precision="fixed", layers=layers)
