"""The LightningModule: a ScoreModel trained with a CombinedLoss under AdamW and a schedule.

Validation metrics (``val_lcc``, ``val_srcc``, ``val_rmse``, ``val_mse``, ``val_mae``, and the
system-level ``val_sys_*`` when groups are given) are computed at epoch end on the WHOLE validation
set: under DDP every rank's predictions are gathered (and the DistributedSampler's padding removed),
so the early-stopping metric is identical on all ranks. With several targets the metric is the mean
over targets (``val_lcc.<target>`` is logged too).
"""

from __future__ import annotations

import math
import warnings

import lightning as L
import numpy as np
import torch
from torch import nn

from scorecast.config import TargetSpec, TrainingConfig
from scorecast.errors import ConfigError

#: metrics where lower is better (any monitor containing one of these is minimised)
LOWER_IS_BETTER = ("rmse", "mse", "mae", "loss")


def monitor_mode(monitor: str) -> str:
    """``min`` for error/loss monitors, ``max`` for correlations."""
    return "min" if any(key in monitor for key in LOWER_IS_BETTER) else "max"


VAL_METRICS = ("lcc", "srcc", "rmse", "mse", "mae")


def check_monitor(monitor: str, targets: list[TargetSpec], has_groups: bool) -> None:
    """Refuse an early-stopping monitor the module will never log, listing the ones it will."""
    levels = ["val_", "val_sys_"] if has_groups else ["val_"]
    known = ["val_loss"] + [f"{lv}{m}" for lv in levels for m in VAL_METRICS]
    if len(targets) > 1:
        known += [f"{lv}{m}.{t.name}" for lv in levels for m in VAL_METRICS for t in targets]
    if monitor not in known:
        hint = " (system-level metrics need a group on every validation item)" if monitor.startswith("val_sys_") else ""
        raise ConfigError(f"training.early_stopping.monitor: expected one of {', '.join(known)}, got '{monitor}'{hint}")


def validation_metrics(
    preds: np.ndarray, target: np.ndarray, targets: list[TargetSpec], groups: np.ndarray | None = None
) -> dict[str, float]:
    """``val_<metric>`` (mean over targets), ``val_<metric>.<target>`` (with several targets) and,
    with groups, ``val_sys_<metric>`` on per-group means. NaN truth is skipped quietly."""
    from scorecast.metrics.functional import METRICS, MetricWarning, system_level

    out: dict[str, float] = {}
    per_target = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)  # constant predictions in early epochs
        for j, spec in enumerate(targets):
            p, t = preds[:, j], target[:, j]
            m = {k: float(METRICS.get(k)(p, t)) for k in VAL_METRICS}
            if groups is not None:
                sys = system_level(p, t, list(groups))
                m.update({f"sys_{k}": float(METRICS.get(k)(sys.preds, sys.target)) for k in VAL_METRICS})
            per_target.append(m)
            if len(targets) > 1:
                out.update({f"val_{k}.{spec.name}": v for k, v in m.items()})
    for key in per_target[0]:
        out[f"val_{key}"] = float(np.mean([m[key] for m in per_target]))
    return out


