"""The Python API: one call from an ECG page image to its 12-lead signal, with the page's report.

    from ecgdigitize import digitize_image

    result = digitize_image("scan.png")          # a file (PNG, JPEG, TIFF, BMP) or an (H, W, 3) uint8 array
    result.signal        # (num_samples, 12) float64, mV, NaN where a lead was not printed or not read
    result.fs            # Hz (500 by default)
    result.lead_names    # ['I', 'II', 'III', 'aVR', 'aVL', 'aVF', 'V1', ..., 'V6']
    result.layout        # '3x4+1', '3x4', '6x2', ... or None
    result.status        # 'ok' | 'suspect' | 'failed' (see ecgdigitize.report)
    result.report        # the JSON report (docs/report.schema.json)
    result.to_csv("scan.csv"); result.to_wfdb("out/scan"); result.plot("scan_plot.png")
    result.overlay("scan_overlay.png")

The classical trace map is used (no trained model needed, no labels). Everything runs on the CPU; the first page
of a process also trains the small lead-label classifier (about 8 s, once per process).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ecgvocab import STANDARD_LEADS

from .export import write_csv, write_wfdb
from .report import build_report


@dataclass
class DigitizedECG:
    """One digitized page: the signal, its sampling, the page's status and report, and the pipeline's result."""

    signal: np.ndarray
    fs: float
    lead_names: list[str]
    layout: str | None
    status: str
    status_reasons: list[str]
    confidence: float
    report: dict[str, Any]
    #: the pipeline's full :class:`ecgdigitize.pipeline.DigitizationResult` (rows, traces, scale, self-check)
    result: Any = field(repr=False, default=None)
    #: the page as read ((H, W, 3) uint8 RGB), kept for :meth:`overlay`
    image: np.ndarray | None = field(repr=False, default=None)

    @property
    def time_s(self) -> np.ndarray:
        """Time of each sample in seconds from the start of the record."""
        return np.arange(self.signal.shape[0]) / self.fs

    def to_csv(self, path: str | os.PathLike) -> Path:
        """``time_s`` then one column per lead in mV; NaN is an empty cell. Returns the path."""
        return write_csv(path, self.signal, self.fs, self.lead_names)

    def to_wfdb(self, record_path: str | os.PathLike, comments: Sequence[str] = ()) -> Path:
        """``<record_path>.hea`` + ``.dat`` (format 16, 1000/mV, NaN as WFDB's missing value). Returns the header's
        path. The record's name (the last part of ``record_path``) must be letters, digits, ``_`` or ``-``."""
        return write_wfdb(record_path, self.signal, self.fs, self.lead_names, comments)

    def plot(self, path: str | os.PathLike | None = None, style: str = "rows", title: str | None = None):
        """A 12-lead plot (``"rows"``: one lead per row, or ``"3x4+1"``), saved as PNG when ``path`` is given;
        returns the matplotlib Figure."""
        from .plot import plot_ecg

        if title is None:
            name = self.report.get("name") or "digitized 12-lead ECG"
            title = f"{name}: status {self.status}, layout {self.layout or 'unknown'}"
        return plot_ecg(self.signal, self.fs, self.lead_names, path, style=style, title=title)

    def overlay(self, path: str | os.PathLike | None = None) -> np.ndarray:
        """What was traced drawn over the page, with a legend and the status in a margin above it ((H, W, 3)
        uint8 RGB); saved as PNG when ``path`` is given."""
        from .overlay import draw_overlay

        if self.result is None or (self.image is None and getattr(self.result, "rectified", None) is None):
            raise ValueError("this result keeps no page image to draw on")
        picture = draw_overlay(self.image, self.result)
        if path is not None:
            from PIL import Image

            Image.fromarray(picture).save(path)
        return picture


def digitize_array(
    image: np.ndarray,
    *,
    fs: float = 500.0,
    seconds: float = 10.0,
    layout: str = "auto",
    paper_speed: float | None = None,
    gain: float = 10.0,
    lead_names: Sequence[str] | None = None,
    trace_prob: np.ndarray | None = None,
    name: str | None = None,
    source: str | None = None,
    page: int = 1,
    pages_in_file: int = 1,
    keep_image: bool = True,
) -> DigitizedECG:
    """Digitize a page given as an (H, W, 3) uint8 RGB array (greyscale, RGBA, 16-bit and float accepted).

    fs, seconds: the output's sampling rate (Hz) and length (s). layout: ``"auto"`` or a template name
    (``3x4+1``, ``3x4+3``, ``3x4``, ``6x2``, ``12x1``). paper_speed: mm/s (None: 50 when the calibration pulses
    are 10 mm wide, else 25). gain: nominal mm/mV when no standard calibration pulse is found. trace_prob: an
    optional (H, W) trace probability in [0, 1] (e.g. from a segmentation network) instead of the classical map.
    Never raises for an unreadable page: its status is ``failed`` and the signal NaN."""
    from .pipeline import digitize_page

    if not (np.isfinite(fs) and fs > 0 and np.isfinite(seconds) and seconds > 0):
        raise ValueError(f"fs and seconds must be positive, got fs={fs}, seconds={seconds}")
    names = list(STANDARD_LEADS if lead_names is None else lead_names)
    num_samples = max(1, int(round(fs * seconds)))
    result = digitize_page(
        image,
        trace_prob,
        fs=float(fs),
        num_samples=num_samples,
        lead_names=names,
        layout=layout,
        paper_speed=paper_speed,
        gain=float(gain),
    )
    return from_result(
        result, image if keep_image else None, name=name, source=source, page=page, pages_in_file=pages_in_file
    )


def from_result(
    result: Any,
    image: np.ndarray | None = None,
    *,
    signal: np.ndarray | None = None,
    name: str | None = None,
    source: str | None = None,
    page: int = 1,
    pages_in_file: int = 1,
    model: str = "classical",
    labels: list[str] | None = None,
    probabilities: dict[str, float] | None = None,
    outputs: list[str] | None = None,
) -> DigitizedECG:
    """A :class:`DigitizedECG` from the pipeline's ``DigitizationResult`` (``signal`` overrides its signal, e.g.
    the signal a model's entry returned). The signal is clipped to +-30 mV."""
    sig = np.clip(np.asarray(result.signal if signal is None else signal, dtype=np.float64), -30.0, 30.0)
    names = list(result.lead_names)
    report = build_report(
        result,
        sig,
        result.fs,
        names,
        source=source,
        page=page,
        pages_in_file=pages_in_file,
        name=name,
        model=model,
        labels=labels,
        probabilities=probabilities,
        outputs=outputs,
    )
    layout = result.layout.name if getattr(result, "layout", None) is not None else None
    return DigitizedECG(
        signal=sig,
        fs=float(result.fs),
        lead_names=names,
        layout=layout,
        status=report["status"],
        status_reasons=list(report["status_reasons"]),
        confidence=float(result.confidence or 0.0),
        report=report,
        result=result,
        image=image,
    )


def digitize_image(
    source: str | os.PathLike | np.ndarray,
    *,
    page: int = 1,
    fs: float = 500.0,
    seconds: float = 10.0,
    layout: str = "auto",
    paper_speed: float | None = None,
    gain: float = 10.0,
    lead_names: Sequence[str] | None = None,
) -> DigitizedECG:
    """Digitize one ECG page: an image file (PNG, JPEG, TIFF, BMP; ``page`` picks a page of a multi-page TIFF,
    from 1) or an (H, W, 3) uint8 RGB array. See :func:`digitize_array` for the other arguments.

    The file is sized from its header before it is decoded: pages over 150 Mpx are refused
    (``ecgdigitize.image_io.ImageRefused``, also raised for a file that is no readable image), and pages of 8000 px
    or more are decoded reduced. A page that is read but cannot be digitized is not an error: its ``status`` is
    ``failed``."""
    if isinstance(source, np.ndarray):
        return digitize_array(
            source, fs=fs, seconds=seconds, layout=layout, paper_speed=paper_speed, gain=gain, lead_names=lead_names
        )
    from .image_io import iter_pages, read_image_header

    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"no such image file: {path}")
    frames = read_image_header(path).frames
    if not 1 <= page <= frames:
        raise ValueError(f"{path.name} has {frames} page(s); page {page} asked")
    pages = iter_pages(path, max_pages=page)
    try:
        for _ in range(page):
            image = next(pages)
    finally:
        pages.close()
    return digitize_array(
        image,
        fs=fs,
        seconds=seconds,
        layout=layout,
        paper_speed=paper_speed,
        gain=gain,
        lead_names=lead_names,
        name=path.stem if frames == 1 else f"{path.stem}-p{page}",
        source=str(path.resolve()),
        page=page,
        pages_in_file=frames,
    )
