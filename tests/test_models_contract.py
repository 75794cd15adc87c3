"""Contract tests over every registered fusion and head (and every fusion x head ScoreModel):
shapes, finite values, gradients reach every parameter, safetensors save/load gives identical outputs,
padded frames are irrelevant."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file

from scorecast.config import Component, ModelConfig, TargetSpec
from scorecast.errors import ConfigError
from scorecast.losses import LOSSES
from scorecast.models import FUSIONS, HEADS, FeatureShape, build_model, pad_sequences

SHAPES = {
    "audio": FeatureShape(12, True),
    "text": FeatureShape(10, True),
    "meta": FeatureShape(6, False),
    "text_b": FeatureShape(10, False),
}
#: fusions that read a fixed set of inputs get only those (siamese: one pair of the same size)
INPUTS = {"siamese": {"text": FeatureShape(10, False), "text_b": FeatureShape(10, False)}}
#: fusions initialised to a fixed function (siamese: an identity adapter) get seeded noise on their
#: weights in these tests, so that two seeds differ and every gradient is non-zero
IDENTITY_INIT = {"siamese", "prior"}  # fusions and heads that start as a fixed function
# two targets with different numbers of levels (5 and 11) exercise the padded bins
TARGETS = [TargetSpec(name="impression", low=1, high=5, step=1), TargetSpec(name="alignment", low=0, high=10, step=1)]
LENGTHS = {"audio": [3, 7, 1, 5], "text": [2, 4, 6, 1]}
# smaller than the defaults, to keep the tests fast (the defaults are tested once per fusion)
SMALL = {
    "bilinear": {"dim": 16, "rank": 8, "hidden": [16]},
    "siamese": {
        "left": "text",
        "right": "text_b",
        "adapter": "mlp",
        "hidden": 8,
        "outputs": ["cosine", "product", "difference"],
    },
    "concat": {"hidden": [16]},
    "cross-attention": {"dim": 16, "heads": 2, "hidden": [16]},
    "temporal": {"dim": 16, "heads": 2, "layers": 1, "hidden": [16]},
}


def make_batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    b = len(LENGTHS["audio"])
    pooled = {name: torch.randn(b, s.dim, generator=g) for name, s in SHAPES.items()}
    sequences, masks = {}, {}
    for name, lengths in LENGTHS.items():
        seq, mask = pad_sequences([torch.randn(n, SHAPES[name].dim, generator=g) for n in lengths])
        sequences[name], masks[name] = seq, mask
    return pooled, sequences, masks


def shapes_for(name: str, shapes: dict | None = None) -> dict:
    return INPUTS.get(name, shapes if shapes is not None else SHAPES)


def perturbed(name: str, module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """``module`` with seeded noise on every weight when ``name`` starts as a fixed function."""
    if name in IDENTITY_INIT:
        g = torch.Generator().manual_seed(1000 + seed)
        with torch.no_grad():
            for p in module.parameters():
                p.add_(0.1 * torch.randn(p.shape, generator=g))
    return module


def build_fusion(name: str, seed: int, small: bool = True):
    torch.manual_seed(seed)
    return perturbed(name, FUSIONS.build(name, inputs=shapes_for(name), **(SMALL.get(name, {}) if small else {})), seed)


def build_head(name: str, seed: int, in_dim: int = 16):
    torch.manual_seed(seed)
    return perturbed(name, HEADS.build(name, in_dim=in_dim, targets=TARGETS), seed)


def random_objective(tensors) -> torch.Tensor:
    """A random linear functional of every output, so every output's graph is exercised."""
    g = torch.Generator().manual_seed(123)
    return sum((t * torch.randn(t.shape, generator=g)).sum() for t in tensors)


def assert_grads_reach_every_parameter(module: torch.nn.Module) -> None:
    params = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    assert params, "module has no trainable parameters"
    missing = [n for n, p in params if p.grad is None]
    assert not missing, f"no gradient reached: {missing}"
    bad = [n for n, p in params if not torch.isfinite(p.grad).all()]
    assert not bad, f"non-finite gradients: {bad}"
    dead = [n for n, p in params if not bool(p.grad.abs().sum() > 0)]
    assert not dead, f"all-zero gradients: {dead}"


