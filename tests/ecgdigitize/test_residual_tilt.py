"""Rows still tilted after rectification: the page is read again turned by their common tilt."""

from __future__ import annotations

import numpy as np
import pytest
from reference_scoring import snr_db

import ecgdigitize.pipeline as pipeline
import ecgdigitize.stages as stages
from ecgdigitize.orientation import Orientation
from ecgdigitize.vectorise import TraceCurve

page_mod = pytest.importorskip("ecgrender.page")
distort = pytest.importorskip("ecgrender.distort")


def test_row_tilts_deg():
    x = np.arange(1000, dtype=np.float64)
    y = 200.0 + np.tan(np.radians(2.0)) * x
    y[::97] -= 60.0  # QRS-like spikes do not move the line
    c = TraceCurve(0, y, 2.0, 1.0)
    assert pipeline.row_tilts_deg([c, TraceCurve(0, np.full(10, np.nan), 2.0, 0.0)]) == pytest.approx([2.0], abs=0.05)


def test_page_whose_angle_was_missed_is_read_again(signal, monkeypatch):
    """A page turned by 2.5 degrees whose angle estimate failed (identity, as under heavy noise): the rows'
    tilt is found and the page read again, with a self-check no worse and a better signal."""
    page = page_mod.render_page(signal, 500, page_mod.STANDARD_LEADS, page_mod.PageSpec(dpi=150, layout="3x4+1"), rng=0)
    page = distort.apply_distortions(page, [{"name": "rotation", "angle_deg": 2.5}], rng=0)
    monkeypatch.setattr(stages, "estimate_orientation", lambda g, p: Orientation(source="none"))
    first = pipeline._digitize_page(page.image)
    r = pipeline.digitize_page(page.image)
    assert any("read again" in w for w in r.warnings)
    assert pipeline.STATUS_RANK[r.status] >= pipeline.STATUS_RANK[first.status]
    assert snr_db(signal, r.signal) > snr_db(signal, first.signal) + 3.0
