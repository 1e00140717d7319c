"""Training loop: BPTT with surrogate spikes, Adam, one atomic checkpoint per epoch.

Everything random is derived from the config's seeds and the epoch number (shuffling,
input spikes), so a run resumed from its last checkpoint continues exactly as an uninterrupted
run would, and two runs with the same config give the same numbers (CPU).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch

from imsnn_lava.data.datasets import load_split_with_ids
from imsnn_lava.numerics.encoding import encode
from imsnn_lava.outputs import write_json_atomic
from imsnn_lava.runtime.progress import progress_bar
from imsnn_train import checkpoint, distributed, memory
from imsnn_train import device as devices
from imsnn_train.config import ExperimentConfig, gate_strength, identity_json, to_dict
from imsnn_train.errors import ConfigError
from imsnn_train.evaluate import evaluate, format_table
from imsnn_train.export import layer_specs
from imsnn_train.network import Network

CHECKPOINT_NAME = "checkpoint.pt"
METRICS_NAME = "metrics.json"
TRAIN_SEED_STRIDE = 1_000_003  # input-spike seeds of epoch e: seed + stride * (e + 1)


def train_seed(cfg: ExperimentConfig, epoch: int) -> int:
    return cfg.encoding.seed + TRAIN_SEED_STRIDE * (epoch + 1)


def make_optimizer(net: Network, cfg: ExperimentConfig) -> torch.optim.Optimizer:
    return torch.optim.Adam(net.parameters(), lr=cfg.train.lr,
                            weight_decay=cfg.train.weight_decay)


def epoch_lr(cfg: ExperimentConfig, epoch: int) -> float:
    """The learning rate of an epoch: a function of the epoch alone, so resuming needs no
    scheduler state."""
    t = cfg.train
    if t.lr_schedule == "cosine" and t.epochs > 0:
        return t.lr * 0.5 * (1.0 + math.cos(math.pi * epoch / t.epochs))
    return t.lr


def loss_fn(out, labels: torch.Tensor, cfg: ExperimentConfig) -> torch.Tensor:
    loss = torch.nn.functional.cross_entropy(out.logits, labels)
    if cfg.train.activity_l1 > 0:
        # method.md: lambda x spike counts per layer (L1), i.e. spikes per sample of every
        # hidden and output layer, averaged over the batch
        activity = sum(s.sum(dim=(0, 2)).mean() for s in out.spikes[1:])
        loss = loss + cfg.train.activity_l1 * activity
    return loss


def _strip(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k != "predictions"}


def _silent(*_args, **_kwargs) -> None:
    pass


def train(cfg: ExperimentConfig, out_dir: str | Path, *, resume: bool = False,
          progress: bool = True, log=print) -> dict:
    """Train, evaluate on the validation split each epoch and on the test split at the end.

    Writes out_dir/checkpoint.pt (each epoch) and out_dir/metrics.json. Returns the metrics.
    Under torchrun with more than one process, trains with DistributedDataParallel
    (imsnn_train.distributed); only rank 0 writes, logs and returns the metrics (the others
    return {}).
    """
    device = devices.resolve(cfg.train.device, devices.local_rank())
    group = distributed.init(device)
    try:
        return _train(cfg, Path(out_dir), resume, progress and group.main,
                      log if group.main else _silent, device, group)
    finally:
        distributed.shutdown(group)


def _resume_state(ckpt_path: Path, cfg: ExperimentConfig, group):
    """Rank 0 reads the checkpoint; every process gets its payload (or the error)."""
    payload = error = None
    if group.main:
        try:
            payload = checkpoint.load(ckpt_path)
            if identity_json(payload["config"]) != identity_json(cfg):
                raise ConfigError(f"{ckpt_path}: was trained with a different config; "
                                  "use the same config (and overrides) to resume")
        except Exception as exc:  # noqa: BLE001 - re-raised on every process below
            error = exc
    payload, error = distributed.from_main((payload, error), group)
    if error is not None:
        raise error
    return payload


def _train(cfg, out_dir: Path, resume: bool, progress: bool, log, device, group) -> dict:
    if group.main:
        out_dir.mkdir(parents=True, exist_ok=True)
    if cfg.train.threads > 0:
        torch.set_num_threads(cfg.train.threads)
    if device.type == "cpu" and cfg.train.keep_freed_memory and not memory.keep_freed_memory():
        log("train.keep_freed_memory: this C library is not glibc; its allocator is left as is")
    t_cfg, enc = cfg.train, cfg.encoding
    x_train, y_train, id_train = load_split_with_ids(t_cfg.dataset, "train",
                                                     val_size=t_cfg.val_size,
                                                     limit=t_cfg.train_subset)
    split = "val" if t_cfg.val_size > 0 else "test"
    x_val, y_val, id_val = load_split_with_ids(t_cfg.dataset, split, val_size=t_cfg.val_size,
                                               limit=t_cfg.eval_subset)
    net = Network(cfg.model).to(device)
    opt = make_optimizer(net, cfg)
    history: list[dict] = []
    start_epoch = 0
    ckpt_path = out_dir / CHECKPOINT_NAME
    if resume and distributed.from_main(ckpt_path.exists(), group):
        payload = _resume_state(ckpt_path, cfg, group)
        net.load_state_dict(payload["model"])
        opt.load_state_dict(payload["optimizer"])
        history = payload["history"]
        start_epoch = payload["epoch"]
        log(f"resuming {cfg.name} after epoch {start_epoch}")
    model = distributed.wrap(net, group, device)
    specs = layer_specs(net)
    for epoch in range(start_epoch, t_cfg.epochs):
        t0 = time.time()
        stats = _train_epoch(model, opt, cfg, epoch, x_train, y_train, id_train, progress,
                             group, device)
        if not group.main:
            continue
        val = evaluate(net, specs, x_val, y_val, id_val, enc, progress=progress,
                       desc=f"epoch {epoch + 1} {split}")
        row = {"epoch": epoch + 1, **stats, split: _strip(val),
               "seconds": round(time.time() - t0, 2)}
        history.append(row)
        checkpoint.save(ckpt_path, cfg, epoch + 1, net.state_dict(), opt.state_dict(), history)
        log(f"epoch {epoch + 1}/{t_cfg.epochs}: loss {stats['train_loss']:.4f} "
            f"train acc {stats['train_accuracy'] * 100:.2f}% "
            f"{split} acc {val['accuracy'] * 100:.2f}% "
            f"hidden spikes/sample {val['hidden_spikes_per_sample']:.1f} "
            f"({row['seconds']:.0f} s)")
    if not group.main:
        distributed.barrier(group)  # until rank 0 has written everything
        return {}
    if not ckpt_path.exists():  # epochs = 0: still leave a loadable checkpoint
        checkpoint.save(ckpt_path, cfg, 0, net.state_dict(), opt.state_dict(), history)
    x_test, y_test, id_test = load_split_with_ids(t_cfg.dataset, "test",
                                                  limit=t_cfg.eval_subset)
    test = evaluate(net, layer_specs(net), x_test, y_test, id_test, enc, progress=progress,
                    desc="test")
    log(format_table(test, title=f"{cfg.name}: test split"))
    metrics = {"name": cfg.name, "config": to_dict(cfg), "history": history,
               "test": _strip(test), "checkpoint": str(ckpt_path)}
    write_json_atomic(out_dir / METRICS_NAME, metrics)
    distributed.barrier(group)
    return metrics


def _train_epoch(net, opt, cfg, epoch, images, labels, ids, progress, group, device) -> dict:
    t_cfg, enc = cfg.train, cfg.encoding
    net.train()
    plain = getattr(net, "module", net)  # under DDP: the wrapped Network
    plain.set_gate_strength(gate_strength(cfg.model.isi, epoch))
    for param_group in opt.param_groups:
        param_group["lr"] = epoch_lr(cfg, epoch)
    order = np.random.default_rng([t_cfg.seed, epoch]).permutation(len(labels))
    seed = train_seed(cfg, epoch)
    n_batches = (len(order) + t_cfg.batch_size - 1) // t_cfg.batch_size
    bar = progress_bar(range(n_batches), desc=f"epoch {epoch + 1}/{t_cfg.epochs}",
                       unit="batch", disable=not progress, leave=False)
    tot_loss = tot_correct = tot_spikes = seen = 0.0
    for b in bar:
        idx, weight = distributed.shard(order[b * t_cfg.batch_size:(b + 1) * t_cfg.batch_size],
                                        group)
        x = torch.from_numpy(encode(images[idx], ids[idx], num_steps=enc.num_steps,
                                    max_rate=enc.max_rate, seed=seed)).float().to(device)
        y = torch.from_numpy(labels[idx].astype(np.int64)).to(device)
        out = net(x)
        loss = loss_fn(out, y, cfg)
        opt.zero_grad(set_to_none=True)
        (loss * weight if group.active else loss).backward()
        opt.step()
        plain.constrain()
        if weight > 0:
            n = len(idx)
            seen += n
            tot_loss += float(loss) * n
            tot_correct += float((out.predictions() == y).sum())
            tot_spikes += sum(float(s.sum()) for s in out.spikes[1:-1])
        if progress:
            bar.set_postfix(loss=f"{tot_loss / max(seen, 1):.3f}",
                            acc=f"{tot_correct / max(seen, 1):.3f}",
                            spk=f"{tot_spikes / max(seen, 1):.0f}")
    bar.close()
    tot_loss, tot_correct, tot_spikes, seen = distributed.all_sum(
        [tot_loss, tot_correct, tot_spikes, seen], group, device)
    return {"train_loss": tot_loss / max(seen, 1), "train_accuracy": tot_correct / max(seen, 1),
            "train_hidden_spikes_per_sample": tot_spikes / max(seen, 1)}
