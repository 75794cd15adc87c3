"""End-to-end fine-tuning of the top layers of tiny random WavLM and BERT models on CPU."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

from scorecast.config import EncoderSpec, load_recipe
from scorecast.data.items import Item, ItemSet
from scorecast.errors import ConfigError
from tiny_models import make_tiny_bert, make_tiny_wavlm

SR = 16000
WORDS = "the quick brown fox jumps over lazy dog good bad great poor grammar speech".split()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("finetune")
    wavlm = make_tiny_wavlm(root / "wavlm")
    wavlm_masked = make_tiny_wavlm(root / "wavlm-masked", attention_mask=True)
    bert = make_tiny_bert(root / "bert")
    rng = np.random.default_rng(0)
    items = []
    for i in range(8):
        n = 3200 + 800 * (i % 4)  # different lengths, so batches are padded
        t = np.arange(n) / SR
        wave = (0.05 + 0.05 * (i % 5)) * np.sin(2 * np.pi * (150 + 40 * i) * t) + 0.01 * rng.standard_normal(n)
        path = root / f"clip{i}.wav"
        sf.write(path, wave.astype(np.float32), SR)
        text = " ".join(rng.choice(WORDS, 3 + i % 4))
        items.append(Item(id=f"i{i}", audio=str(path), texts={"t": text}, targets={"score": float(1 + i % 5)}))
    return {
        "root": root,
        "wavlm": wavlm,
        "wavlm_masked": wavlm_masked,
        "bert": bert,
        "items": ItemSet(items, target_names=["score"]),
    }


def _recipe(tiny, **training):
    return load_recipe(
        {
            "encoders": [
                {
                    "name": "hf-audio",
                    "input": "audio",
                    "params": {"model": str(tiny["wavlm"]), "finetune_top_k": 1, "finetune_lr": 1e-3},
                },
                {
                    "name": "hf-text",
                    "input": "text.t",
                    "params": {
                        "model": str(tiny["bert"]),
                        "finetune_top_k": 2,
                        "finetune_lr": 1e-3,
                        "layer_decay": 0.5,
                    },
                },
            ],
            "training": {
                "max_epochs": 1,
                "batch_size": 4,
                "lr": 1e-2,
                "early_stopping": None,
                "scheduler": "none",
                **training,
            },
            "cache_dir": str(tiny["root"] / "cache"),
        }
    )


def _layer_of(key: str) -> int | None:
    """Block index of a state-dict key (``encoder.layers.3.`` / ``encoder.layer.3.``), else None."""
    parts = key.split(".")
    for i, p in enumerate(parts[:-1]):
        if p in ("layers", "layer") and parts[i + 1].isdigit():
            return int(parts[i + 1])
    return None


def test_finetune_changes_only_the_top_layers_and_matches_the_cached_path(tiny, tmp_path):
    from scorecast.adapt.common import read_adaptation
    from scorecast.adapt.finetune import fit_finetune, load_head
    from scorecast.cache.store import EmbeddingCache
    from scorecast.encoders.hf_audio import HFAudioEncoder
    from scorecast.encoders.pipeline import build_features

    recipe = _recipe(tiny)
    result = fit_finetune(recipe, tiny["items"], tmp_path / "out")

    # optimiser groups: head at training.lr; encoder blocks top-down, each lower one times layer_decay
    assert result.param_groups == [
        {"name": "head", "lr": 1e-2},
        {"name": "encoder.hf-audio:audio.layer1", "lr": 1e-3},
        {"name": "encoder.hf-text:text.t.layer1", "lr": 1e-3},
        {"name": "encoder.hf-text:text.t.layer0", "lr": 5e-4},
    ]
    assert len(result.history) == 1

    for name, source, trained in (("hf-audio:audio", tiny["wavlm"], {1}), ("hf-text:text.t", tiny["bert"], {0, 1})):
        folder = result.encoder_dirs[name]
        before, after = load_file(str(source / "model.safetensors")), load_file(str(folder / "model.safetensors"))
        assert before.keys() == after.keys()
        changed = {k for k in before if not torch.equal(before[k], after[k])}
        assert changed, f"{name}: no weight changed"
        assert {_layer_of(k) for k in changed} == trained  # every trained block moved, nothing else did
        untouched = [k for k in before if _layer_of(k) not in trained]
        assert untouched and all(torch.equal(before[k], after[k]) for k in untouched)  # bit-identical
        record = read_adaptation(folder)
        assert record["method"] == "finetune" and record["trained_layers"] == sorted(trained)
        assert record["source"] == str(source.resolve())

    # the adapted folder has its own cache identity
    assert (
        HFAudioEncoder(str(tiny["wavlm"])).identity_hash
        != HFAudioEncoder(str(result.encoder_dirs["hf-audio:audio"])).identity_hash
    )

    # the adapted encoders through the normal cached pipeline + the saved head give the fine-tuned
    # model's own end-to-end predictions
    features = build_features(tiny["items"], result.recipe.encoders, EmbeddingCache(tmp_path / "cache"), progress=False)
    cached = load_head(tmp_path / "out").predict(features).mean
    end_to_end = result.predict(tiny["items"])
    np.testing.assert_allclose(cached, end_to_end, atol=1e-4)
    assert np.std(end_to_end) > 0
    assert (tmp_path / "out" / "recipe.yaml").is_file() and "finetune_top_k" not in (
        tmp_path / "out" / "recipe.yaml"
    ).read_text()


def test_only_trained_blocks_and_head_get_gradients(tiny):
    from scorecast.adapt.common import finetune_settings
    from scorecast.adapt.finetune import FinetuneCollate, FinetuneDataset, FinetuneModule
    from scorecast.adapt.tunable import TunableEncoder
    from scorecast.losses.combined import build_loss
    from scorecast.models.base import FeatureShape
    from scorecast.models.scorer import build_model

    recipe = _recipe(tiny)
    encoders = {s.feature_name: TunableEncoder(s, finetune_settings(s)) for s in recipe.encoders}
    shapes = {name: FeatureShape(enc.out_dim) for name, enc in encoders.items()}
    module = FinetuneModule(
        encoders,
        build_model(recipe.model, shapes, recipe.targets),
        build_loss(recipe.losses, recipe.targets),
        recipe.training,
        recipe.targets,
    )
    module.train()
    items = tiny["items"]
    targets = items.target_matrix(["score"])
    data = FinetuneDataset(items.items, np.arange(4), encoders, None, targets)
    batch = FinetuneCollate(encoders)([data[i] for i in range(4)])
    out = module(batch)
    total, _ = module.loss(out, batch["target"])
    total.backward()
    got = {n for n, p in module.named_parameters() if p.grad is not None}
    expected_layers = {"e0": {1}, "e1": {0, 1}}
    for name, p in module.named_parameters():
        if name.startswith("model."):
            assert name in got, f"head parameter {name} got no gradient"
        elif name.startswith("encoders."):
            enc_key = name.split(".")[1]
            should = _layer_of(name) in expected_layers[enc_key]
            assert (name in got) == should, f"{name}: gradient {'missing' if should else 'unexpected'}"
            assert p.requires_grad == should
    # frozen parts stay in eval mode while training; trained blocks train
    wavlm = encoders["hf-audio:audio"].model
    assert not wavlm.training and not wavlm.feature_extractor.training and wavlm.encoder.layers[1].training
    assert not wavlm.encoder.layers[0].training


@pytest.mark.parametrize("which", ["wavlm", "wavlm_masked"])
def test_tunable_audio_encoder_pools_as_the_frozen_encoder(tiny, which):
    from scorecast.adapt.common import FinetuneSettings
    from scorecast.adapt.tunable import TunableEncoder
    from scorecast.data.audio import load_audio
    from scorecast.encoders.hf_audio import HFAudioEncoder

    spec = EncoderSpec(name="hf-audio", params={"model": str(tiny[which]), "layer": 2, "pooling": "mean+std"})
    enc = TunableEncoder(spec, FinetuneSettings(top_k=2)).eval()
    assert enc.batched == (which == "wavlm_masked")
    waves = [load_audio(it.audio) for it in tiny["items"].items[:4]]
    with torch.no_grad():
        pooled, seq, mask = enc(enc.prepare(waves))
    frozen = HFAudioEncoder(str(tiny[which]), layer=2, pooling="mean+std").encode_batch(waves)
    np.testing.assert_allclose(pooled.numpy(), np.stack([f.pooled for f in frozen]), atol=1e-4)
    assert mask.sum(1).tolist() == [len(f.sequence) for f in frozen]


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_tunable_text_encoder_pools_as_the_frozen_encoder(tiny, pooling):
    from scorecast.adapt.common import FinetuneSettings
    from scorecast.adapt.tunable import TunableEncoder
    from scorecast.encoders.hf_text import HFTextEncoder

    spec = EncoderSpec(name="hf-text", input="text.t", params={"model": str(tiny["bert"]), "pooling": pooling})
    enc = TunableEncoder(spec, FinetuneSettings(top_k=1)).eval()
    texts = ["the quick brown fox", "good grammar", "a very long sentence of words said by people"]
    with torch.no_grad():
        pooled, _seq, content = enc(enc.prepare(texts))
    frozen = HFTextEncoder(str(tiny["bert"]), pooling=pooling).encode_batch(texts)
    np.testing.assert_allclose(pooled.numpy(), np.stack([f.pooled for f in frozen]), atol=1e-5)
    assert content.sum(1).tolist() == [len(f.sequence) for f in frozen]


def test_finetune_settings_are_checked(tiny, tmp_path):
    from scorecast.adapt.common import FinetuneSettings, finetune_settings, without_finetune
    from scorecast.adapt.finetune import fit_finetune
    from scorecast.adapt.tunable import TunableEncoder

    def spec(name="hf-audio", **params):
        return EncoderSpec(
            name=name,
            input="audio" if name != "hf-text" else "text.t",
            params={"model": str(tiny["wavlm"] if name != "hf-text" else tiny["bert"]), **params},
        )

    assert finetune_settings(spec()) is None
    assert finetune_settings(spec(finetune_top_k=0)) is None
    assert finetune_settings(spec(finetune_top_k=2)) == FinetuneSettings(2, 2e-5, 0.9)
    assert without_finetune(spec(finetune_top_k=2, layer_decay=0.5)).params == {"model": str(tiny["wavlm"])}
    with pytest.raises(ConfigError, match="finetune_top_k: expected an integer >= 0, got 1.5"):
        finetune_settings(spec(finetune_top_k=1.5))
    with pytest.raises(ConfigError, match="layer_decay given without finetune_top_k >= 1"):
        finetune_settings(spec(layer_decay=0.5))
    with pytest.raises(ConfigError, match=r"layer_decay: expected a factor in \(0, 1\], got 1.5"):
        finetune_settings(spec(finetune_top_k=1, layer_decay=1.5))
    with pytest.raises(ConfigError, match="finetune_lr: expected > 0, got -1"):
        finetune_settings(spec(finetune_top_k=1, finetune_lr=-1))
    with pytest.raises(
        ConfigError, match="fine-tuning works with encoders hf-audio, hf-text, sentence, got 'linguistic'"
    ):
        finetune_settings(EncoderSpec(name="linguistic", input="text.t", params={"finetune_top_k": 1}))
    with pytest.raises(ConfigError, match="finetune_share: expected true or false, got 'yes'"):
        finetune_settings(spec(finetune_top_k=1, finetune_share="yes"))
    with pytest.raises(ConfigError, match="finetune_share given without finetune_top_k >= 1"):
        finetune_settings(spec(finetune_share=False))
    with pytest.raises(
        ConfigError, match=r"finetune_top_k: expected at most 2 \(the blocks up to feature layer 2\), got 3"
    ):
        TunableEncoder(spec(), FinetuneSettings(top_k=3))
    with pytest.raises(
        ConfigError, match=r"finetune_top_k: expected at most 1 \(the blocks up to feature layer 1\), got 2"
    ):
        TunableEncoder(spec(layer=1), FinetuneSettings(top_k=2))
    with pytest.raises(ConfigError, match="fine-tuning needs one feature layer \\(an int\\), got 'mean'"):
        TunableEncoder(spec(layer="mean"), FinetuneSettings(top_k=1))
    with pytest.raises(ConfigError, match="no encoder sets finetune_top_k >= 1"):
        fit_finetune(load_recipe({"encoders": [spec().model_dump()]}), tiny["items"], tmp_path)
