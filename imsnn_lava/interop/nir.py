"""NIR (Neuromorphic Intermediate Representation) <-> imsnn model files (numpy, h5py, nir).

`from_nir(graph_or_path, ...)` turns a feed-forward NIR graph into a `ModelFile` that imsnn
simulates in Lava; `to_nir(model)` turns a model of plain layers into a NIR graph.

Supported graphs: one chain  Input -> [Flatten] -> synapse -> neuron -> ... -> Output,  where
a synapse is Affine (zero bias), Linear or Conv2d (zero bias, square kernel, equal strides and
paddings, dilation 1, groups 1) and a neuron is LIF, CubaLIF or IF (v_leak = 0, v_reset = 0).
Each synapse + neuron pair becomes one imsnn layer. Anything else is refused with one line
naming the node and the reason: other node types, nested graphs, cycles (recurrent edges),
nodes with several inputs or outputs, non-zero bias or v_leak, a reset to v_reset != 0,
time constants or thresholds that differ between the neurons of one layer.

Discretisation. NIR's neurons are continuous-time; one Lava step is `dt` (in the graph's time
unit). Forward Euler, with a spike worth 1 during its step (the convention of snnTorch's and
Norse's NIR export), the current updated before the voltage, as in Lava's LIF
(u = u (1 - du) + a_in;  v = v (1 - dv) + u;  s = v > vth;  v = 0 where s):

    LIF      tau dv/dt = -v + r I              du = 1
                                               dv = dt / tau
                                               g  = r / (tau / dt)
    CubaLIF  tau_syn dI/dt = -I + w_in S       du = dt / tau_syn
             tau_mem dv/dt = -v + r I          dv = dt / tau_mem
                                               g  = (w_in / (tau_syn / dt)) * (r / (tau_mem / dt))
    IF       dv/dt = r I                       du = 1,  dv = 0,  g = r * dt
    all      z = v > v_threshold; v = 0 on z   vth = v_threshold

and each neuron's gain g multiplies the weights into it (w = g * W; in a conv layer g must be
the same across a channel). tau, tau_syn >= dt (Lava's decays are in [0, 1]), vth > 0.
For snnTorch's export (r = tau / dt, w_in = tau_syn / dt, tau = dt / (1 - beta)) this gives
g = 1 and dv = 1 - beta: snnTorch's Leaky/Synaptic equations with reset_mechanism="zero".

Timing (the one documented difference, listed by `import_notes`): every imsnn
synapse hands its output on one step late, as Lava's Dense does, while NIR's edges are
instantaneous. Layer l's spike train in imsnn is the NIR graph's delayed by l steps, so over a
sample of T steps the last L input steps do not reach an L-layer network's output.

The encoding (num_steps, max_rate, seed) and dt come from the arguments, else from the graph's
metadata (where `to_nir` stores them); num_steps, max_rate and dt have no default.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from imsnn_lava import ir as fmt
from imsnn_lava.errors import FixedPointError
from imsnn_lava.interop.nir_chain import chain
from imsnn_lava.interop.nir_export import to_nir
from imsnn_lava.interop.nir_file import MAX_ELEMENTS, NIRFileError, load_nir, save_nir
from imsnn_lava.ir.quantize import quantize_model

__all__ = ["NIRFileError", "from_nir", "import_notes", "load_nir", "make_layer", "save_nir",
           "to_nir"]

SYNAPSES = ("Affine", "Linear", "Conv2d")
NEURONS = ("LIF", "CubaLIF", "IF")
KERNEL_MAX = 64  # format.read's limit for kernel, stride and padding
DELAY_NOTE = ("imsnn delivers every synapse's output one step late (as Lava's Dense): layer l "
              "spikes l steps after the NIR graph would, and the last {L} input steps of a "
              "sample do not reach the output")


def make_layer(*, name: str, kind: str, in_shape, out_shape, weight: np.ndarray, du: float,
               dv: float, vth: float, stride: int = 1, padding: int = 0) -> fmt.LayerSpec:
    """The one place this module builds a layer (the layer type is being reworked)."""
    return fmt.LayerSpec(name=name, kind=kind, synapse="plain", in_shape=tuple(in_shape),
                         out_shape=tuple(out_shape), weight=weight, du=float(du), dv=float(dv),
                         vth=float(vth), stride=int(stride), padding=int(padding))


# ---------------------------------------------------------------------------------------------
# NIR -> imsnn


class _Node:
    """Typed access to one node's fields; every failure names the graph, node and field."""

    def __init__(self, where: str, name: str, node):
        self.where, self.name, self.node = where, name, node
        self.kind = type(node).__name__

    def fail(self, msg: str, field: str | None = None) -> NIRFileError:
        at = f": field '{field}'" if field else ""
        return NIRFileError(f"{self.where}: node '{self.name}' ({self.kind}){at}: {msg}")

    def array(self, field: str, shape: tuple | None = None, ndim: int | None = None):
        value = getattr(self.node, field, None)
        if value is None:
            raise self.fail("missing", field)
        arr = np.asarray(value)
        if arr.dtype.kind not in "biuf":
            raise self.fail(f"expected numbers, found {arr.dtype} values", field)
        if arr.size > MAX_ELEMENTS:
            raise self.fail(f"{arr.size} values exceed the limit of {MAX_ELEMENTS}", field)
        arr = arr.astype(np.float64)
        if not np.all(np.isfinite(arr)):
            raise self.fail("contains NaN or Inf", field)
        if ndim is not None and arr.ndim != ndim:
            raise self.fail(f"expected {ndim} dimensions, found shape {arr.shape}", field)
        if shape is not None:
            try:
                arr = np.broadcast_to(arr, shape)
            except ValueError:
                raise self.fail(f"shape {arr.shape} does not fit the layer's shape {shape}",
                                field) from None
        return arr

    def uniform(self, field: str, shape: tuple) -> float:
        arr = self.array(field, shape)
        lo, hi = float(arr.min()), float(arr.max())
        if lo != hi:
            raise self.fail(f"varies across the neurons ({lo:g} .. {hi:g}); an imsnn layer has "
                            "one value for all its neurons", field)
        return lo

    def zero(self, field: str, shape: tuple, why: str) -> None:
        if np.any(self.array(field, shape) != 0):
            raise self.fail(f"non-zero values are not supported ({why})", field)

    def pair(self, field: str, lo: int, hi: int) -> int:
        flat = self.array(field).reshape(-1)
        if flat.size not in (1, 2) or flat.min() != flat.max() or flat[0] != int(flat[0]):
            raise self.fail(f"expected one integer or an equal pair, found {flat.tolist()}",
                            field)
        value = int(flat[0])
        if not lo <= value <= hi:
            raise self.fail(f"{value} outside [{lo}, {hi}]", field)
        return value

    def shape(self, value, field: str) -> tuple[int, ...]:
        arr = np.asarray(value)
        if arr.dtype.kind not in "iuf" or arr.ndim != 1 or arr.size == 0 or np.any(
                arr != np.round(arr)) or np.any(arr < 1):
            raise self.fail(f"expected a shape of positive integers, found {value!r}", field)
        shape = tuple(int(x) for x in arr)
        if math.prod(shape) > MAX_ELEMENTS:
            raise self.fail(f"shape {list(shape)} exceeds the limit of {MAX_ELEMENTS} values",
                            field)
        return shape


