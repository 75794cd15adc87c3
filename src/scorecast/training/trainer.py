"""The Lightning Trainer set-up, and ``fit_member``: train one model (neural or estimator).

Early stopping and best weights follow ``training.early_stopping.monitor`` (min for rmse/mse/mae/
loss, max for correlations). The best weights are kept in memory and restored when the fit ends
(no checkpoint file, so nothing is ever unpickled). With SWA the final weights are the average of
the last epochs, so early stopping and best-weight restoring are off.
"""

from __future__ import annotations

import copy
import importlib.util
import logging
import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from scorecast.config import Recipe, TrainingConfig
from scorecast.data.features import FeatureSet
from scorecast.errors import ConfigError
from scorecast.inference.members import EstimatorMember, Member, NeuralMember
from scorecast.training.progress import progress_callbacks

log = logging.getLogger(__name__)

_QUIET_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda", "lightning.fabric")


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """torch's intra-op threads set to ``n`` inside the block and restored after it (None: unchanged).

    Small heads train far faster on one thread than on a default pool that competes with other work
    for a few cores (the pool spins under contention). ``training.threads`` sets ``n`` for each fit.
    """
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ConfigError(f"torch threads: expected a whole number >= 1 or None, got {n!r}")
    old = torch.get_num_threads()
    if n is not None and n != old:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != old:
            torch.set_num_threads(old)


SMALL_STEP = 50_000_000
"""Parameters x batch size below which a training step is too small for a thread pool to pay."""


def auto_threads(cfg: TrainingConfig, n_params: int, batch_size: int, has_sequences: bool) -> int | None:
    """torch threads for one fit: ``training.threads`` where set; else 1 for a small head on pooled
    features (``n_params * batch_size`` under :data:`SMALL_STEP`), where a pool only adds CPU time
    (and on a busy machine wall time: its threads spin under contention); else None (torch's default:
    one per core) for big models, sequence fusions and GPU training."""
    if cfg.threads is not None:
        return cfg.threads
    gpu = cfg.accelerator in ("gpu", "cuda") or (cfg.accelerator == "auto" and torch.cuda.is_available())
    if gpu or has_sequences or n_params * batch_size >= SMALL_STEP:
        return None
    return 1


def choose_precision(cfg: TrainingConfig) -> str:
    """The configured precision, else 16-mixed where a GPU trains, else 32."""
    if cfg.precision:
        return cfg.precision
    gpu = cfg.accelerator in ("gpu", "cuda") or (cfg.accelerator == "auto" and torch.cuda.is_available())
    return "16-mixed" if gpu and torch.cuda.is_available() else "32"


