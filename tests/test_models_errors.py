"""Each error of the model family, with the message a user sees."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scorecast.config import Component, ModelConfig, TargetSpec
from scorecast.data.features import FeatureSet
from scorecast.errors import ConfigError, DataError
from scorecast.models import FUSIONS, HEADS, FeatureShape, ScoreModel, build_model, feature_batch, pad_sequences

SHAPES = {"wavlm": FeatureShape(8, True), "bert": FeatureShape(6, True), "meta": FeatureShape(4, False)}
TARGETS = [TargetSpec()]


def test_unknown_fusion_lists_known_ones():
    with pytest.raises(
        ConfigError,
        match=r"unknown fusion 'gated'; expected one of: bilinear, concat, cross-attention, siamese, temporal",
    ):
        FUSIONS.build("gated", inputs=SHAPES)


def test_unknown_head_lists_known_ones_through_build_model():
    config = ModelConfig(head=Component(name="softmax"))
    with pytest.raises(
        ConfigError, match=r"unknown head 'softmax'; expected one of: coral, distribution, expected-class"
    ):
        build_model(config, SHAPES, TARGETS)


def test_unknown_parameter_names_the_entry():
    with pytest.raises(ConfigError, match=r"cannot build fusion 'concat' with \['hiden', 'inputs'\]"):
        FUSIONS.build("concat", inputs=SHAPES, hiden=[8])


@pytest.mark.parametrize(
    "name, params, match",
    [
        (
            "cross-attention",
            {"audio": "whisper"},
            r"'audio' input 'whisper' is not a feature of this recipe; expected one of: wavlm, bert, meta",
        ),
        (
            "cross-attention",
            {"audio": "bert", "text": "bert"},
            r"two different features for 'audio' and 'text', got 'bert' twice",
        ),
        ("bilinear", {"right": "metric"}, r"fusion 'bilinear': 'right' input 'metric' is not a feature"),
        ("temporal", {"audio": "mert"}, r"fusion 'temporal': 'audio' input 'mert' is not a feature"),
        ("concat", {"use": ["wavlm", "e5"]}, r"fusion 'concat': 'use' input 'e5' is not a feature"),
        ("concat", {"use": "wavlm"}, r"expected 'use' to be a non-empty list of feature names"),
    ],
)
def test_bad_input_names(name, params, match):
    with pytest.raises(ConfigError, match=match):
        FUSIONS.build(name, inputs=SHAPES, **params)


def test_temporal_needs_a_sequence():
    with pytest.raises(
        ConfigError,
        match=r"input 'meta' has no frame sequence; set 'sequence: true' on its encoder or choose one that has: wavlm, bert",
    ):
        FUSIONS.build("temporal", inputs=SHAPES, audio="meta")
    pooled_only = {k: FeatureShape(s.dim) for k, s in SHAPES.items()}
    with pytest.raises(
        ConfigError,
        match=r"fusion 'temporal': needs a feature with a frame sequence, but none of wavlm, bert, meta has one",
    ):
        FUSIONS.build("temporal", inputs=pooled_only)


def test_two_input_fusions_need_two_inputs():
    with pytest.raises(ConfigError, match=r"fusion 'bilinear': expected at least two input features, got 1: wavlm"):
        FUSIONS.build("bilinear", inputs={"wavlm": FeatureShape(8)})


@pytest.mark.parametrize(
    "params, match",
    [
        ({"dim": 30, "heads": 4}, r"expected 'dim' \(30\) to be divisible by 'heads' \(4\)"),
        ({"hidden": [8, -1]}, r"expected 'hidden' to be a list of positive integers, got \[8, -1\]"),
        ({"dropout": 1.5}, r"expected 'dropout' in \[0, 1\), got 1.5"),
        ({"layers": 0}, r"expected 'layers' to be a positive integer, got 0"),
    ],
)
def test_bad_fusion_params(params, match):
    with pytest.raises(ConfigError, match=match):
        FUSIONS.build("cross-attention", inputs=SHAPES, **params)


def test_missing_sequence_at_forward():
    fusion = FUSIONS.build("cross-attention", inputs=SHAPES, dim=8, heads=2)
    pooled = {k: torch.randn(2, s.dim) for k, s in SHAPES.items()}
    with pytest.raises(ConfigError, match=r"feature 'wavlm' was declared with a sequence but the batch has none"):
        fusion(pooled)
    with pytest.raises(ConfigError, match=r"the batch has no pooled feature 'meta'; got: wavlm, bert"):
        FUSIONS.build("concat", inputs=SHAPES)({k: pooled[k] for k in ("wavlm", "bert")})


def test_empty_mask_row_is_a_data_error():
    fusion = FUSIONS.build("temporal", inputs=SHAPES, dim=8, heads=2, layers=1)
    pooled = {k: torch.randn(2, s.dim) for k, s in SHAPES.items()}
    seq = {"wavlm": torch.randn(2, 3, 8)}
    mask = {"wavlm": torch.tensor([[True, True, False], [False, False, False]])}
    with pytest.raises(DataError, match=r"sequence 'wavlm': every item needs at least one real frame"):
        fusion(pooled, seq, mask)
    with pytest.raises(ConfigError, match=r"mask of 'wavlm': expected shape \(2, 3\), got \(2, 2\)"):
        fusion(pooled, seq, {"wavlm": torch.ones(2, 2, dtype=torch.bool)})


@pytest.mark.parametrize(
    "seqs, match",
    [
        ([], r"expected at least one sequence, got an empty list"),
        ([np.zeros((2, 3)), np.zeros((0, 3))], r"sequence 1: expected at least one frame, got 0"),
        ([np.zeros((2, 3)), np.zeros((2, 4))], r"sequence 1: expected dimension 3 like sequence 0, got 4"),
        ([np.zeros(3)], r"sequence 0: expected shape \(T, D\), got \(3,\)"),
    ],
)
def test_pad_sequences_errors(seqs, match):
    with pytest.raises(DataError, match=match):
        pad_sequences(seqs)


def test_head_errors():
    with pytest.raises(ConfigError, match=r"head 'coral': target 'flat' has 1 score level\(s\)"):
        HEADS.build("coral", in_dim=4, targets=[TargetSpec(name="flat", low=1, high=1.4, step=1)])
    with pytest.raises(ConfigError, match=r"head 'regression': expected a non-empty list of TargetSpec"):
        HEADS.build("regression", in_dim=4, targets=[])
    with pytest.raises(ConfigError, match=r"head 'ordinal': expected 'in_dim' to be a positive integer, got 0"):
        HEADS.build("ordinal", in_dim=0, targets=TARGETS)


def test_unknown_head_parameter_names_the_head():
    with pytest.raises(ConfigError, match=r"cannot build head 'coral' with \['bounded', 'in_dim', 'targets'\]"):
        HEADS.build("coral", in_dim=4, targets=TARGETS, bounded=True)


def test_score_model_dimension_mismatch():
    fusion = FUSIONS.build("concat", inputs=SHAPES, hidden=[8])
    head = HEADS.build("regression", in_dim=5, targets=TARGETS)
    with pytest.raises(ConfigError, match=r"the head expects in_dim=5 but the fusion gives out_dim=8"):
        ScoreModel(fusion, head)


def test_feature_batch_needs_the_sequences_the_model_reads():
    fs = FeatureSet(["a", "b"], {"wavlm": np.zeros((2, 8), np.float32)})
    with pytest.raises(ConfigError, match=r"reads the sequence of 'wavlm' but the features hold none"):
        feature_batch(fs, sequence_names=["wavlm"])
    fs = FeatureSet(["a", "b"], {"wavlm": np.ones((2, 8), np.float32)}, {"wavlm": [np.ones((3, 8)), np.ones((1, 8))]})
    pooled, sequences, masks = feature_batch(fs, [1], sequence_names=["wavlm"])
    assert pooled["wavlm"].shape == (1, 8) and sequences["wavlm"].shape == (1, 1, 8) and masks["wavlm"].all()
