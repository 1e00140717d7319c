"""Experiment configuration: frozen dataclasses, loaded from TOML/JSON, saved inside checkpoints.

Every choice that method.md leaves open is a field here with the documented default.
Overrides use dotted paths: `train.epochs=3 model.isi.gate=full`.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

from imsnn_lava import filekinds
from imsnn_train.errors import ConfigError

SUGGESTION_CUTOFF = 0.6  # difflib similarity below which no "did you mean" is offered

SYNAPSES = ("isi", "plain")
GATES = ("selective", "full", "none")
SURROGATES = ("fast_sigmoid", "arctan")
READOUTS = ("count", "membrane")
LR_SCHEDULES = ("constant", "cosine")
LAYER_KINDS = ("dense", "conv")
DATASETS = ("mnist", "fashion-mnist")
DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")
SIGMA_MIN = 0.1  # learned sigma (model.isi.learn_mu_sigma) is kept at least this wide


@dataclass(frozen=True)
class NeuronConfig:
    """Lava LIF parameters (floating point); method.md section 1."""

    du: float = 1.0
    dv: float = 0.1
    vth: float = 1.0


@dataclass(frozen=True)
class ISIConfig:
    """The ISI-modulated synapse and its gradient rule; method.md sections 2-3."""

    phi_max: int = 16
    c0: int = 1
    mu_lo: float = 1.0
    mu_hi: float = 0.0  # 0 means phi_max
    sigma_lo: float = 1.0
    sigma_hi: float = 6.0
    gate: str = "selective"
    # Scale of the gradient the gate passes to phi (0 = the `none` ablation, 1 = the method).
    gate_strength: float = 1.0
    # Warm-up: epoch e < gate_warmup_epochs uses gate_strength * e / gate_warmup_epochs, a
    # blend from `none` (epoch 0) to the full gate; 1 = gate engaged from the second epoch.
    gate_warmup_epochs: int = 0
    # method.md's optional extension: mu and sigma learned with w (Adam, same learning rate;
    # sigma kept >= SIGMA_MIN after each step). Off: drawn once and fixed.
    learn_mu_sigma: bool = False
    # Initial gain of ISI layers' w, to match the baseline's initial firing (method.md 6).
    # "auto": 1 / mean Gaussian factor over synapses and ISI bins 1..phi_max.
    init_gain: str = "auto"


@dataclass(frozen=True)
class LayerConfig:
    kind: str = "dense"
    out: int = 10  # dense: neurons; conv: channels
    kernel: int = 3
    stride: int = 1
    padding: int = 0
    synapse: str = ""  # "isi" | "plain"; "" = the model's synapse (ISI modulation per layer)


@dataclass(frozen=True)
class ModelConfig:
    synapse: str = "isi"
    input_shape: tuple[int, ...] = (1, 28, 28)
    layers: tuple[LayerConfig, ...] = (LayerConfig("dense", 500), LayerConfig("dense", 10))
    neuron: NeuronConfig = field(default_factory=NeuronConfig)
    isi: ISIConfig = field(default_factory=ISIConfig)
    surrogate: str = "fast_sigmoid"
    surrogate_scale: float = 5.0
    detach_reset: bool = True
    readout: str = "count"
    readout_scale: float = 1.0
    init_seed: int = 0


@dataclass(frozen=True)
class EncodingConfig:
    """Seeded Bernoulli rate code: p = pixel/255 * max_rate per step."""

    num_steps: int = 25
    max_rate: float = 0.5
    seed: int = 0


@dataclass(frozen=True)
class TrainConfig:
    dataset: str = "mnist"
    epochs: int = 3
    batch_size: int = 100
    lr: float = 1e-3
    lr_schedule: str = "constant"  # or "cosine": lr * (1 + cos(pi * epoch / epochs)) / 2
    weight_decay: float = 0.0
    activity_l1: float = 0.0  # lambda x spikes per sample, summed over hidden + output layers
    train_subset: int = 0  # 0 = all training images
    eval_subset: int = 0  # 0 = the whole validation/test split
    val_size: int = 5000
    seed: int = 0
    threads: int = 0  # 0 = torch default
    # "auto" (CUDA when available), "cpu", "cuda" or "cuda:N"; under torchrun each process
    # uses cuda:LOCAL_RANK. Not part of a run's identity: a run may resume on another device.
    device: str = "auto"
    # CPU runs: glibc malloc keeps freed memory in the process, so a step reuses the pages of the
    # last one instead of faulting its large tensors in anew (imsnn_train/memory.py). Not part of
    # a run's identity either.
    keep_freed_memory: bool = True


@dataclass(frozen=True)
class QuantConfig:
    """Fixed-point export; see imsnn_lava.ir.fixed_point for the meaning."""

    max_scale_log2: int = 12
    # Plain (baseline) layers use weight exponent 0 so lava-dl netx loads them correctly
    # (it reads dense weights as 8-bit and ignores exponents).
    netx_compatible: bool = True


@dataclass(frozen=True)
class ExperimentConfig:
    name: str = "experiment"
    model: ModelConfig = field(default_factory=ModelConfig)
    encoding: EncodingConfig = field(default_factory=EncodingConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    quant: QuantConfig = field(default_factory=QuantConfig)


def gate_strength(isi: ISIConfig, epoch: int) -> float:
    """The gate's strength in (0-based) training epoch `epoch`, warm-up included."""
    if epoch < isi.gate_warmup_epochs:
        return isi.gate_strength * epoch / isi.gate_warmup_epochs
    return isi.gate_strength


