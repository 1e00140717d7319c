"""Small random imsnn models and MNIST test images for the Lava tests (numpy only).

Loaded by the Lava test modules with `load_helpers()` below (pytest runs with
--import-mode=importlib, so tests/ is not on sys.path and must not become a `tests` package).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from imsnn_lava import ir as F
from imsnn_lava.ir import fixed_point as fp
from imsnn_lava.numerics import isi

MNIST_TEST_IMAGES = Path(os.path.expanduser("~/.cache/imsnn/data/mnist/t10k-images-idx3-ubyte"))


def mnist_test_images(n: int, start: int = 0) -> np.ndarray | None:
    """(n, 28, 28) uint8 MNIST test images read from the IDX file, or None if it is absent."""
    if not MNIST_TEST_IMAGES.is_file():
        return None
    with open(MNIST_TEST_IMAGES, "rb") as f:
        magic, count, rows, cols = np.frombuffer(f.read(16), dtype=">u4")
        if magic != 2051:
            raise ValueError(f"{MNIST_TEST_IMAGES}: bad IDX magic {magic}")
        if start + n > count:
            raise ValueError(f"asked for images {start}..{start + n}, file has {count}")
        f.seek(16 + start * rows * cols)
        data = np.frombuffer(f.read(n * rows * cols), dtype=np.uint8)
    return data.reshape(n, rows, cols).copy()


def _isi(layer: F.LayerSpec, rng: np.random.Generator, phi_max: int) -> F.LayerSpec:
    return layer.replace(synapse="isi", phi_max=phi_max, c0=1,
                         mu=rng.uniform(1, phi_max, layer.weight.shape),
                         sigma=rng.uniform(1, 4, layer.weight.shape))


def dense(rng, name: str, in_shape, n_out: int, isi: bool, gain: float = 1.5, dv: float = 0.1,
          vth: float = 1.0, phi_max: int = 8) -> F.LayerSpec:
    n_in = int(np.prod(in_shape))
    w = rng.normal(0, gain / np.sqrt(n_in), (n_out, n_in))
    layer = F.LayerSpec(name=name, kind="dense", synapse="plain",
                        in_shape=tuple(in_shape), out_shape=(n_out, 1, 1), weight=w, du=1.0,
                        dv=dv, vth=vth)
    return _isi(layer, rng, phi_max) if isi else layer


def conv(rng, name: str, in_shape, c_out: int, k: int, stride: int, isi: bool,
         gain: float = 1.5, dv: float = 0.1, vth: float = 1.0, phi_max: int = 8) -> F.LayerSpec:
    w = rng.normal(0, gain / np.sqrt(in_shape[0] * k * k), (c_out, in_shape[0], k, k))
    oh, ow = F.conv_out_hw(in_shape[1], in_shape[2], k, stride, 0)
    layer = F.LayerSpec(name=name, kind="conv", synapse="plain",
                        in_shape=tuple(in_shape), out_shape=(c_out, oh, ow), weight=w, du=1.0,
                        dv=dv, vth=vth, stride=stride)
    return _isi(layer, rng, phi_max) if isi else layer


def quantize(model: F.ModelFile, max_scale_log2: int = 12) -> F.ModelFile:
    """A fixed-point copy of a float model (as the exporter does it)."""
    layers = []
    for src in model.layers:
        layer = src
        tab = isi.weight_table(layer)
        scale = fp.choose_scale(tab.reshape(tab.shape[0], tab.shape[1], -1), layer.vth,
                                max_scale_log2, layer.name)
        table = fp.quantize_table(tab, scale, layer.name)
        layers.append(layer.replace(fixed=F.FixedLayer(
            scale=scale, table=table, du=fp.decay_to_int(layer.du, fp.DU_OFFSET),
            dv=fp.decay_to_int(layer.dv, fp.DV_OFFSET),
            vth=fp.threshold_to_int(layer.vth, scale, layer.name))))
    return F.ModelFile(precision="fixed", input_shape=model.input_shape,
                       encoding=model.encoding, layers=layers)


def mnist_model(seed: int = 0, num_steps: int = 20, max_rate: float = 0.5) -> F.ModelFile:
    """Float model 1x28x28 -> conv ISI (4x8x8) -> dense ISI 32 -> dense plain 10."""
    rng = np.random.default_rng(seed)
    l1 = conv(rng, "c1", (1, 28, 28), 4, 7, 3, True, gain=3.0)
    l2 = dense(rng, "d2", l1.out_shape, 32, True, gain=4.0)
    l3 = dense(rng, "d3", (32, 1, 1), 10, False, gain=3.0)
    return F.ModelFile(precision="float", input_shape=(1, 28, 28),
                       encoding=F.EncodingSpec(num_steps, max_rate, 7), layers=[l1, l2, l3])


def tiny_model(seed: int = 1, num_steps: int = 12, n_in: int = 16) -> F.ModelFile:
    """Float model n_in -> dense ISI 12 -> dense plain 5 (fast to build and run)."""
    rng = np.random.default_rng(seed)
    l1 = dense(rng, "d1", (n_in, 1, 1), 12, True, gain=4.0, phi_max=6)
    l2 = dense(rng, "d2", (12, 1, 1), 5, False, gain=3.0)
    return F.ModelFile(precision="float", input_shape=(n_in, 1, 1),
                       encoding=F.EncodingSpec(num_steps, 0.5, 3), layers=[l1, l2])


def random_spikes(rng, n: int, t: int, n_in: int, p: float = 0.3) -> np.ndarray:
    """(N, T, n_in) bool input spikes."""
    return rng.random((n, t, n_in)) < p


def proc_table() -> list[tuple[int, int, int, str, str]]:
    """(pid, ppid, pgid, state, command line) of every process, from /proc."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            out.append((int(entry), int(fields[1]), int(fields[2]), fields[0], cmd))
        except (OSError, IndexError, ValueError):
            continue
    return out


def train_here(config_path, overrides, out):
    """Train a config in this process, quietly, keeping torch's thread count as it was;
    returns (out, metrics)."""
    import torch

    from imsnn_train import config
    from imsnn_train.train import train

    cfg = config.load(config_path, overrides)
    threads = torch.get_num_threads()
    try:
        metrics = train(cfg, out, progress=False, log=lambda *_: None)
    finally:
        torch.set_num_threads(threads)
    return out, metrics
