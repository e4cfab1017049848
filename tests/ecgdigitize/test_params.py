"""The digitizer's thresholds: one frozen object, passed through digitize_page to its stages."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ecgdigitize.params import DEFAULT_PARAMS, DigitizerParams
from ecgdigitize.pipeline import digitize_page


def test_params_are_frozen_and_default():
    assert DigitizerParams() == DEFAULT_PARAMS
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT_PARAMS.min_image_side_px = 1  # type: ignore[misc]


def test_params_reach_the_stages():
    page = np.full((64, 64, 3), 255, np.uint8)
    page[30:33, 5:60] = 0
    r = digitize_page(page, params=DigitizerParams(min_image_side_px=100))
    assert r.status == "failed" and r.warnings[-1] == "image too small to digitise"
    assert np.isnan(r.signal).all()
