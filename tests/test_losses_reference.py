"""Every registered loss against a naive Python-loop implementation on random inputs (NaN targets,
sample weights, two targets with different numbers of levels)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import rankdata

from scorecast.config import TargetSpec
from scorecast.losses import LOSSES

TARGETS = [TargetSpec(name="mos", low=1, high=5, step=1), TargetSpec(name="align", low=0, high=10, step=2)]
B, T, K = 9, 2, 6


def random_case(seed: int):
    """Random head outputs and targets as plain float lists (for the loops) and tensors (for the losses)."""
    rng = np.random.default_rng(seed)
    y = np.stack([rng.uniform(0.6, 5.4, B), rng.uniform(-0.5, 10.5, B)], axis=1)
    y[1, 0] = y[4, 0] = 3.0  # ties
    y[2, 0] = np.nan  # missing targets
    y[5, 1] = np.nan
    y[7, 1] = np.nan
    out = {
        "mean": rng.normal(3, 1.5, (B, T)),
        "log_var": rng.normal(0, 1, (B, T)),
        "logits": rng.normal(0, 2, (B, T, K)),
        "cum_logits": rng.normal(0, 2, (B, T, K - 1)),
        "correction": rng.normal(0, 0.5, (B, T)),
    }
    w = rng.uniform(0.2, 2.0, B)
    dist = rng.uniform(0, 1, (B, T, K))
    dist[0] = 0.0  # no ratings for item 0: falls back to the Gaussian
    return out, y, w, dist


def levels(t: int) -> list[float]:
    return [float(v) for v in TARGETS[t].bin_centers()]


def nearest(t: int, v: float) -> int:
    spec = TARGETS[t]
    return min(max(int(math.floor((v - spec.low) / spec.step + 0.5)), 0), spec.num_bins - 1)


def log_softmax(xs: list[float]) -> list[float]:
    m = max(xs)
    lse = m + math.log(sum(math.exp(x - m) for x in xs))
    return [x - lse for x in xs]


def log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x)) if x > 0 else x - math.log1p(math.exp(x))


def bce(logit: float, z: float) -> float:
    return -(z * log_sigmoid(logit) + (1 - z) * log_sigmoid(-logit))


def elementwise(fn):
    """Reference reduction: per target, the weighted mean over items with a target; mean over targets."""

    def loss(out, y, w, extra, params):
        per_target = []
        for t in range(T):
            num = den = 0.0
            for b in range(B):
                if not math.isnan(y[b][t]):
                    num += w[b] * fn(out, y, b, t, extra, params)
                    den += w[b]
            if den > 0:
                per_target.append(num / den)
        return sum(per_target) / len(per_target)

    return loss


def per_target(fn):
    def loss(out, y, w, extra, params):
        values = []
        for t in range(T):
            rows = [b for b in range(B) if not math.isnan(y[b][t])]
            v = fn([out["mean"][b][t] for b in rows], [y[b][t] for b in rows], [w[b] for b in rows], t, params)
            if v is not None:
                values.append(v)
        return sum(values) / len(values)

    return loss


def huber(out, y, b, t, extra, params):
    e = abs(out["mean"][b][t] - y[b][t])
    d = params.get("delta", 1.0)
    return 0.5 * e * e if e <= d else d * (e - 0.5 * d)


def gaussian_nll(out, y, b, t, extra, params):
    e = out["mean"][b][t] - y[b][t]
    lv = out["log_var"][b][t]
    a = params.get("mae_weight", 0.0)
    return (1 - a) * 0.5 * (lv + e * e * math.exp(-lv)) + a * abs(e)


def pairwise(p, y, w, t, params):
    num = den = 0.0
    for i in range(len(p)):
        for j in range(len(p)):
            if y[i] - y[j] > params.get("threshold", 0.0):
                num += w[i] * w[j] * max(0.0, params.get("margin", 0.1) - (p[i] - p[j]))
                den += w[i] * w[j]
    return num / den if den > 0 else None


def cosent(p, y, w, t, params):
    r = TARGETS[t].high - TARGETS[t].low
    pairs = [(i, j) for i in range(len(p)) for j in range(len(p)) if y[i] > y[j]]
    mean_w = sum(w[i] * w[j] for i, j in pairs) / len(pairs)
    s = params.get("scale", 20.0)
    return math.log(1 + sum(w[i] * w[j] / mean_w * math.exp(s * (p[j] - p[i]) / r) for i, j in pairs))


def pearson(x, y, w):
    sw = sum(w)
    mx = sum(a * b for a, b in zip(w, x)) / sw
    my = sum(a * b for a, b in zip(w, y)) / sw
    cov = sum(c * (a - mx) * (b - my) for a, b, c in zip(x, y, w)) / sw
    vx = sum(c * (a - mx) ** 2 for a, c in zip(x, w)) / sw
    vy = sum(c * (b - my) ** 2 for b, c in zip(y, w)) / sw
    return cov / math.sqrt(vx * vy + 1e-8)


def spearman(p, y, w, t, params):
    r = TARGETS[t].high - TARGETS[t].low
    tau = params.get("temperature", 0.05)
    soft = [0.5 + sum(1 / (1 + math.exp(-(p[i] - p[j]) / r / tau)) for j in range(len(p))) for i in range(len(p))]
    return 1 - pearson(soft, list(rankdata(y)), w)


def cross_entropy(out, y, b, t, extra, params):
    k = TARGETS[t].num_bins
    lp = log_softmax(list(out["logits"][b][t][:k]))
    eps = params.get("label_smoothing", 0.0)
    idx = nearest(t, y[b][t])
    return -sum(((1 - eps) * (i == idx) + eps / k) * lp[i] for i in range(k))


def focal(out, y, b, t, extra, params):
    k = TARGETS[t].num_bins
    lp = log_softmax(list(out["logits"][b][t][:k]))[nearest(t, y[b][t])]
    return -((1 - math.exp(lp)) ** params.get("gamma", 2.0)) * lp


def threshold_bces(out, y, b, t):
    k = TARGETS[t].num_bins
    idx = nearest(t, y[b][t])
    return [bce(out["cum_logits"][b][t][j], float(idx > j)) for j in range(k - 1)]


def cumulative_bce(out, y, b, t, extra, params):
    values = threshold_bces(out, y, b, t)
    return sum(values) / len(values)


def coral(out, y, b, t, extra, params):
    imp = params.get("importance") or [1.0] * (K - 1)
    return sum(i * v for i, v in zip(imp, threshold_bces(out, y, b, t)))


def kl(out, y, b, t, extra, params):
    k = TARGETS[t].num_bins
    lp = log_softmax(list(out["logits"][b][t][:k]))
    given = extra.get("target_dist")
    if given is not None and sum(given[b][t][:k]) > 0:
        q = [v / sum(given[b][t][:k]) for v in given[b][t][:k]]
    else:
        sigma = params.get("sigma") or TARGETS[t].step / 2
        g = [math.exp(-((c - y[b][t]) ** 2) / (2 * sigma**2)) for c in levels(t)]
        q = [v / sum(g) for v in g]
    return sum(qi * (math.log(qi) - lpi) for qi, lpi in zip(q, lp) if qi > 0)


REFERENCES = {
    "mse": elementwise(lambda out, y, b, t, e, p: (out["mean"][b][t] - y[b][t]) ** 2),
    "correction-l2": elementwise(lambda out, y, b, t, e, p: out["correction"][b][t] ** 2),
    "mae": elementwise(lambda out, y, b, t, e, p: abs(out["mean"][b][t] - y[b][t])),
    "huber": elementwise(huber),
    "gaussian-nll": elementwise(gaussian_nll),
    "pairwise-ranking": per_target(pairwise),
    "cosent": per_target(cosent),
    "correlation": per_target(lambda p, y, w, t, params: 1 - pearson(p, y, w)),
    "spearman": per_target(spearman),
    "cross-entropy": elementwise(cross_entropy),
    "focal": elementwise(focal),
    "cumulative-bce": elementwise(cumulative_bce),
    "coral": elementwise(coral),
    "kl": elementwise(kl),
}

# extra parameter settings checked beyond the defaults
PARAMS = {
    "huber": [{"delta": 0.5}],
    "gaussian-nll": [{"mae_weight": 0.3}],
    "pairwise-ranking": [{"margin": 0.5, "threshold": 1.0}],
    "cosent": [{"scale": 5.0}],
    "spearman": [{"temperature": 0.2}],
    "cross-entropy": [{"label_smoothing": 0.1}],
    "focal": [{"gamma": 0.0}, {"gamma": 1.5}],
    "coral": [{"importance": [1.0, 0.5, 2.0, 0.1, 3.0]}],
    "kl": [{"sigma": 1.3}],
}


def test_every_loss_has_a_reference():
    assert sorted(REFERENCES) == LOSSES.names(), "add a naive reference for each new loss"


CASES = [(name, params) for name in LOSSES.names() for params in [{}] + PARAMS.get(name, [])]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("name, params", CASES, ids=[f"{n}-{p}" if p else n for n, p in CASES])
def test_loss_matches_naive_loop(name, params, seed):
    out, y, w, dist = random_case(seed)
    extra = {"target_dist": dist.tolist()} if name == "kl" and seed == 1 else {}
    expected = REFERENCES[name]({k: v.tolist() for k, v in out.items()}, y.tolist(), w.tolist(), extra, params)
    loss = LOSSES.build(name, targets=TARGETS, **params)
    tensors = {k: torch.tensor(v, dtype=torch.float64).float() for k, v in out.items()}
    extra_t = {k: torch.tensor(v) for k, v in extra.items()}
    got = loss(tensors, torch.tensor(y).float(), torch.tensor(w).float(), extra_t)
    assert got.ndim == 0
    assert got.item() == pytest.approx(expected, rel=1e-4, abs=1e-5)


@pytest.mark.parametrize("name", LOSSES.names())
def test_unit_weights_equal_no_weights_and_scale_invariance(name):
    out, y, w, _ = random_case(3)
    loss = LOSSES.build(name, targets=TARGETS)
    tensors = {k: torch.tensor(v).float() for k, v in out.items()}
    target = torch.tensor(y).float()
    plain = loss(tensors, target)
    torch.testing.assert_close(plain, loss(tensors, target, torch.ones(B)))
    weighted = loss(tensors, target, torch.tensor(w).float())
    torch.testing.assert_close(weighted, loss(tensors, target, 7.0 * torch.tensor(w).float()))
