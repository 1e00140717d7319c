"""A feed-forward SNN from config, run with Lava's step semantics.

Each synapse hands its output on one step late, as Lava's Dense: the input of layer l at step t
comes from layer l-1's spikes at step t-1 (zero at t = 0). Because the network is feed-forward,
each layer is computed for all T steps at once: synapse (batched over time), then the LIF loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from imsnn_train.config import ModelConfig
from imsnn_train.functional.lif import LIFParams, lif_run
from imsnn_train.layers import Conv2d, Dense, ISIConv2d, ISIDense


@dataclass
class NetOutput:
    spikes: list[torch.Tensor]  # per layer (T, B, n), index 0 = input spikes
    logits: torch.Tensor  # (B, n_classes)
    voltages: list[torch.Tensor] | None = None  # per layer (T, B, n) when recorded

    @property
    def output_counts(self) -> torch.Tensor:
        return self.spikes[-1].sum(0)

    def layer_counts(self) -> torch.Tensor:
        """(B, L) spikes per sample of every non-input layer."""
        return torch.stack([s.sum(dim=(0, 2)) for s in self.spikes[1:]], dim=1)

    def predictions(self) -> torch.Tensor:
        return self.output_counts.argmax(dim=1)  # ties: lowest index, as numpy


ISI_SEED_OFFSET = 1_000_003  # mu, sigma come from their own generator: the weights of an
# IMSNN and of its baseline with the same init_seed are drawn identically


def build_layers(cfg: ModelConfig, gen: torch.Generator) -> list[nn.Module]:
    isi_gen = torch.Generator().manual_seed(cfg.init_seed + ISI_SEED_OFFSET)
    layers = []
    shape = tuple(cfg.input_shape)
    for lc in cfg.layers:
        isi = (lc.synapse or cfg.synapse) == "isi"
        if lc.kind == "dense":
            layer = (ISIDense(shape, lc.out, cfg.isi, gen, isi_gen) if isi
                     else Dense(shape, lc.out, gen))
        else:
            if layers and layers[-1].kind == "dense":
                raise ValueError(f"layer {len(layers) + 1}: a conv layer cannot follow a dense one")
            args = (shape, lc.out, lc.kernel, lc.stride, lc.padding)
            layer = ISIConv2d(*args, cfg.isi, gen, isi_gen) if isi else Conv2d(*args, gen)
        if min(layer.out_shape) < 1:
            raise ValueError(f"layer {len(layers) + 1}: output shape {layer.out_shape} is empty")
        layers.append(layer)
        shape = layer.out_shape
    return layers


class Network(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        gen = torch.Generator().manual_seed(cfg.init_seed)
        self.layers = nn.ModuleList(build_layers(cfg, gen))
        n = cfg.neuron
        self.lif = LIFParams(du=n.du, dv=n.dv, vth=n.vth, surrogate=cfg.surrogate,
                             surrogate_scale=cfg.surrogate_scale, detach_reset=cfg.detach_reset)
        if any(layer.isi for layer in self.layers):
            self._apply_init_gain()

    def _apply_init_gain(self) -> None:
        """Scale ISI layers' initial w so their mean effective weight matches the baseline's
        (method.md 6: compare at matched initial firing, not at the Gaussian's attenuation)."""
        with torch.no_grad():
            for layer in self.layers:
                if not layer.isi:
                    continue
                if self.cfg.isi.init_gain == "auto":
                    gain = 1.0 / max(layer.modulation_mean(), 1e-6)
                else:
                    gain = float(self.cfg.isi.init_gain)
                layer.weight.mul_(gain)

    def set_gate_strength(self, strength: float) -> None:
        """The ISI gate's strength for the coming steps (model.isi.gate_warmup_epochs)."""
        for layer in self.layers:
            if layer.isi:
                layer.gate_strength = strength

    def constrain(self) -> None:
        """After each optimizer step: keep learned ISI parameters in their valid range."""
        for layer in self.layers:
            if layer.isi:
                layer.constrain()

    @property
    def n_in(self) -> int:
        return self.layers[0].n_in

    def forward(self, spikes_in: torch.Tensor, record_v: bool = False) -> NetOutput:
        """spikes_in: (T, B, n_in) 0/1 float."""
        s = spikes_in
        spikes, volts = [s], []
        for layer in self.layers:
            a = torch.zeros((1, s.shape[1], layer.n_out), dtype=s.dtype, device=s.device)
            if s.shape[0] > 1:  # the last step's output would arrive after the sample ends
                a = torch.cat([a, layer(s[:-1])], dim=0)
            record = record_v or (self.cfg.readout == "membrane" and layer is self.layers[-1])
            s, v = lif_run(a, self.lif, record_v=record)
            spikes.append(s)
            volts.append(v)
        if self.cfg.readout == "membrane":
            logits = volts[-1].sum(0)
        else:
            logits = spikes[-1].sum(0)
        return NetOutput(spikes=spikes, logits=logits * self.cfg.readout_scale,
                         voltages=volts if record_v else None)
