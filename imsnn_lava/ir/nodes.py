"""The imsnn model file's IR: a small, typed, versioned HDF5 schema (numpy + h5py only).

Layout (a superset of lava-dl netx's: a fixed-point dense baseline file whose weights have
exponent 0, the default export, loads in `lava.lib.dl.netx.hdf5.Network` unchanged; netx reads
dense weights as 8-bit values and ignores exponents, and it skips unknown layer types such as
isi_dense without an error, so ISI files are for imsnn_lava only):

    /                      attrs: format="imsnn-model", version, precision ("float"|"fixed")
    /config                JSON text of the experiment config (provenance)
    /metrics               JSON text of the training metrics
    /encoding              attrs: num_steps, max_rate, seed
    /layer/0               type="input", shape=[C, H, W]
    /layer/i (i >= 1)      type="dense"|"conv"|"isi_dense"|"isi_conv", shape=[out shape],
                           weight, (conv: stride, padding, dilation, groups, kernel),
                           neuron/{type="CUBA", iDecay, vDecay, vThMant, refDelay, gradedSpike}
                           in fixed files, or neuron/{type="LIF_FLOAT", du, dv, vth} in float;
                           ISI layers: mu, sigma, phi_max, c0; fixed ISI layers: table_mant
                           (K, *weight.shape), table_exp (K,), and `weight` holds the trained
                           float w; fixed plain layers: `weight` holds the integer weights
                           (mantissa << exponent) netx expects, plus table_mant/table_exp.
                           fixed layers: scale (real -> integer factor).
    /reference             sample_ids, labels, spikes (n, T, n_in) uint8, layer_counts (n, L),
                           output_counts (n, n_out): what the exporting model computed, so a
                           deployment can prove it reproduces training (`imsnn verify`).
    /digest                JSON text: sha256 of every field and their total, in a canonical
                           order (imsnn_lava.ir.digest); checked on every read. Files without
                           one (written before digests) load with a warning.

`read` validates every field (type, shape, range, version) before building arrays and raises
ModelFileError naming the file and the field. Nothing is unpickled. Sizes are checked on the
declared shapes before any data is read; unknown members and attributes, and soft or external
links, are refused; anything h5py raises on a corrupt file becomes ModelFileError too.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from imsnn_lava.errors import ModelFileError
from imsnn_lava.ir import fixed_point as fp

FORMAT_NAME = "imsnn-model"
FORMAT_VERSION = 1
PRECISIONS = ("float", "fixed")
LAYER_TYPES = {"dense": ("dense", "plain"), "conv": ("conv", "plain"),
               "isi_dense": ("dense", "isi"), "isi_conv": ("conv", "isi")}
MAX_ELEMENTS = 1 << 26  # refuse any array larger than this before reading it (64 Mi values)
MAX_PHI = 4096
MAX_LAYERS = 64
MAX_STEPS = 100_000
NETX_NEURON = "CUBA"
FLOAT_NEURON = "LIF_FLOAT"


@dataclass(frozen=True)
class EncodingSpec:
    num_steps: int
    max_rate: float
    seed: int


def _frozen_array(value, dtype=None) -> np.ndarray | None:
    """A read-only copy-free view: the IR's arrays cannot be changed in place."""
    if value is None:
        return None
    arr = np.asarray(value, dtype=dtype)
    if arr.flags.writeable:
        arr = arr.view()
        arr.flags.writeable = False
    return arr


@dataclass(frozen=True)
class FixedLayer:
    """A layer's fixed-point part: the integers Lava's bit-accurate models run."""

    scale: int  # real -> integer factor (a power of two)
    table: fp.QuantizedTable  # per-bin mantissas and exponents (K = 1 for a plain layer)
    du: int  # 12-bit register values; effective current decay du + DU_OFFSET
    dv: int
    vth: int  # threshold mantissa, compared as vth << VTH_SHIFT


