"""Reading Challenge records (WFDB header, signal, labels, images) for training and inference.

Only the official ``helper_code`` functions are used, so the organisers' copy of that file works too.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import numpy as np

import helper_code as hc
from ecgentry.safe_paths import inside, require_inside
from ecgvocab import STANDARD_LEADS, lead_index

logger = logging.getLogger(__name__)


@dataclass
class RecordInfo:
    """One training record: its path (without extension), header facts and what it carries."""

    record: str
    fs: float
    num_samples: int
    lead_names: list[str]
    labels: list[str]
    image_files: list[str] = field(default_factory=list)  # absolute paths of image files that exist
    has_signal: bool = False


def header_facts(header: str) -> tuple[float, int, list[str]]:
    """``(fs Hz, num_samples, lead names)`` from a header text; ValueError when unusable."""
    fs = float(hc.get_sampling_frequency(header))
    num_samples = int(hc.get_num_samples(header))
    names = list(hc.get_signal_names(header))
    if not np.isfinite(fs) or fs <= 0:
        raise ValueError(f"bad sampling frequency {fs!r}")
    if num_samples < 0:
        raise ValueError(f"bad number of samples {num_samples!r}")
    return fs, num_samples, names


def read_header(record: str) -> str:
    """The header text of ``record`` (a path without ``.hea``); :class:`~ecgentry.safe_paths.OutsideFolder` when
    the header file is a symlink pointing out of the record's folder."""
    header_file = record if record.endswith(".hea") else record + ".hea"
    require_inside(os.path.dirname(header_file) or ".", os.path.basename(header_file), record, "header")
    return hc.load_header(record)


def record_image_files(record: str, header: str) -> list[str]:
    """Paths of the images named on the header's ``# Image:`` lines that exist on disk inside the record's folder
    (names leaving the folder are skipped with a warning)."""
    folder = os.path.dirname(record) or "."
    try:
        names = hc.get_image_files_from_header(header)
    except Exception:  # an organiser helper without the function, or no Image line
        names = []
    paths = [os.path.join(folder, n) for n in names if inside(folder, n, record, "image")]
    return [p for p in paths if os.path.isfile(p)]


def record_signal_files(record: str, header: str) -> list[str] | None:
    """Paths of the header's signal files, all inside the record's folder; None when one is not (warned)."""
    folder = os.path.dirname(record) or "."
    names = hc.get_signal_files_from_header(header) if hasattr(hc, "get_signal_files_from_header") else []
    paths = []
    for name in names:
        if inside(folder, name, record, "signal file") is None:
            return None
        paths.append(os.path.join(folder, name))
    return paths


def scan_records(data_folder: str, max_records: int | None = None) -> tuple[list[RecordInfo], list[tuple[str, str]]]:
    """Every usable record under ``data_folder`` and the ``(record, reason)`` list of skipped ones.

    A record is usable when its header parses and it has labels plus an image or a signal file.
    Raises FileNotFoundError naming the folder when it holds no records at all.
    """
    if not os.path.isdir(data_folder):
        raise FileNotFoundError(f"data folder {data_folder!r} does not exist")
    records = hc.find_records(data_folder)
    if not records:
        raise FileNotFoundError(f"no WFDB records (*.hea) found in data folder {data_folder!r}")
    infos: list[RecordInfo] = []
    skipped: list[tuple[str, str]] = []
    for rel in records:
        record = os.path.join(data_folder, rel)
        try:
            header = read_header(record)
            fs, num_samples, names = header_facts(header)
            try:
                labels = [str(x).strip() for x in hc.load_labels(record) if str(x).strip()]
            except Exception:
                labels = []
            images = record_image_files(record, header)
            has_signal = _signal_files_exist(record, header)
        except Exception as exc:  # unreadable header
            skipped.append((rel, f"unreadable header: {exc}"))
            continue
        if not labels:
            skipped.append((rel, "no labels"))
            continue
        if not images and not has_signal:
            skipped.append((rel, "neither an image nor a signal file"))
            continue
        infos.append(RecordInfo(record, fs, num_samples, names, labels, images, has_signal))
        if max_records is not None and len(infos) >= max_records:
            break
    return infos, skipped


def _signal_files_exist(record: str, header: str) -> bool:
    files = record_signal_files(record, header)
    return bool(files) and all(os.path.isfile(f) for f in files)


def standard_leads(signal: np.ndarray, lead_names: list[str]) -> np.ndarray:
    """``signal`` (num_samples, num_leads) mV -> (num_samples, 12) in STANDARD_LEADS order, NaN for absent leads.
    Names are matched case-insensitively (``AVR`` == ``aVR``); other leads are dropped."""
    out = np.full((signal.shape[0], len(STANDARD_LEADS)), np.nan, dtype=np.float64)
    for j, name in enumerate(lead_names):
        k = lead_index(name)
        if k is not None:
            out[:, k] = signal[:, j]
    return out


def load_standard_signal(info: RecordInfo) -> np.ndarray | None:
    """The record's signal as (num_samples, 12) mV in STANDARD_LEADS order, or None when unreadable or when a
    signal file named in the header lies outside the record's folder."""
    try:
        if not record_signal_files(info.record, read_header(info.record)):
            return None
        signal, _ = hc.load_signals(info.record)
    except Exception as exc:
        logger.warning("could not read the signal of %s: %s", info.record, exc)
        return None
    if signal is None:
        return None
    signal = np.asarray(signal, dtype=np.float64)
    if signal.ndim != 2 or signal.shape[1] != len(info.lead_names):
        logger.warning("signal of %s has shape %s for %d leads", info.record, signal.shape, len(info.lead_names))
        return None
    return standard_leads(signal, info.lead_names)


def resample_signal(signal: np.ndarray, fs_in: float, fs_out: float, num_samples: int) -> np.ndarray:
    """Linear-interpolation resampling of (T, L) ``signal`` from ``fs_in`` to ``fs_out`` Hz, cut or NaN-padded
    to ``num_samples``. NaN stays NaN (a sample is NaN when a neighbour it interpolates from is NaN)."""
    t_out = np.arange(num_samples) / float(fs_out)
    idx = t_out * float(fs_in)
    i0 = np.floor(idx).astype(np.int64)
    frac = idx - i0
    n = signal.shape[0]
    out = np.full((num_samples, signal.shape[1]), np.nan, dtype=np.float64)
    inside = i0 < n
    i0c = np.clip(i0, 0, max(n - 1, 0))
    i1c = np.clip(i0 + 1, 0, max(n - 1, 0))
    if n:
        a = signal[i0c]
        b = signal[i1c]
        val = a * (1 - frac)[:, None] + b * frac[:, None]
        exact = frac < 1e-9
        val[exact] = a[exact]
        out[inside] = val[inside]
    return out
