"""Sampling helpers of ecgdigitize.assemble."""

from __future__ import annotations

import numpy as np

from ecgdigitize.assemble import SMOOTH_S, smooth_samples


def test_smooth_samples_keeps_nan_gaps_and_runs_apart():
    y = np.r_[np.zeros(10), np.full(3, np.nan), np.full(10, 10.0)]
    out = smooth_samples(y, 2.0)
    assert np.isnan(out[10:13]).all()
    np.testing.assert_allclose(out[:10], 0.0)
    np.testing.assert_allclose(out[13:], 10.0)


def test_smooth_samples_removes_sample_zigzag_not_the_wave():
    fs = 500.0
    t = np.arange(2000) / fs
    wave = 20.0 * np.sin(2 * np.pi * 5.0 * t)  # pixels; 5 Hz, far below the cut-off
    zigzag = 0.8 * (-1.0) ** np.arange(t.size)  # sample-to-sample tracing jitter
    out = smooth_samples(wave + zigzag, SMOOTH_S * fs)
    err_before = np.sqrt(np.mean(zigzag[50:-50] ** 2))
    err_after = np.sqrt(np.mean((out - wave)[50:-50] ** 2))
    assert err_after < 0.1 * err_before
    # the wave itself keeps its amplitude (within 1 %)
    assert abs(np.max(out[50:-50]) / 20.0 - 1.0) < 0.01


def test_smooth_samples_tiny_sigma_is_identity():
    rng = np.random.default_rng(0)
    y = rng.normal(size=50)
    np.testing.assert_array_equal(smooth_samples(y, 0.05), y)