def build_loggers(cfg: TrainingConfig, log_dir: str | Path, name: str) -> list:
    """CSV (always available), TensorBoard and MLflow (only if their packages are installed)."""
    from lightning.pytorch import loggers

    out = []
    for kind in cfg.loggers:
        if kind == "csv":
            out.append(loggers.CSVLogger(save_dir=str(log_dir), name=name, version=""))
        elif kind == "tensorboard":
            if not (importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX")):
                raise ConfigError(
                    "training.loggers: 'tensorboard' needs the tensorboard package; pip install tensorboard"
                )
            out.append(loggers.TensorBoardLogger(save_dir=str(log_dir), name=name, version=""))
        elif kind == "mlflow":
            if not importlib.util.find_spec("mlflow"):
                raise ConfigError("training.loggers: 'mlflow' needs the mlflow package; pip install mlflow")
            out.append(loggers.MLFlowLogger(experiment_name=name, tracking_uri=f"file:{Path(log_dir) / 'mlruns'}"))
    return out


class BestWeights(Callback):
    """Keeps an in-memory copy of the weights at the best value of ``monitor``; restores it at fit end.

    Every rank sees the same (gathered) monitor value, so every rank restores the same weights.
    """

    def __init__(self, monitor: str, mode: str) -> None:
        self.monitor, self.mode = monitor, mode
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.state: dict[str, torch.Tensor] | None = None

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        value = float(trainer.callback_metrics[self.monitor])
        if not np.isfinite(value):
            return
        better = self.best is None or (value < self.best if self.mode == "min" else value > self.best)
        if better:
            self.best, self.best_epoch = value, int(trainer.current_epoch)
            self.state = {k: v.detach().clone() for k, v in self.weights_of(pl_module).items()}

    def on_fit_end(self, trainer, pl_module) -> None:
        if self.state is not None:
            self.restore(pl_module, self.state)

    def weights_of(self, pl_module) -> dict[str, torch.Tensor]:
        """What is copied at a new best: the whole state dict."""
        return pl_module.state_dict()

    def restore(self, pl_module, state: dict[str, torch.Tensor]) -> None:
        pl_module.load_state_dict(state)


def build_trainer(
    cfg: TrainingConfig,
    *,
    log_dir: str | Path,
    name: str,
    monitor: str | None,
    best_weights: type[BestWeights] = BestWeights,
    log_every_n_steps: int = 1,
    patience: int | None = None,
    min_steps: int | None = None,
):
    """A ``lightning.Trainer`` from the training config; returns ``(trainer, best_weights | None)``.

    The one Trainer set-up of scorecast: head training (:func:`fit_member`) and end-to-end fine-tuning
    (``scorecast.adapt.finetune``) both come through here (via :func:`fit_module`). ``best_weights`` is
    the callback class that keeps the best weights on ``monitor`` (fine-tuning copies only the
    trainable part); ``log_every_n_steps`` only matters to loggers (nothing is logged per step by default).
    ``patience`` (epochs) and ``min_steps`` replace the configured patience and add a warm-up
    (:func:`stopping_schedule` counts both in optimizer steps).
    """
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping, RichProgressBar, StochasticWeightAveraging

    from scorecast.training.module import monitor_mode

    callbacks = []
    best = None
    if monitor is not None and not cfg.swa.enabled:
        mode = monitor_mode(monitor)
        best = best_weights(monitor, mode)
        callbacks.append(best)
        if cfg.early_stopping is not None:
            callbacks.append(
                EarlyStopping(
                    monitor=monitor,
                    mode=mode,
                    patience=cfg.early_stopping.patience if patience is None else patience,
                    check_finite=False,
                )
            )
    if cfg.swa.enabled:
        if cfg.early_stopping is not None:
            log.info("SWA is on: the final weights are the average of the last epochs; early stopping is off")
        callbacks.append(
            StochasticWeightAveraging(swa_lrs=float(cfg.swa.lr or cfg.lr), swa_epoch_start=float(cfg.swa.start_epoch))
        )
    if cfg.progress:
        callbacks.append(RichProgressBar())
    callbacks += progress_callbacks(name, cfg.max_epochs, monitor)  # a line per member under member_progress
    for logger_name in _QUIET_LOGGERS:  # Lightning's GPU/TPU/tip lines say nothing a user needs
        logging.getLogger(logger_name).setLevel(logging.WARNING)
    gpu = cfg.accelerator in ("gpu", "cuda") or (cfg.accelerator == "auto" and torch.cuda.is_available())
    trainer = L.Trainer(
        max_epochs=cfg.max_epochs,
        min_steps=min_steps,
        accelerator=cfg.accelerator,
        devices=cfg.devices,
        strategy=cfg.strategy,
        num_nodes=cfg.num_nodes,
        precision=choose_precision(cfg),
        accumulate_grad_batches=cfg.accumulate_grad_batches,
        gradient_clip_val=cfg.gradient_clip_val,
        deterministic=("warn" if gpu else True) if cfg.deterministic else False,
        callbacks=callbacks,
        logger=build_loggers(cfg, log_dir, name) or False,
        enable_checkpointing=False,
        enable_progress_bar=cfg.progress,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=log_every_n_steps,
        default_root_dir=str(log_dir),
    )
    return trainer, best


def stopping_schedule(cfg: TrainingConfig, batches_per_epoch: int) -> dict[str, int]:
    """Early stopping counted in optimizer steps: ``steps_per_epoch``, ``patience_epochs`` (the
    configured patience, raised to cover ``min_patience_steps``) and ``min_steps`` (the warm-up, capped
    at the run's length)."""
    steps = max(1, math.ceil(batches_per_epoch / max(1, cfg.accumulate_grad_batches)))
    es = cfg.early_stopping
    if es is None:
        return {"steps_per_epoch": steps, "patience_epochs": 0, "min_steps": 0}
    patience = max(es.patience, math.ceil(es.min_patience_steps / steps))
    return {
        "steps_per_epoch": steps,
        "patience_epochs": int(patience),
        "min_steps": int(min(es.warmup_steps, steps * cfg.max_epochs)),
    }


# Lightning notes that say nothing to a scorecast user (small data sets, CPU, frozen parts on purpose).
_IGNORED_WARNINGS = (
    r".*does not have many workers.*",
    r".*exists and is not empty.*",
    r".*sync_dist=True.*",
    r".*LeafSpec.*",
    r".*module\(s\) in eval mode.*",
    r".*no `val_dataloader`.*",
)


def fit_module(
    cfg: TrainingConfig,
    module,
    train_loader,
    val_loader,
    *,
    log_dir: str | Path,
    name: str,
    best_weights: type[BestWeights] = BestWeights,
    log_every_n_steps: int = 1,
    patience: int | None = None,
    min_steps: int | None = None,
):
    """Fit a LightningModule (its ``monitor`` attribute, or None) with :func:`build_trainer`; the best
    weights are restored at the end, and the process's deterministic-algorithms setting (which
    Lightning switches on for the whole process) is given back afterwards. Returns ``(trainer,
    best_weights | None)``; ``patience`` and ``min_steps`` as in :func:`build_trainer`."""
    deterministic_before = torch.are_deterministic_algorithms_enabled()
    trainer, best = build_trainer(
        cfg,
        log_dir=log_dir,
        name=name,
        monitor=module.monitor,
        best_weights=best_weights,
        log_every_n_steps=log_every_n_steps,
        patience=patience,
        min_steps=min_steps,
    )
    with warnings.catch_warnings():
        for message in _IGNORED_WARNINGS:
            warnings.filterwarnings("ignore", message=message)
        try:
            trainer.fit(module, train_loader, val_loader)
        finally:
            torch.use_deterministic_algorithms(deterministic_before)
    return trainer, best


def resolve_monitor(cfg: TrainingConfig, has_val: bool) -> str | None:
    if not has_val or cfg.early_stopping is None:
        return None
    return cfg.early_stopping.monitor


def fit_member(
    recipe: Recipe,
    features: FeatureSet,
    targets: np.ndarray,
    train_idx,
    val_idx,
    *,
    groups: list | np.ndarray | None = None,
    target_dist: np.ndarray | None = None,
    seed: int | None = None,
    log_dir: str | Path | None = None,
    name: str = "member",
    augmented: tuple[FeatureSet, np.ndarray] | None = None,
    ratings: list | None = None,
) -> Member:
    """Train one member on ``train_idx`` (early stopping on ``val_idx``) of ``features`` / ``targets`` (N, T),
    on ``training.threads`` torch threads (restored afterwards).

    ``groups`` (N,) feed negatives (partners from other groups) and system-level validation metrics;
    ``target_dist`` (N, T, K) per-rater histograms; ``augmented`` = (features, targets) of extra
    training copies (already restricted to the training items); ``ratings`` (N,) each item's per-listener
    ``Ratings`` of the first target (or None), for ``training.listeners``. The returned member carries its
    learning curve in ``member.history`` (and, listener-aware, the listeners' biases in ``member.listeners``).
    """
    from scorecast.models.datasets import FeatureScaler
    from scorecast.models.estimators import ESTIMATORS, is_estimator

    cfg = recipe.training
    seed = cfg.seed if seed is None else seed
    targets = np.asarray(targets, dtype=np.float64).reshape(len(features), -1)
    train_idx = np.asarray(train_idx, dtype=int)
    train_idx = train_idx[np.isfinite(targets[train_idx]).any(axis=1)]
    val_idx = np.asarray(val_idx, dtype=int)
    if len(train_idx) == 0:
        raise ConfigError("fit: no training item has a target value")
    train_fs = features.subset(train_idx)
    train_y = targets[train_idx]
    scaler = (
        FeatureScaler.fit(train_fs, cfg.standardize_together, cfg.standardize_skip)
        if cfg.standardize_features
        else FeatureScaler.identity()
    )
    dims = features.dims()

    with torch_threads(cfg.threads):
        if is_estimator(recipe.model.head.name):
            x = np.concatenate([scaler.transform(train_fs).pooled[k].astype(np.float64) for k in dims], axis=1)
            estimators = []
            for j in range(train_y.shape[1]):
                ok = np.isfinite(train_y[:, j])
                est = ESTIMATORS.build(recipe.model.head.name, **recipe.model.head.params)
                estimators.append(est.fit(x[ok], train_y[ok, j]))
            return EstimatorMember(recipe.model.head.name, estimators, recipe.targets, dims, scaler)
        return _fit_neural(
            recipe,
            features,
            targets,
            train_idx,
            val_idx,
            scaler,
            groups,
            target_dist,
            seed,
            log_dir,
            name,
            augmented,
            ratings,
        )


def _calibrate_head(model, train_fs: FeatureSet, train_y: np.ndarray, seed: int, most: int = 4096) -> None:
    """``training.calibrate_head``: the head starts at the least-squares map of the initial fused features
    of (up to ``most`` of) the training items to their targets."""
    from scorecast.models.scorer import feature_batch

    idx = np.arange(len(train_fs))
    if len(idx) > most:
        idx = np.sort(np.random.default_rng(seed).choice(len(idx), most, replace=False))
    pooled, sequences, masks = feature_batch(train_fs, idx, model.uses_sequences)
    if not model.calibrate_head(pooled, sequences, masks, torch.as_tensor(train_y[idx], dtype=torch.float64)):
        log.info(
            "training.calibrate_head: head '%s' has no mean layer to calibrate; left as initialised",
            type(model.head).__name__,
        )


def _fit_neural(
    recipe, features, targets, train_idx, val_idx, scaler, groups, target_dist, seed, log_dir, name, augmented, ratings
):
    import lightning as L
    from torch.utils.data import DataLoader

    from scorecast.losses.combined import build_loss
    from scorecast.models.datasets import ScoreDataset, collate
    from scorecast.models.scorer import build_model, feature_shapes
    from scorecast.training.module import ScoreModule, check_monitor
    from scorecast.training.negatives import make_negatives
    from scorecast.training.weights import sample_weights

    cfg = recipe.training
    L.seed_everything(seed, workers=True, verbose=False)
    grp = np.asarray(groups, dtype=object) if groups is not None else None
    parts_fs = [features.subset(train_idx)]
    parts_y = [targets[train_idx]]
    parts_dist = [target_dist[train_idx]] if target_dist is not None else None
    rows = None
    if cfg.listeners is not None:  # one training row per listener's rating (see training.listeners)
        from scorecast.training.listeners import check_listener_recipe, expand_ratings

        check_listener_recipe(recipe)
        rows = expand_ratings(train_idx, targets, ratings if ratings is not None else [None] * len(features))
        parts_fs = [features.subset(rows.items)]
        parts_y = [rows.values[:, None]]
        parts_dist = [target_dist[rows.items]] if target_dist is not None else None

    def no_dist(m: int) -> None:  # rows without histograms: the kl loss smooths their score instead
        if parts_dist is not None:
            parts_dist.append(np.full((m, *target_dist.shape[1:]), np.nan, dtype=np.float32))

    if augmented is not None:
        parts_fs.append(augmented[0])
        parts_y.append(np.asarray(augmented[1], dtype=np.float64).reshape(len(augmented[0]), -1))
        no_dist(len(augmented[0]))
    negs = make_negatives(
        features.subset(train_idx),
        cfg.negatives,
        recipe.targets,
        groups=list(grp[train_idx]) if grp is not None else None,
        rng=np.random.default_rng(seed),
    )
    if negs is not None:
        parts_fs.append(negs.features)
        parts_y.append(negs.targets)
        no_dist(len(negs.features))
    train_fs = scaler.transform(FeatureSet.concat(parts_fs))
    train_y = np.concatenate(parts_y)
    weights = sample_weights(train_y[:, 0], recipe.targets[0], cfg.sample_weights)
    train_ds = ScoreDataset(train_fs, train_y, weights, np.concatenate(parts_dist) if parts_dist else None)
    if rows is not None:  # rows past the ratings (augmented copies, negatives) are the mean listener's
        train_ds.listener = torch.full((len(train_ds),), -1, dtype=torch.long)
        train_ds.listener[: len(rows.listener)] = torch.as_tensor(rows.listener)
    has_val = len(val_idx) > 0
    val_ds = (
        ScoreDataset(
            scaler.transform(features.subset(val_idx)),
            targets[val_idx],
            None,
            target_dist[val_idx] if target_dist is not None else None,
        )
        if has_val
        else None
    )

    gen = torch.Generator().manual_seed(seed)
    bs = max(1, min(cfg.batch_size, len(train_ds)))
    drop_last = len(train_ds) % bs == 1  # a batch of one breaks batch statistics and correlation losses
    train_loader = DataLoader(
        train_ds, batch_size=bs, shuffle=True, collate_fn=collate, generator=gen, drop_last=drop_last
    )
    val_loader = DataLoader(val_ds, batch_size=max(bs, 256), shuffle=False, collate_fn=collate) if has_val else None

    shapes = feature_shapes(features)
    model = build_model(recipe.model, shapes, recipe.targets)
    if hasattr(model.head, "calibrate_prior"):  # a prior head: calibrate its zero-shot score on the training fold
        model.head.calibrate_prior(scaler.transform(features.subset(train_idx)).pooled, targets[train_idx])
    loss = build_loss(recipe.losses, recipe.targets)
    loss.check_head(model.provides, recipe.model.head.name)
    if cfg.calibrate_head:
        _calibrate_head(model, train_fs, train_y, seed)
    monitor = resolve_monitor(cfg, has_val)
    val_groups = grp[val_idx] if grp is not None and has_val and all(g is not None for g in grp[val_idx]) else None
    if monitor is not None:
        check_monitor(monitor, recipe.targets, val_groups is not None)
    listener_layer = None
    if rows is not None:
        from scorecast.training.listeners import ListenerLayer

        listener_layer = ListenerLayer(len(rows.names), recipe.targets[0], cfg.listeners)
    module = ScoreModule(
        model, loss, cfg, recipe.targets, monitor=monitor, val_groups=val_groups, listeners=listener_layer
    )
    n_params = sum(p.numel() for p in model.parameters())
    threads = auto_threads(cfg, n_params, bs, any(s.has_sequence for s in shapes.values()))
    log_root = Path(log_dir) if log_dir is not None else Path.cwd() / "lightning_logs"
    schedule = stopping_schedule(cfg, len(train_loader))
    with torch_threads(threads):
        used = torch.get_num_threads()
        trainer, best = fit_module(
            cfg,
            module,
            train_loader,
            val_loader,
            log_dir=log_root,
            name=name,
            patience=schedule["patience_epochs"],
            min_steps=schedule["min_steps"] if monitor is not None else None,
        )
    seq = [n for n, s in shapes.items() if s.has_sequence]
    member = NeuralMember(copy.deepcopy(module.model), recipe.model, recipe.targets, features.dims(), seq, scaler)
    # the thread count each epoch ran on goes into history.csv of the run folder
    member.history = [{**row, "threads": used} for row in module.history]
    member.fit_info = {
        **schedule,
        "epochs": len(module.history),
        "steps": int(trainer.global_step),
        **({"best_epoch": best.best_epoch} if best is not None and best.best_epoch is not None else {}),
    }
    if listener_layer is not None:
        member.listeners = listener_layer.table(rows.names)
    return member
