"""Synapse layers over imsnn_train.functional: ISIDense, ISIConv2d and the plain baselines.

Every layer maps presynaptic spikes (T, B, n_in), flat and channel-major, to the synaptic input
they cause (T, B, n_out) at the same step; the network applies Lava's one-step hand-over.
Learnable values (w) are parameters; mu, sigma are fixed per-synapse buffers, or parameters
when the config learns them (model.isi.learn_mu_sigma, method.md's optional extension).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from imsnn_train.config import SIGMA_MIN, ISIConfig
from imsnn_train.functional.isi import (
    Counter,
    dense_tables,
    isi_conv,
    isi_dense,
    modulation_tables,
    patch_index,
)


def _uniform(shape, bound: float, gen: torch.Generator) -> torch.Tensor:
    return (torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1) * bound


def _isi_buffers(module: nn.Module, shape, isi: ISIConfig, gen: torch.Generator) -> None:
    mu_hi = isi.mu_hi if isi.mu_hi > 0 else float(isi.phi_max)
    mu = isi.mu_lo + torch.rand(shape, generator=gen, dtype=torch.float64) * (mu_hi - isi.mu_lo)
    sig = torch.rand(shape, generator=gen, dtype=torch.float64)
    sigma = isi.sigma_lo + sig * (isi.sigma_hi - isi.sigma_lo)
    if isi.learn_mu_sigma:
        module.mu = nn.Parameter(mu.float())
        module.sigma = nn.Parameter(sigma.float())
    else:
        module.register_buffer("mu", mu.float())
        module.register_buffer("sigma", sigma.float())
    module.phi_max, module.c0, module.gate = isi.phi_max, isi.c0, isi.gate
    module.gate_strength = isi.gate_strength  # the training loop sets it per epoch (warm-up)
    module._tables = None  # (key, (G^T, R^T)): derived from mu, sigma


class _ISIMixin:
    """What ISI layers share beyond their synapse math."""

    def modulation_mean(self) -> float:
        """Mean Gaussian factor over synapses and ISI bins 1..phi_max (for init_gain)."""
        g, _ = modulation_tables(self.mu.double(), self.sigma.double(), self.phi_max)
        return float(g.mean())

    @property
    def learns_mu_sigma(self) -> bool:
        return isinstance(self.mu, nn.Parameter)

    def constrain(self) -> None:
        """After an optimizer step: keep learned sigma >= SIGMA_MIN (a Gaussian, not a spike)."""
        if self.learns_mu_sigma:
            with torch.no_grad():
                self.sigma.clamp_(min=SIGMA_MIN)

    def counter(self, steps: int) -> Counter:
        """The presynaptic counter the synapse runs over `steps` steps of its input (phi is
        not a tensor of the graph: functional/counter.py)."""
        return Counter(self.c0, self.phi_max, self.gate, self.gate_strength, steps)

    def tables(self, dtype: torch.dtype):
        """`dense_tables` of mu, sigma as (n_out, fan_in): cached while they are fixed buffers,
        built in the autograd graph every call while they are learned."""
        rows = self.mu.shape[0]
        if self.learns_mu_sigma and torch.is_grad_enabled():
            return dense_tables(self.mu.to(dtype).reshape(rows, -1),
                                self.sigma.to(dtype).reshape(rows, -1), self.phi_max)
        key = (dtype, self.mu.device, self.mu._version, self.sigma._version,
               self.mu.data_ptr(), self.sigma.data_ptr())
        if self._tables is None or self._tables[0] != key:
            self._tables = (key, dense_tables(self.mu.detach().to(dtype).reshape(rows, -1),
                                              self.sigma.detach().to(dtype).reshape(rows, -1),
                                              self.phi_max))
        return self._tables[1]


class _Synapse(nn.Module):
    """Shared shape bookkeeping. in_shape/out_shape are (C, H, W); dense layers use (n, 1, 1)."""

    kind = "dense"
    isi = False

    def __init__(self, in_shape, out_shape):
        super().__init__()
        self.in_shape = tuple(in_shape)
        self.out_shape = tuple(out_shape)
        self.n_in = math.prod(self.in_shape)
        self.n_out = math.prod(self.out_shape)


class Dense(_Synapse):
    """Conventional synapse: theta_ij = w_ij."""

    def __init__(self, in_shape, n_out: int, gen: torch.Generator):
        super().__init__(in_shape, (n_out, 1, 1))
        bound = 1.0 / math.sqrt(self.n_in)
        self.weight = nn.Parameter(_uniform((n_out, self.n_in), bound, gen).float())

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return s @ self.weight.t()


class ISIDense(_ISIMixin, _Synapse):
    """ISI-modulated dense synapse (method.md section 2)."""

    isi = True

    def __init__(self, in_shape, n_out: int, isi: ISIConfig, gen: torch.Generator,
                 isi_gen: torch.Generator):
        super().__init__(in_shape, (n_out, 1, 1))
        bound = 1.0 / math.sqrt(self.n_in)
        self.weight = nn.Parameter(_uniform((n_out, self.n_in), bound, gen).float())
        _isi_buffers(self, (n_out, self.n_in), isi, isi_gen)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        t, b, _ = s.shape
        a = isi_dense(s.reshape(t * b, -1), None, self.weight, self.mu, self.sigma,
                      self.phi_max, tables=self.tables(s.dtype), counter=self.counter(t))
        return a.view(t, b, self.n_out)


def conv_out_shape(in_shape, channels: int, kernel: int, stride: int, padding: int):
    _, h, w = in_shape
    return (channels, (h + 2 * padding - kernel) // stride + 1,
            (w + 2 * padding - kernel) // stride + 1)


class Conv2d(_Synapse):
    kind = "conv"

    def __init__(self, in_shape, channels: int, kernel: int, stride: int, padding: int,
                 gen: torch.Generator):
        super().__init__(in_shape, conv_out_shape(in_shape, channels, kernel, stride, padding))
        fan_in = in_shape[0] * kernel * kernel
        shape = (channels, in_shape[0], kernel, kernel)
        self.weight = nn.Parameter(_uniform(shape, 1.0 / math.sqrt(fan_in), gen).float())
        self.stride, self.padding = stride, padding

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        t, b, _ = s.shape
        x = s.reshape(t * b, *self.in_shape)
        a = torch.nn.functional.conv2d(x, self.weight, stride=self.stride, padding=self.padding)
        return a.reshape(t, b, self.n_out)


class ISIConv2d(_ISIMixin, _Synapse):
    """ISI-modulated convolution: one (w, mu, sigma) per kernel weight; phi of the presynaptic
    pixel."""

    kind = "conv"
    isi = True

    def __init__(self, in_shape, channels: int, kernel: int, stride: int, padding: int,
                 isi: ISIConfig, gen: torch.Generator, isi_gen: torch.Generator):
        super().__init__(in_shape, conv_out_shape(in_shape, channels, kernel, stride, padding))
        fan_in = in_shape[0] * kernel * kernel
        shape = (channels, in_shape[0], kernel, kernel)
        self.weight = nn.Parameter(_uniform(shape, 1.0 / math.sqrt(fan_in), gen).float())
        _isi_buffers(self, shape, isi, isi_gen)
        self.stride, self.padding = stride, padding
        self._index = patch_index(self.in_shape, kernel, stride, padding)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        t, b, _ = s.shape
        if self._index.device != s.device:
            self._index = self._index.to(s.device)
        a = isi_conv(s.reshape(t * b, *self.in_shape), None, self.weight, self.mu, self.sigma,
                     self.phi_max, self.stride, self.padding, tables=self.tables(s.dtype),
                     index=self._index, counter=self.counter(t))
        return a.reshape(t, b, self.n_out)

