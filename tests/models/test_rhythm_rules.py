"""models.rhythm_rules: fitting cut-offs on constructed cases with a known optimum, applying them."""

from __future__ import annotations

import numpy as np
import pytest

from models.config import ConfigError, DxHeadConfig
from models.heads import DxHead
from models.rhythm_rules import RhythmRule, apply_rhythm_rules, fit_rhythm_rules

NAMES = ["heart_rate_bpm", "af_score", "other"]
CLASSES = ["NORM", "AFIB/AFL", "TACHY", "BRADY"]


def _rows(hr, af, labels):
    values = np.column_stack([hr, af, np.zeros(len(hr))]).astype(float)
    targets = np.array([[c in lab for c in CLASSES] for lab in labels])
    return values, targets


def test_brady_cutoff_fitted_where_the_labels_put_it():
    """Bradycardia labelled only below ~50 bpm (as PTB-XL's annotators do): the fitted cut-off separates
    45-49 from 52-58 bpm; TACHY keeps its definition (100 bpm); a class with too few positives keeps the
    default."""
    rng = np.random.default_rng(0)
    brady_hr = rng.uniform(45.0, 49.0, 6)
    slow_normal = rng.uniform(52.0, 58.0, 12)
    normal = rng.uniform(62.0, 95.0, 20)
    tachy = rng.uniform(105.0, 130.0, 5)
    hr = np.r_[brady_hr, slow_normal, normal, tachy]
    labels = [["BRADY"]] * 6 + [["NORM"]] * 32 + [["TACHY"]] * 5
    values, targets = _rows(hr, np.zeros(hr.size), labels)
    rules = {r.class_name: r for r in fit_rhythm_rules(values, NAMES, targets, CLASSES)}
    assert 49.0 < rules["BRADY"].cutoff <= 52.0
    assert rules["TACHY"].cutoff == 100.0
    assert rules["AFIB/AFL"].cutoff == 0.5  # no AF positives: the default
    pred = rules["BRADY"].fires(values, NAMES)
    np.testing.assert_array_equal(pred, targets[:, CLASSES.index("BRADY")])


def test_limit_bounds_the_other_side():
    """BRADY below 50 bpm but not under 40 (a page read at half its rate); the limit survives a dict round trip
    and shows in the rule's description."""
    rule = RhythmRule("BRADY", "heart_rate_bpm", "below", 50.0, "replace", limit=40.0)
    values = np.array([[45.0, 0, 0], [38.0, 0, 0], [40.0, 0, 0], [55.0, 0, 0]])
    np.testing.assert_array_equal(rule.fires(values, NAMES), [True, False, True, False])
    fast = RhythmRule("TACHY", "heart_rate_bpm", "above", 100.0, limit=250.0)
    np.testing.assert_array_equal(fast.fires(np.array([[120.0, 0, 0], [300.0, 0, 0]]), NAMES), [True, False])
    assert RhythmRule(**rule.to_dict()) == rule
    assert (
        "not under 40" in rule.describe()
        and "unless AFIB/AFL is predicted"
        in RhythmRule("TACHY", "heart_rate_bpm", "above", 100.0, unless_class="AFIB/AFL").describe()
    )


def test_pvc_rule_from_compensatory_pauses():
    """PVC from the fraction of RR intervals that close a premature beat with a compensatory pause: PVC records
    (2-4 such pauses in ~12 intervals) are told from records with at most one, whatever the head said, and the
    fitted cut-off stays between them."""
    names = ["compensatory_pause_fraction", "af_score"]
    classes = ["NORM", "PVC"]
    rng = np.random.default_rng(1)
    pvc = rng.choice([2, 3, 4], 6) / 12.0
    other = rng.choice([0, 0, 0, 1], 30) / 12.0
    values = np.column_stack([np.r_[pvc, other], np.zeros(36)])
    targets = np.zeros((36, 2), bool)
    targets[:6, 1] = True
    targets[6:, 0] = True
    rules = {r.class_name: r for r in fit_rhythm_rules(values, names, targets, classes)}
    assert 1 / 12 <= rules["PVC"].cutoff < 2 / 12 and rules["PVC"].mode == "replace"
    probs = np.full((36, 2), 0.5)
    out = apply_rhythm_rules(probs, values, names, classes, list(rules.values()))
    np.testing.assert_array_equal(out[:, 1] >= 0.5, targets[:, 1])
    af = values.copy()
    af[:, 1] = 0.9  # irregular AF: premature-looking beats are not PVCs
    assert not apply_rhythm_rules(probs, af, names, classes, list(rules.values()))[:, 1].any()


