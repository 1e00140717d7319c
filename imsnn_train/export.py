"""Trained network -> imsnn model file (the IR, imsnn_lava.ir; fixed point through its
quantize pass)."""

from __future__ import annotations

import json

import numpy as np
import torch

from imsnn_lava import ir as fmt
from imsnn_lava.ir.quantize import quantize_model
from imsnn_lava.numerics import reference
from imsnn_lava.numerics.encoding import encode
from imsnn_train.config import ExperimentConfig, to_json
from imsnn_train.network import Network

REFERENCE_SAMPLES = 8


def layer_specs(net: Network) -> list[fmt.LayerSpec]:
    """Float LayerSpecs (float64 copies of the trained values)."""
    n = net.cfg.neuron
    specs = []
    for i, layer in enumerate(net.layers, start=1):
        isi_fields = {}
        if layer.isi:
            isi_fields = dict(mu=layer.mu.detach().double().cpu().numpy().copy(),
                              sigma=layer.sigma.detach().double().cpu().numpy().copy(),
                              phi_max=layer.phi_max, c0=layer.c0)
        specs.append(fmt.LayerSpec(
            name=f"layer{i}", kind=layer.kind, synapse="isi" if layer.isi else "plain",
            in_shape=tuple(layer.in_shape), out_shape=tuple(layer.out_shape),
            weight=layer.weight.detach().double().cpu().numpy().copy(),
            du=n.du, dv=n.dv, vth=n.vth,
            stride=getattr(layer, "stride", 1), padding=getattr(layer, "padding", 0),
            **isi_fields,
        ))
    return specs


def to_model_file(net: Network, cfg: ExperimentConfig, *, fixed: bool,
                  metrics: dict | None = None) -> fmt.ModelFile:
    """The deployable model, without reference vectors (see `attach_reference`)."""
    enc = cfg.encoding
    model = fmt.ModelFile(
        precision="float",
        input_shape=tuple(cfg.model.input_shape),
        encoding=fmt.EncodingSpec(num_steps=enc.num_steps, max_rate=enc.max_rate, seed=enc.seed),
        layers=layer_specs(net),
        config_json=to_json(cfg),
        metrics_json=json.dumps(metrics or {}, sort_keys=True),
    )
    if fixed:
        model = quantize_model(model, cfg.quant.max_scale_log2, cfg.quant.netx_compatible)
    return model


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
                     labels: np.ndarray, sample_ids: np.ndarray) -> fmt.ModelFile:
    """The model with a few samples' input spikes and the per-layer counts it computes on them
    as its reference vectors."""
    enc = model.encoding
    spikes = encode(images, sample_ids, num_steps=enc.num_steps, max_rate=enc.max_rate,
                    seed=enc.seed)  # (T, n, n_in)
    layer_counts, out_counts = expected_counts(model, net, spikes)
    return model.replace(reference=fmt.ReferenceData(
        sample_ids=np.asarray(sample_ids, dtype=np.int64),
        labels=np.asarray(labels, dtype=np.int64),
        spikes=spikes.transpose(1, 0, 2).copy(),
        layer_counts=layer_counts, output_counts=out_counts,
    ))
