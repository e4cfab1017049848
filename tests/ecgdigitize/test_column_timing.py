"""Column timing from the rhythm strip: columns printed from the recording's start are moved there."""

from __future__ import annotations

import numpy as np
import pytest

from ecgdigitize.assemble import LeadTrace
from ecgdigitize.column_timing import retime_columns
from ecgdigitize.layout import LeadBox, template_rows

synth = pytest.importorskip("ecgrender.synth")
FS = 500.0
LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]


def _traces(signal: np.ndarray, from_start: bool) -> list[LeadTrace]:
    """LeadTraces of a 3x4+1 page as the digitizer places them (column c at c * 2.5 s) whose columns show
    ``signal`` from the start (``from_start``) or sequentially."""
    out = []
    n_col = int(2.5 * FS)
    for r, row in enumerate(template_rows("3x4+1")):
        for c, name in enumerate(row):
            rhythm = r == 3
            t0, t1 = (0.0, 10.0) if rhythm else (2.5 * c, 2.5 * (c + 1))
            src0 = 0 if (from_start or rhythm) else int(t0 * FS)
            n = int((t1 - t0) * FS) if rhythm else n_col
            vals = signal[src0 : src0 + n, LEADS.index(name)].copy()
            box = LeadBox(name, r, c, 0.0, 0.0, t0, t1, 0.0, rhythm=rhythm)
            out.append(LeadTrace(name, box, np.zeros(0), np.zeros(0), int(t0 * FS), vals))
    return out


@pytest.fixture(scope="module")
def afib() -> np.ndarray:
    return synth.synthesize_ecg(["AFIB/AFL"], FS, 10.0, rng=3)[0]


def test_columns_printed_from_the_start_are_moved_there(afib):
    traces = _traces(afib, from_start=True)
    assert retime_columns(traces, FS) is not None
    for t in traces:
        assert t.start_sample == 0
        if not t.box.rhythm:
            assert t.box.t0 == 0.0


def test_sequential_columns_stay(afib):
    traces = _traces(afib, from_start=False)
    assert retime_columns(traces, FS) is None
    assert sorted({t.start_sample for t in traces if not t.box.rhythm}) == [0, 1250, 2500, 3750]


def test_regular_rhythm_never_moves_on_weak_evidence():
    """A regular rhythm repeats its QRS pattern: sequential columns stay sequential."""
    sig = synth.synthesize_ecg(["NORM"], FS, 10.0, rng=5)[0]
    traces = _traces(sig, from_start=False)
    assert retime_columns(traces, FS) is None


def test_no_rhythm_strip_no_change(afib):
    traces = [t for t in _traces(afib, from_start=True) if not t.box.rhythm]
    assert retime_columns(traces, FS) is None
