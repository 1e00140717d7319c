"""Checkpoints: written atomically, loaded with weights_only=True (no pickled objects).

A checkpoint is a dict of tensors and plain values: the config as JSON text, the epoch count,
the model and optimizer state, and the metrics history as JSON text.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from imsnn_lava import filekinds
from imsnn_lava.outputs import atomic_path
from imsnn_train.config import ExperimentConfig, from_json, to_json
from imsnn_train.errors import ImsnnError

FORMAT = "imsnn-checkpoint"
VERSION = 1


class CheckpointError(ImsnnError):
    """A checkpoint is missing, corrupt, or not an imsnn checkpoint. The message names the file."""


def save(path: str | Path, cfg: ExperimentConfig, epoch: int, model_state: dict,
         optim_state: dict | None, history: list[dict]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "config_json": to_json(cfg),
        "epoch": int(epoch),
        "model": model_state,
        "optimizer": optim_state,
        "history_json": json.dumps(history),
    }
    try:
        with atomic_path(path, fsync=True) as tmp:
            torch.save(payload, tmp)
    except (OSError, RuntimeError) as exc:  # disk full, quota, I/O error
        reason = getattr(exc, "strerror", None) or str(exc).splitlines()[0]
        raise CheckpointError(f"{path}: cannot write the checkpoint ({reason}); the "
                              "previous checkpoint, if any, is unchanged") from None


def _load_failure(exc: Exception) -> str:
    """Why torch.load refused a file, in imsnn's words: torch's own advice (re-running with
    weights_only=False, i.e. unpickling arbitrary code) must never reach the user."""
    if isinstance(exc, __import__("pickle").UnpicklingError) or "weights_only" in str(exc):
        return ("a PyTorch file holding Python objects besides tensors and plain values; "
                "imsnn never unpickles objects, so it is not loaded (not an imsnn checkpoint)")
    return "not a readable checkpoint (truncated, damaged, or not a PyTorch file)"


def load(path: str | Path) -> dict:
    """Returns the payload with `config` (ExperimentConfig) and `history` (list) decoded."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    filekinds.expect(path, filekinds.CHECKPOINT, CheckpointError)  # a model file, a JSON, ...
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types on corrupt files
        raise CheckpointError(f"{path}: {_load_failure(exc)}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: field 'format': expected '{FORMAT}'")
    if payload.get("version") != VERSION:
        raise CheckpointError(f"{path}: field 'version': expected {VERSION}, "
                              f"found {payload.get('version')!r}")
    for key in ("config_json", "epoch", "model", "history_json"):
        if key not in payload:
            raise CheckpointError(f"{path}: field '{key}': missing")
    try:
        payload["config"] = from_json(payload["config_json"])
        payload["history"] = json.loads(payload["history_json"])
    except (ValueError, ImsnnError) as exc:
        raise CheckpointError(f"{path}: field 'config_json'/'history_json': {exc}") from None
    return payload


def load_network(path: str | Path):
    """(Network with trained weights, ExperimentConfig, payload)."""
    from imsnn_train.network import Network

    payload = load(path)
    cfg = payload["config"]
    net = Network(cfg.model)
    try:
        net.load_state_dict(payload["model"])
    except (RuntimeError, TypeError) as exc:
        raise CheckpointError(f"{path}: field 'model': does not match the config "
                              f"({str(exc).splitlines()[0]})") from None
    net.eval()
    return net, cfg, payload
