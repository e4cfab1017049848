"""Page status from the self-check: a right page is 'ok', a wrongly read one never is."""

from __future__ import annotations

import numpy as np
import pytest

from ecgdigitize.pipeline import digitize_page

page_mod = pytest.importorskip("ecgrender.page")


@pytest.fixture(scope="module")
def page(signal):
    return page_mod.render_page(signal, 500, page_mod.STANDARD_LEADS, page_mod.PageSpec(dpi=100, layout="3x4+1"), rng=0)


def test_right_page_is_ok(page):
    r = digitize_page(page.image)
    assert r.layout.name == "3x4+1"
    assert r.status == "ok", r.status_reasons
    assert r.check is not None and r.check.to_dict()["status"] == "ok"


@pytest.mark.parametrize("wrong", ["6x2", "3x4+3"])
def test_page_read_with_a_wrong_layout_is_not_ok(page, wrong):
    """Forcing the wrong template gives the leads other leads' traces: the laws of the limb leads catch it."""
    r = digitize_page(page.image, layout=wrong)
    assert r.layout.name == wrong
    assert r.status in ("suspect", "failed") and r.status_reasons


def test_page_read_with_swapped_rows_is_not_ok(page):
    """Rows I/II swapped after reading (as a misread layout would): the page is not 'ok'."""
    from ecgdigitize.pipeline import page_check

    r = digitize_page(page.image)
    sig = r.signal.copy()
    sig[:, [1, 2]] = sig[:, [2, 1]]
    check = page_check(sig, r.lead_names, r.fs, [], r.layout, r.scale)
    assert check.status != "ok"


def test_blank_page_fails():
    r = digitize_page(np.full((850, 1100, 3), 255, np.uint8))
    assert r.status == "failed" and r.status_reasons
