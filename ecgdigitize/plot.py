"""A standard 12-lead plot of a digitized signal (PNG through matplotlib's Agg backend, no display needed).

Two styles: ``"rows"`` (one lead per row over the whole record: every digitized sample is shown) and ``"3x4+1"``
(the usual printout: three rows of four leads, each in its quarter of the record, and lead II as a rhythm strip).
Time in seconds, amplitude in mV, on ECG paper (minor grid 0.04 s / 0.1 mV, major 0.2 s / 0.5 mV). Samples that
were not read (NaN) leave a gap, shaded grey, so a missing stretch is never mistaken for a flat line.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

STYLES = ("rows", "3x4+1")
#: Leads of the 3x4+1 printout, row by row (columns: 0-2.5 s, 2.5-5 s, 5-7.5 s, 7.5-10 s of a 10 s record).
GRID_3X4 = (("I", "aVR", "V1", "V4"), ("II", "aVL", "V2", "V5"), ("III", "aVF", "V3", "V6"))
RHYTHM_LEAD = "II"
TRACE_COLOUR = "#1a1a1a"
GAP_COLOUR = "#b0b0b0"
MINOR_GRID = "#f6c9c9"
MAJOR_GRID = "#e58f8f"


def nan_runs(column: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) sample ranges where ``column`` is NaN (or infinite)."""
    bad = np.r_[False, ~np.isfinite(np.asarray(column, dtype=np.float64)), False].astype(np.int8)
    d = np.diff(bad)
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()))


def _paper(ax, t0: float, t1: float, y0: float, y1: float, time_labels: bool) -> None:
    """ECG paper on ``ax`` over [t0, t1] s x [y0, y1] mV (grid lines as two collections: fast); tick labels every
    second and every 1 mV."""
    ax.set_xlim(t0, t1)
    ax.set_ylim(y0, y1)
    for step, colour, width in ((0.04, MINOR_GRID, 0.3), (0.2, MAJOR_GRID, 0.6)):
        xs = np.arange(np.ceil(t0 / step - 1e-6) * step, t1 + 1e-9, step)
        ax.vlines(xs, y0, y1, colors=colour, linewidth=width, zorder=0)
    for step, colour, width in ((0.1, MINOR_GRID, 0.3), (0.5, MAJOR_GRID, 0.6)):
        ys = np.arange(np.ceil(y0 / step - 1e-6) * step, y1 + 1e-9, step)
        ax.hlines(ys, t0, t1, colors=colour, linewidth=width, zorder=0)
    ax.set_xticks(np.arange(np.ceil(t0), np.floor(t1) + 1e-9, 1.0))
    ax.set_yticks(np.arange(np.ceil(y0), np.floor(y1) + 1e-9, 1.0))
    if not time_labels:
        ax.tick_params(axis="x", labelbottom=False)
    ax.tick_params(length=2, labelsize=7)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _limits(values: np.ndarray) -> tuple[float, float]:
    """mV range of ``values`` rounded out to 0.5 mV, at least -1..1 mV, at most -5..5 mV."""
    finite = values[np.isfinite(values)]
    lo = min(-1.0, max(-5.0, float(finite.min()) - 0.2)) if finite.size else -1.0
    hi = max(1.0, min(5.0, float(finite.max()) + 0.2)) if finite.size else 1.0
    return float(np.floor(lo * 2) / 2), float(np.ceil(hi * 2) / 2)


def _draw(ax, t: np.ndarray, y: np.ndarray, fs: float, label: str | None, gap_label: str | None) -> None:
    """The trace (NaN breaks the line) and grey bands over its gaps."""
    ax.plot(t, y, color=TRACE_COLOUR, linewidth=0.7, label=label)
    first = True
    for s, e in nan_runs(y):
        ax.axvspan(
            t[s] - 0.5 / fs,
            t[e - 1] + 0.5 / fs,
            color=GAP_COLOUR,
            alpha=0.35,
            linewidth=0,
            label=gap_label if first else None,
        )
        first = False