def test_small_gain_does_not_move_a_default():
    """One positive row more or less does not move a cut-off away from the default (margin)."""
    hr = np.r_[np.full(10, 55.0), np.full(10, 80.0)]
    labels = [["BRADY"]] * 9 + [["NORM"]] + [["NORM"]] * 10
    values, targets = _rows(hr, np.zeros(hr.size), labels)
    (_, brady, _) = fit_rhythm_rules(values, NAMES, targets, CLASSES)
    assert brady.cutoff == 60.0


def test_apply_replace_or_and_nan():
    rules = [
        RhythmRule("TACHY", "heart_rate_bpm", "above", 100.0, "replace", "af_score", 0.5),
        RhythmRule("BRADY", "heart_rate_bpm", "below", 50.0, "replace"),
        RhythmRule("AFIB/AFL", "af_score", "above", 0.5, "or"),
    ]
    probs = np.array(
        [
            [0.1, 0.2, 0.7, 0.6],  # HR 120, no AF: TACHY 1, BRADY 0
            [0.1, 0.2, 0.7, 0.6],  # HR 130 with AF: TACHY 0 (the fast rhythm is AF), AF raised
            [0.1, 0.3, 0.7, 0.6],  # HR 45: BRADY 1, TACHY 0, AF left alone
            [0.1, 0.3, 0.7, 0.6],
        ]
    )  # HR not measured: everything left alone
    values = np.array([[120.0, 0.1, 0], [130.0, 0.9, 0], [45.0, np.nan, 0], [np.nan, np.nan, 0]])
    out = apply_rhythm_rules(probs, values, NAMES, CLASSES, rules)
    np.testing.assert_allclose(out[0], [0.1, 0.2, 1.0, 0.0])
    np.testing.assert_allclose(out[1], [0.1, 1.0, 0.0, 0.0])
    np.testing.assert_allclose(out[2], [0.1, 0.3, 0.0, 1.0])
    np.testing.assert_allclose(out[3], probs[3])
    # one record (C,) with (E,) features; rules given as dicts
    one = apply_rhythm_rules(probs[0], values[0], NAMES, CLASSES, [r.to_dict() for r in rules])
    np.testing.assert_allclose(one, out[0])
    # a class the head does not have is ignored
    np.testing.assert_allclose(apply_rhythm_rules(probs[:, :2], values, NAMES, CLASSES[:2], rules[:2]), probs[:, :2])


def test_sinus_rate_classes_yield_to_a_predicted_af():
    """TACHY and BRADY with ``unless_class="AFIB/AFL"``: a regular fast rhythm that the head (or the AF rule,
    whatever its place in the list) calls AFIB/AFL is not TACHY; without AF the rate rules fire; the class
    counts as predicted at its own threshold."""
    rules = [
        RhythmRule("TACHY", "heart_rate_bpm", "above", 100.0, "replace", unless_class="AFIB/AFL"),
        RhythmRule("BRADY", "heart_rate_bpm", "below", 50.0, "replace", unless_class="AFIB/AFL"),
        RhythmRule("AFIB/AFL", "af_score", "above", 0.5, "or"),
    ]
    probs = np.array(
        [
            [0.1, 0.8, 0.2, 0.2],  # HR 150, head says AFL: not TACHY
            [0.1, 0.1, 0.2, 0.2],  # HR 150, AF score high: the AF rule (listed last) fires first
            [0.1, 0.1, 0.2, 0.2],  # HR 150, no AF: TACHY
            [0.1, 0.4, 0.2, 0.2],
        ]
    )  # HR 40, AF probability 0.4
    values = np.array([[150.0, 0.0, 0], [150.0, 0.9, 0], [150.0, 0.0, 0], [40.0, 0.0, 0]])
    out = apply_rhythm_rules(probs, values, NAMES, CLASSES, rules)
    np.testing.assert_allclose(out[:, 2:], [[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    np.testing.assert_allclose(out[:, 1], [0.8, 1.0, 0.1, 0.4])
    strict = apply_rhythm_rules(probs, values, NAMES, CLASSES, rules, thresholds=[0.5, 0.3, 0.5, 0.5])
    np.testing.assert_allclose(strict[3, 2:], [0.0, 0.0])


def test_rules_live_in_the_head_config():
    cfg = DxHeadConfig(classes=CLASSES, hidden_sizes=[], extra_features=3, use_image=False)
    head = DxHead(cfg, [8])
    head.set_rhythm_rules([RhythmRule("BRADY", "heart_rate_bpm", "below", 50.0)])
    restored = DxHeadConfig.from_dict(cfg.to_dict())
    assert restored.rhythm_rules == head.rhythm_rules and restored.rhythm_rules[0]["cutoff"] == 50.0
    with pytest.raises(ConfigError):
        DxHeadConfig(
            classes=CLASSES,
            rhythm_rules=[
                {"class_name": "BRADY", "feature": "heart_rate_bpm", "direction": "sideways", "cutoff": 50.0}
            ],
        )
