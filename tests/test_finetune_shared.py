"""Fine-tuning a ``sentence`` encoder on both sides of a pair with ONE shared (siamese) tower: pooling
as the sentence-transformers model, shared parameters held once, gradients from both sides, saved
once and read back by both features, through the cache and a bundle. Tiny random models on CPU."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from scorecast.config import EncoderSpec, load_recipe
from scorecast.data.items import Item, ItemSet
from scorecast.errors import ConfigError
from tiny_models import make_tiny_sentence_transformer

WORDS = "the quick brown fox jumps over lazy dog good bad great poor grammar speech".split()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("finetune-shared")
    st = make_tiny_sentence_transformer(root / "st")
    rng = np.random.default_rng(0)
    items = [
        Item(
            id=f"p{i}",
            texts={"a": " ".join(rng.choice(WORDS, 3 + i % 4)), "b": " ".join(rng.choice(WORDS, 2 + i % 5))},
            targets={"score": float(i % 6)},
        )
        for i in range(12)
    ]
    return {"root": root, "st": st, "items": ItemSet(items, target_names=["score"])}


def _pair_recipe(tiny, share: bool | None = None, **training):
    tuned = {"model": str(tiny["st"]), "finetune_top_k": 1, "finetune_lr": 1e-3}
    if share is not None:
        tuned["finetune_share"] = share
    return load_recipe(
        {
            "encoders": [
                {"name": "sentence", "input": "text.a", "alias": "s1", "params": tuned},
                {"name": "sentence", "input": "text.b", "alias": "s2", "params": tuned},
            ],
            "targets": [{"name": "score", "low": 0, "high": 5}],
            "model": {
                "fusion": {"name": "siamese", "params": {"left": "s1", "right": "s2", "adapter": "none"}},
                "head": {"name": "regression", "params": {"bounded": True}},
            },
            "training": {
                "max_epochs": 2,
                "batch_size": 4,
                "lr": 1e-3,
                "early_stopping": None,
                "scheduler": "none",
                "standardize_features": False,
                **training,
            },
            "cache_dir": str(tiny["root"] / "cache"),
        }
    )


def test_tuned_sentence_encoder_starts_at_the_frozen_sentence_embedding(tiny):
    from sentence_transformers import SentenceTransformer

    from scorecast.adapt.common import FinetuneSettings
    from scorecast.adapt.tunable import TunableEncoder
    from scorecast.encoders import ENCODERS

    texts = ["the quick brown fox", "good grammar", "a lazy dog jumps over the bad speech of the fox"]
    enc = TunableEncoder(
        EncoderSpec(name="sentence", input="text.a", params={"model": str(tiny["st"])}), FinetuneSettings(1)
    )
    assert (enc.pooling, enc.normalize, enc.layer) == ("mean", True, 2)
    with torch.no_grad():
        pooled, _seq, tokens = enc.eval()(enc.prepare(texts))
    frozen = ENCODERS.build("sentence", model=str(tiny["st"])).encode_batch(texts)
    np.testing.assert_allclose(pooled.numpy(), np.stack([f.pooled for f in frozen]), atol=1e-5)
    assert tokens.sum(1).tolist() == [len(f.sequence) for f in frozen]
    reference = SentenceTransformer(str(tiny["st"]), device="cpu", local_files_only=True).encode(texts)
    np.testing.assert_allclose(pooled.numpy(), reference, atol=1e-5)


def test_pair_encoders_share_one_tower_and_gradients_from_both_sides_reach_it(tiny):
    from scorecast.adapt.finetune import FinetuneCollate, FinetuneDataset, FinetuneModule, split_encoders
    from scorecast.adapt.tunable import build_tunable_encoders
    from scorecast.losses.combined import build_loss
    from scorecast.models.base import FeatureShape
    from scorecast.models.scorer import build_model

    recipe = _pair_recipe(tiny)
    tuned, _ = split_encoders(recipe)
    encoders = build_tunable_encoders(tuned)
    assert encoders["s1"] is encoders["s2"] and encoders["s1"].name == "s1+s2"
    shapes = {name: FeatureShape(enc.out_dim) for name, enc in encoders.items()}
    module = FinetuneModule(
        encoders,
        build_model(recipe.model, shapes, recipe.targets),
        build_loss(recipe.losses, recipe.targets),
        recipe.training,
        recipe.targets,
    )
    assert list(module.encoders) == ["e0"] and module.tower_keys == {"s1": "e0", "s2": "e0"}
    trained = [p for p in module.encoders["e0"].parameters() if p.requires_grad]
    assert trained and len({id(p) for p in module.parameters()}) == len(list(module.parameters()))
    groups = module.param_group_specs()
    assert [g["name"] for g in groups] == ["head", "encoder.s1+s2.layer1"]
    torch.optim.AdamW(groups)  # each shared parameter once: AdamW refuses a parameter in two groups

    data = FinetuneDataset(tiny["items"].items, np.arange(4), encoders, None, tiny["items"].target_matrix(["score"]))
    batch = FinetuneCollate(encoders)([data[i] for i in range(4)])
    module.train()

    def grads(side: str | None) -> list[torch.Tensor]:
        module.zero_grad()
        pooled = {name: module.encoders["e0"](batch["raw"][name])[0] for name in ("s1", "s2")}
        if side is not None:  # the other side's embedding as a constant
            other = "s2" if side == "s1" else "s1"
            pooled[other] = pooled[other].detach()
        loss, _ = module.loss(module.model(pooled, None, None), batch["target"])
        loss.backward()
        return [p.grad.clone() for p in trained]

    left, right, both = grads("s1"), grads("s2"), grads(None)
    assert all(g.abs().sum() > 0 for g in left) and all(g.abs().sum() > 0 for g in right)
    for l_, r_, b_ in zip(left, right, both, strict=True):
        torch.testing.assert_close(b_, l_ + r_, atol=1e-6, rtol=1e-4)  # both sides' gradients add up on one tensor


def test_shared_tower_is_saved_once_and_both_features_read_it(tiny, tmp_path):
    from sentence_transformers import SentenceTransformer

    import scorecast
    from scorecast.adapt.common import read_adaptation
    from scorecast.adapt.finetune import fit_finetune, load_head
    from scorecast.cache.store import EmbeddingCache
    from scorecast.encoders.pipeline import build_features

    result = fit_finetune(_pair_recipe(tiny, calibrate_head=True), tiny["items"], tmp_path / "out")
    folder = result.encoder_dirs["s1"]
    assert result.encoder_dirs["s2"] == folder and folder.name == "s1_s2"
    assert [p.name for p in (tmp_path / "out" / "encoders").iterdir()] == ["s1_s2"]
    assert read_adaptation(folder)["features"] == ["s1", "s2"]
    assert [g["name"] for g in result.param_groups] == ["head", "encoder.s1+s2.layer1"]
    written = load_recipe(tmp_path / "out" / "recipe.yaml")
    assert [(e.name, e.alias, e.params) for e in written.encoders] == [
        ("sentence", "s1", {"model": str(folder)}),
        ("sentence", "s2", {"model": str(folder)}),
    ]
    assert json.loads((tmp_path / "out" / "finetune.json").read_text())["encoders"] == {
        "s1": str(folder),
        "s2": str(folder),
    }

    # reload equals: the saved folder, through sentence-transformers and through the cached `sentence`
    # encoder + the saved head, gives the tuned tower's own outputs and the end-to-end predictions
    tower = result.module.encoders["e0"]
    texts = [it.texts["a"] for it in tiny["items"].items]
    with torch.no_grad():
        tuned = tower(tower.prepare(texts))[0].numpy()
    reloaded = SentenceTransformer(str(folder), device="cpu", local_files_only=True).encode(texts)
    np.testing.assert_allclose(reloaded, tuned, atol=1e-5)
    source = SentenceTransformer(str(tiny["st"]), device="cpu", local_files_only=True).encode(texts)
    assert not np.allclose(source, tuned, atol=1e-4)  # training moved the shared tower
    features = build_features(tiny["items"], written.encoders, EmbeddingCache(tmp_path / "cache"), progress=False)
    end_to_end = result.predict(tiny["items"])
    np.testing.assert_allclose(load_head(tmp_path / "out").predict(features).mean, end_to_end, atol=1e-4)
    assert np.std(end_to_end) > 0

    # the written recipe trains and predicts through a bundle
    scorer = scorecast.Scorer(str(tmp_path / "out" / "recipe.yaml"), cache_dir=tmp_path / "cache")
    scorer.fit(tiny["items"], out_dir=tmp_path / "run")
    bundle = scorer.save(tmp_path / "bundle")
    got = scorecast.load(bundle, cache_dir=tmp_path / "cache").predict(tiny["items"].items)
    np.testing.assert_allclose(got.scores["score"], scorer.predict(tiny["items"].items).scores["score"], atol=1e-6)
    assert np.isfinite(got.scores["score"]).all()


def test_calibration_starts_the_head_at_the_least_squares_fit(tiny):
    from scorecast.adapt.finetune import build_parts, split_encoders
    from scorecast.runs.cv import training_targets

    recipe = _pair_recipe(tiny, calibrate_head=True)
    items = tiny["items"]
    targets = training_targets(recipe, items)
    idx = np.arange(len(items))
    parts = build_parts(recipe, items, *split_encoders(recipe), targets, idx, idx[:0], None)
    parts.module.eval()
    batch = parts.train_loader.collate_fn([parts.train_loader.dataset[i] for i in idx])
    with torch.no_grad():
        pred = parts.module(batch)["mean"].numpy()[:, 0]
    # a least-squares fit with an intercept leaves residuals of mean zero (bounded head: close to it)
    assert abs(pred.mean() - targets[:, 0].mean()) < 0.15
    assert np.corrcoef(pred, targets[:, 0])[0, 1] > 0


def test_unshared_towers_and_bad_sentence_models(tiny, tmp_path):
    from scorecast.adapt.common import FinetuneSettings
    from scorecast.adapt.finetune import split_encoders
    from scorecast.adapt.tunable import TunableEncoder, build_tunable_encoders

    encoders = build_tunable_encoders(split_encoders(_pair_recipe(tiny, share=False))[0])
    assert encoders["s1"] is not encoders["s2"] and encoders["s1"].name == "s1"

    dense = tmp_path / "dense"
    make_tiny_sentence_transformer(dense)
    modules = json.loads((dense / "modules.json").read_text())
    modules.insert(2, {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"})
    (dense / "modules.json").write_text(json.dumps(modules))
    spec = EncoderSpec(name="sentence", input="text.a", params={"model": str(dense)})
    with pytest.raises(ConfigError, match=r"supports the modules Transformer -> Pooling \(-> Normalize\), got .*Dense"):
        TunableEncoder(spec, FinetuneSettings(1))
    pooling = dense / "1_Pooling" / "config.json"
    modules.pop(2)
    (dense / "modules.json").write_text(json.dumps(modules))
    pooling.write_text(json.dumps({**json.loads(pooling.read_text()), "pooling_mode_mean_sqrt_len_tokens": True}))
    with pytest.raises(ConfigError, match="exactly one pooling mode of mean, cls or max tokens, got mean"):
        TunableEncoder(spec, FinetuneSettings(1))
    with pytest.raises(ConfigError, match="sentence: model folder .* has no modules.json"):
        TunableEncoder(
            EncoderSpec(name="sentence", input="text.a", params={"model": str(tmp_path)}), FinetuneSettings(1)
        )


def test_cached_frozen_states_train_as_the_whole_forward(tiny, tmp_path):
    """finetune_cache_frozen: the top block on precomputed states gives the whole model's outputs,
    and a seeded fine-tuning run gives the same model either way."""
    from scorecast.adapt.common import FinetuneSettings
    from scorecast.adapt.finetune import fit_finetune
    from scorecast.adapt.tunable import TunableEncoder

    spec = EncoderSpec(name="sentence", input="text.a", params={"model": str(tiny["st"])})
    tower = TunableEncoder(spec, FinetuneSettings(1, cache_frozen=True)).eval()  # its probe check passes
    texts = [it.texts["a"] for it in tiny["items"].items]
    with torch.no_grad():
        whole = tower(tower.prepare(texts))[0]
        cached = tower(tower.prepare(tower.precompute(texts)))[0]
    torch.testing.assert_close(cached, whole, atol=1e-5, rtol=1e-5)
    assert [n for n, p in tower.named_parameters() if p.requires_grad] == [
        n for n, p in tower.named_parameters() if ".layer.1." in n
    ]
    tower.train()
    tower.precompute(texts[:2])  # leaves the trained block training (dropout on) and the rest in eval
    assert tower.model.encoder.layer[1].training and not tower.model.encoder.layer[0].training

    def run(cache: bool, out: str) -> np.ndarray:
        recipe = _pair_recipe(tiny, calibrate_head=True)
        for spec in recipe.encoders:
            spec.params["finetune_cache_frozen"] = cache
        return fit_finetune(recipe, tiny["items"], tmp_path / out).predict(tiny["items"])

    np.testing.assert_allclose(run(True, "cached"), run(False, "whole"), atol=1e-4)

    with pytest.raises(ConfigError, match="finetune_cache_frozen works with text towers only"):
        from tiny_models import make_tiny_wavlm

        wavlm = make_tiny_wavlm(tmp_path / "wavlm")
        TunableEncoder(
            EncoderSpec(name="hf-audio", params={"model": str(wavlm)}), FinetuneSettings(1, cache_frozen=True)
        )
