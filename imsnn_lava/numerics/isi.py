"""The ISI machinery of method.md section 2, written once (numpy only).

- `gaussian`: the modulation exp(-(phi - mu)^2 / (2 sigma^2));
- `weight_table`: the real effective weights w * G[k] per ISI bin k = 1..phi_max;
- the ISI counter: c[0] = c0, c[t+1] = 1 + c[t] (1 - s[t]), held at phi_max (only
  min(c, phi_max) is ever used), and the table bin of a spike, min(c, phi_max) - 1.
Every user (reference simulator, Lava synapse models, event counters, the stock lowering)
calls these functions.
"""

from __future__ import annotations

import numpy as np

from imsnn_lava.ir.nodes import LayerSpec


def gaussian(phi: np.ndarray | float, mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """exp(-(phi - mu)^2 / (2 sigma^2)), method.md section 2."""
    return np.exp(-((phi - mu) ** 2) / (2.0 * sigma**2))


def weight_table(layer: LayerSpec) -> np.ndarray:
    """Real effective weights per ISI bin, shape (K, *weight.shape): w * G[k], k = 1..phi_max."""
    if layer.synapse == "plain":
        return layer.weight[None].astype(np.float64)
    bins = np.arange(1, layer.phi_max + 1, dtype=np.float64)
    bins = bins.reshape((-1,) + (1,) * layer.weight.ndim)
    return layer.weight[None] * gaussian(bins, layer.mu[None], layer.sigma[None])


def isi_bins(counter: np.ndarray, phi_max: int) -> np.ndarray:
    """Table bin (0-based) of a spike whose ISI counter is `counter`: min(c, phi_max) - 1."""
    return np.minimum(counter, phi_max) - 1


def counter_start(shape: tuple[int, ...], c0: int, phi_max: int,
                  dtype=np.int64) -> np.ndarray:
    """Counters at a sample's first step: c0 (held at phi_max, which changes no bin)."""
    return np.full(shape, min(int(c0), int(phi_max)), dtype=dtype)


def counter_step(counter: np.ndarray, spikes: np.ndarray, phi_max: int) -> np.ndarray:
    """c[t+1] = 1 + c[t] (1 - s[t]), held at phi_max (only min(c, phi_max) is ever used)."""
    return np.where(spikes, 1, np.minimum(counter + 1, phi_max))


def counter_advance(counter: np.ndarray, spikes: np.ndarray, phi_max: int) -> None:
    """counter_step in place (for the event-driven kernels)."""
    counter += 1
    np.minimum(counter, phi_max, out=counter)
    counter[spikes] = 1
