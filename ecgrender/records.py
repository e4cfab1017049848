"""Reading WFDB records into the 12 canonical leads and writing Challenge-format output records."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import wfdb

from ecgvocab import STANDARD_LEADS, canonical_lead_name, format16_fields

logger = logging.getLogger(__name__)


def _record_base(record_path: str | os.PathLike) -> str:
    """Record path without a ``.hea`` (or signal-file) extension."""
    path = str(record_path)
    for ext in (".hea", ".dat", ".mat"):
        if path.endswith(ext):
            return path[: -len(ext)]
    return path


def load_record_12(record_path: str | os.PathLike) -> tuple[np.ndarray, float, list[str], list[str]]:
    """Load a WFDB record as the 12 standard leads.

    Returns ``(signal, fs, lead_names_present, comments)``: signal (num_samples, 12) float64 in mV in
    ``STANDARD_LEADS`` order with NaN columns for missing leads; fs in Hz; the canonical names of the
    standard leads found; the header comment lines (without the leading ``#``, stripped).
    Only channels that are standard leads are read, so extra channels in missing files do not matter.
    Raises ``ValueError`` when the record has none of the 12 leads, ``OSError``/wfdb errors when unreadable.
    """
    base = _record_base(record_path)
    header = wfdb.rdheader(base)
    names = list(header.sig_name or [])
    wanted: dict[str, int] = {}
    for j, name in enumerate(names):
        canon = canonical_lead_name(name)
        if canon is not None and canon not in wanted:
            wanted[canon] = j
    if not wanted:
        raise ValueError(f"record {base} has none of the 12 standard leads (leads: {names})")
    channels = sorted(wanted.values())
    rec = wfdb.rdrecord(base, channels=channels, physical=True)
    data = np.asarray(rec.p_signal, dtype=np.float64)
    units = list(rec.units or ["mV"] * len(channels))
    num_samples = data.shape[0]
    signal = np.full((num_samples, len(STANDARD_LEADS)), np.nan)
    for k, ch in enumerate(channels):
        canon = canonical_lead_name(names[ch])
        scale = 1.0
        unit = (units[k] or "mV").strip().lower()
        if unit in ("uv", "µv", "microvolt"):
            scale = 1e-3
        elif unit in ("v", "volt"):
            scale = 1e3
        signal[:, STANDARD_LEADS.index(canon)] = data[:, k] * scale  # type: ignore[arg-type]
    comments = [c.strip() for c in (header.comments or [])]
    present = [name for name in STANDARD_LEADS if name in wanted]
    return signal, float(header.fs), present, comments


def write_challenge_record(
    out_folder: str | os.PathLike,
    record_name: str,
    signal: np.ndarray,
    fs: float,
    lead_names: Sequence[str],
    comments: Sequence[str] = (),
    image_files: Sequence[str] = (),
) -> Path:
    """Write a WFDB record (format 16, 1000/mV, baseline 0, units mV) with comment lines.

    ``signal`` (num_samples, num_leads) mV; values are clipped to +-32.767 mV and NaN is stored as the
    WFDB missing value.  Existing ``Image:`` comments are dropped and replaced by one
    ``# Image: a.png, b.png`` line when ``image_files`` is given.  Returns the header path.
    """
    out = Path(out_folder)
    out.mkdir(parents=True, exist_ok=True)
    sig = np.asarray(signal, dtype=np.float64)
    if sig.ndim != 2 or sig.shape[1] != len(lead_names):
        raise ValueError(f"signal shape {sig.shape} does not match {len(lead_names)} lead names")
    if sig.shape[0] == 0:
        raise ValueError("cannot write an empty signal")
    kept = [c for c in comments if not c.lstrip("# ").lower().startswith("image:")]
    if image_files:
        kept.append("Image: " + ", ".join(image_files))
    wfdb.wrsamp(record_name, fs=float(fs), comments=list(kept), write_dir=str(out), **format16_fields(sig, lead_names))
    return out / f"{record_name}.hea"
