"""Trained network -> imsnn model file (through imsnn_lava.format and imsnn_lava.fixed_point)."""

from __future__ import annotations

import json

import numpy as np
import torch

from imsnn_lava import format as fmt
from imsnn_lava import reference
from imsnn_lava.encoding import encode
from imsnn_lava.quantize import quantize_layer, quantize_specs  # noqa: F401 (re-export)
from imsnn_train.config import ExperimentConfig, to_json
from imsnn_train.network import Network

REFERENCE_SAMPLES = 8


def layer_specs(net: Network) -> list[fmt.LayerSpec]:
    """Float LayerSpecs (float64 copies of the trained values)."""
    n = net.cfg.neuron
    specs = []
    for i, layer in enumerate(net.layers, start=1):
        spec = fmt.LayerSpec(
            name=f"layer{i}", kind=layer.kind, synapse="isi" if layer.isi else "plain",
            in_shape=tuple(layer.in_shape), out_shape=tuple(layer.out_shape),
            weight=layer.weight.detach().double().cpu().numpy().copy(),
            du=n.du, dv=n.dv, vth=n.vth,
            stride=getattr(layer, "stride", 1), padding=getattr(layer, "padding", 0),
        )
        if layer.isi:
            spec.mu = layer.mu.detach().double().cpu().numpy().copy()
            spec.sigma = layer.sigma.detach().double().cpu().numpy().copy()
            spec.phi_max, spec.c0 = layer.phi_max, layer.c0
        specs.append(spec)
    return specs


def to_model_file(net: Network, cfg: ExperimentConfig, *, fixed: bool,
                  metrics: dict | None = None) -> fmt.ModelFile:
    """The deployable model, without reference vectors (see `attach_reference`)."""
    specs = layer_specs(net)
    if fixed:
        quantize_specs(specs, cfg.quant.max_scale_log2, cfg.quant.netx_compatible)
    enc = cfg.encoding
    return fmt.ModelFile(
        precision="fixed" if fixed else "float",
        input_shape=tuple(cfg.model.input_shape),
        encoding=fmt.EncodingSpec(num_steps=enc.num_steps, max_rate=enc.max_rate, seed=enc.seed),
        layers=specs,
        config_json=to_json(cfg),
        metrics_json=json.dumps(metrics or {}, sort_keys=True),
    )


def expected_counts(model: fmt.ModelFile, net: Network | None,
                    spikes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(layer counts (n, L), output counts (n, n_out)) a deployment must reproduce.

    Fixed point: the integer reference (which is what the quantized PyTorch evaluation runs).
    Floating point: the PyTorch model itself, in float64.
    """
    if model.precision == "fixed" or net is None:
        res = reference.simulate(model, spikes, fixed=model.precision == "fixed")
        return res.layer_counts(), res.output_counts()
    net64 = _float64_copy(net)
    with torch.no_grad():
        out = net64(torch.from_numpy(spikes.astype(np.float64)))
    return (out.layer_counts().round().long().numpy(),
            out.output_counts.round().long().numpy())


def _float64_copy(net: Network) -> Network:
    copy = Network(net.cfg)
    copy.load_state_dict(net.state_dict())
    return copy.double().eval()


def attach_reference(model: fmt.ModelFile, net: Network | None, images: np.ndarray,
                     labels: np.ndarray, sample_ids: np.ndarray) -> None:
    """Store a few samples' input spikes and the per-layer counts the model computes on them."""
    enc = model.encoding
    spikes = encode(images, sample_ids, num_steps=enc.num_steps, max_rate=enc.max_rate,
                    seed=enc.seed)  # (T, n, n_in)
    layer_counts, out_counts = expected_counts(model, net, spikes)
    model.reference = fmt.ReferenceData(
        sample_ids=np.asarray(sample_ids, dtype=np.int64),
        labels=np.asarray(labels, dtype=np.int64),
        spikes=spikes.transpose(1, 0, 2).copy(),
        layer_counts=layer_counts, output_counts=out_counts,
    )
