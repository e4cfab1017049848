"""Training pages -> model inputs and targets; signal features of a record's true signal made to look digitized;
the rows of the Dx head's full-batch fit (:class:`DxDesign`)."""

from __future__ import annotations

import hashlib
import logging
import os
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ecgdigitize.image_io import load_image
from ecgentry.config import TrainConfig
from ecgentry.records import RecordInfo, load_standard_signal, resample_signal
from ecgentry.training.data import Example
from ecgfeatures.features import FEATURE_NAMES, extract_features, features_to_model_input
from ecgvocab import STANDARD_LEADS
from models.model import ECGMultiHeadModel
from models.segmentation import IGNORE_INDEX

logger = logging.getLogger(__name__)

FEATURE_VARIANTS = 4  # digitization-like corruptions of each training record's signal features
DIGITIZATION_LIKE_VERSION = 1  # part of the feature cache key of the corrupted true-signal rows


# Leads of each 2.5 s column of the common 3x4 printout; lead II is also printed for 10 s as the rhythm strip.
_PRINTED_COLUMNS = (("I", "II", "III"), ("aVR", "aVL", "aVF"), ("V1", "V2", "V3"), ("V4", "V5", "V6"))


def digitization_like(signal: np.ndarray, fs: float, rng: np.random.Generator) -> np.ndarray:
    """A true (N, 12) mV signal made to look digitized: with probability 0.85 only the 3x4+1 printed windows are
    kept (NaN elsewhere), then a small gain error (+-5 %), offset (+-0.05 mV), shift (+-20 ms) and noise."""
    out = np.array(signal, dtype=np.float64)
    n = out.shape[0]
    if rng.random() < 0.85:
        width = int(round(2.5 * fs))
        keep = np.zeros_like(out, dtype=bool)
        for col, leads in enumerate(_PRINTED_COLUMNS):
            for lead in leads:
                keep[col * width : (col + 1) * width, STANDARD_LEADS.index(lead)] = True
        keep[:, STANDARD_LEADS.index("II")] = True
        out[~keep] = np.nan
    shift = int(rng.integers(-int(0.02 * fs), int(0.02 * fs) + 1))
    out = np.roll(out, shift, axis=0)
    out = out * rng.uniform(0.95, 1.05) + rng.uniform(-0.05, 0.05) + rng.normal(0.0, 0.02, size=out.shape)
    return out[:n]


@dataclass
class DxDesign:
    """Rows of the Dx fit: head inputs ``x`` (M, D), the record of each row ``owners`` (M,), fit ``weights`` (M,),
    ``evals`` (M,) the rows that judge their record out of fold, and the raw signal features ``raw`` (M, E) of each
    row (for the rhythm rules)."""

    x: np.ndarray
    owners: np.ndarray
    weights: np.ndarray
    evals: np.ndarray
    raw: np.ndarray

    def __len__(self) -> int:
        return len(self.x)


