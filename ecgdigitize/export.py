"""Writing a digitized signal: CSV and WFDB files (used by :mod:`ecgdigitize.api` and the ``ecg-digitize`` command).

Both take ``signal`` as ``(num_samples, num_leads)`` in mV with NaN where a lead was not read.

- CSV: a ``time_s`` column (seconds from the first sample), then one column per lead in mV with 4 decimals; an
  empty cell is NaN.
- WFDB: ``<record>.hea`` + ``<record>.dat``, format 16, 1000 ADC units per mV, baseline 0, units mV; NaN is
  stored as WFDB's missing value (-32768) and read back as NaN by ``wfdb.rdsamp``; values are clipped to
  +-32.767 mV. Comment lines go into the header (``# ...``).
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ecgvocab import format16_fields


def write_csv(path: str | os.PathLike, signal: np.ndarray, fs: float, lead_names: Sequence[str]) -> Path:
    """``time_s`` then one column per lead in mV (4 decimals), NaN as an empty cell; written atomically."""
    path = Path(path)
    sig = _check(signal, lead_names)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["time_s", *lead_names])
        for i, row in enumerate(sig):
            writer.writerow([f"{i / fs:.6f}"] + [f"{v:.4f}" if math.isfinite(v) else "" for v in row])
    os.replace(tmp, path)
    return path


def write_wfdb(
    record_path: str | os.PathLike,
    signal: np.ndarray,
    fs: float,
    lead_names: Sequence[str],
    comments: Sequence[str] = (),
) -> Path:
    """``<record_path>.hea`` and ``.dat`` (format 16, 1000/mV, NaN as the missing value); returns the header path.

    ``record_path`` is the record's path without extension (``out/page`` writes ``out/page.hea``); the record
    name must be WFDB-safe (letters, digits, ``_`` and ``-``)."""
    import wfdb

    record_path = Path(record_path)
    name = record_path.name
    if name.endswith(".hea"):
        name = name[:-4]
    if not name or not all(c.isalnum() or c in "_-" for c in name):
        raise ValueError(f"record name {name!r} is not WFDB-safe (letters, digits, '_' and '-' only)")
    folder = record_path.parent
    folder.mkdir(parents=True, exist_ok=True)
    sig = _check(signal, lead_names)
    wfdb.wrsamp(
        name,
        fs=float(fs),
        comments=[c.lstrip("# ").rstrip() for c in comments],
        write_dir=str(folder),
        **format16_fields(sig, lead_names),  # clipped to format 16's range, NaN as its missing value
    )
    return folder / f"{name}.hea"


def _check(signal: np.ndarray, lead_names: Sequence[str]) -> np.ndarray:
    sig = np.asarray(signal, dtype=np.float64)
    if sig.ndim != 2 or sig.shape[1] != len(lead_names):
        raise ValueError(f"signal shape {sig.shape} does not match {len(lead_names)} lead names")
    if sig.shape[0] == 0:
        raise ValueError("cannot write an empty signal")
    return sig
