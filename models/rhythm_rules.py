"""Rhythm rules of the Dx head: rhythm classes decided from one measured signal feature each.

TACHY, BRADY, AFIB/AFL, PAC and PVC are defined by measurable properties (heart rate; irregular RR without
repeating P waves; early beats with a normal QRS; early beats followed by a compensatory pause), and the training
sets have few positives of each (PTB-XL folds 1-6 of ``../shared/data``: 3-7), too few for a logistic head to
learn a sharp cut-off among 66 inputs. A rule is a one-feature decision stump whose cut-off is fitted on the
training records' features (within a clinically sensible range, so that a handful of positives cannot move it
anywhere absurd) and applied to the head's probabilities at run time:

* ``mode="replace"``: where the feature is measured, the class probability becomes 1.0 when the rule fires and
  0.0 otherwise (TACHY: heart rate above the cut-off unless the AF score says the fast rhythm is AF or AFIB/AFL
  is predicted; BRADY: heart rate below the cut-off unless AFIB/AFL is predicted: in PTB-XL's labels, as in
  the clinic, tachycardia and bradycardia are sinus rhythms; PVC: premature beats followed by a compensatory
  pause above a fraction of the RR intervals, unless AF);
* ``mode="or"``: the probability is raised to 1.0 when the rule fires and left alone otherwise (AFIB/AFL: AF
  score above the cut-off; PAC: premature beats with the normal QRS above a fraction of all beats, unless AF).

Features are raw :mod:`ecgfeatures` values (bpm, scores), NaN where not measured; a rule never fires on NaN.
Rules live in :class:`models.config.DxHeadConfig` ``rhythm_rules`` (a list of dicts), saved with the weights.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np


@dataclass
class RhythmRule:
    """``class_name`` fires when ``feature`` is above (``direction="above"``) or below ``cutoff``, unless
    ``unless_feature`` is above ``unless_above`` or (at run time, :func:`apply_rhythm_rules`) ``unless_class`` is
    predicted; ``mode`` "replace" or "or" (see the module docstring). ``limit`` bounds the other side: a
    "below" rule fires only at or above it (an "above" rule at or below it); beyond it a reading is more
    likely an artefact than the class (BRADY: under 40 bpm from a page, mostly a misread paper speed)."""

    class_name: str
    feature: str
    direction: str
    cutoff: float
    mode: str = "replace"
    unless_feature: str | None = None
    unless_above: float | None = None
    unless_class: str | None = None
    limit: float | None = None

    def __post_init__(self) -> None:
        if self.direction not in ("above", "below"):
            raise ValueError(f"direction must be 'above' or 'below', got {self.direction!r}")
        if self.mode not in ("replace", "or"):
            raise ValueError(f"mode must be 'replace' or 'or', got {self.mode!r}")
        self.cutoff = float(self.cutoff)

    def fires(self, values: np.ndarray, names: Sequence[str]) -> np.ndarray:
        """(M,) bool for raw feature rows ``values`` (M, E) named ``names``; NaN features never fire."""
        v = np.atleast_2d(np.asarray(values, np.float64))
        x = v[:, list(names).index(self.feature)]
        with np.errstate(invalid="ignore"):
            hit = x > self.cutoff if self.direction == "above" else x < self.cutoff
            if self.limit is not None:
                hit &= x <= self.limit if self.direction == "above" else x >= self.limit
            if self.unless_feature is not None and self.unless_above is not None:
                u = v[:, list(names).index(self.unless_feature)]
                hit &= ~(u > self.unless_above)
        return hit & self.measured(v, names)

    def measured(self, values: np.ndarray, names: Sequence[str]) -> np.ndarray:
        """(M,) bool: where the rule's feature was measured (finite)."""
        v = np.atleast_2d(np.asarray(values, np.float64))
        return np.isfinite(v[:, list(names).index(self.feature)])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """One line for logs, e.g. ``BRADY if heart_rate_bpm below 50 (not under 40) unless ... (replace)``."""
        text = f"{self.class_name} if {self.feature} {self.direction} {self.cutoff:g}"
        if self.limit is not None:
            text += f" ({'not over' if self.direction == 'above' else 'not under'} {self.limit:g})"
        if self.unless_feature is not None:
            text += f" unless {self.unless_feature} > {self.unless_above:g}"
        if self.unless_class is not None:
            text += f" unless {self.unless_class} is predicted"
        return f"{text} ({self.mode})"