class Batcher:
    """Turns examples into model inputs and targets."""

    def __init__(self, model: ECGMultiHeadModel, classes: list[str], cfg: TrainConfig, device: torch.device):
        self.model = model
        self.classes = classes
        self.cfg = cfg
        self.device = device
        self._signals: dict[str, np.ndarray | None] = {}
        self._raw_features: dict[str, np.ndarray] = {}
        self.epoch = 0  # set by the training loop: picks the feature corruption variant
        self.without_signal: set[str] = set()  # records whose signal could not be read (features all missing)
        self.feature_cache = None  # an ecgentry.digitized_training.FeatureCache (raw features on disk), or None
        self.page_rows: dict[str, np.ndarray] = {}  # record -> raw features (P, E) of its digitized own pages
        self.page_features: dict[str, np.ndarray] = {}  # image file -> raw features (E,) of that digitized page
        self.pages_failed: set[str] = set()  # records with digitized pages, none usable (fallback labels at run time)

    def _record_features(self, info: RecordInfo) -> np.ndarray:
        """Model-ready signal features of the record's true signal, corrupted like a digitized one: one of
        ``FEATURE_VARIANTS`` corruptions (computed once, cached), chosen by the epoch."""
        variants = self.feature_variants(info)
        return variants[self.epoch % len(variants)]

    def feature_variants(self, info: RecordInfo) -> np.ndarray:
        """All ``FEATURE_VARIANTS`` model-ready feature vectors (K, E) of the record (one all-missing row when the
        record has no readable signal), from the cached :meth:`raw_feature_variants`."""
        return features_to_model_input(self.raw_feature_variants(info))

    def raw_feature_variants(self, info: RecordInfo) -> np.ndarray:
        """The raw ``ecgfeatures`` values (K, E) of the record's corrupted true signal (NaN = not measured);
        computed once and cached."""
        if info.record not in self._raw_features:
            sig = load_standard_signal(info) if info.has_signal else None
            if sig is None:
                self.without_signal.add(info.record)
                feats = np.full((1, len(FEATURE_NAMES)), np.nan, np.float32)
            else:
                key = None
                if self.feature_cache is not None:
                    from ecgentry.digitized_training import feature_cache_key

                    key = feature_cache_key(
                        "true",
                        hashlib.sha256(np.ascontiguousarray(sig).tobytes()).hexdigest(),
                        info.fs,
                        self.cfg.seed,
                        os.path.basename(info.record),
                        FEATURE_VARIANTS,
                        DIGITIZATION_LIKE_VERSION,
                    )
                    feats = self.feature_cache.get(key)
                if key is None or feats is None:
                    # One generator per record (seeded by the record name): the corruption does not depend on the
                    # order records are met in, so sharded (distributed) and resumed runs see the same features.
                    rng = np.random.default_rng([self.cfg.seed + 7, zlib.crc32(os.path.basename(info.record).encode())])
                    feats = np.stack(
                        [
                            extract_features(digitization_like(sig, info.fs, rng), info.fs)
                            for _ in range(FEATURE_VARIANTS)
                        ]
                    )
                    if key is not None:
                        self.feature_cache.put(key, feats)
            self._raw_features[info.record] = feats
        return self._raw_features[info.record]

    def signal_feature_rows(self, infos: list[RecordInfo], raw: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Every feature variant of every record with a readable signal: ``(rows (M, E) float32, index into
        infos (M,))``; raw ``ecgfeatures`` values or model inputs."""
        rows: list[np.ndarray] = []
        owners: list[int] = []
        for k, info in enumerate(infos):
            variants = self.raw_feature_variants(info)
            if info.record in self.without_signal:
                continue
            rows.append(variants if raw else features_to_model_input(variants))
            owners.extend([k] * len(variants))
        if not rows:
            return np.zeros((0, len(FEATURE_NAMES)), np.float32), np.zeros(0, np.int64)
        return np.concatenate(rows).astype(np.float32), np.asarray(owners, np.int64)

    def design_rows(self, infos: list[RecordInfo], raw: bool = False) -> "DxDesign":
        """The signal-feature design of the Dx fit: per record its corrupted true-signal rows (weight 1 each) and
        the rows of its digitized own pages (together ``dx_digitized_weight`` x ``FEATURE_VARIANTS``); the rows
        that judge the record out of fold are its digitized pages when it has any, else its true-signal rows (none
        when all its pages failed: such a record gets the fallback labels at run time)."""
        rows: list[np.ndarray] = []
        owners: list[int] = []
        weights: list[float] = []
        evals: list[bool] = []
        w_dig = float(self.cfg.dx_digitized_weight)
        for k, info in enumerate(infos):
            true = self.raw_feature_variants(info)
            pages = self.page_rows.get(info.record)
            has_pages = pages is not None and len(pages) > 0
            if info.record not in self.without_signal:
                rows.append(true)
                owners += [k] * len(true)
                weights += [1.0] * len(true)
                evals += [not has_pages and info.record not in self.pages_failed] * len(true)
            if has_pages:
                rows.append(pages)
                owners += [k] * len(pages)
                weights += [w_dig * FEATURE_VARIANTS / len(pages)] * len(pages)
                evals += [True] * len(pages)
        if not rows:
            empty = np.zeros((0, len(FEATURE_NAMES)), np.float32)
            return DxDesign(empty, np.zeros(0, np.int64), np.zeros(0), np.zeros(0, bool), empty)
        raw_rows = np.concatenate(rows).astype(np.float32)
        x = raw_rows if raw else features_to_model_input(raw_rows).astype(np.float32)
        return DxDesign(
            x, np.asarray(owners, np.int64), np.asarray(weights, np.float64), np.asarray(evals, bool), raw_rows
        )

    def _page(self, ex: Example) -> np.ndarray | None:
        if ex.pixels is not None:
            return ex.pixels
        try:
            return load_image(ex.image_file)
        except Exception as exc:
            logger.warning("unreadable image %s: %s", ex.image_file, exc)
            return None

    def _signal_target(self, info: RecordInfo) -> np.ndarray:
        head = self.model.config.digitization_head
        if info.record not in self._signals:
            sig = load_standard_signal(info) if info.has_signal else None
            self._signals[info.record] = (
                None if sig is None else resample_signal(sig, info.fs, head.fs, head.max_len).T.astype(np.float32)
            )
        sig = self._signals[info.record]
        return sig if sig is not None else np.full((head.num_leads, head.max_len), np.nan, np.float32)

    def __call__(self, examples: list[Example]) -> dict[str, Any] | None:
        pages, kept = [], []
        for ex in examples:
            page = self._page(ex)
            if page is not None:
                pages.append(page)
                kept.append(ex)
        if not kept:
            return None
        pixel_values = self.model.preprocess(pages).to(self.device)
        dx = np.zeros((len(kept), len(self.classes)), np.float32)
        for i, ex in enumerate(kept):
            if not ex.dx_known:
                dx[i] = np.nan
                continue
            for label in ex.info.labels:
                if label in self.classes:
                    dx[i, self.classes.index(label)] = 1.0
        batch: dict[str, Any] = {"pixel_values": pixel_values, "dx_targets": torch.from_numpy(dx).to(self.device)}
        if self.model.dx_head is not None and self.model.dx_head.extra_features:
            unknown = features_to_model_input(np.full((1, len(FEATURE_NAMES)), np.nan, np.float32))[0]
            # a crop's Dx target is unknown (its loss is masked): its features are not computed
            extra = np.stack([self._record_features(ex.info) if ex.dx_known else unknown for ex in kept])
            extra = extra.astype(np.float32)
            batch["extra_features"] = torch.from_numpy(extra).to(self.device)
        if self.model.segmentation_head is not None and any(ex.seg_target is not None for ex in kept):
            h, w = pixel_values.shape[-2:]
            seg = np.full((len(kept), h, w), IGNORE_INDEX, np.int64)
            for i, ex in enumerate(kept):
                if ex.seg_target is not None:
                    seg[i] = ex.seg_target
            batch["seg_targets"] = torch.from_numpy(seg).to(self.device)
        if self.model.digitization_head is not None:
            sig = np.stack([self._signal_target(ex.info) for ex in kept])
            if np.isfinite(sig).any():
                batch["signal_targets"] = torch.from_numpy(sig).to(self.device)
        return batch