def assert_save_load_identical(build, run, tmp_path) -> None:
    """Save a build's state_dict to safetensors, load it into a fresh build (another seed): identical
    eval-mode outputs; the fresh build differs before loading (so the test can fail)."""
    original = build(0).eval()
    path = tmp_path / "weights.safetensors"
    save_file(original.state_dict(), str(path))
    fresh = build(1).eval()
    with torch.no_grad():
        expected = run(original)
        before = run(fresh)
        assert any(not torch.equal(a, b) for a, b in zip(expected, before)), "fresh build already equal"
        fresh.load_state_dict(load_file(str(path)))
        after = run(fresh)
    for a, b in zip(expected, after):
        assert torch.equal(a, b)


# ------------------------------------------------------------------------------------ fusions


@pytest.mark.parametrize("name", FUSIONS.names())
@pytest.mark.parametrize("small", [True, False], ids=["small", "defaults"])
def test_fusion_shapes_finite_and_gradients(name, small):
    fusion = build_fusion(name, 0, small).train()
    pooled, sequences, masks = make_batch()
    out = fusion(pooled, sequences, masks)
    assert out.shape == (4, fusion.out_dim)
    assert torch.isfinite(out).all()
    random_objective([out]).backward()
    assert_grads_reach_every_parameter(fusion)


@pytest.mark.parametrize("name", FUSIONS.names())
def test_fusion_save_load_identical(name, tmp_path):
    pooled, sequences, masks = make_batch()
    assert_save_load_identical(lambda s: build_fusion(name, s), lambda m: [m(pooled, sequences, masks)], tmp_path)