def _synapse(nd: _Node, shape: tuple[int, ...]):
    """(kind, weight, NIR output shape, stride, padding) of a synapse node on `shape`."""
    if nd.kind in ("Affine", "Linear"):
        if len(shape) != 1:
            raise nd.fail(f"needs a 1-D input, found shape {list(shape)}; put a Flatten node "
                          "before it")
        w = nd.array("weight", ndim=2)
        if w.shape[1] != shape[0]:
            raise nd.fail(f"shape {w.shape} does not take the {shape[0]} inputs it receives",
                          "weight")
        if nd.kind == "Affine":
            nd.zero("bias", (w.shape[0],), "Lava's LIF bias is not part of imsnn's layers")
        return "dense", w.copy(), (w.shape[0],), 1, 0
    if len(shape) != 3:
        raise nd.fail(f"needs a (C, H, W) input, found shape {list(shape)}")
    w = nd.array("weight", ndim=4)
    c_out, c_in, kh, kw = w.shape
    if c_in != shape[0]:
        raise nd.fail(f"shape {w.shape} expects {c_in} input channels, receives {shape[0]}",
                      "weight")
    if kh != kw or not 1 <= kh <= KERNEL_MAX:
        raise nd.fail(f"kernel {kh}x{kw}: only square kernels up to {KERNEL_MAX} are supported",
                      "weight")
    stride = nd.pair("stride", 1, KERNEL_MAX)
    nd.pair("dilation", 1, 1)
    nd.pair("groups", 1, 1)
    pad = nd.node.padding
    if isinstance(pad, (str, bytes)):
        pad = pad.decode() if isinstance(pad, bytes) else pad
        if pad == "valid":
            padding = 0
        elif pad == "same" and stride == 1 and kh % 2 == 1:
            padding = (kh - 1) // 2
        else:
            raise nd.fail(f"'{pad}' with stride {stride} and kernel {kh} has no symmetric "
                          "padding", "padding")
    else:
        padding = nd.pair("padding", 0, KERNEL_MAX)
    nd.zero("bias", (c_out,), "Lava's LIF bias is not part of imsnn's layers")
    oh, ow = fmt.conv_out_hw(shape[1], shape[2], kh, stride, padding)
    if oh < 1 or ow < 1:
        raise nd.fail(f"kernel {kh}, stride {stride}, padding {padding} leave no output on a "
                      f"{shape[1]}x{shape[2]} input")
    declared = getattr(nd.node, "input_shape", None)
    if declared is not None and tuple(np.asarray(declared).reshape(-1)) != shape[1:]:
        raise nd.fail(f"declares input {np.asarray(declared).tolist()}, receives "
                      f"{list(shape[1:])}", "input_shape")
    return "conv", w.copy(), (c_out, oh, ow), stride, padding