class ScoreModule(L.LightningModule):
    """Wraps ``model`` (a ScoreModel) and ``loss`` (a CombinedLoss returning ``(total, parts)``).

    Each epoch, ``train_loss`` and the monitor go through ``self.log`` (for callbacks and the progress
    bar, not the loggers) and one row (epoch, train_loss, val_loss, val_<metric>...) is written to
    the loggers (CSV: ``metrics.csv``) at the global step.

    ``val_groups`` (N_val,) are the groups of the validation items (for system-level metrics).
    ``history`` gets one row per epoch: epoch, train_loss, val_loss, val_<metric>...
    """

    def __init__(
        self,
        model: torch.nn.Module,
        loss: torch.nn.Module,
        training: TrainingConfig,
        targets: list[TargetSpec],
        monitor: str | None = None,
        val_groups: np.ndarray | None = None,
        listeners: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.listeners = listeners  # training.listeners: per-listener bias/scale (training rows only)
        self.loss = loss
        self.cfg = training
        self.targets = list(targets)
        self.monitor = monitor
        self.val_groups = None if val_groups is None else np.asarray(val_groups, dtype=object).astype(str)
        self.history: list[dict[str, float]] = []
        self._reset_train()
        self._reset_val()
        self._last_val: dict[str, float] = {}

    # ------------------------------------------------------------------ steps
    def transfer_batch_to_device(self, batch: dict, device: torch.device, dataloader_idx: int) -> dict:
        """Move a collated batch (nested dicts of tensors, Nones) to ``device``; a no-op on CPU.
        (Lightning's generic collection walk costs more than a small model's step.)"""
        if device.type == "cpu":
            return batch

        def move(x):
            if isinstance(x, torch.Tensor):
                return x.to(device, non_blocking=True)
            if isinstance(x, dict):
                return {k: move(v) for k, v in x.items()}
            return x

        return move(batch)

    def forward(self, batch: dict):
        return self.model(batch["pooled"], batch["sequences"], batch["masks"])

    def _loss(self, out, batch: dict) -> torch.Tensor:
        extra = {"target_dist": batch["target_dist"]} if batch.get("target_dist") is not None else None
        if self.listeners is not None and batch.get("listener") is not None:
            out = type(out)(out)
            out["mean"] = self.listeners(out["mean"], batch["listener"])
            total, _parts = self.loss(out, batch["target"], batch.get("weight"), extra)
            return total + self.listeners.penalty()
        total, _parts = self.loss(out, batch["target"], batch.get("weight"), extra)
        return total

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        if self.cfg.mixup_alpha > 0 and len(batch["index"]) > 1:
            batch = mixup(batch, self.cfg.mixup_alpha)
        out = self(batch)
        total = self._loss(out, batch)
        n = len(batch["index"])
        self._train_sum = self._train_sum + total.detach().double() * n  # a tensor: no device sync per step
        self._train_n += n
        return total

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        out = self(batch)
        total = self._loss(out, batch)
        n = len(batch["index"])
        self._val_loss_sum = self._val_loss_sum + total.detach().double() * n
        self._val_loss_n += n
        self._val_preds.append(out["mean"].detach().float())
        self._val_index.append(batch["index"])
        self._val_target.append(batch["target"].float())

    # ------------------------------------------------------------------ epoch ends
    def _reset_train(self) -> None:
        self._train_sum, self._train_n = 0.0, 0

    def _reset_val(self) -> None:
        self._val_preds: list[torch.Tensor] = []
        self._val_index: list[torch.Tensor] = []
        self._val_target: list[torch.Tensor] = []
        self._val_loss_sum, self._val_loss_n = 0.0, 0

    def on_validation_epoch_start(self) -> None:
        self._reset_val()

    def on_validation_epoch_end(self) -> None:
        if not self._val_preds:
            return
        preds = gather_rows(self, torch.cat(self._val_preds))
        index = gather_rows(self, torch.cat(self._val_index).to(self.device))
        target = gather_rows(self, torch.cat(self._val_target))
        loss_sum, loss_n = self._sum_across_ranks(self._val_loss_sum, self._val_loss_n)
        index_np = index.cpu().numpy()
        _, first = np.unique(index_np, return_index=True)  # DistributedSampler pads with repeats
        p, t = preds.cpu().numpy()[first], target.cpu().numpy()[first]
        groups = self.val_groups[index_np[first]] if self.val_groups is not None else None
        metrics = validation_metrics(p, t, self.targets, groups)
        metrics["val_loss"] = loss_sum / max(loss_n, 1)
        # Only the monitor goes through self.log (callbacks read it; every rank holds the same value);
        # the rest goes to the loggers directly: a self.log call costs more than a small model's step.
        if self.monitor is not None and self.monitor in metrics:
            self.log(self.monitor, metrics[self.monitor], sync_dist=True, prog_bar=True, logger=False)
        self._last_val = metrics
        self._reset_val()

    def on_train_epoch_start(self) -> None:
        self._reset_train()

    def on_train_epoch_end(self) -> None:
        total, n = self._sum_across_ranks(self._train_sum, self._train_n)
        train_loss = total / max(n, 1)
        self.log("train_loss", train_loss, sync_dist=True, logger=False)
        row = {"epoch": int(self.current_epoch), "train_loss": train_loss}
        row.update(self._last_val)
        self.history.append(row)
        if self.trainer.is_global_zero:
            logged = {k: v for k, v in row.items() if math.isfinite(v)}
            for logger in self.trainer.loggers:
                logger.log_metrics(logged, step=int(self.global_step))
        self._last_val = {}

    def _sum_across_ranks(self, total: torch.Tensor | float, n: int) -> tuple[float, int]:
        total = torch.as_tensor(total, dtype=torch.float64, device=self.device).reshape(())
        pair = torch.stack([total, torch.tensor(float(n), dtype=torch.float64, device=self.device)])
        if _distributed(self):
            pair = torch.stack(_all_gather(pair)).sum(0)
        return float(pair[0]), int(pair[1])

    # ------------------------------------------------------------------ optimisers
    def configure_optimizers(self):
        opt = torch.optim.AdamW(
            parameter_groups(self, self.cfg.lr, self.cfg.lr_multipliers), weight_decay=self.cfg.weight_decay
        )
        return with_scheduler(self, opt, self.cfg.scheduler)


def parameter_groups(module: nn.Module, lr: float, multipliers: dict[str, float]) -> list[dict]:
    """AdamW parameter groups: the trainable parameters under ``model.<part>`` for each part in
    ``multipliers`` at ``lr * multiplier``, every other trainable parameter at ``lr``."""
    groups: dict[str, list] = {part: [] for part in multipliers}
    rest = []
    for name, p in module.named_parameters():
        if not p.requires_grad:
            continue
        part = name.split(".")[1] if name.startswith("model.") else None
        (groups[part] if part in groups else rest).append(p)
    out = [{"params": rest, "lr": lr}] if rest else []
    out += [{"params": ps, "lr": lr * multipliers[part]} for part, ps in groups.items() if ps]
    return out


def with_scheduler(module: L.LightningModule, opt: torch.optim.Optimizer, kind: str):
    """What ``configure_optimizers`` returns for ``training.scheduler`` ``kind``: ``opt`` alone
    (``none``); with ReduceLROnPlateau on ``module.monitor`` (``plateau``, stepped per epoch); or with
    OneCycle (every parameter group peaking at its own rate, so layer-wise ratios hold) or cosine
    annealing over the run's optimiser steps (stepped per step; per epoch under SWA, which supports
    only per-epoch schedules)."""
    if kind == "none":
        return opt
    if kind == "plateau":
        monitor = module.monitor or "train_loss"
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode=monitor_mode(monitor), factor=0.5, patience=2)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": monitor, "interval": "epoch"}}
    cfg = getattr(module, "cfg", None)
    if kind == "cosine" and cfg is not None and cfg.swa.enabled:
        # SWA swaps in its own per-epoch schedule when averaging starts, and Lightning supports only
        # per-epoch schedules under it: anneal per epoch over the run instead of per step
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, int(cfg.max_epochs)))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}
    total = max(1, int(module.trainer.estimated_stepping_batches))
    if kind == "onecycle":
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[g["lr"] for g in opt.param_groups], total_steps=total)
    else:  # cosine
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def _all_gather(x: torch.Tensor) -> list[torch.Tensor]:
    """Every rank's ``x`` (same shape on all ranks), without autograd (torch.distributed.all_gather)."""
    import torch.distributed as dist

    out = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(out, x.contiguous())
    return out