@pytest.mark.parametrize("name", FUSIONS.names())
def test_fusion_padded_frames_are_irrelevant(name):
    """Each item alone (unpadded) gives the same output as in a padded batch, in eval mode."""
    fusion = build_fusion(name, 0).eval()
    pooled, sequences, masks = make_batch()
    with torch.no_grad():
        batched = fusion(pooled, sequences, masks)
        for i in range(4):
            one_pooled = {k: v[i : i + 1] for k, v in pooled.items()}
            one_seq = {k: v[i : i + 1, : LENGTHS[k][i]] for k, v in sequences.items()}
            one_mask = {k: v[i : i + 1, : LENGTHS[k][i]] for k, v in masks.items()}
            alone = fusion(one_pooled, one_seq, one_mask)
            torch.testing.assert_close(batched[i : i + 1], alone, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", [n for n in FUSIONS.names() if build_fusion(n, 0).uses_sequences])
def test_fusion_masks_are_used(name):
    """Ignoring the masks changes the output of padded items: the equality above is not vacuous."""
    fusion = build_fusion(name, 0).eval()
    pooled, sequences, masks = make_batch()
    with torch.no_grad():
        masked = fusion(pooled, sequences, masks)
        unmasked = fusion(pooled, sequences, {k: torch.ones_like(v) for k, v in masks.items()})
    assert not torch.allclose(masked, unmasked, atol=1e-4)


@pytest.mark.parametrize("name", FUSIONS.names())
def test_fusion_pooled_only_inputs(name):
    """With no sequence declared, a fusion either works on the pooled vectors alone (sequence fusions
    treat each as a length-1 sequence) or refuses at build time with a message about sequences."""
    shapes = {k: FeatureShape(s.dim, False) for k, s in SHAPES.items()}
    torch.manual_seed(0)
    try:
        fusion = FUSIONS.build(name, inputs=shapes_for(name, shapes), **SMALL.get(name, {}))
    except ConfigError as exc:
        assert "sequence" in str(exc)
        return
    assert fusion.uses_sequences == ()
    pooled, _, _ = make_batch()
    out = fusion(pooled)
    assert out.shape == (4, fusion.out_dim) and torch.isfinite(out).all()


# ------------------------------------------------------------------------------------ heads


@pytest.mark.parametrize("name", HEADS.names())
def test_head_outputs(name):
    head = build_head(name, 0).train()
    h = torch.randn(8, 16)
    out = head(h)
    assert set(out) == set(head.provides), f"{name} gives {sorted(out)} but declares {sorted(head.provides)}"
    assert out["mean"].shape == (8, len(TARGETS))
    for key, value in out.items():
        assert torch.isfinite(value).all(), f"{name}: non-finite {key}"
    k = max(t.num_bins for t in TARGETS)
    if "std" in out:
        assert out["std"].shape == (8, 2) and (out["std"] > 0).all()
    if "log_var" in out:
        torch.testing.assert_close(out["std"], torch.exp(0.5 * out["log_var"]))
    if "logits" in out:
        assert out["logits"].shape == (8, 2, k)
    if "cum_logits" in out:
        assert out["cum_logits"].shape == (8, 2, k - 1)
    if "probs" in out:
        assert out["probs"].shape == (8, 2, k) and (out["probs"] >= 0).all()
        torch.testing.assert_close(out["probs"].sum(-1), torch.ones(8, 2))
        # the first target has 5 levels: no probability on levels 6..11
        assert out["probs"][:, 0, TARGETS[0].num_bins :].abs().max() == 0
    if "probs" in out or "logits" in out or "cum_logits" in out:
        lows = torch.tensor([t.low for t in TARGETS])
        highs = torch.tensor([t.high for t in TARGETS])
        assert ((out["mean"] >= lows - 1e-5) & (out["mean"] <= highs + 1e-5)).all()


@pytest.mark.parametrize("name", HEADS.names())
def test_head_gradients_reach_every_parameter(name):
    head = build_head(name, 0).train()
    h = torch.randn(8, 16, requires_grad=True)
    out = head(h)
    random_objective(out.values()).backward()
    assert_grads_reach_every_parameter(head)
    assert h.grad is not None and torch.isfinite(h.grad).all()


@pytest.mark.parametrize("name", HEADS.names())
def test_head_with_hidden_layers(name):
    head = perturbed(name, HEADS.build(name, in_dim=16, targets=TARGETS[:1], hidden=[8, 4], dropout=0.1), 0)
    out = head(torch.randn(3, 16))
    assert out["mean"].shape == (3, 1)
    random_objective(out.values()).backward()
    assert_grads_reach_every_parameter(head)


@pytest.mark.parametrize("name", HEADS.names())
def test_head_save_load_identical(name, tmp_path):
    h = torch.randn(8, 16)
    assert_save_load_identical(lambda s: build_head(name, s), lambda m: [v for _, v in sorted(m(h).items())], tmp_path)


# ------------------------------------------------------------------------------------ ScoreModel


@pytest.mark.parametrize("head", HEADS.names())
@pytest.mark.parametrize("fusion", FUSIONS.names())
def test_score_model_every_combination(fusion, head, tmp_path):
    config = ModelConfig(
        fusion=Component(name=fusion, params=SMALL.get(fusion, {})), head=Component(name=head, params={"hidden": [8]})
    )

    def build(seed):
        torch.manual_seed(seed)
        return perturbed(
            fusion if fusion in IDENTITY_INIT else head, build_model(config, shapes_for(fusion), TARGETS), seed
        )

    pooled, sequences, masks = make_batch()
    model = build(0).train()
    out = model(pooled, sequences, masks)
    assert out["mean"].shape == (4, 2) and torch.isfinite(out["mean"]).all()
    random_objective(out.values()).backward()
    assert_grads_reach_every_parameter(model)
    assert set(model.uses_sequences) <= {n for n, s in SHAPES.items() if s.has_sequence}
    assert_save_load_identical(build, lambda m: [m(pooled, sequences, masks)["mean"]], tmp_path)


@pytest.mark.parametrize("head", HEADS.names())
def test_score_model_under_bfloat16_autocast(head):
    """Mixed precision (as on a GPU, here CPU bf16): outputs and every applicable loss stay finite."""
    config = ModelConfig(fusion=Component(name="temporal", params=SMALL["temporal"]), head=Component(name=head))
    torch.manual_seed(0)
    model = build_model(config, SHAPES, TARGETS)
    pooled, sequences, masks = make_batch()
    y = torch.tensor([[1.0, 0.0], [2.5, 9.0], [5.0, 4.0], [3.0, float("nan")]])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(pooled, sequences, masks)
        assert all(torch.isfinite(v).all() for v in out.values())
        losses = [LOSSES.build(n, targets=TARGETS) for n in LOSSES.names() if set(LOSSES.get(n).requires) <= set(out)]
        total = sum(loss(out, y) for loss in losses)
    assert torch.isfinite(total)
    total.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
