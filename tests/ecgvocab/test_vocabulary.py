"""The shared vocabulary: lead matching, the Dx classes, clipping and converting for WFDB, SNR."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
from reference_scoring import snr_db as reference_pooled_snr
from reference_scoring import snr_reference

import ecgvocab
from ecgvocab import (
    DX_CLASSES,
    FORMAT16_LIMIT_MV,
    FORMAT16_MAX,
    FORMAT16_NAN,
    LEAD_TOKEN,
    OUTPUT_LIMIT_MV,
    STANDARD_LEAD_KEYS,
    STANDARD_LEADS,
    canonical_lead_name,
    clip_for_wfdb,
    lead_index,
    lead_key,
    physical_range,
    snr_db,
    sort_classes,
    to_format16,
)

PACKAGE = Path(ecgvocab.__file__).resolve().parent


def test_standard_leads_and_classes() -> None:
    assert STANDARD_LEADS == ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
    assert STANDARD_LEAD_KEYS[3:6] == ("AVR", "AVL", "AVF")
    assert DX_CLASSES == ["NORM", "Acute MI", "Old MI", "STTC", "CD", "HYP", "PAC", "PVC", "AFIB/AFL", "TACHY", "BRADY"]
    assert sort_classes(["Abnormal", "CD", "NORM", "CD"]) == ["NORM", "CD", "Abnormal"]


@pytest.mark.parametrize(
    "written, canonical",
    [("aVR", "aVR"), ("AVR", "aVR"), (" avr ", "aVR"), ("avl", "aVL"), ("i", "I"), ("III", "III"), ("v6", "V6")],
)
def test_lead_names_match_case_insensitively(written: str, canonical: str) -> None:
    assert canonical_lead_name(written) == canonical
    assert lead_index(written) == STANDARD_LEADS.index(canonical)
    assert lead_key(written) == lead_key(canonical)


@pytest.mark.parametrize("other", ["V4R", "vx", "", "II ECG", "aV R"])
def test_other_names_are_not_standard_leads(other: str) -> None:
    assert canonical_lead_name(other) is None and lead_index(other) is None


def test_lead_token_finds_names_in_text() -> None:
    text = "leads aVR, II and V4 disagree; AVF flat; V4R and IIx are not leads"
    assert [lead_key(m) for m in LEAD_TOKEN.findall(text)] == ["AVR", "II", "V4", "AVF"]


def test_clip_for_wfdb_at_the_limits() -> None:
    x = np.array([[0.5, 32.767, 32.768, -40.0, np.inf, -np.inf, np.nan]])
    out = clip_for_wfdb(x)
    np.testing.assert_array_equal(out[0, :6], [0.5, 32.767, 32.767, -32.767, 32.767, -32.767])
    assert np.isnan(out[0, 6]) and out.dtype == np.float64
    assert FORMAT16_LIMIT_MV == pytest.approx(32.767)
    per_channel = clip_for_wfdb(np.full((2, 2), 50.0), np.array([-1.0, -2.0]), np.array([1.0, 2.0]))
    np.testing.assert_array_equal(per_channel, [[1.0, 2.0], [1.0, 2.0]])
    assert clip_for_wfdb(np.array([31.0]), -OUTPUT_LIMIT_MV, OUTPUT_LIMIT_MV)[0] == 30.0


def test_to_format16_at_the_limits() -> None:
    x = np.array([[0.0, 1.2344, 32.767, 32.7674, 99.0, -99.0, np.inf, np.nan]])
    d = to_format16(x)
    assert d.dtype == np.int16
    np.testing.assert_array_equal(
        d[0], [0, 1234, FORMAT16_MAX, FORMAT16_MAX, FORMAT16_MAX, -FORMAT16_MAX, FORMAT16_MAX, FORMAT16_NAN]
    )


def test_physical_range() -> None:
    assert physical_range("16", 1000.0, 0) == pytest.approx((-32.767, 32.767))
    assert physical_range("212", 200.0, 0) == pytest.approx((-2047 / 200, 2047 / 200))
    assert physical_range("16", 0.0, 0) == (-np.inf, np.inf)


def test_snr_matches_the_reference_scorer() -> None:
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(500, 12))
    est = ref + rng.normal(scale=0.3, size=ref.shape)
    est[:200, 3] = np.nan  # partly covered lead
    est[:, 5] = np.nan  # uncovered lead: 0 dB
    ref[:100, 7] = np.nan  # reference partly unknown
    ref[:, 9] = np.nan  # no reference: left out
    expected = np.nanmean([snr_reference(ref[:, j], est[:, j]) for j in range(12)])
    assert snr_db(ref, est, per_lead=True) == pytest.approx(expected, rel=1e-9)
    assert snr_db(ref, est) == pytest.approx(reference_pooled_snr(ref, est), rel=1e-9)


def test_snr_edge_cases() -> None:
    ref = np.ones((10, 2))
    assert snr_db(ref, ref) > 100.0  # perfect: large and finite
    assert snr_db(ref, np.full_like(ref, np.nan), per_lead=True) == 0.0
    with pytest.raises(ValueError):
        snr_db(ref, ref[:5])


def test_vocabulary_imports_nothing_of_the_project() -> None:
    project = {
        "ecgdigitize",
        "ecgentry",
        "ecgrender",
        "ecgfeatures",
        "models",
        "benchmarks",
        "helper_code",
        "team_code",
        "run_model",
        "train_model",
    }
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not {n.split(".")[0] for n in names} & project, (path.name, names)
