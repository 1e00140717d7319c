"""imsnn model -> NIR graph (numpy and nir only); `imsnn_lava.interop.nir.to_nir` is this.

The inverse of from_nir's discretisation (imsnn_lava/interop/nir.py), at time step dt:

    du = 1, dv = 0     IF       r = 1 / dt
    du = 1, dv > 0     LIF      tau = dt / dv, r = tau / dt
    du < 1, dv > 0     CubaLIF  tau_syn = dt / du, tau_mem = dt / dv,
                                w_in = tau_syn / dt, r = tau_mem / dt

with v_threshold = vth, v_leak = 0, v_reset = 0, so the input gain g of from_nir is exactly 1
and the weights are written unchanged. The default dt is the layers' common dv (time measured
in membrane time constants: tau = 1), so that from_nir's dv = dt / tau gives dv back exactly;
without a common dv it is 1. Each other time constant is the float nearest dt / d for which
dt / tau gives d back exactly, a neighbour within NUDGE_ULPS if the nearest does not. Division
cannot reach every float (1 / (1 / d) != d for about 17% of random d), so such a du or dv may
come back 1 ulp (2**-52 relative) off. du < 1 with dv = 0 has no NIR node (a current filter
before a non-leaky membrane) and is refused.

ISI layers are refused: their weight depends on each input's interspike interval, which no NIR
node expresses. They could only leave as their stock-lowered form, which is not built yet.
A fixed-point model is written as the real values its integers represent; `from_nir(...,
fixed_point=True)` quantizes them again.
"""

from __future__ import annotations

import numpy as np

from imsnn_lava import ir as fmt
from imsnn_lava.interop.nir_file import NIRFileError

DEFAULT_DT = 1.0  # one imsnn step is one unit of NIR time, when the layers have no common dv
NUDGE_ULPS = 8


def _exact(make, check, target: float) -> float:
    """The float x nearest make(target) with check(x) == target, trying NUDGE_ULPS neighbours
    on each side; make(target) itself when none is exact."""
    x0 = make(target)
    candidates = [x0]
    lo = hi = x0
    for _ in range(NUDGE_ULPS):
        lo, hi = np.nextafter(lo, -np.inf), np.nextafter(hi, np.inf)
        candidates += [float(hi), float(lo)]
    return next((x for x in candidates if check(x) == target), x0)


def _neuron(layer: fmt.LayerSpec, shape: tuple[int, ...], dt: float):
    import nir

    full = np.full(shape, float(layer.vth))
    zeros = np.zeros(shape)
    du, dv = float(layer.du), float(layer.dv)
    if du == 1.0 and dv == 0.0:
        r = _exact(lambda g: 1.0 / dt, lambda x: x * dt, 1.0)
        return nir.IF(r=np.full(shape, r), v_threshold=full, v_reset=zeros)
    if dv == 0.0:
        raise NIRFileError(f"layer {layer.name}: du = {du:g} < 1 with dv = 0 (a current filter "
                           "before a non-leaky membrane) has no NIR neuron node")
    tau_mem = _exact(lambda d: dt / d, lambda x: dt / x, dv)
    if du == 1.0:
        return nir.LIF(tau=np.full(shape, tau_mem), r=np.full(shape, tau_mem / dt),
                       v_leak=zeros, v_threshold=full, v_reset=zeros)
    tau_syn = _exact(lambda d: dt / d, lambda x: dt / x, du)
    return nir.CubaLIF(tau_syn=np.full(shape, tau_syn), tau_mem=np.full(shape, tau_mem),
                       r=np.full(shape, tau_mem / dt), v_leak=zeros, v_threshold=full,
                       v_reset=zeros, w_in=np.full(shape, tau_syn / dt))


def default_dt(model: fmt.ModelFile) -> float:
    """The layers' common dv if they share one > 0, else DEFAULT_DT."""
    dvs = {float(layer.dv) for layer in model.layers}
    return dvs.pop() if len(dvs) == 1 and min(dvs) > 0 else DEFAULT_DT


def to_nir(model: fmt.ModelFile, *, dt: float | None = None):
    """A nir.NIRGraph of a model of plain (dense, conv) layers. The graph's metadata carries
    dt, num_steps, max_rate and seed, which from_nir reads back. dt: the step in NIR time
    (default: `default_dt`). Raises NIRFileError naming the layer for what NIR cannot express
    (ISI layers)."""
    import nir

    dt = default_dt(model) if dt is None else float(dt)
    if not (np.isfinite(dt) and dt > 0):
        raise NIRFileError(f"dt = {dt!r}: expected a positive number")
    for layer in model.layers:
        if layer.synapse != "plain":
            raise NIRFileError(
                f"layer {layer.name}: an ISI-modulated layer ({layer.type_name}) has no NIR "
                "form (its weights depend on each input's interspike interval); it can only "
                "leave as its stock-lowered form, which is not built yet. Export a plain "
                "(baseline) network")
        if "/" in layer.name or layer.name in ("input", "output"):
            raise NIRFileError(f"layer {layer.name!r}: not usable as a NIR node name")
    shape = tuple(int(x) for x in model.input_shape)
    nodes = {"input": nir.Input(input_type={"input": np.array(shape)})}
    order = ["input"]
    for layer in model.layers:
        if layer.kind == "dense":
            if len(shape) != 1:
                name = f"{layer.name}.flatten"
                nodes[name] = nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0,
                                          end_dim=-1)
                order.append(name)
            nodes[layer.name] = nir.Linear(weight=np.array(layer.weight, dtype=np.float64))
            shape = (layer.n_out,)
        else:
            s, p = int(layer.stride), int(layer.padding)
            nodes[layer.name] = nir.Conv2d(
                input_shape=tuple(int(x) for x in layer.in_shape[1:]),
                weight=np.array(layer.weight, dtype=np.float64), stride=(s, s), padding=(p, p),
                dilation=(1, 1), groups=1, bias=np.zeros(layer.weight.shape[0]))
            shape = tuple(int(x) for x in layer.out_shape)
        order.append(layer.name)
        nodes[f"{layer.name}.lif"] = _neuron(layer, shape, dt)
        order.append(f"{layer.name}.lif")
    nodes["output"] = nir.Output(output_type={"output": np.array(shape)})
    order.append("output")
    enc = model.encoding
    metadata = {"producer": "imsnn", "dt": float(dt), "num_steps": int(enc.num_steps),
                "max_rate": float(enc.max_rate), "seed": int(enc.seed)}
    return nir.NIRGraph(nodes=nodes, edges=list(zip(order[:-1], order[1:])), metadata=metadata,
                        type_check=True)
