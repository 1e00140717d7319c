"""Lower an imsnn fixed-point model onto Lava's stock processes (numpy and scipy only).

The construction (one "ISI unit" per layer, delay-free; K = phi_max, plain layers K = 1)
----------------------------------------------------------------------------------------
For the presynaptic population P (n neurons per replica) of layer l, a Z population and
one D population per distinct table exponent, all stock LIF with full decay (du = dv = 4095,
vth = 3, bias 0: u = 64 a_in, v = u, a neuron fires iff its summed input this step is >= 4,
and nothing carries over to the next step):

- Z, the ISI state ("chain"): Z(i, c), c = 1..K-1, fires at the presynaptic layer's local
  step t iff the ISI counter c_i[t] == c (one-hot; silent when saturated, c_i[t] >= K):
  P(i) -> Z(i, 1) +4, P(i) -> Z(i, c >= 2) -4, Z(i, c) -> Z(i, c + 1) +4.
  Z also holds a ring of T shared neurons (one for all replicas): r_j -> r_{j+1 mod T} +4,
  started by its initial v, so r_0 = V fires at the presynaptic local step -1 of every sample
  (the previous sample's last step). V sets the state of the new sample: +8 to Z(i, c0)
  (c0 < K), -8 to every other Z(i, c); so c0 > 1 needs no guard steps. Sample 0 of a layer
  whose presynaptic population has offset 0 starts from the initial v of Z(i, c0) instead.
- D_e, the bin detectors of the bins k whose table exponent is e (one population per
  distinct exponent, so each bin connection reads only its own detectors): D(i, k) fires at
  local t + 1 iff P(i) spiked at t with bin k = min(c_i[t], K):
  k < K: P(i) +2, Z(i, k) +2;  k = K: P(i) +4, every Z(i, c) -4;  V -8 to every D (a spike
  at a sample's last step never reaches the next layer, as in the fused model).
- bins: one connection per exponent e from D_e to the next layer, column D(i, k) holding
  bin k's integer mantissas of input i (dense: table_mant[k][:, i]; conv: through the
  layer's connectivity map), weight_exp = e, num_weight_bits = 8.
- the layer itself: stock LIFReset with the file's du, dv, vth, reset_interval = T and
  reset_offset = (1 + offset) % T.

All weights are even (Lava's mixed-sign mode drops the lowest bit) and |a_in| <= 12, so
u and v of a unit never exceed 768 (< 4096: the full decay leaves exactly 0).

Timing: every layer adds one step of latency (the detectors' hop): layer l's sample windows
start `offsets[l] = l` steps after the input's. No lead-in and no guard steps; a run of P
sample periods takes P * T + offsets[-1] steps. phi_max is not limited by Lava's delay cap
(63): the construction uses no delays.

Costs per layer: processes 4 + 4E (Z, E detector populations, P -> Z, Z -> Z, E x (P -> D,
Z -> D, bins), the LIFReset; E = distinct exponents; 3 + 4E for K = 1, without P -> Z);
neurons R n (2K - 1) + T + R n_out. Synaptic events: 2K - 1 per presynaptic spike (K - 1
into Z, K into D), at most 3 per chain step (next Z, D(i, c), D(i, K)), 1 per ring step,
and R n (2K - 1) per sample for V; plus the bins' fan-out per detector spike. Every
presynaptic neuron's chain also runs from c0 at each sample start (up to K - c0 spikes,
silent neurons included): that is the price of the per-neuron ISI state.

Replicas: R samples side by side are flattened into R * n neurons per population (replica r
at r * n + j), block-diagonal weights; the ring is shared by all replicas.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from imsnn_lava.errors import ModelFileError
from imsnn_lava.ir import LayerSpec, ModelFile
from imsnn_lava.ir import fixed_point as fp
from imsnn_lava.numerics.synapse import connectivity

# unit neurons: full decay, threshold 3 (fires iff the summed input is >= UNIT_FIRE)
UNIT_DECAY = fp.DECAY_MAX  # du = dv = 4095
UNIT_VTH = 3
UNIT_FIRE = UNIT_VTH + 1
W_STEP = 4  # P -> Z(i, 1), Z -> next Z, ring -> next ring; and -W_STEP: P -> Z(i, c >= 2)
W_HALF = 2  # P -> D(i, k < K), Z(i, k) -> D(i, k)
W_SAT = 4  # P -> D(i, K); and -W_SAT: Z(i, c) -> D(i, K)
W_SET = 8  # V -> Z(i, c0); and -W_SET: V -> every other Z and every D
UNIT_MAX_INPUT = W_STEP + W_STEP + W_SET  # the largest |a_in| a unit neuron can receive
V_INIT_FIRE = 1 << 20  # initial v that makes a unit neuron fire at step 1: (v >> 12) << 6 > vth
WEIGHT_BITS = 8
DENSE_MIN_DENSITY = 0.5  # auto kind: Dense at or above this fraction of non-zero entries
DENSE_MAX_ENTRIES = 1 << 25  # ... and at most this many entries (int32) in the matrix
KINDS = ("Dense", "Sparse")

assert (UNIT_MAX_INPUT << fp.ACT_SHIFT) < fp.DECAY_UNITY  # the full decay leaves exactly 0
assert (V_INIT_FIRE >> fp.DECAY_SHIFT) > (UNIT_VTH << fp.VTH_SHIFT)


@dataclass(frozen=True, eq=False)
class Population:
    """A stock LIF or LIFReset population of size = replicas * per_replica + shared neurons.

    role: "input" (host SpikeSource), "layer" (an original layer), "detector" (an ISI unit's
    Z or D population); the `shared` neurons at the end (the ring of a Z population) are
    pulse-source neurons shared by all replicas. layer: the original layer the population
    belongs to (0 = input; a unit belongs to the layer it feeds). offset: the global step
    offset of its sample windows (sample period p covers steps 1 + offset + p*T ..
    offset + (p+1)*T of Lava's 1-based clock)."""

    name: str
    role: str
    layer: int
    per_replica: int
    shared: int
    replicas: int
    offset: int
    model: str = "LIF"  # "LIF" | "LIFReset" | "SpikeSource"
    du: int = 0
    dv: int = 0
    vth: int = 0
    bias: int = 0
    v_init: np.ndarray | None = None  # (size,) int64 or None (zeros)
    reset_interval: int | None = None
    reset_offset: int | None = None
    parts: tuple = ()  # (name, start, stop) per replica: what the neurons are, for reports

    @property
    def size(self) -> int:
        return self.replicas * self.per_replica + self.shared


@dataclass(frozen=True, eq=False)
class Connection:
    """A stock connection process: a_out = (weights @ s_in) << weight_exp, one step late."""

    name: str
    src: str
    dst: str
    weights: sp.csr_matrix  # (dst.size, src.size) int64 mantissas, even, |w| <= 254
    weight_exp: int
    kind: str  # "Dense" | "Sparse"
    role: str  # "wiring" (inside a unit) | "bins" (unit -> layer)
    layer: int
    num_weight_bits: int = WEIGHT_BITS
    delay: int = 0  # this construction uses none ("DelayDense"/"DelaySparse" never needed)


@dataclass(frozen=True, eq=False)
class StockGraph:
    populations: tuple[Population, ...]
    connections: tuple[Connection, ...]
    replicas: int
    num_steps: int  # T
    offsets: tuple[int, ...]  # per original layer 0..L: window offset (latency so far)
    latency: tuple[int, ...]  # per layer 1..L: extra steps it adds (1 each)
    lead_in: int = 0  # steps before sample 0's input (none: initial v starts the rings)
    guard: int = 0  # silent steps between samples (none: V resets the state, any c0)
    layer_names: tuple[str, ...] = field(default=())  # population of original layer 0..L

    def population(self, name: str) -> Population:
        for pop in self.populations:
            if pop.name == name:
                return pop
        raise KeyError(name)

    def total_steps(self, periods: int) -> int:
        """Lava steps to run for `periods` sample periods (the last layer's last window)."""
        return periods * self.num_steps + self.offsets[-1] + self.lead_in

    @property
    def num_neurons(self) -> int:
        return sum(p.size for p in self.populations if p.model != "SpikeSource")

    @property
    def num_synapses(self) -> int:
        return sum(stored_synapses(c) for c in self.connections)


def stored_synapses(conn: Connection) -> int:
    """Synapses a connection stores: every entry of a Dense matrix, the non-zeros of Sparse."""
    rows, cols = conn.weights.shape
    return rows * cols if conn.kind == "Dense" else int(conn.weights.nnz)


def column_fanout(conn: Connection) -> np.ndarray:
    """(src.size,) synaptic events one spike of each source neuron costs in `conn`."""
    rows, cols = conn.weights.shape
    if conn.kind == "Dense":
        return np.full(cols, rows, dtype=np.int64)
    return np.diff(conn.weights.tocsc().indptr).astype(np.int64)


# ---------------------------------------------------------------------------------------------
# checks


def _check(model: ModelFile, replicas: int) -> None:
    if replicas < 1:
        raise ValueError(f"replicas must be >= 1, got {replicas}")
    if model.precision != "fixed":
        raise ModelFileError(f"the stock backend needs a fixed-point model file (precision "
                             f"'fixed'), got precision '{model.precision}': export with "
                             f"--fixed-point")
    for layer in model.layers:
        fx = layer.fixed
        if fx is None:
            raise ModelFileError(f"layer {layer.name}: no fixed-point data (table, du, dv, "
                                 f"vth); the stock backend needs a fixed-point file")
        k = layer.phi_max if layer.synapse == "isi" else 1
        mant = np.asarray(fx.table.mant)
        if mant.shape != (k,) + layer.weight.shape or np.asarray(fx.table.exp).shape != (k,):
            raise ModelFileError(f"layer {layer.name}: table shape {mant.shape} does not "
                                 f"match phi_max {k} and weights {layer.weight.shape}")
        if np.any(np.abs(mant) > fp.WEIGHT_MANT_MAX) or np.any(mant % fp.WEIGHT_MANT_STEP):
            raise ModelFileError(f"layer {layer.name}: mantissas must be even and within "
                                 f"+-{fp.WEIGHT_MANT_MAX} (Lava's 8-bit mixed-sign weights)")
        exp = np.asarray(fx.table.exp)
        if np.any(exp < fp.WEIGHT_EXP_MIN) or np.any(exp > fp.WEIGHT_EXP_MAX):
            raise ModelFileError(f"layer {layer.name}: exponents outside "
                                 f"[{fp.WEIGHT_EXP_MIN}, {fp.WEIGHT_EXP_MAX}]")
        if layer.synapse == "isi" and not 1 <= layer.c0 <= layer.phi_max:
            raise ModelFileError(f"layer {layer.name}: c0 = {layer.c0} outside "
                                 f"[1, phi_max = {layer.phi_max}]")


# ---------------------------------------------------------------------------------------------
# building blocks


def bin_matrices(layer: LayerSpec) -> list[sp.csr_matrix]:
    """Per bin k, the (n_out, n_in) integer mantissa matrix of the layer (no exponent)."""
    mant = np.asarray(layer.fixed.table.mant, dtype=np.int64)
    if layer.kind == "dense":
        return [sp.csr_matrix(m) for m in mant]
    src = connectivity(layer)  # (P, Q)
    p_out, q = src.shape
    c_out = mant.shape[1]
    pp, qq = np.nonzero(src >= 0)
    out = []
    for m in mant.reshape(mant.shape[0], c_out, q):
        rows = (np.arange(c_out)[:, None] * p_out + pp[None, :]).ravel()
        cols = np.broadcast_to(src[pp, qq], (c_out, pp.size)).ravel()
        vals = m[:, qq].ravel()
        keep = vals != 0
        out.append(sp.csr_matrix((vals[keep], (rows[keep], cols[keep])),
                                 shape=(layer.n_out, layer.n_in)))
    return out


def _replicate(block: sp.spmatrix, replicas: int, shared_rows=None, shared_cols=None,
               shared_block=None) -> sp.csr_matrix:
    """kron(I_R, block) plus optional shared rows/columns appended at the end."""
    m = sp.kron(sp.identity(replicas, dtype=np.int64, format="csr"), sp.csr_matrix(block),
                format="csr")
    if shared_rows is not None:
        m = sp.vstack([m, shared_rows])
    if shared_cols is not None:
        m = sp.hstack([m, shared_cols])
    if shared_block is not None:
        m = m + shared_block
    m = sp.csr_matrix(m, dtype=np.int64)
    m.eliminate_zeros()
    m.sort_indices()
    return m


def _kind(weights: sp.csr_matrix, prefer: str, name: str) -> str:
    rows, cols = weights.shape
    entries = rows * cols
    if prefer == "Dense" and entries > DENSE_MAX_ENTRIES:
        raise ValueError(f"connection {name}: a Dense {rows} x {cols} matrix has more than "
                         f"{DENSE_MAX_ENTRIES} entries; use prefer='auto' or 'Sparse'")
    if prefer in KINDS:
        return prefer
    dense = entries and weights.nnz / entries >= DENSE_MIN_DENSITY and entries <= DENSE_MAX_ENTRIES
    return "Dense" if dense else "Sparse"


def _unit(layer: LayerSpec, index: int, pre: Population, replicas: int, t: int, prefer: str):
    """The Z and D_e populations and the wiring connections of layer `index` (1-based)."""
    n = pre.per_replica
    isi = layer.synapse == "isi"
    k_bins = layer.phi_max if isi else 1
    c0 = layer.c0 if isi else 1
    off = pre.offset
    chain = n * (k_bins - 1)  # Z(i, c) at (c - 1) * n + i
    ring0 = replicas * chain  # ring neuron j at ring0 + j; V = ring neuron 0
    zsize = ring0 + t
    v_init = np.zeros(zsize, dtype=np.int64)
    v_init[ring0 + (1 - off) % t] = V_INIT_FIRE
    if off == 0 and c0 < k_bins:
        for r in range(replicas):
            v_init[r * chain + (c0 - 1) * n + np.arange(n)] = V_INIT_FIRE
    tag = f"l{index}_{layer.name}"
    z = Population(name=f"{tag}_Z", role="detector", layer=index, per_replica=chain,
                   shared=t, replicas=replicas, offset=off, du=UNIT_DECAY, dv=UNIT_DECAY,
                   vth=UNIT_VTH, v_init=v_init,
                   parts=(("chain", 0, chain), ("ring (shared)", ring0, zsize)))
    eye = sp.identity(n, dtype=np.int64, format="csr")
    conns = []
    # P -> Z and Z -> Z
    ring = sp.csr_matrix((np.full(t, W_STEP), ((np.arange(t) + 1) % t, np.arange(t))),
                         shape=(t, t), dtype=np.int64)
    v_col = np.full(chain, -W_SET, dtype=np.int64)
    if c0 < k_bins:
        v_col[(c0 - 1) * n:c0 * n] = W_SET
    if chain:
        pz = sp.vstack([W_STEP * eye] + [-W_STEP * eye] * (k_bins - 2))
        conns.append(("P->Z", pre, _replicate(pz, replicas, shared_rows=sp.csr_matrix(
            (t, replicas * n), dtype=np.int64))))
        step = sp.kron(sp.eye(k_bins - 1, k=-1, dtype=np.int64), W_STEP * eye)
        vcol = sp.csr_matrix(np.tile(v_col, replicas)[:, None])
        cols = sp.hstack([vcol, sp.csr_matrix((ring0, t - 1), dtype=np.int64)])
        zz = sp.bmat([[sp.kron(sp.identity(replicas, dtype=np.int64), step), cols],
                      [sp.csr_matrix((t, ring0), dtype=np.int64), ring]])
    else:
        zz = ring
    conns.append(("Z->Z", z, sp.csr_matrix(zz, dtype=np.int64)))
    # D_e populations, P -> D_e, Z -> D_e
    exps = np.asarray(layer.fixed.table.exp, dtype=np.int64)
    groups = []
    for e in sorted(set(exps.tolist())):
        bins = [k for k in range(1, k_bins + 1) if exps[k - 1] == e]
        m = len(bins)
        d = Population(name=f"{tag}_D{e}", role="detector", layer=index, per_replica=n * m,
                       shared=0, replicas=replicas, offset=off, du=UNIT_DECAY, dv=UNIT_DECAY,
                       vth=UNIT_VTH, parts=tuple((f"bin {k}", b * n, (b + 1) * n)
                                                 for b, k in enumerate(bins)))
        pd = sp.vstack([(W_HALF if k < k_bins else W_SAT) * eye for k in bins])
        conns.append((f"P->D{e}", pre, _replicate(pd, replicas)))
        if chain:
            blocks = []
            for k in bins:
                row = [None] * (k_bins - 1)
                if k < k_bins:
                    row[k - 1] = W_HALF * eye
                else:
                    row = [-W_SAT * eye] * (k_bins - 1)
                blocks.append([b if b is not None else sp.csr_matrix((n, n), dtype=np.int64)
                               for b in row])
            zd = sp.kron(sp.identity(replicas, dtype=np.int64), sp.bmat(blocks))
        else:
            zd = sp.csr_matrix((replicas * n * m, 0), dtype=np.int64)
        vcol = sp.csr_matrix(np.full((replicas * n * m, 1), -W_SET, dtype=np.int64))
        zd = sp.hstack([zd, vcol, sp.csr_matrix((replicas * n * m, t - 1), dtype=np.int64)])
        conns.append((f"Z->D{e}", z, sp.csr_matrix(zd, dtype=np.int64)))
        groups.append((e, bins, d))
    out = []
    for name, src, w in conns:
        dst_name = z.name if name.endswith("Z") else f"{tag}_D{name.rsplit('D', 1)[1]}"
        w = sp.csr_matrix(w, dtype=np.int64)
        w.eliminate_zeros()
        w.sort_indices()
        out.append(Connection(name=f"{tag}_{name}", src=src.name, dst=dst_name, weights=w,
                              weight_exp=0, kind=_kind(w, prefer, f"{tag}_{name}"), role="wiring",
                              layer=index))
    return z, groups, out


# ---------------------------------------------------------------------------------------------
# the pass


def lower(model: ModelFile, *, replicas: int = 1, prefer: str = "auto") -> StockGraph:
    """The stock-process graph of a fixed-point model (see the module docstring).

    replicas: samples side by side (R). prefer: "auto" (Dense where a matrix is at least
    DENSE_MIN_DENSITY full and small enough, else Sparse), "Dense" or "Sparse" for every
    connection. Supports every c0 in [1, phi_max] without guard steps, dense and conv layers,
    ISI and plain. Raises ModelFileError (naming the layer) for a float file or a layer
    without fixed-point data, and ValueError for replicas < 1.
    """
    replicas = int(replicas)
    _check(model, replicas)
    if prefer not in ("auto",) + KINDS:
        raise ValueError(f"prefer must be 'auto', 'Dense' or 'Sparse', got {prefer!r}")
    t = model.num_steps
    n_in = int(np.prod(model.input_shape))
    pre = Population(name="input", role="input", layer=0, per_replica=n_in, shared=0,
                     replicas=replicas, offset=0, model="SpikeSource")
    pops, conns, offsets, names = [pre], [], [0], ["input"]
    for index, layer in enumerate(model.layers, start=1):
        z, groups, wiring = _unit(layer, index, pre, replicas, t, prefer)
        off = pre.offset + 1
        fx = layer.fixed
        post = Population(name=f"l{index}_{layer.name}", role="layer", layer=index,
                          per_replica=layer.n_out, shared=0, replicas=replicas, offset=off,
                          model="LIFReset", du=fx.du, dv=fx.dv, vth=fx.vth,
                          reset_interval=t, reset_offset=(1 + off) % t)
        pops += [z] + [d for _, _, d in groups]
        conns += wiring
        mats = bin_matrices(layer)
        for e, bins, d in groups:
            w = _replicate(sp.hstack([mats[k - 1] for k in bins]), replicas)
            conns.append(Connection(name=f"{d.name}->{post.name}", src=d.name, dst=post.name,
                                    weights=w, weight_exp=int(e),
                                    kind=_kind(w, prefer, f"{d.name}->{post.name}"),
                                    role="bins", layer=index))
        pops.append(post)
        offsets.append(off)
        names.append(post.name)
        pre = post
    return StockGraph(populations=tuple(pops), connections=tuple(conns), replicas=replicas,
                      num_steps=t, offsets=tuple(offsets),
                      latency=tuple(1 for _ in model.layers), layer_names=tuple(names))
