"""CV splits: every item validated once per repeat; groups never straddle; strata balanced."""

from __future__ import annotations

import numpy as np
import pytest

from scorecast.config import CVConfig
from scorecast.data.items import Item, ItemSet
from scorecast.errors import ConfigError
from scorecast.training.splits import holdout_split, make_folds


def _items(n=60, n_groups=10, seed=0):
    rng = np.random.default_rng(seed)
    y = np.round(rng.uniform(1, 5, size=n) * 2) / 2
    items = [
        Item(id=f"i{k}", targets={"score": float(y[k])}, group=f"g{k % n_groups}", meta={"speaker": f"s{k % 7}"})
        for k in range(n)
    ]
    return ItemSet(items, target_names=["score"]), y[:, None]


def _check_partition(folds, n):
    for r in {f.repeat for f in folds}:
        vals = np.concatenate([f.val for f in folds if f.repeat == r])
        assert sorted(vals.tolist()) == list(range(n))
    for f in folds:
        assert not set(f.train) & set(f.val)
        assert len(f.train) + len(f.val) == n


@pytest.mark.parametrize("group_by, field", [(None, "group"), ("speaker", "speaker")])
def test_grouped_folds_never_share_a_group(group_by, field):
    items, y = _items()
    for kind in ("group", "stratified-group"):
        folds = make_folds(CVConfig(folds=5, kind=kind, group_by=group_by), items, y, seed=3)
        _check_partition(folds, len(items))
        value = (lambda it: it.group) if field == "group" else (lambda it: it.meta["speaker"])
        for f in folds:
            train_groups = {value(items[i]) for i in f.train}
            val_groups = {value(items[i]) for i in f.val}
            assert not train_groups & val_groups, (kind, f.fold)


def test_stratified_folds_are_balanced():
    items, _ = _items(100)
    y = np.array([1.0] * 50 + [5.0] * 50)[:, None]  # two strata, 50 each
    folds = make_folds(CVConfig(folds=5, kind="stratified", stratify_bins=2), items, y, seed=0)
    _check_partition(folds, 100)
    for f in folds:
        assert (y[f.val, 0] == 1.0).sum() == 10 and (y[f.val, 0] == 5.0).sum() == 10


def test_repeats_reshuffle():
    items, y = _items(40)
    folds = make_folds(CVConfig(folds=4, kind="kfold", repeats=2), items, y, seed=0)
    assert len(folds) == 8
    _check_partition(folds, 40)
    first = [tuple(f.val) for f in folds if f.repeat == 0]
    second = [tuple(f.val) for f in folds if f.repeat == 1]
    assert first != second


def test_fewer_groups_than_folds_is_an_error():
    items, y = _items(30, n_groups=3)
    with pytest.raises(ConfigError, match="at least 5 distinct groups.*got 3"):
        make_folds(CVConfig(folds=5, kind="group"), items, y)


def test_missing_group_is_an_error_naming_the_item():
    items, y = _items(10)
    items.items[4].group = None
    with pytest.raises(ConfigError, match="item 'i4'"):
        make_folds(CVConfig(folds=2, kind="group"), items, y)


def test_holdout_split_sizes():
    tr, va = holdout_split(50, 0.2, seed=0)
    assert len(va) == 10 and len(tr) == 40 and not set(tr) & set(va)
    tr, va = holdout_split(50, 0.0, seed=0)
    assert len(va) == 0 and len(tr) == 50