def validate(cfg: ExperimentConfig) -> ExperimentConfig:
    """Check ranges and choices; raise ConfigError naming the field."""

    def need(ok: bool, name: str, expected: str, value: Any) -> None:
        if not ok:
            raise ConfigError(f"{name} = {value!r}: expected {expected}")

    m, isi, n = cfg.model, cfg.model.isi, cfg.model.neuron
    need(m.synapse in SYNAPSES, "model.synapse", f"one of {SYNAPSES}", m.synapse)
    need(isi.gate in GATES, "model.isi.gate", f"one of {GATES}", isi.gate)
    need(m.surrogate in SURROGATES, "model.surrogate", f"one of {SURROGATES}", m.surrogate)
    need(m.readout in READOUTS, "model.readout", f"one of {READOUTS}", m.readout)
    need(cfg.train.dataset in DATASETS, "train.dataset", f"one of {DATASETS}", cfg.train.dataset)
    need(len(m.input_shape) == 3 and all(d > 0 for d in m.input_shape), "model.input_shape",
         "(channels, height, width), all > 0", m.input_shape)
    need(len(m.layers) >= 1, "model.layers", "at least one layer", m.layers)
    for i, layer in enumerate(m.layers):
        need(layer.kind in LAYER_KINDS, f"model.layers[{i}].kind", f"one of {LAYER_KINDS}",
             layer.kind)
        need(layer.out >= 1, f"model.layers[{i}].out", ">= 1", layer.out)
        need(layer.synapse in ("",) + SYNAPSES, f"model.layers[{i}].synapse",
             f"one of {SYNAPSES} (or absent: model.synapse)", layer.synapse)
        need(layer.kernel >= 1 and layer.stride >= 1 and layer.padding >= 0,
             f"model.layers[{i}]", "kernel >= 1, stride >= 1, padding >= 0", layer)
    need(m.layers[-1].kind == "dense", "model.layers[-1].kind", "'dense' (the readout)",
         m.layers[-1].kind)
    need(0.0 < n.du <= 1.0, "model.neuron.du", "in (0, 1]", n.du)
    need(0.0 <= n.dv <= 1.0, "model.neuron.dv", "in [0, 1]", n.dv)
    need(n.vth > 0, "model.neuron.vth", "> 0", n.vth)
    need(isi.phi_max >= 1, "model.isi.phi_max", ">= 1", isi.phi_max)
    need(isi.gate_strength >= 0, "model.isi.gate_strength", ">= 0", isi.gate_strength)
    need(isi.gate_warmup_epochs >= 0, "model.isi.gate_warmup_epochs", ">= 0",
         isi.gate_warmup_epochs)
    need(1 <= isi.c0 <= isi.phi_max, "model.isi.c0", "in [1, phi_max]", isi.c0)
    need(0 < isi.sigma_lo <= isi.sigma_hi, "model.isi.sigma_lo/sigma_hi",
         "0 < sigma_lo <= sigma_hi", (isi.sigma_lo, isi.sigma_hi))
    need(isi.mu_hi == 0 or isi.mu_lo <= isi.mu_hi, "model.isi.mu_lo/mu_hi",
         "mu_lo <= mu_hi (mu_hi 0 = phi_max)", (isi.mu_lo, isi.mu_hi))
    if isi.init_gain != "auto":
        try:
            gain = float(isi.init_gain)
        except ValueError:
            gain = -1.0
        need(gain > 0, "model.isi.init_gain", "'auto' or a positive number", isi.init_gain)
    need(m.surrogate_scale > 0, "model.surrogate_scale", "> 0", m.surrogate_scale)
    e = cfg.encoding
    need(e.num_steps >= 1, "encoding.num_steps", ">= 1", e.num_steps)
    need(0.0 < e.max_rate <= 1.0, "encoding.max_rate", "in (0, 1]", e.max_rate)
    t = cfg.train
    need(t.epochs >= 0, "train.epochs", ">= 0", t.epochs)
    need(t.batch_size >= 1, "train.batch_size", ">= 1", t.batch_size)
    need(t.lr > 0, "train.lr", "> 0", t.lr)
    need(t.lr_schedule in LR_SCHEDULES, "train.lr_schedule", f"one of {LR_SCHEDULES}",
         t.lr_schedule)
    need(t.activity_l1 >= 0, "train.activity_l1", ">= 0", t.activity_l1)
    need(0 <= t.val_size < 60000, "train.val_size", "in [0, 60000)", t.val_size)
    need(t.train_subset >= 0 and t.eval_subset >= 0, "train.train_subset/eval_subset",
         ">= 0 (0 = all)", (t.train_subset, t.eval_subset))
    need(DEVICE_PATTERN.fullmatch(t.device) is not None, "train.device",
         "'auto', 'cpu', 'cuda' or 'cuda:N'", t.device)
    need(1 <= cfg.quant.max_scale_log2 <= 16, "quant.max_scale_log2", "in [1, 16]",
         cfg.quant.max_scale_log2)
    return cfg


