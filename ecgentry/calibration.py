"""Decisions of the Dx head that mean what they say: calibrated probabilities, per-class thresholds chosen on
out-of-fold predictions, and a cap on how often a class may be predicted.

* :func:`fit_calibration` / :func:`apply_calibration`: per-class Platt scaling, p' = sigmoid(a logit(p) + b),
  fitted on out-of-fold predictions (the class-balanced fit moves every probability up by the prior ratio; a
  head fitted on true signals and run on digitized pages is over-confident besides). A weak L2 pull of ``a``
  towards 1 keeps a class with a handful of positives from an extreme slope. Probabilities a rhythm rule set to
  0 or 1 are decisions, not estimates: :func:`apply_calibration` leaves exact 0 and 1 alone.
* :func:`calibration_report`: Brier score, expected calibration error (ECE, 10 equal-width bins, pooled over
  classes and per class) and the pooled reliability table.
* :func:`choose_thresholds`: per class the F-maximising threshold on the out-of-fold probabilities when the class
  has at least ``min_positives`` positive records, else ``default`` (0.5: more likely than not, on calibrated
  probabilities); then the rate cap: where the threshold predicts the class for more than ``max_rate_ratio``
  times its prevalence of the records, it is raised until it does not (a probability of 1, a rule that fired,
  still passes: that is the strong evidence).
"""

from __future__ import annotations

from typing import Any

import numpy as np

EPS = 1e-6
SLOPE_L2 = 1.0  # pull of the Platt slope towards 1, in units of the (weighted) mean BCE x records
#: least Platt slope: out-of-fold predictions of a few records can be anti-correlated with their labels (a fold
#: that holds out records of one class shifts the others' balance), and a negative slope would invert the head;
#: below this the slope is fixed here and the intercept alone fitted
SLOPE_MIN = 0.25


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, np.float64), EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))


def fit_platt(
    z: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray | None = None,
    slope_l2: float = SLOPE_L2,
    iterations: int = 50,
    slope: float | None = None,
) -> tuple[float, float]:
    """Slope and intercept of sigmoid(a z + b) fitted to labels ``y`` (N,) by weighted logistic regression on the
    logits ``z`` (N,) (Newton steps), ``a`` pulled towards 1 by ``slope_l2`` and at least :data:`SLOPE_MIN`
    (``slope`` given: fixed, only ``b`` fitted); (1, 0) without both classes."""
    z = np.asarray(z, np.float64)
    y = (np.asarray(y, np.float64) > 0.5).astype(np.float64)
    w = np.ones_like(z) if weights is None else np.asarray(weights, np.float64)
    ok = np.isfinite(z) & (w > 0)
    z, y, w = z[ok], y[ok], w[ok]
    if len(z) == 0 or y[w > 0].min() == y[w > 0].max():
        return 1.0, 0.0
    w = w / w.sum() * len(z)
    theta = np.array([1.0 if slope is None else float(slope), 0.0])
    lam = float(slope_l2)

    def objective(t: np.ndarray) -> float:
        u = t[0] * z + t[1]
        # weighted BCE with logits, stable form
        return float(
            np.sum(w * (np.maximum(u, 0) - u * y + np.log1p(np.exp(-np.abs(u))))) + 0.5 * lam * (t[0] - 1) ** 2
        )

    current = objective(theta)
    for _ in range(iterations):
        p = _sigmoid(theta[0] * z + theta[1])
        r = w * (p - y)
        grad = np.array([np.sum(r * z) + lam * (theta[0] - 1.0), np.sum(r)])
        s = w * p * (1 - p)
        hess = np.array([[np.sum(s * z * z) + lam, np.sum(s * z)], [np.sum(s * z), np.sum(s) + 1e-9]])
        if slope is not None:
            step = np.array([0.0, grad[1] / hess[1, 1]])
        else:
            try:
                step = np.linalg.solve(hess, grad)
            except np.linalg.LinAlgError:
                break
        scale = 1.0
        while scale > 1e-4:  # backtracking: Newton steps on a logistic loss can overshoot
            candidate = theta - scale * step
            value = objective(candidate)
            if value <= current:
                break
            scale *= 0.5
        else:
            break
        theta, improvement, current = candidate, current - value, value
        if np.max(np.abs(scale * step)) < 1e-8 or improvement < 1e-12:
            break
    if not np.all(np.isfinite(theta)):
        return 1.0, 0.0
    if slope is None and theta[0] < SLOPE_MIN:
        return fit_platt(z, y, w, slope_l2, iterations, slope=SLOPE_MIN)
    return float(theta[0]), float(theta[1])


def fit_calibration(
    probs: np.ndarray, targets: np.ndarray, weights: np.ndarray | None = None
) -> dict[str, list[float]]:
    """Per-class Platt parameters ``{"slope": [C], "intercept": [C]}`` from probabilities (N, C) and multi-hot
    targets (N, C); rows whose probability is exactly 0 or 1 (rule decisions) are left out of the fit."""
    p = np.asarray(probs, np.float64)
    t = np.asarray(targets, np.float64)
    slopes, intercepts = [], []
    for j in range(p.shape[1]):
        keep = np.isfinite(p[:, j]) & (p[:, j] > 0) & (p[:, j] < 1)
        a, b = fit_platt(_logit(p[keep, j]), t[keep, j], None if weights is None else np.asarray(weights)[keep])
        slopes.append(a)
        intercepts.append(b)
    return {"slope": slopes, "intercept": intercepts}