def _neuron(nd: _Node, shape: tuple[int, ...], dt: float):
    """(du, dv, vth, gain per neuron) of a neuron node: the formulas of the module docstring."""
    vth = nd.uniform("v_threshold", shape)
    if vth <= 0:
        raise nd.fail(f"{vth:g}: a threshold must be > 0", "v_threshold")
    nd.zero("v_reset", shape, "Lava's LIF resets to 0")
    if nd.kind == "IF":
        return 1.0, 0.0, vth, nd.array("r", shape) * dt
    nd.zero("v_leak", shape, "Lava's LIF leaks towards 0")
    taus = ("tau",) if nd.kind == "LIF" else ("tau_syn", "tau_mem")
    tau = {}
    for field in taus:
        tau[field] = nd.uniform(field, shape)
        if tau[field] < dt:
            raise nd.fail(f"{tau[field]:g} < dt = {dt:g}: Lava's decay dt / tau must be <= 1",
                          field)
    if nd.kind == "LIF":
        return 1.0, dt / tau["tau"], vth, nd.array("r", shape) / (tau["tau"] / dt)
    gain = (nd.array("w_in", shape) / (tau["tau_syn"] / dt)) * (
        nd.array("r", shape) / (tau["tau_mem"] / dt))
    return dt / tau["tau_syn"], dt / tau["tau_mem"], vth, gain


def _fold_gain(nd: _Node, kind: str, w: np.ndarray, gain: np.ndarray) -> np.ndarray:
    if kind == "dense":
        return w * gain[:, None]
    per_channel = gain.reshape(gain.shape[0], -1)
    if np.any(per_channel != per_channel[:, :1]):
        raise nd.fail("the input gain (r, w_in) varies within a channel; a conv layer shares "
                      "its kernel across the channel")
    return w * per_channel[:, 0].reshape(-1, 1, 1, 1)


def _setting(where: str, name: str, value, metadata: dict, lo: float, hi: float,
             integer: bool, flag: str):
    source = "argument"
    if value is None:
        value, source = metadata.get(name), "graph metadata"
    if value is None:
        raise NIRFileError(f"{where}: {name} is neither given nor in the graph's metadata; "
                           f"pass {flag}")
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf" or arr.size != 1 or not np.isfinite(arr).all():
        raise NIRFileError(f"{where}: {name} ({source}): expected a number, found {value!r}")
    v = arr.reshape(()).item()
    if integer and v != int(v):
        raise NIRFileError(f"{where}: {name} ({source}): expected an integer, found {v!r}")
    if not lo <= v <= hi:
        raise NIRFileError(f"{where}: {name} ({source}): {v} outside [{lo}, {hi}]")
    return int(v) if integer else float(v)


