"""Write a model file (IR -> HDF5), atomically; the layout is in imsnn_lava.ir.nodes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from imsnn_lava.ir import digest
from imsnn_lava.ir import fixed_point as fp
from imsnn_lava.ir.nodes import (
    FLOAT_NEURON,
    FORMAT_NAME,
    NETX_NEURON,
    LayerSpec,
    ModelFile,
    check,
)
from imsnn_lava.outputs import atomic_path


def write(model: ModelFile, path: str | Path) -> None:
    """Write atomically: a temp file in the target folder, then os.replace. The file carries
    its content digest (imsnn_lava.ir.digest; `model.digest` is ignored and recomputed)."""
    import h5py

    path = Path(path)
    check(model, str(path))
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        _write(f, model)
        _str(f, digest.DIGEST_FIELD, digest.encode(model))


def _str(group, name: str, text: str) -> None:
    group.create_dataset(name, data=np.bytes_(text.encode("utf-8")))


def _write(f, m: ModelFile) -> None:
    f.attrs["format"] = FORMAT_NAME
    f.attrs["version"] = m.version
    f.attrs["precision"] = m.precision
    _str(f, "config", m.config_json)
    _str(f, "metrics", m.metrics_json)
    enc = f.create_group("encoding")
    enc.attrs["num_steps"] = m.encoding.num_steps
    enc.attrs["max_rate"] = m.encoding.max_rate
    enc.attrs["seed"] = m.encoding.seed
    layers = f.create_group("layer")
    g0 = layers.create_group("0")
    _str(g0, "type", "input")
    g0.create_dataset("shape", data=np.asarray(m.input_shape, dtype=np.int64))
    for i, layer in enumerate(m.layers, start=1):
        g = layers.create_group(str(i))
        _str(g, "type", layer.type_name)
        g.create_dataset("shape", data=np.asarray(_netx_shape(layer), dtype=np.int64))
        g.attrs["name"] = layer.name
        if layer.kind == "conv":
            k = layer.weight.shape[-1]
            for key, val in (("stride", layer.stride), ("padding", layer.padding),
                             ("dilation", 1), ("groups", 1), ("kernel", k)):
                g.create_dataset(key, data=np.asarray([val, val] if key != "groups" else val))
        neuron = g.create_group("neuron")
        if m.precision == "fixed":
            fx = layer.fixed
            _str(neuron, "type", NETX_NEURON)
            neuron.create_dataset("iDecay", data=np.int64(fx.du + fp.DU_OFFSET))
            neuron.create_dataset("vDecay", data=np.int64(fx.dv))
            neuron.create_dataset("vThMant", data=np.int64(fx.vth))
            neuron.create_dataset("refDelay", data=np.int64(1))
            neuron.create_dataset("gradedSpike", data=np.bool_(False))
            g.create_dataset("scale", data=np.int64(fx.scale))
            g.create_dataset("table_mant", data=fx.table.mant, compression="gzip")
            g.create_dataset("table_exp", data=fx.table.exp)
            if layer.synapse == "plain":
                g.create_dataset("weight", data=fx.table.weights_int()[0].astype(np.int32))
            else:
                g.create_dataset("weight", data=layer.weight, compression="gzip")
        else:
            _str(neuron, "type", FLOAT_NEURON)
            for key in ("du", "dv", "vth"):
                neuron.create_dataset(key, data=np.float64(getattr(layer, key)))
            g.create_dataset("weight", data=layer.weight, compression="gzip")
        if layer.synapse == "isi":
            g.create_dataset("mu", data=layer.mu, compression="gzip")
            g.create_dataset("sigma", data=layer.sigma, compression="gzip")
            g.create_dataset("phi_max", data=np.int64(layer.phi_max))
            g.create_dataset("c0", data=np.int64(layer.c0))
    if m.reference is not None:
        r = f.create_group("reference")
        r.create_dataset("sample_ids", data=m.reference.sample_ids.astype(np.int64))
        r.create_dataset("labels", data=m.reference.labels.astype(np.int64))
        r.create_dataset("spikes", data=m.reference.spikes.astype(np.uint8), compression="gzip")
        r.create_dataset("layer_counts", data=m.reference.layer_counts.astype(np.int64))
        r.create_dataset("output_counts", data=m.reference.output_counts.astype(np.int64))


def _netx_shape(layer: LayerSpec) -> tuple[int, ...]:
    return (layer.n_out,) if layer.kind == "dense" else tuple(layer.out_shape)