# ---------------------------------------------------------------------------------------------
# dict <-> dataclass


def to_dict(cfg: Any) -> Any:
    if is_dataclass(cfg):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in fields(cfg)}
    if isinstance(cfg, tuple):
        return [to_dict(x) for x in cfg]
    return cfg


def _coerce(tp: Any, value: Any, path: str) -> Any:
    origin = get_origin(tp)
    if is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a table/object, got {value!r}")
        return _from_dict(tp, value, path)
    if origin is tuple:
        args = get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        item_t = args[0]
        return tuple(_coerce(item_t, v, f"{path}[{i}]") for i, v in enumerate(value))
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ConfigError(f"{path}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"{path}: expected an integer, got {value!r}") from None
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{path}: expected a number, got {value!r}") from None
    if tp is str:
        return str(value)
    return value


def _did_you_mean(key: str, names: set[str], path: str) -> str:
    """" (did you mean 'model.isi.gate'?)" for an unknown key close to a known one."""
    close = difflib.get_close_matches(str(key), sorted(names), n=1, cutoff=SUGGESTION_CUTOFF)
    if not close:
        return ""
    return f" (did you mean '{path + '.' if path else ''}{close[0]}'?)"


def _from_dict(cls: type, data: dict, path: str = "") -> Any:
    hints = get_type_hints(cls)
    names = {f.name for f in fields(cls)}
    unknown = set(data) - names
    if unknown:
        hints_text = "".join(_did_you_mean(k, names, path) for k in sorted(unknown))
        raise ConfigError(
            f"{path or 'config'}: unknown field(s) {sorted(unknown)}{hints_text}; expected some "
            f"of {sorted(names)}"
        )
    kwargs = {}
    for f in fields(cls):
        if f.name in data:
            sub = f"{path}.{f.name}" if path else f.name
            kwargs[f.name] = _coerce(hints[f.name], data[f.name], sub)
    return cls(**kwargs)


def from_dict(data: dict) -> ExperimentConfig:
    return validate(_from_dict(ExperimentConfig, data))


def to_json(cfg: ExperimentConfig) -> str:
    return json.dumps(to_dict(cfg), sort_keys=True)


def identity_json(cfg: ExperimentConfig) -> str:
    """`to_json` without what does not define a run (the device it runs on, its allocator
    setting)."""
    return to_json(replace(cfg, train=replace(cfg.train, device="auto",
                                              keep_freed_memory=True)))


def from_json(text: str) -> ExperimentConfig:
    return from_dict(json.loads(text))


def load(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> ExperimentConfig:
    """Read a .toml or .json config, apply `a.b=value` overrides, validate."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config ({exc.strerror})") from None
    filekinds.expect(path, filekinds.CONFIG, ConfigError)  # a checkpoint, a model file, ...
    try:
        if path.suffix == ".json":
            data = json.loads(raw)
        else:
            import tomli

            data = tomli.loads(raw.decode("utf-8"))
    except Exception as exc:  # noqa: BLE001 - parser errors of either format
        raise ConfigError(f"{path}: not valid {path.suffix.lstrip('.') or 'TOML'}: {exc}") from None
    data = apply_overrides(data, overrides)
    try:
        return from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def apply_overrides(data: dict, overrides: list[str] | tuple[str, ...]) -> dict:
    data = json.loads(json.dumps(data))  # deep copy
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected KEY=VALUE, e.g. train.epochs=2")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        node = data
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {p} is not a table")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        node[parts[-1]] = parsed
    return data


def replace(cfg: Any, **changes: Any) -> Any:
    return dataclasses.replace(cfg, **changes)
