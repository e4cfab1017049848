"""The PTB-XL rhythm-label audit: rhythm classes read from report text and from SCP codes."""

from __future__ import annotations

import numpy as np

from benchmarks.ptbxl_rhythm_labels import code_classes, f_measure, report_classes


def test_report_classes_in_the_languages_of_ptbxl():
    assert report_classes("sinustachykardi t-förändring") == {"TACHY"}
    assert report_classes("Sinusbradykardie  sonst normales ekg") == {"BRADY"}
    assert report_classes("ventrikulär(a) extrasystoli(er) FÖRMAKSFLIMMER med hög kammarfrekvens") == {
        "AFIB/AFL",
        "PVC",
    }
    assert report_classes("atrial fibrillation with rapid ventricular response") == {"AFIB/AFL"}
    assert report_classes("sinus bradycardia. voltages are high") == {"BRADY"}
    assert report_classes("sinusrhythmus normales ekg") == set()
    assert report_classes(float("nan")) == set()


def test_ectopic_beats_in_reports_supraventricular_apart_from_ventricular():
    """PTB-XL states ectopic beats in the report where the SCP codes often leave them out (German, Swedish,
    English); "supraventrikuläre extrasystole" is a PAC and not also a PVC."""
    assert report_classes("supraventrikuläre extrasystole(n) sinusrhythmus sonst normales ekg") == {"PAC"}
    assert report_classes("sinusrytm supraventrikulära extraslag eljest normalt ekg") == {"PAC"}
    assert report_classes("premature atrial contraction(s). sinus rhythm.") == {"PAC"}
    assert report_classes("ventrikuläre extrasystole(n), bigeminus sinusrhythmus") == {"PVC"}
    assert report_classes("premature ventricular contraction(s), bigeminy. sinus rhythm.") == {"PVC"}
    assert report_classes("supraventrikulär(a) extrasystoli(er) supraventrikulär(a) escape beat(s)") == {"PAC"}
    assert report_classes("ventricular rate 80. no extrasystoles") == set()


def test_code_classes_follow_the_challenge_mapping():
    assert code_classes("{'NORM': 80.0, 'SBRAD': 0.0}") == {"BRADY"}
    assert code_classes("{'AFLT': 0.0, 'STACH': 0.0}") == {"AFIB/AFL", "TACHY"}
    assert code_classes("{'ISCAL': 100.0}") == set()
    assert code_classes("{'PVC': 0.0}") == {"PVC"}
    assert code_classes("{'PAC': 0.0, 'SR': 0.0}") == {"PAC"}


def test_f_measure():
    truth = np.array([1, 1, 0, 0, 1], bool)
    assert f_measure(truth, truth) == 1.0
    assert f_measure(np.array([1, 0, 1, 0, 0], bool), truth) == 2 * 1 / (2 * 1 + 1 + 2)
    assert f_measure(np.zeros(5, bool), np.zeros(5, bool)) == 0.0
