"""Reading a recipe file (config.read_recipe_file), shared by load_recipe and `train/cv --data`."""

from __future__ import annotations

import pytest

from scorecast.config import load_recipe, load_with_data, read_recipe_file
from scorecast.errors import ConfigError


def test_read_recipe_file_gives_the_raw_mapping(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("name: x\ndata: {path: '${DATA}'}\n")
    assert read_recipe_file(path) == {"name": "x", "data": {"path": "${DATA}"}}  # nothing expanded
    (tmp_path / "empty.yaml").write_text("")
    assert read_recipe_file(tmp_path / "empty.yaml") == {}


def test_read_recipe_file_missing(tmp_path):
    with pytest.raises(ConfigError, match="recipe file not found: expected a YAML file at .*absent.yaml"):
        read_recipe_file(tmp_path / "absent.yaml")


def test_read_recipe_file_not_yaml(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        read_recipe_file(path)


def test_read_recipe_file_not_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="list.yaml: expected a mapping at the top level, got list"):
        load_recipe(path)
    with pytest.raises(ConfigError, match="list.yaml: expected a mapping at the top level, got list"):
        load_with_data(path, {}, [], None, tmp_path / "d.csv")


def test_load_with_data_replaces_the_path_before_variables_expand(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("name: x\ndata: {path: '${UNSET_ONLY_HERE}'}\n")
    recipe = load_with_data(path, {}, ["training.max_epochs=3"], None, tmp_path / "d.csv")
    assert recipe.data.path == str(tmp_path / "d.csv") and recipe.training.max_epochs == 3


def test_load_with_data_refuses_data_that_is_not_a_mapping(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("name: x\ndata: [1, 2]\n")
    with pytest.raises(ConfigError, match="r.yaml: expected 'data' to be a mapping, got list"):
        load_with_data(path, {}, [], None, tmp_path / "d.csv")
