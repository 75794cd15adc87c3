"""The Lightning module and Trainer set-up: validation metrics, monitors, schedules, best weights,
SWA, mixup, loggers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from ddp_script import base_recipe, make_dataset
from scorecast.config import TargetSpec, TrainingConfig, load_recipe
from scorecast.errors import ConfigError
from scorecast.training.module import mixup, monitor_mode, validation_metrics
from scorecast.training.trainer import build_trainer, choose_precision, fit_member


def test_validation_metrics_match_scipy_and_system_level():
    rng = np.random.default_rng(0)
    t = rng.normal(size=(40, 2))
    p = t + rng.normal(scale=0.5, size=t.shape)
    groups = np.array([f"s{i % 5}" for i in range(40)])
    targets = [TargetSpec(name="mi"), TargetSpec(name="ta")]
    m = validation_metrics(p, t, targets, groups)
    for j, name in enumerate(["mi", "ta"]):
        assert m[f"val_lcc.{name}"] == pytest.approx(stats.pearsonr(p[:, j], t[:, j]).statistic)
        assert m[f"val_srcc.{name}"] == pytest.approx(stats.spearmanr(p[:, j], t[:, j]).statistic)
        assert m[f"val_rmse.{name}"] == pytest.approx(np.sqrt(np.mean((p[:, j] - t[:, j]) ** 2)))
        sp = [p[groups == g, j].mean() for g in sorted(set(groups))]
        st = [t[groups == g, j].mean() for g in sorted(set(groups))]
        assert m[f"val_sys_lcc.{name}"] == pytest.approx(stats.pearsonr(sp, st).statistic)
    assert m["val_lcc"] == pytest.approx((m["val_lcc.mi"] + m["val_lcc.ta"]) / 2)


def test_monitor_modes_and_precision():
    assert (
        monitor_mode("val_rmse") == "min" and monitor_mode("val_sys_mse") == "min" and monitor_mode("val_loss") == "min"
    )
    assert monitor_mode("val_srcc") == "max" and monitor_mode("val_sys_lcc") == "max"
    assert choose_precision(TrainingConfig()) == "32"
    assert choose_precision(TrainingConfig(precision="bf16-mixed")) == "bf16-mixed"


def test_trainer_passes_settings_through(tmp_path):
    cfg = TrainingConfig(max_epochs=3, accumulate_grad_batches=4, gradient_clip_val=0.5)
    trainer, best = build_trainer(cfg, log_dir=tmp_path, name="t", monitor="val_rmse")
    assert trainer.accumulate_grad_batches == 4 and trainer.gradient_clip_val == 0.5
    assert trainer.max_epochs == 3 and best.mode == "min"
    names = {type(c).__name__ for c in trainer.callbacks}
    assert {"EarlyStopping", "BestWeights"} <= names and "ModelCheckpoint" not in names
    swa, _ = build_trainer(TrainingConfig(swa={"enabled": True}), log_dir=tmp_path, name="s", monitor="val_lcc")
    names = {type(c).__name__ for c in swa.callbacks}
    assert "StochasticWeightAveraging" in names and "EarlyStopping" not in names


def test_optional_loggers_need_their_packages(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name in ("tensorboard", "tensorboardX", "mlflow") else real(name, *a),
    )
    with pytest.raises(ConfigError, match="pip install tensorboard"):
        build_trainer(TrainingConfig(loggers=["csv", "tensorboard"]), log_dir=tmp_path, name="x", monitor=None)
    with pytest.raises(ConfigError, match="pip install mlflow"):
        build_trainer(TrainingConfig(loggers=["mlflow"]), log_dir=tmp_path, name="x", monitor=None)


def test_mixup_mixes_features_and_targets_alike():
    torch.manual_seed(0)
    x = torch.arange(8, dtype=torch.float32)[:, None].repeat(1, 3)
    batch = {
        "index": torch.arange(8),
        "pooled": {"a": x},
        "sequences": None,
        "masks": None,
        "target": x[:, :1] * 2,
        "weight": None,
        "target_dist": None,
    }
    out = mixup(batch, alpha=0.4)
    # the target is the same affine mix of the (target = 2 * feature) pairs
    torch.testing.assert_close(out["target"][:, 0], out["pooled"]["a"][:, 0] * 2)
    assert not torch.equal(out["pooled"]["a"], x)


def _fit(tmp_path, **training):
    items, fs = make_dataset(160, seed=2)
    recipe = load_recipe(base_recipe(**training))
    y = items.target_matrix(["score"])
    return (
        recipe,
        fs,
        y,
        fit_member(recipe, fs, y, np.arange(120), np.arange(120, 160), groups=items.groups(), log_dir=tmp_path),
    )


def test_best_weights_are_restored(tmp_path):
    _, fs, y, member = _fit(tmp_path, max_epochs=12, lr=3e-2, early_stopping={"monitor": "val_rmse", "patience": 3})
    hist = member.history
    assert 1 <= len(hist) <= 12
    best = min(row["val_rmse"] for row in hist)
    pred = member.predict(fs.subset(np.arange(120, 160))).mean[:, 0]
    assert np.sqrt(np.mean((pred - y[120:, 0]) ** 2)) == pytest.approx(best, rel=1e-4)
    assert {"epoch", "train_loss", "val_loss", "val_lcc", "val_sys_lcc"} <= set(hist[0])


@pytest.mark.parametrize("scheduler", ["none", "onecycle", "cosine", "plateau"])
def test_schedulers_train(tmp_path, scheduler):
    _, fs, _, member = _fit(
        tmp_path, max_epochs=2, scheduler=scheduler, mixup_alpha=0.2 if scheduler == "cosine" else 0.0
    )
    assert len(member.history) == 2
    assert np.isfinite(member.predict(fs).mean).all()


def test_swa_runs_all_epochs(tmp_path, recwarn):
    _, fs, _, member = _fit(tmp_path, max_epochs=4, scheduler="cosine", swa={"enabled": True, "start_epoch": 0.5})
    assert len(member.history) == 4
    assert np.isfinite(member.predict(fs).mean).all()
    # the cosine schedule is per epoch under SWA, so Lightning swaps it for SWALR without complaint
    assert not [w for w in recwarn if "SWA is currently only supported every epoch" in str(w.message)]


def test_heteroscedastic_member_predicts_std(tmp_path):
    items, fs = make_dataset(80)
    d = base_recipe(max_epochs=2)
    d["model"]["head"] = {"name": "heteroscedastic"}
    d["losses"] = [{"name": "gaussian-nll"}]
    recipe = load_recipe(d)
    y = items.target_matrix(["score"])
    member = fit_member(recipe, fs, y, np.arange(60), np.arange(60, 80), log_dir=tmp_path)
    pred = member.predict(fs)
    assert pred.std is not None and pred.std.shape == (80, 1) and (pred.std > 0).all()


def test_loss_needing_a_missing_head_output_fails_before_training(tmp_path):
    items, fs = make_dataset(40)
    d = base_recipe(max_epochs=1)
    d["losses"] = [{"name": "gaussian-nll"}]
    with pytest.raises(ConfigError, match="log_var"):
        fit_member(
            load_recipe(d), fs, items.target_matrix(["score"]), np.arange(30), np.arange(30, 40), log_dir=tmp_path
        )


def test_unknown_or_impossible_monitor_is_refused(tmp_path):
    items, fs = make_dataset(40)
    y = items.target_matrix(["score"])
    with pytest.raises(ConfigError, match="expected one of val_loss, val_lcc.*got 'val_pearson'"):
        fit_member(
            load_recipe(base_recipe(early_stopping={"monitor": "val_pearson"})),
            fs,
            y,
            np.arange(30),
            np.arange(30, 40),
            log_dir=tmp_path,
        )
    # system level needs groups
    with pytest.raises(ConfigError, match="need a group on every validation item"):
        fit_member(
            load_recipe(base_recipe(early_stopping={"monitor": "val_sys_lcc"})),
            fs,
            y,
            np.arange(30),
            np.arange(30, 40),
            log_dir=tmp_path,
        )


def test_sequence_fusion_trains_and_round_trips(tmp_path):
    """Frame sequences flow through collate (padding + masks) into a temporal fusion, and a
    restored member predicts exactly what the trained one does."""
    from scorecast.data.features import FeatureSet
    from scorecast.inference.members import Member

    items, fs = make_dataset(48)
    rng = np.random.default_rng(0)
    seqs = [(fs.pooled["a"][i] + 0.1 * rng.normal(size=(3 + i % 5, 4))).astype(np.float32) for i in range(48)]
    fs = FeatureSet(fs.ids, fs.pooled, {"a": seqs})
    d = base_recipe(max_epochs=2)
    d["model"]["fusion"] = {
        "name": "temporal",
        "params": {"audio": "a", "dim": 16, "heads": 2, "layers": 1, "hidden": [16]},
    }
    torch.use_deterministic_algorithms(False)
    member = fit_member(
        load_recipe(d), fs, items.target_matrix(["score"]), np.arange(36), np.arange(36, 48), log_dir=tmp_path
    )
    assert member.sequence_features == ["a"]
    restored = Member.from_state(*member.to_state())
    np.testing.assert_array_equal(restored.predict(fs).mean, member.predict(fs).mean)
    assert not torch.are_deterministic_algorithms_enabled()  # Lightning's process-wide switch is given back