def plot_ecg(
    signal: np.ndarray,
    fs: float,
    lead_names: Sequence[str],
    path: str | os.PathLike | None = None,
    *,
    style: str = "rows",
    title: str | None = None,
    dpi: int = 100,
):
    """Draw ``signal`` ((num_samples, num_leads) mV, NaN = not read) at ``fs`` Hz; save a PNG to ``path`` when
    given. Returns the matplotlib ``Figure``. ``style``: ``"rows"`` (one lead per row) or ``"3x4+1"``."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}, got {style!r}")
    sig = np.asarray(signal, dtype=np.float64)
    names = list(lead_names)
    if sig.ndim != 2 or sig.shape[1] != len(names):
        raise ValueError(f"signal shape {sig.shape} does not match {len(names)} lead names")
    n = sig.shape[0]
    t = np.arange(n) / float(fs)
    t_end = n / float(fs)
    canon = {name.upper(): j for j, name in enumerate(names)}
    if style == "rows":
        fig = Figure(figsize=(max(8.0, 1.1 * t_end + 1.5), 1.05 * len(names) + 1.0), dpi=dpi)
        axes = fig.subplots(len(names), 1, sharex=True, squeeze=False)[:, 0]
        y0, y1 = _limits(sig)
        for j, (ax, name) in enumerate(zip(axes, names)):
            _paper(ax, 0.0, t_end, y0, y1, time_labels=j == len(names) - 1)
            _draw(ax, t, sig[:, j], fs, None, "not read (NaN)")
            ax.set_ylabel(f"{name}\nmV", rotation=0, ha="right", va="center", fontsize=8)
        axes[-1].set_xlabel("time (s)", fontsize=8)
    else:
        rows = [list(r) for r in GRID_3X4] + [[RHYTHM_LEAD]]
        fig = Figure(figsize=(max(8.0, 1.1 * t_end + 1.5), 9.0), dpi=dpi)
        axes = fig.subplots(len(rows), 1, sharex=True, squeeze=False)[:, 0]
        y0, y1 = _limits(sig)
        for r, (ax, row) in enumerate(zip(axes, rows)):
            _paper(ax, 0.0, t_end, y0, y1, time_labels=r == len(rows) - 1)
            rhythm = len(row) == 1
            for c, name in enumerate(row):
                j = canon.get(name.upper())
                a, b = (0, n) if rhythm else (int(round(c * n / len(row))), int(round((c + 1) * n / len(row))))
                if j is not None:
                    _draw(ax, t[a:b], sig[a:b, j], fs, None, "not read (NaN)")
                ax.text(t[a] + 0.05, y1 - 0.1 * (y1 - y0), name, fontsize=8, va="top")
                if c:
                    ax.axvline(t[a], color="#404040", linewidth=0.8)
            ax.set_ylabel("mV", fontsize=8)
        axes[-1].set_xlabel("time (s)", fontsize=8)
    handles = [
        Patch(color=TRACE_COLOUR, label="digitized signal"),
        Patch(color=GAP_COLOUR, alpha=0.35, label="not read (NaN)"),
    ]
    fig.legend(handles=handles, loc="upper right", fontsize=8, frameon=False, ncol=2)
    fig.suptitle(title or "digitized 12-lead ECG", x=0.02, ha="left", fontsize=10)
    fig.text(
        0.02,
        0.965,
        f"{fs:g} Hz, {t_end:g} s; grid 0.2 s x 0.5 mV (small squares 0.04 s x 0.1 mV)",
        fontsize=7,
        ha="left",
        va="top",
    )
    fig.subplots_adjust(left=0.07, right=0.99, top=0.94 if style == "rows" else 0.92, bottom=0.05, hspace=0.08)
    if path is not None:
        fig.savefig(Path(path), dpi=dpi)
    return fig
