"""Float layers -> Loihi fixed point (numpy only): the one quantisation path of imsnn.

`imsnn export --fixed-point` (imsnn_train.export) and `imsnn import --fixed-point`
(imsnn_lava.interop.nir) both call `quantize_specs`, so a trained and an imported network are
quantized by the same code. The numerics are imsnn_lava.fixed_point's.
"""

from __future__ import annotations

from imsnn_lava import fixed_point as fp
from imsnn_lava import format as fmt
from imsnn_lava import reference

# The defaults of imsnn_train.config.QuantConfig (tests/test_nir.py checks they agree).
DEFAULT_MAX_SCALE_LOG2 = 12
DEFAULT_NETX_COMPATIBLE = True


def quantize_layer(spec: fmt.LayerSpec, max_scale_log2: int,
                   netx_compatible: bool = True) -> fmt.FixedLayer:
    """The Loihi fixed-point form of one layer; FixedPointError names the layer if impossible."""
    table = reference.weight_table(spec)
    flat = table.reshape(table.shape[0], table.shape[1], -1)
    scale = fp.choose_scale(flat, spec.vth, max_scale_log2, spec.name,
                            exponent_zero=netx_compatible and spec.synapse == "plain")
    return fmt.FixedLayer(
        scale=scale,
        table=fp.quantize_table(table, scale, spec.name),
        du=fp.decay_to_int(spec.du, fp.DU_OFFSET, f"layer {spec.name} du"),
        dv=fp.decay_to_int(spec.dv, fp.DV_OFFSET, f"layer {spec.name} dv"),
        vth=fp.threshold_to_int(spec.vth, scale, spec.name),
    )


def quantize_specs(specs: list[fmt.LayerSpec], max_scale_log2: int = DEFAULT_MAX_SCALE_LOG2,
                   netx_compatible: bool = DEFAULT_NETX_COMPATIBLE) -> None:
    """Give every layer its fixed-point form, in place. The deployed model's real values
    (du, dv, vth) become what the integers represent."""
    for spec in specs:
        spec.fixed = quantize_layer(spec, max_scale_log2, netx_compatible)
        spec.du = fp.int_to_decay(spec.fixed.du, fp.DU_OFFSET)
        spec.dv = fp.int_to_decay(spec.fixed.dv, fp.DV_OFFSET)
        spec.vth = spec.fixed.vth / spec.fixed.scale
