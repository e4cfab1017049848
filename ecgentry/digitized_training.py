"""Training records' own pages, digitized as the entry will digitize test pages, and cached by image content.

The Dx head and the rhythm-rule cut-offs are fitted on the features of these digitized signals (``TrainConfig.
dx_digitized_pages``), so that what they learn is what they will see. A page is digitized by
``ecgdigitize.pipeline.digitize_page`` with the classical trace map (the reading the ``per-page`` and
``classical`` trace sources start from; a learned map is not trained yet when the cache is filled, and a cache
independent of the model survives a retraining) at the record's sampling rate and length, the 12 standard leads.

Cache: one ``.npz`` per page in a cache folder (by default ``MODEL/digitized_pages/``), named by the sha256 of the
image's bytes, the digitizer's version (a digest of the ``ecgdigitize`` sources) and the reading's parameters
(fs, samples): a rerun, a resumed training or another model trained on the same pages reads the cache instead of
digitizing again; a changed image or digitizer is a miss. Each entry holds the signal (float32, NaN where not
printed) and the page's self-check (``SelfCheck.to_dict()``). Misses run in worker processes
(:mod:`ecgentry.parallel`), each with one thread and the lead-label classifier loaded once.

Raw signal features are cached beside (``features/``), keyed by what they are computed from and a digest of the
feature code (:func:`feature_cache_key`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ecgvocab import STANDARD_LEADS

logger = logging.getLogger(__name__)

CACHE_FOLDER = "digitized_pages"
#: The shared vocabulary (lead names and their matching) that the digitizer and the features read.
VOCABULARY_SOURCES: tuple[str, ...] = ("ecgvocab/leads.py",)


def _sources_digest(package: str, extra: Sequence[str] = ()) -> str:
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    files = sorted((root / package).glob("*.py")) + [root / e for e in extra]
    for f in files:
        if f.is_file():
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


@lru_cache(maxsize=None)
def digitizer_version() -> str:
    """A digest of the ``ecgdigitize`` package's sources and the lead vocabulary: a changed digitizer invalidates
    cached pages."""
    return _sources_digest("ecgdigitize", VOCABULARY_SOURCES)


@lru_cache(maxsize=None)
def features_version() -> str:
    """A digest of the ``ecgfeatures`` package's sources (features and trust rules) and the lead vocabulary."""
    return _sources_digest("ecgfeatures", VOCABULARY_SOURCES)


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def page_key(image_sha256: str, fs: float, num_samples: int) -> str:
    """Cache key of one page's reading."""
    text = f"{image_sha256}|{digitizer_version()}|classical|{float(fs):.6g}|{int(num_samples)}"
    return hashlib.sha256(text.encode()).hexdigest()[:40]


@dataclass
class DigitizedPage:
    """One training page's reading: ``signal`` (num_samples, 12) mV in :data:`STANDARD_LEADS` order, NaN where not
    printed; ``check`` the self-check dict (None when nothing was read); ``status``; ``key`` its cache key."""

    image_file: str
    record: str
    fs: float
    signal: np.ndarray | None
    check: dict[str, Any] | None
    key: str
    seconds: float = 0.0
    cached: bool = False
    error: str = ""

    @property
    def status(self) -> str:
        from ecgfeatures.trust import check_status

        return check_status(self.check) if self.signal is not None else "failed"


@dataclass
class DigitizeStats:
    pages: int = 0
    hits: int = 0
    misses: int = 0
    failed: int = 0
    seconds_digitizing: float = 0.0  # sum over misses of the seconds one page took in its worker
    wall_seconds: float = 0.0
    workers: int = 1
    status_counts: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["seconds_per_page"] = round(self.seconds_digitizing / self.misses, 2) if self.misses else None
        d["seconds_digitizing"] = round(self.seconds_digitizing, 1)
        d["wall_seconds"] = round(self.wall_seconds, 1)
        return d


def _cache_file(cache_dir: str, key: str) -> str:
    return os.path.join(cache_dir, key[:2], key + ".npz")


def _write_entry(
    path: str, signal: np.ndarray | None, check: dict[str, Any] | None, seconds: float, error: str
) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    meta = json.dumps({"check": check, "seconds": seconds, "error": error, "has_signal": signal is not None})
    tmp = f"{path}.{os.getpid()}.tmp.npz"
    np.savez_compressed(
        tmp, signal=np.zeros((0, 12), np.float32) if signal is None else signal.astype(np.float32), meta=np.array(meta)
    )
    os.replace(tmp, path)


def _read_entry(path: str) -> tuple[np.ndarray | None, dict[str, Any] | None, float, str] | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            signal = z["signal"].astype(np.float64) if meta.get("has_signal") else None
    except Exception:  # noqa: BLE001 - a damaged entry is a miss
        return None
    return signal, meta.get("check"), float(meta.get("seconds", 0.0)), str(meta.get("error", ""))


def _init_worker(classifier_folder: str) -> None:
    from ecgdigitize import lead_labels
    from ecgentry.parallel import limit_threads

    limit_threads(1)
    if classifier_folder:
        lead_labels.load_classifier(classifier_folder)