@dataclass(frozen=True)
class LayerSpec:
    """One synapse layer and its neurons: a frozen IR node of one of the four kinds
    (`type_name`): dense, conv, isi_dense, isi_conv. ISI layers carry mu, sigma, phi_max and
    c0; plain layers carry none (phi_max = c0 = 1: one table bin). The fixed-point part is
    required when the model's precision is "fixed" (ModelFile checks it)."""

    name: str
    kind: str  # "dense" | "conv"
    synapse: str  # "isi" | "plain"
    in_shape: tuple[int, int, int]  # (C, H, W); a dense layer after a dense one has (n, 1, 1)
    out_shape: tuple[int, int, int]
    weight: np.ndarray  # float64 (n_out, n_in) or (C_out, C_in, k, k)
    du: float
    dv: float
    vth: float
    stride: int = 1
    padding: int = 0
    mu: np.ndarray | None = None
    sigma: np.ndarray | None = None
    phi_max: int = 1
    c0: int = 1
    fixed: FixedLayer | None = None

    def __post_init__(self):
        def fail(msg: str):
            raise ModelFileError(f"layer {self.name}: {msg}")

        if (self.kind, self.synapse) not in LAYER_TYPES.values():
            fail(f"kind {self.kind!r} / synapse {self.synapse!r} is not one of "
                 f"{sorted(LAYER_TYPES)}")
        object.__setattr__(self, "in_shape", tuple(int(x) for x in self.in_shape))
        object.__setattr__(self, "out_shape", tuple(int(x) for x in self.out_shape))
        object.__setattr__(self, "weight", _frozen_array(self.weight, np.float64))
        ndim = 2 if self.kind == "dense" else 4
        if self.weight.ndim != ndim:
            fail(f"weight: expected {ndim} dimensions for a {self.kind} layer, found shape "
                 f"{self.weight.shape}")
        if self.synapse == "isi":
            if self.mu is None or self.sigma is None:
                fail("an ISI layer needs mu and sigma")
            for key in ("mu", "sigma"):
                arr = _frozen_array(getattr(self, key), np.float64)
                if arr.shape != self.weight.shape:
                    fail(f"{key}: expected shape {self.weight.shape}, found {arr.shape}")
                object.__setattr__(self, key, arr)
            if not 1 <= int(self.phi_max) <= MAX_PHI or not 1 <= int(self.c0) <= self.phi_max:
                fail(f"phi_max {self.phi_max} / c0 {self.c0}: need 1 <= c0 <= phi_max <= "
                     f"{MAX_PHI}")
        elif self.mu is not None or self.sigma is not None or self.phi_max != 1:
            fail("a plain layer has no mu, sigma or phi_max")
        object.__setattr__(self, "phi_max", int(self.phi_max))
        object.__setattr__(self, "c0", int(self.c0))
        if self.fixed is not None and self.fixed.table.mant.shape != (
                (self.phi_max,) + self.weight.shape):
            fail(f"table_mant: expected shape {(self.phi_max,) + self.weight.shape}, found "
                 f"{self.fixed.table.mant.shape}")

    @property
    def n_in(self) -> int:
        return int(np.prod(self.in_shape))

    @property
    def n_out(self) -> int:
        return int(np.prod(self.out_shape))

    @property
    def type_name(self) -> str:
        return ("isi_" if self.synapse == "isi" else "") + self.kind

    @property
    def isi(self) -> bool:
        return self.synapse == "isi"

    def replace(self, **changes) -> LayerSpec:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class ReferenceData:
    sample_ids: np.ndarray  # (n,) int64
    labels: np.ndarray  # (n,) int64
    spikes: np.ndarray  # (n, T, n_in) bool
    layer_counts: np.ndarray  # (n, L) int64, spikes per layer per sample (hidden + output)
    output_counts: np.ndarray  # (n, n_out) int64


@dataclass(frozen=True)
class ModelFile:
    """The whole IR: input, encoding, layers, provenance and the reference vectors."""

    precision: str
    input_shape: tuple[int, int, int]
    encoding: EncodingSpec
    layers: tuple[LayerSpec, ...]
    config_json: str = "{}"
    metrics_json: str = "{}"
    reference: ReferenceData | None = None
    version: int = FORMAT_VERSION
    digest: str | None = None  # the sha256 read from the file (None: written without one)

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "input_shape", tuple(int(x) for x in self.input_shape))
        check(self)

    @property
    def num_steps(self) -> int:
        return self.encoding.num_steps

    @property
    def fixed(self) -> bool:
        return self.precision == "fixed"

    def replace(self, **changes) -> ModelFile:
        return dataclasses.replace(self, **changes)


def conv_out_hw(h: int, w: int, kernel: int, stride: int, padding: int) -> tuple[int, int]:
    return ((h + 2 * padding - kernel) // stride + 1, (w + 2 * padding - kernel) // stride + 1)


def check(model: ModelFile, where: str = "model") -> None:
    """Consistency checks before writing (the same invariants `read` enforces)."""
    if model.precision not in PRECISIONS:
        raise ModelFileError(f"{where}: precision {model.precision!r} not in {PRECISIONS}")
    prev = tuple(model.input_shape)
    for layer in model.layers:
        if tuple(layer.in_shape) != prev:
            raise ModelFileError(f"{where}: layer {layer.name}: input shape {layer.in_shape} "
                                 f"does not match the previous output {prev}")
        if model.precision == "fixed" and layer.fixed is None:
            raise ModelFileError(f"{where}: layer {layer.name}: fixed-point data missing")
        prev = tuple(layer.out_shape)