#: Rules and the ranges their cut-offs are fitted in: (rule with its default cut-off, (low, high, step)).
#: Defaults are the clinical definitions (rate > 100 / < 60 bpm) and the AF score's midpoint. TACHY keeps the
#: definition (fitting it moved the cut-off to 105 bpm in one of 8 CV folds and lost both of that fold's
#: positives); PTB-XL's annotators marked sinus bradycardia well below 60 bpm (best cut-off on the true signals
#: of its 353 records here: 50 bpm, F 0.83 against 0.18 at 60), so BRADY's cut-off is fitted.
RULE_SEARCH: list[tuple[RhythmRule, tuple[float, float, float]]] = [
    (
        RhythmRule("TACHY", "heart_rate_bpm", "above", 100.0, "replace", "af_score", 0.5, "AFIB/AFL"),
        (100.0, 100.0, 1.0),
    ),
    # no BRADY under 40 bpm: none of the 5 PTB-XL records of ../shared/data read below 40 from their pages is
    # labelled BRADY (3 are 50 mm/s pages without calibration pulses, read at half the rate)
    (
        RhythmRule("BRADY", "heart_rate_bpm", "below", 60.0, "replace", unless_class="AFIB/AFL", limit=40.0),
        (40.0, 62.0, 1.0),
    ),
    (RhythmRule("AFIB/AFL", "af_score", "above", 0.5, "or"), (0.2, 0.9, 0.05)),
    # a premature beat with the normal QRS is supraventricular (PAC); PTB-XL 8-fold CV F 0.06 -> 0.20
    (RhythmRule("PAC", "ectopic_narrow_fraction", "above", 0.0, "or", "af_score", 0.5), (0.0, 0.3, 0.05)),
    # a premature beat followed by a compensatory pause is the classic sign of a PVC: about one in 12 RR
    # intervals by default; it replaces the head's PVC output (PTB-XL feature-cache 8-fold CV F 0.37 -> 0.56,
    # the logistic head over-calls PVC on 6-9 positives)
    (RhythmRule("PVC", "compensatory_pause_fraction", "above", 0.08, "replace", "af_score", 0.5), (0.04, 0.3, 0.02)),
]


def f_measure(pred: np.ndarray, truth: np.ndarray) -> float:
    """F-measure of the bool predictions ``pred`` against ``truth`` (both (M,)); 0 when both are empty."""
    tp = float(np.sum(pred & truth))
    fp = float(np.sum(pred & ~truth))
    fn = float(np.sum(~pred & truth))
    return 2 * tp / max(2 * tp + fp + fn, 1.0)


def fit_rhythm_rules(
    values: np.ndarray,
    names: Sequence[str],
    targets: np.ndarray,
    classes: Sequence[str],
    min_positives: int = 3,
    margin: float = 0.05,
) -> list[RhythmRule]:
    """Rules for the classes of ``RULE_SEARCH`` present in ``classes``.

    values: (M, E) raw feature rows (several rows may belong to one record); targets: (M, C) bool multi-hot of
    each row's record. A class with at least ``min_positives`` positive rows gets the cut-off that maximises its
    F-score over the rows (ties: the one nearest the default) when that beats the default cut-off's F by more
    than ``margin`` (a few positives should not move a clinical definition for noise); otherwise, and with
    fewer positives, it keeps the default."""
    v = np.atleast_2d(np.asarray(values, np.float64))
    t = np.asarray(targets, bool).reshape(len(v), len(classes))
    rules: list[RhythmRule] = []
    for rule, (lo, hi, step) in RULE_SEARCH:
        if rule.class_name not in classes or rule.feature not in names:
            continue
        truth = t[:, list(classes).index(rule.class_name)]
        best = RhythmRule(**rule.to_dict())
        if truth.sum() >= min_positives:
            scores = []
            for cut in np.arange(lo, hi + step / 2, step):
                cand = RhythmRule(**{**rule.to_dict(), "cutoff": float(round(cut, 6))})
                scores.append((f_measure(cand.fires(v, names), truth), -abs(cut - rule.cutoff), cand))
            top = max(scores, key=lambda s: (s[0], s[1]))
            if top[0] > f_measure(best.fires(v, names), truth) + margin:
                best = top[2]
        rules.append(best)
    return rules


def apply_rhythm_rules(
    probs: np.ndarray,
    values: np.ndarray,
    names: Sequence[str],
    classes: Sequence[str],
    rules: Sequence[RhythmRule | dict[str, Any]],
    thresholds: Sequence[float] | np.ndarray | None = None,
) -> np.ndarray:
    """Probabilities (C,) or (N, C) after the rules, for raw feature rows ``values`` (E,) or (N, E).

    Rules with an ``unless_class`` run after the others; that class counts as predicted where its probability
    (after the other rules) reaches its threshold (``thresholds`` (C,), 0.5 when not given)."""
    p = np.array(probs, dtype=np.float64, copy=True)
    single = p.ndim == 1
    p2 = np.atleast_2d(p)
    v = np.atleast_2d(np.asarray(values, np.float64))
    thr = np.full(len(classes), 0.5) if thresholds is None else np.asarray(thresholds, np.float64)
    parsed = [r if isinstance(r, RhythmRule) else RhythmRule(**r) for r in rules]
    for rule in sorted(parsed, key=lambda r: r.unless_class is not None):
        if rule.class_name not in classes:
            continue
        j = list(classes).index(rule.class_name)
        hit = rule.fires(v, names)
        if rule.unless_class is not None and rule.unless_class in classes:
            k = list(classes).index(rule.unless_class)
            hit &= ~(p2[:, k] >= thr[k])
        if rule.mode == "replace":
            p2[:, j] = np.where(rule.measured(v, names), hit.astype(np.float64), p2[:, j])
        else:
            p2[:, j] = np.where(hit, 1.0, p2[:, j])
    return p2[0] if single else p2
