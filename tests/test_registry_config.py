"""The registry and the strict recipe schema."""

from __future__ import annotations

import pytest

from scorecast.config import Recipe, TargetSpec, apply_overrides, load_recipe, save_recipe
from scorecast.errors import ConfigError
from scorecast.registry import Registry


def test_registry_builds_by_name_and_lists_known_names() -> None:
    reg: Registry = Registry("widget")

    @reg.register("round")
    class Round:
        def __init__(self, size: int = 1) -> None:
            self.size = size

    assert reg.build("round", size=3).size == 3
    assert Round.registry_name == "round"
    assert "round" in reg and reg.names() == ["round"]
    with pytest.raises(ConfigError, match="unknown widget 'square'; expected one of: round"):
        reg.get("square")
    with pytest.raises(
        ConfigError,
        match=r"cannot build widget 'round' with \['colour'\]: unknown parameter\(s\) colour; expected parameters among: size",
    ):
        reg.build("round", colour="red")
    assert reg.check("round", size=2) is Round  # checked without building


def test_registry_lets_a_type_error_inside_a_constructor_through() -> None:
    reg: Registry = Registry("widget")

    @reg.register("buggy")
    class Buggy:
        def __init__(self, size: int = 1) -> None:
            self.size = size + "1"  # a bug in the constructor, not in the recipe

    with pytest.raises(TypeError, match="unsupported operand"):
        reg.build("buggy", size=3)


def test_registry_refuses_a_second_entry_under_one_name() -> None:
    reg: Registry = Registry("widget")
    reg.register("a")(int)
    with pytest.raises(ConfigError, match="already registered"):
        reg.register("a")(float)


def test_recipe_rejects_unknown_keys_and_names_them(tmp_path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("name: x\ntraining:\n  max_epoch: 3\n")
    with pytest.raises(ConfigError, match=r"training\.max_epoch: Extra inputs are not permitted"):
        load_recipe(path)


def test_recipe_variables_overrides_and_variants(tmp_path, monkeypatch) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(
        "name: x\n"
        "data: {reader: table, path: '${DATA}/t.csv'}\n"
        "cache_dir: '${CACHE:-/tmp/c}'\n"
        "variants:\n  fast: {training.max_epochs: 2}\n"
    )
    with pytest.raises(ConfigError, match=r"variable \$\{DATA\} is not set"):
        load_recipe(path)
    recipe = load_recipe(path, variables={"DATA": "/d"}, overrides=["training.lr=0.01"], variant="fast")
    assert recipe.data.path == "/d/t.csv"
    assert recipe.cache_dir == "/tmp/c"
    assert recipe.training.lr == 0.01 and recipe.training.max_epochs == 2
    assert recipe.name == "x-fast"
    with pytest.raises(ConfigError, match="unknown variant 'slow'; expected one of: fast"):
        load_recipe(path, variables={"DATA": "/d"}, variant="slow")
    out = tmp_path / "resolved.yaml"
    save_recipe(recipe, out)
    assert load_recipe(out) == recipe


def test_override_needs_key_value() -> None:
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        apply_overrides({}, ["training.lr"])


def test_target_spec_checks_range_and_counts_bins() -> None:
    spec = TargetSpec(name="s", low=1, high=5, step=0.5)
    assert spec.num_bins == 9
    assert spec.bin_centers()[-1] == 5.0
    with pytest.raises(ValueError, match="expected high > low"):
        TargetSpec(name="s", low=5, high=1)


def test_encoder_input_is_checked() -> None:
    with pytest.raises(ConfigError, match="encoder input: expected 'audio'"):
        load_recipe({"encoders": [{"name": "sentence", "input": "caption"}]})
    recipe = Recipe.model_validate({"encoders": [{"name": "sentence", "input": "text.caption"}]})
    assert recipe.encoders[0].feature_name == "sentence:text.caption"
