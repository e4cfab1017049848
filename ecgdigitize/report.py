"""The JSON report of one digitized page (the ``<name>.json`` of ``ecg-digitize`` and ``DigitizedECG.report``).

Every field is described in ``docs/report.schema.json``. What to act on:

- ``status``: ``ok`` (every applicable self-check passed: use the signal), ``suspect`` (a signal was read but a check
  failed or could not be made: look at the overlay before using it) or ``failed`` (no signal, or the page is
  clearly misread: do not use it). ``status_reasons`` says why a page is not ``ok``.
- ``confidence`` (0..1): how well the page's geometry was established, the product of the scale's source (grid 1.0,
  calibration pulses 0.7, page size only 0.35), the layout fit (a template fits 1.0, else 0.5), the share of each
  row that was traced and the orientation's certainty. It ranks pages of the same status; under 0.5 the time or mV
  scale was not read from the grid, or rows were only partly traced.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

#: Meaning of each status, as written into reports and the README.
STATUS_MEANING = {
    "ok": "every applicable self-check passed: use the signal",
    "suspect": "a signal was read but a check failed or could not be made: look at the overlay before using it",
    "failed": "no signal, or the page is clearly misread: do not use it",
}


def json_safe(value: Any) -> Any:
    """``value`` with numpy scalars and arrays turned into Python ones and NaN/inf into None."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def page_status(result: Any, has_signal: bool) -> str:
    """'ok' (the self-check passed), 'suspect' (a signal, but a check failed or could not be made: look at the
    overlay) or 'failed' (no signal, or the page is clearly wrong: do not use it)."""
    if not has_signal:
        return "failed"
    return getattr(result, "status", None) or "suspect"


def page_reasons(result: Any, has_signal: bool) -> list[str]:
    """Why a page is not 'ok' (empty when it is)."""
    if not has_signal:
        warnings = list(getattr(result, "warnings", []) or [])
        return ["no signal read" + (f": {warnings[-1]}" if warnings else "")]
    return list(getattr(result, "status_reasons", []) or [])


def page_report(result: Any) -> dict[str, Any]:
    """The JSON-ready facts of a ``DigitizationResult`` (pixels of the rectified working image, mm, mV)."""
    rep: dict[str, Any] = {
        "confidence": getattr(result, "confidence", None),
        "warnings": list(getattr(result, "warnings", []) or []),
    }
    check = getattr(result, "check", None)
    if check is not None:
        rep["self_check"] = check.to_dict()
    lay = getattr(result, "layout", None)
    if lay is not None:
        rep["layout"] = {
            "name": lay.name,
            "fits": lay.fits,
            "cost": lay.cost,
            "costs": dict(lay.costs),
            "rows": len(lay.rows),
            "columns": lay.columns,
            "leads": [
                {"name": b.name, "row": b.row, "column": b.column, "t0_s": b.t0, "t1_s": b.t1, "rhythm": b.rhythm}
                for b in lay.boxes
            ],
            # the template's leads not on the image when it shows part of a page (empty for a whole page)
            "absent_leads": list(getattr(lay, "absent", []) or []),
            "labels_read": list(getattr(lay, "labels", []) or []),
            "label_evidence": list(getattr(lay, "label_evidence", []) or []),
        }
    sc = getattr(result, "scale", None)
    if sc is not None:
        rep["scale"] = {
            "px_per_mm_x": sc.px_per_mm_x,
            "px_per_mm_y": sc.px_per_mm_y,
            "source": sc.source,
            "confidence": sc.confidence,
        }
    cal = getattr(result, "calibration", None)
    if cal is not None:
        rep["calibration"] = {
            "source": cal.source,
            "gain_mm_per_mv": cal.gain_mm_per_mv,
            "mv_per_px": cal.mv_per_px,
            "pulses": len(cal.pulses),
        }
    ori = getattr(result, "orientation", None)
    if ori is not None:
        rep["orientation"] = {"angle_deg": ori.angle_deg, "quarter_turns": ori.quarter_turns, "keystone": ori.keystone}
    rep["timings_s"] = dict(getattr(result, "timings_s", {}) or {})
    return json_safe(rep)


def build_report(
    result: Any,
    signal: np.ndarray,
    fs: float,
    lead_names: list[str],
    *,
    source: str | None = None,
    page: int = 1,
    pages_in_file: int = 1,
    name: str | None = None,
    model: str = "classical",
    labels: list[str] | None = None,
    probabilities: dict[str, float] | None = None,
    outputs: list[str] | None = None,
) -> dict[str, Any]:
    """The whole page report (``docs/report.schema.json``): where the page came from, its status, the signal's
    shape and coverage, the model's labels, then :func:`page_report`'s facts and the files written."""
    finite = np.isfinite(np.asarray(signal, dtype=np.float64))
    has_signal = bool(finite.any())
    report = {
        "source": source,
        "page": page,
        "pages_in_file": pages_in_file,
        "name": name,
        "status": page_status(result, has_signal),
        "status_reasons": page_reasons(result, has_signal),
        "fs": float(fs),
        "num_samples": int(finite.shape[0]),
        "leads": list(lead_names),
        "digitized_fraction_per_lead": dict(zip(lead_names, finite.mean(axis=0).tolist())),
        "model": model,
        "labels": labels,
        "probabilities": probabilities,
        **(page_report(result) if result is not None else {}),
        "outputs": list(outputs or []),
    }
    return json_safe(report)