def _distributed(module: L.LightningModule) -> bool:
    import torch.distributed as dist

    trainer = module._trainer
    return trainer is not None and trainer.world_size > 1 and dist.is_available() and dist.is_initialized()


def gather_rows(module: L.LightningModule, x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` (n_rank, ...) over all ranks (ranks may hold different n); one rank: ``x``."""
    if not _distributed(module):
        return x
    counts = [int(c) for c in _all_gather(torch.tensor([x.shape[0]], device=x.device))]
    longest = max(counts)
    if x.shape[0] < longest:
        pad = torch.zeros((longest - x.shape[0], *x.shape[1:]), dtype=x.dtype, device=x.device)
        x = torch.cat([x, pad])
    parts = _all_gather(x)
    return torch.cat([part[:n] for part, n in zip(parts, counts)])


def mixup(batch: dict, alpha: float) -> dict:
    """Mix each item's features, targets (and distributions, weights) with a random partner's:
    ``lam * a + (1 - lam) * b``, ``lam ~ Beta(alpha, alpha)`` (one per batch). Sequences are mixed
    frame by frame over the padded length; the mask is the union."""
    lam = float(torch.distributions.Beta(alpha, alpha).sample())
    perm = torch.randperm(len(batch["index"]), device=batch["index"].device)

    def mix(x: torch.Tensor) -> torch.Tensor:
        return lam * x + (1.0 - lam) * x[perm]

    out = dict(batch)
    out["pooled"] = {k: mix(v) for k, v in batch["pooled"].items()}
    if batch["sequences"]:
        out["sequences"] = {k: mix(v) for k, v in batch["sequences"].items()}
        out["masks"] = {k: v | v[perm] for k, v in batch["masks"].items()}
    target = batch["target"]
    # a missing target stays missing when either partner lacks it
    out["target"] = mix(target)
    for key in ("weight", "target_dist"):
        if batch.get(key) is not None:
            out[key] = mix(batch[key])
    return out