def apply_calibration(probs: np.ndarray, calibration: dict[str, Any] | None) -> np.ndarray:
    """Calibrated probabilities (same shape as ``probs``, (C,) or (N, C)); exact 0 and 1 stay; no calibration:
    unchanged."""
    p = np.array(probs, dtype=np.float64, copy=True)
    if not calibration or p.size == 0:
        return p
    a = np.asarray(calibration["slope"], np.float64)
    b = np.asarray(calibration["intercept"], np.float64)
    if a.shape[-1] != p.shape[-1]:
        raise ValueError(f"calibration for {a.shape[-1]} classes, probabilities for {p.shape[-1]}")
    out = _sigmoid(a * _logit(p) + b)
    decided = (p <= 0) | (p >= 1) | ~np.isfinite(p)
    return np.where(decided, p, out)


def calibration_report(probs: np.ndarray, targets: np.ndarray, classes: list[str], bins: int = 10) -> dict[str, Any]:
    """Brier score and ECE (pooled over classes and per class) and the pooled reliability table
    ``[[mean predicted, observed frequency, count], ...]`` (bins with records only)."""
    p = np.asarray(probs, np.float64)
    t = (np.asarray(targets, np.float64) > 0.5).astype(np.float64)
    if p.size == 0:
        return {}
    edges = np.linspace(0, 1, bins + 1)

    def ece(pp: np.ndarray, tt: np.ndarray) -> tuple[float, list[list[float]]]:
        idx = np.clip(np.digitize(pp, edges[1:-1]), 0, bins - 1)
        total, table = 0.0, []
        for k in range(bins):
            m = idx == k
            if m.any():
                total += m.sum() * abs(pp[m].mean() - tt[m].mean())
                table.append([round(float(pp[m].mean()), 4), round(float(tt[m].mean()), 4), int(m.sum())])
        return total / max(len(pp), 1), table

    pooled_ece, table = ece(p.ravel(), t.ravel())
    per_class = {}
    for j, c in enumerate(classes):
        e, _ = ece(p[:, j], t[:, j])
        per_class[c] = {
            "brier": round(float(np.mean((p[:, j] - t[:, j]) ** 2)), 4),
            "ece": round(float(e), 4),
            "mean_prob": round(float(p[:, j].mean()), 4),
            "prevalence": round(float(t[:, j].mean()), 4),
        }
    return {
        "brier": round(float(np.mean((p - t) ** 2)), 4),
        "ece": round(float(pooled_ece), 4),
        "reliability": table,
        "per_class": per_class,
        "records": int(p.shape[0]),
    }


def f_at(p: np.ndarray, y: np.ndarray, t: float) -> float:
    pred = p >= t
    tp = float(np.sum(pred & y))
    return 2 * tp / max(2 * tp + float(np.sum(pred & ~y)) + float(np.sum(~pred & y)), 1e-9)


def choose_thresholds(
    probs: np.ndarray,
    targets: np.ndarray,
    prevalence: np.ndarray | None = None,
    min_positives: int = 20,
    max_rate_ratio: float = 1.5,
    default: float = 0.5,
    tune: bool = True,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Thresholds (C,) for probabilities ``probs`` (N, C) of records with targets (N, C) (see the module
    docstring); ``prevalence`` (C,): the classes' share of the training records (default: of these records).
    Returns the thresholds and what was done per class: ``{"tuned": [bool], "capped": [bool], "rate": [..]}``."""
    from models.heads import tune_thresholds

    p = np.nan_to_num(np.asarray(probs, np.float64), nan=0.0)
    y = np.asarray(targets, np.float64) > 0.5
    n, c = p.shape
    prev = y.mean(axis=0) if prevalence is None else np.asarray(prevalence, np.float64)
    thresholds = np.full(c, float(default))
    tuned = np.zeros(c, bool)
    if tune and n:
        best = tune_thresholds(p, y.astype(np.float64))
        tuned = y.sum(axis=0) >= int(min_positives)
        thresholds[tuned] = best[tuned]
    capped = np.zeros(c, bool)
    if max_rate_ratio and max_rate_ratio > 0 and n:
        for j in range(c):
            allowed = int(np.floor(max_rate_ratio * prev[j] * n + 1e-9))
            if np.sum(p[:, j] >= thresholds[j]) <= allowed:
                continue
            desc = np.sort(p[:, j])[::-1]
            cut = desc[allowed] if allowed < n else -np.inf  # the largest probability that must not pass
            if allowed > 0 and desc[allowed - 1] > cut:
                new = (desc[allowed - 1] + cut) / 2.0
            else:
                new = np.nextafter(cut, np.inf)
            thresholds[j] = float(min(1.0, max(thresholds[j], new)))
            capped[j] = True
    rate = [float(np.mean(p[:, j] >= thresholds[j])) if n else 0.0 for j in range(c)]
    return thresholds, {
        "tuned": tuned.tolist(),
        "capped": capped.tolist(),
        "predicted_rate": rate,
        "prevalence": [float(v) for v in prev],
    }