def from_nir(graph_or_path, *, dt: float | None = None, num_steps: int | None = None,
             max_rate: float | None = None, seed: int | None = None,
             fixed_point: bool = False) -> fmt.ModelFile:
    """A feed-forward NIR graph (a nir.NIRGraph or a .nir file) -> an imsnn ModelFile.

    dt, num_steps, max_rate, seed: arguments win over the graph's metadata; seed defaults to 0.
    fixed_point: quantize as `imsnn export --fixed-point` does (imsnn_lava.ir.quantize).
    Raises NIRFileError (or FixedPointError) with one line naming the node and the reason.
    """
    if isinstance(graph_or_path, (str, Path)):
        where, graph = str(graph_or_path), load_nir(graph_or_path)
    else:
        where, graph = "NIR graph", graph_or_path
    meta = graph.metadata if isinstance(getattr(graph, "metadata", None), dict) else {}
    dt = _setting(where, "dt", dt, meta, 1e-300, 1e300, False, "--dt (dt=...)")
    enc = fmt.EncodingSpec(
        num_steps=_setting(where, "num_steps", num_steps, meta, 1, fmt.MAX_STEPS, True,
                           "--num-steps (num_steps=...)"),
        max_rate=_setting(where, "max_rate", max_rate, meta, 0.0, 1.0, False,
                          "--max-rate (max_rate=...)"),
        seed=_setting(where, "seed", seed, {"seed": 0, **meta}, 0, 2**63 - 1, True, "--seed"))
    order = chain(graph, where)
    first = _Node(where, order[0], graph.nodes[order[0]])
    shape = first.shape(first.node.input_type.get("input"), "shape")
    if len(shape) not in (1, 3):
        raise first.fail(f"shape {list(shape)}: expected (N,) or (C, H, W)", "shape")
    input_shape = shape + (1, 1) if len(shape) == 1 else shape
    prev, layers, synapse = input_shape, [], None
    for name in order[1:]:
        nd = _Node(where, name, graph.nodes[name])
        if nd.kind in SYNAPSES or nd.kind in ("Flatten", "Output"):
            if synapse is not None:
                raise nd.fail(f"follows synapse '{synapse[0]}' directly; a neuron node must "
                              "come between")
        if nd.kind == "Flatten":
            shape = _flatten(nd, shape)
        elif nd.kind in SYNAPSES:
            synapse = (name,) + _synapse(nd, shape)
            shape = synapse[3]
        elif nd.kind in NEURONS:
            if synapse is None:
                raise nd.fail("has no Affine, Linear or Conv2d node before it")
            syn_name, kind, w, out, stride, padding = synapse
            du, dv, vth, gain = _neuron(nd, out, dt)
            out3 = out + (1, 1) if kind == "dense" else out
            layers.append(make_layer(name=syn_name, kind=kind, in_shape=prev, out_shape=out3,
                                     weight=_fold_gain(nd, kind, w, gain), du=du, dv=dv,
                                     vth=vth, stride=stride, padding=padding))
            prev, synapse = out3, None
        else:  # Output
            declared = nd.node.output_type.get("output") if nd.node.output_type else None
            if declared is not None and np.asarray(declared).size and tuple(
                    np.asarray(declared).reshape(-1).tolist()) != shape:
                raise nd.fail(f"declares shape {np.asarray(declared).tolist()}, receives "
                              f"{list(shape)}", "shape")
    if not layers:
        raise NIRFileError(f"{where}: the graph has no synapse + neuron layer")
    if len(layers) > fmt.MAX_LAYERS:
        raise NIRFileError(f"{where}: {len(layers)} layers exceed the limit of {fmt.MAX_LAYERS}")
    source = {"format": "nir", "file": Path(where).name if where != "NIR graph" else None,
              "dt": dt, "producer": str(meta.get("producer", "unknown"))}
    model = fmt.ModelFile(precision="float",
                          input_shape=input_shape, encoding=enc, layers=layers,
                          config_json=json.dumps({"name": Path(where).stem if source["file"]
                                                  else "nir", "source": source},
                                                 sort_keys=True))
    if fixed_point:
        try:
            model = quantize_model(model)
        except FixedPointError as exc:
            raise FixedPointError(f"{where}: {exc}") from None
    fmt.check(model, where)
    return model


def import_notes(model: fmt.ModelFile) -> list[str]:
    """What an imported model does differently from its NIR graph (printed on import)."""
    return [DELAY_NOTE.format(L=len(model.layers))]


def _flatten(nd: _Node, shape: tuple[int, ...]) -> tuple[int, ...]:
    declared = nd.node.input_type.get("input") if nd.node.input_type else None
    if declared is not None and tuple(np.asarray(declared).reshape(-1).tolist()) != shape:
        raise nd.fail(f"declares input {np.asarray(declared).tolist()}, receives "
                      f"{list(shape)}", "input_type")
    dims = []
    for field in ("start_dim", "end_dim"):
        value = np.asarray(getattr(nd.node, field))
        if value.dtype.kind not in "iu" or value.size != 1:
            raise nd.fail(f"expected an integer, found {value!r}", field)
        d = int(value.reshape(()))
        d = d + len(shape) if d < 0 else d
        if not 0 <= d < len(shape):
            raise nd.fail(f"{int(value.reshape(()))} is not a dimension of {list(shape)}", field)
        dims.append(d)
    s, e = dims
    if s > e:
        raise nd.fail(f"start_dim {s} > end_dim {e}")
    return shape[:s] + (math.prod(shape[s:e + 1]),) + shape[e + 1:]
