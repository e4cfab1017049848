"""Fixtures of the digitizer tests."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def signal() -> np.ndarray:
    """A 10 s, 500 Hz synthetic NORM record (5000, 12) in mV."""
    from ecgrender.synth import synthesize_ecg

    sig, _ = synthesize_ecg(["NORM"], 500, 10, rng=1)
    return sig