def _digitize_task(task: tuple[str, float, int, str]) -> tuple[str, float]:
    """Digitize one page and write its cache entry; returns (status, seconds). Never raises."""
    image_file, fs, num_samples, path = task
    t0 = time.perf_counter()
    signal, check, error = None, None, ""
    try:
        from ecgdigitize.image_io import load_image
        from ecgdigitize.pipeline import digitize_page

        result = digitize_page(
            load_image(image_file), None, fs=fs, num_samples=num_samples, lead_names=list(STANDARD_LEADS)
        )
        signal = np.asarray(result.signal, np.float64)
        check = result.check.to_dict() if result.check is not None else None
        status = result.status
    except Exception as exc:  # noqa: BLE001 - a page that cannot be read is a failed page
        error = f"{type(exc).__name__}: {exc}"
        status = "failed"
    seconds = time.perf_counter() - t0
    _write_entry(path, signal, check, seconds, error)
    return status, seconds


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def digitize_training_pages(
    pages: Sequence[tuple[str, str, float, int]], cache_dir: str, workers: int = 0, progress: bool = False
) -> tuple[list[DigitizedPage], DigitizeStats]:
    """Read every page ``(record, image file, fs, num_samples)`` from the cache or by digitizing it (misses in
    ``workers`` processes; 0: :func:`default_workers`). Returns the pages in the given order and the counts."""
    t0 = time.time()
    workers = int(workers) if workers and int(workers) > 0 else default_workers()
    stats = DigitizeStats(pages=len(pages), workers=workers)
    keys: list[str] = []
    for record, image_file, fs, num_samples in pages:
        try:
            keys.append(page_key(file_sha256(image_file), fs, num_samples))
        except OSError as exc:
            logger.warning("training page %s unreadable: %s", image_file, exc)
            keys.append("")
    todo = []
    for (record, image_file, fs, num_samples), key in zip(pages, keys):
        if key and not os.path.isfile(_cache_file(cache_dir, key)):
            todo.append((image_file, float(fs), int(num_samples), _cache_file(cache_dir, key)))
    todo = list({t[3]: t for t in todo}.values())  # identical pages are read once
    stats.misses = len(todo)
    stats.hits = sum(1 for k in keys if k) - len(todo)
    if todo:
        from ecgdigitize import lead_labels
        from ecgentry.parallel import WorkerCrashed, run_tasks

        os.makedirs(cache_dir, exist_ok=True)
        lead_labels.save_classifier(cache_dir)  # trained once here, loaded by every worker
        logger.info(
            "digitizing %d training pages (%d cached) with %d worker(s)", len(todo), stats.hits, min(workers, len(todo))
        )
        for i, res in run_tasks(
            _digitize_task,
            todo,
            workers,
            _init_worker,
            (cache_dir,),
            progress="digitizing training pages" if progress else None,
        ):
            if isinstance(res, WorkerCrashed) or not isinstance(res, tuple):
                _write_entry(todo[i][3], None, None, 0.0, "worker crashed")
                continue
            stats.seconds_digitizing += float(res[1])
    out: list[DigitizedPage] = []
    for (record, image_file, fs, num_samples), key in zip(pages, keys):
        entry = _read_entry(_cache_file(cache_dir, key)) if key else None
        if entry is None:
            page = DigitizedPage(image_file, record, float(fs), None, None, key, error="unreadable")
        else:
            signal, check, seconds, error = entry
            page = DigitizedPage(image_file, record, float(fs), signal, check, key, seconds, cached=True, error=error)
        stats.status_counts[page.status] = stats.status_counts.get(page.status, 0) + 1
        stats.failed += page.status == "failed"
        out.append(page)
    stats.wall_seconds = time.time() - t0
    return out, stats


# ------------------------------------------------------------------------------------------------------------
# feature cache
def feature_cache_key(*parts: Any) -> str:
    """Key of a cached feature array: the parts (what it is computed from) and :func:`features_version`."""
    text = "|".join(str(p) for p in parts) + "|" + features_version()
    return hashlib.sha256(text.encode()).hexdigest()[:40]


class FeatureCache:
    """Raw feature arrays on disk (``folder/features/<key>.npy``); a no-op when ``folder`` is empty."""

    def __init__(self, folder: str | None):
        self.folder = os.path.join(folder, "features") if folder else ""

    def get(self, key: str) -> np.ndarray | None:
        if not self.folder:
            return None
        path = os.path.join(self.folder, key + ".npy")
        try:
            return np.load(path, allow_pickle=False)
        except Exception:  # noqa: BLE001 - absent or damaged: a miss
            return None

    def put(self, key: str, value: np.ndarray) -> None:
        if not self.folder:
            return
        os.makedirs(self.folder, exist_ok=True)
        path = os.path.join(self.folder, key + ".npy")
        tmp = f"{path}.{os.getpid()}.tmp.npy"
        np.save(tmp, np.asarray(value, np.float32))
        os.replace(tmp, path)


def page_raw_features(page: DigitizedPage, cache: FeatureCache | None = None) -> np.ndarray | None:
    """Raw ``ecgfeatures`` values (E,) of a digitized page, untrusted leads NaN; None for a failed page."""
    from ecgfeatures.features import extract_features
    from ecgfeatures.trust import page_usable, trusted_signal

    if page.signal is None or not page_usable(page.check):
        return None
    key = feature_cache_key("page", page.key)
    if cache is not None:
        hit = cache.get(key)
        if hit is not None:
            return hit
    values = extract_features(trusted_signal(page.signal, STANDARD_LEADS, page.check), page.fs).astype(np.float32)
    if cache is not None:
        cache.put(key, values)
    return values
