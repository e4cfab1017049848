"""Training the shared multi-head model from a Challenge data folder (what ``team_code.train_models`` runs).

Per record: its own images train the Dx head (and the regression digitization head when enabled); its
signal, when present, is rendered into extra pages with pixel-exact masks (``ecgrender``) that train the
segmentation digitization head and the Dx head. Records with labels but no image are used through
rendered pages; records with images but no signal through their images.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ecgdigitize import lead_labels
from ecgdigitize.image_io import load_image
from ecgfeatures.features import FEATURE_NAMES, extract_features, features_to_model_input
from ecgentry import checkpoint as ckpt
from ecgentry import distributed as ddp_utils
from ecgentry.config import TrainConfig
from ecgentry.records import RecordInfo, load_standard_signal, resample_signal, scan_records
from ecgvocab import STANDARD_LEADS, sort_classes
from models.config import DigitizationHeadConfig, DxHeadConfig, LossConfig, ModelConfig
from models.model import ECGMultiHeadModel, build_model

logger = logging.getLogger(__name__)

ENTRY_FILE = "entry.json"
MODEL_SUBFOLDER = "model"
IGNORE_INDEX = 255
FEATURE_VARIANTS = 4  # digitization-like corruptions of each training record's signal features
MIN_POSITIVES_TO_TUNE = 3  # classes with fewer validation positives keep the 0.5 threshold
ENV_STOP_AFTER_EPOCHS = "ECG_STOP_AFTER_EPOCHS"  # stop (as if killed) once this many epochs are checkpointed
ENV_TRAIN_TRACE_DIR = "ECG_TRAIN_TRACE_DIR"  # diagnostics: each rank writes the examples it saw and a weight digest
# Configuration keys that may differ between a checkpoint and the run resuming it (they do not change training).
RESUMABLE_CHANGES = ("device", "num_threads", "trace_source", "trace_source_pages", "digitizer", "dx_digitize_workers",
                     "dx_page_cache")
DIGITIZATION_LIKE_VERSION = 1  # part of the feature cache key of the corrupted true-signal rows


class TrainingInterrupted(RuntimeError):
    """Raised after the checkpoint of epoch ``$ECG_STOP_AFTER_EPOCHS`` (a simulated kill, for tests)."""


@dataclass
class Example:
    """One training input page: a record image file, or a page rendered in memory (letterboxed)."""

    info: RecordInfo
    image_file: str | None = None
    pixels: np.ndarray | None = None  # (H, W, 3) uint8, already letterboxed to the model input
    seg_target: np.ndarray | None = None  # (H, W) uint8 classes, 255 = ignore
    dx_known: bool = True  # False: a crop of a page, no Dx target (NaN)


def order_classes(labels: list[list[str]]) -> list[str]:
    """Classes seen in the training labels: the 11 final classes in their canonical order first, then others
    (e.g. the early binary ``Normal``/``Abnormal`` set) sorted."""
    return sort_classes(label for record_labels in labels for label in record_labels)


def split_by_record(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of training and validation records (at least one validation record when n >= 5)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    n_val = int(round(n * val_fraction)) if n >= 5 else 0
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def positive_weights(labels: list[list[str]], classes: list[str], limit: float = 10.0) -> list[float]:
    """BCE positive weight per class: negatives / positives, clipped to [1, ``limit``] (rare classes count more)."""
    n = len(labels)
    weights = []
    for c in classes:
        pos = sum(c in record_labels for record_labels in labels)
        weights.append(float(np.clip((n - pos) / max(pos, 1), 1.0, limit)))
    return weights


def build_model_config(cfg: TrainConfig, classes: list[str], pos_weight: list[float] | None = None,
                       pretrained: bool = True) -> ModelConfig:
    """The model configuration for these classes (``pretrained``: were pre-trained backbone weights found;
    with ``dx_use_image="auto"`` the Dx head uses image features only then)."""
    dig = DigitizationHeadConfig(kind="regression") if cfg.regression else None
    seg = None
    if cfg.segmentation:
        from models.segmentation import SegmentationHeadConfig

        seg = SegmentationHeadConfig(decoder_channels=cfg.segmentation_decoder_channels,
                                     input_mode=cfg.segmentation_input)
    return ModelConfig(
        backbone=cfg.backbone,
        dx_head=DxHeadConfig(classes=classes, hidden_sizes=list(cfg.dx_hidden_sizes), dropout=cfg.dx_dropout,
                             extra_features=len(FEATURE_NAMES) if cfg.signal_features else 0,
                             standardize=bool(cfg.dx_standardize),
                             use_image=cfg.dx_use_image is True or (cfg.dx_use_image == "auto" and pretrained)),
        digitization_head=dig,
        segmentation_head=seg,
        loss=LossConfig(digitization_weights=dict(cfg.digitization_losses), balancing=cfg.balancing,
                        pos_weight=pos_weight),
        lead_names=list(STANDARD_LEADS),
    )


def render_training_pages(
    model: ECGMultiHeadModel, infos: list[RecordInfo], cfg: TrainConfig, rng: np.random.Generator, limit: int
) -> list[Example]:
    """Pages rendered from the records' signals (random page specs and ``cfg.render_preset`` distortions),
    letterboxed to the model input, with segmentation targets from the renderer's class masks. For a head with
    ``input_mode="tiles"``: ``cfg.crops_per_page`` native-resolution crops of each page instead (segmentation
    targets only: a crop shows no whole record, so its Dx targets are unknown)."""
    from ecgrender.distort import apply_preset
    from ecgrender.page import PageSpec, render_page
    from models.backbone import letterbox
    from models.segmentation import random_training_crops, target_from_class_mask

    h, w = model.backbone.image_height, model.backbone.image_width
    tiles = model.config.segmentation_head is not None and model.config.segmentation_head.input_mode == "tiles"
    out: list[Example] = []
    for info in infos:
        if len(out) >= limit:
            break
        if not info.has_signal:
            continue
        signal = load_standard_signal(info)
        if signal is None or not np.isfinite(signal).any():
            continue
        for _ in range(cfg.pages_per_record):
            seed = int(rng.integers(2**31))
            try:
                spec = PageSpec.random(seed)
                page = render_page(signal, info.fs, list(STANDARD_LEADS), spec, rng=seed)
                page = apply_preset(page, cfg.render_preset, rng=seed + 1)
            except Exception as exc:  # a record the renderer cannot draw: skip, keep training
                logger.warning("rendering %s failed: %s", info.record, exc)
                break
            if tiles:
                crops = random_training_crops(page.image, page.class_mask, h, w, cfg.crops_per_page, rng)
                out.extend(Example(info=info, pixels=p, seg_target=t, dx_known=False) for p, t in crops)
                continue
            pixels, transform = letterbox(page.image, h, w)
            target = target_from_class_mask(page.class_mask, transform, h, w).astype(np.uint8)
            out.append(Example(info=info, pixels=pixels, seg_target=target))
    return out


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
                keep[col * width:(col + 1) * width, STANDARD_LEADS.index(lead)] = True
        keep[:, STANDARD_LEADS.index("II")] = True
        out[~keep] = np.nan
    shift = int(rng.integers(-int(0.02 * fs), int(0.02 * fs) + 1))
    out = np.roll(out, shift, axis=0)
    out = out * rng.uniform(0.95, 1.05) + rng.uniform(-0.05, 0.05) + rng.normal(0.0, 0.02, size=out.shape)
    return out[:n]


class _Batcher:
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

                    key = feature_cache_key("true", hashlib.sha256(np.ascontiguousarray(sig).tobytes()).hexdigest(),
                                            info.fs, self.cfg.seed, os.path.basename(info.record), FEATURE_VARIANTS,
                                            DIGITIZATION_LIKE_VERSION)
                    feats = self.feature_cache.get(key)
                if key is None or feats is None:
                    # One generator per record (seeded by the record name): the corruption does not depend on the
                    # order records are met in, so sharded (distributed) and resumed runs see the same features.
                    rng = np.random.default_rng([self.cfg.seed + 7,
                                                 zlib.crc32(os.path.basename(info.record).encode())])
                    feats = np.stack([extract_features(digitization_like(sig, info.fs, rng), info.fs)
                                      for _ in range(FEATURE_VARIANTS)])
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
        return DxDesign(x, np.asarray(owners, np.int64), np.asarray(weights, np.float64), np.asarray(evals, bool),
                        raw_rows)

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


def attach_digitized_pages(batcher: "_Batcher", infos: list[RecordInfo], cfg: TrainConfig, model_folder: str,
                           ctx: ddp_utils.DistContext | None = None, verbose: bool = False) -> dict[str, Any]:
    """Digitize (or read from the cache) every own page of ``infos`` and give the batcher their raw features
    (pages whose digitization failed are left out; leads the self-check blames are NaN). Returns the counts
    for the training summary. Under several ranks the main rank digitizes, the others read its cache."""
    from ecgentry.digitized_training import (CACHE_FOLDER, FeatureCache, digitize_training_pages,
                                             page_raw_features)

    cache_dir = cfg.dx_page_cache or os.path.join(model_folder, CACHE_FOLDER)
    batcher.feature_cache = FeatureCache(cache_dir)
    pages = [(i.record, f, i.fs, i.num_samples) for i in infos for f in i.image_files]
    if not pages:
        return {"pages": 0}
    t0 = time.time()
    if ctx is not None and ctx.enabled and not ctx.is_main:
        ctx.barrier()
        digitized, stats = digitize_training_pages(pages, cache_dir, 1)
    else:
        digitized, stats = digitize_training_pages(pages, cache_dir, cfg.dx_digitize_workers, progress=verbose)
        if ctx is not None and ctx.enabled:
            ctx.barrier()
    t_features = time.time()
    per_record: dict[str, list[np.ndarray]] = {}
    for page in digitized:
        values = page_raw_features(page, batcher.feature_cache)
        if values is None:
            continue
        batcher.page_features[page.image_file] = values
        per_record.setdefault(page.record, []).append(values)
    batcher.page_rows = {r: np.stack(v).astype(np.float32) for r, v in per_record.items()}
    batcher.pages_failed = {p.record for p in digitized} - set(per_record)
    out = stats.to_dict()
    out["records_with_pages"] = len(batcher.page_rows)
    out["feature_seconds"] = round(time.time() - t_features, 1)
    out["total_seconds"] = round(time.time() - t0, 1)
    logger.info("training pages digitized: %s", out)
    return out


def _labels_matrix(infos: list[RecordInfo], classes: list[str]) -> np.ndarray:
    """Multi-hot targets (len(infos), C) float32."""
    return np.array([[c in i.labels for c in classes] for i in infos], dtype=np.float32).reshape(len(infos), len(classes))


def dx_design(model: ECGMultiHeadModel, batcher: _Batcher, infos: list[RecordInfo], examples: list[Example],
              cfg: TrainConfig, device: torch.device) -> DxDesign:
    """Input rows of the Dx head for a full-batch fit (:class:`DxDesign`).

    Signal-features-only head: :meth:`_Batcher.design_rows` (digitization-like feature variants of every record
    with a readable signal, plus its digitized own pages). Head with image features: one row per page of
    ``examples`` (the records' own and rendered pages) and feature variant, the pooled features coming from the
    trained backbone (eval mode); an own page that was digitized adds one row with its digitized features."""
    head = model.dx_head
    if not head.use_image:
        return batcher.design_rows(infos)
    index = {i.record: k for k, i in enumerate(infos)}
    rows: list[np.ndarray] = []
    owners: list[int] = []
    weights: list[float] = []
    evals: list[bool] = []
    raws: list[np.ndarray] = []
    nan_row = np.full(len(FEATURE_NAMES), np.nan, np.float32)
    model.eval()
    for start in range(0, len(examples), cfg.batch_size):
        group = examples[start:start + cfg.batch_size]
        pages, kept = [], []
        for ex in group:
            page = batcher._page(ex)
            if page is not None and ex.dx_known and ex.info.record in index:
                pages.append(page)
                kept.append(ex)
        if not kept:
            continue
        with torch.no_grad():
            feats = model.backbone(model.preprocess(pages).to(device))
            digitized = [batcher.page_features.get(ex.image_file) if ex.image_file else None for ex in kept]
            judged = [ex.info.record in batcher.pages_failed
                      or any(batcher.page_features.get(f) is not None for f in ex.info.image_files) for ex in kept]
            if head.extra_features:
                raw_variants = [batcher.raw_feature_variants(ex.info) for ex in kept]
                for v in range(max(len(x) for x in raw_variants)):
                    raw = np.stack([x[v % len(x)] for x in raw_variants]).astype(np.float32)
                    extra = features_to_model_input(raw).astype(np.float32)
                    rows.append(head.inputs(feats, torch.from_numpy(extra).to(device)).float().cpu().numpy())
                    owners.extend(index[ex.info.record] for ex in kept)
                    weights.extend([1.0] * len(kept))
                    evals.extend(not j for j in judged)
                    raws.append(raw)
                sel = [i for i, d in enumerate(digitized) if d is not None]
                if sel and cfg.dx_digitized_weight > 0:
                    raw = np.stack([digitized[i] for i in sel]).astype(np.float32)
                    extra = torch.from_numpy(features_to_model_input(raw).astype(np.float32)).to(device)
                    rows.append(head.inputs(feats[sel] if torch.is_tensor(feats) else [f[sel] for f in feats],
                                            extra).float().cpu().numpy())
                    owners.extend(index[kept[i].info.record] for i in sel)
                    weights.extend([float(cfg.dx_digitized_weight) * FEATURE_VARIANTS] * len(sel))
                    evals.extend([True] * len(sel))
                    raws.append(raw)
            else:
                rows.append(head.inputs(feats).float().cpu().numpy())
                owners.extend(index[ex.info.record] for ex in kept)
                weights.extend([1.0] * len(kept))
                evals.extend([True] * len(kept))
                raws.append(np.stack([nan_row] * len(kept)))
    if not rows:
        empty = np.zeros((0, head.input_size), np.float32)
        return DxDesign(empty, np.zeros(0, np.int64), np.zeros(0), np.zeros(0, bool),
                        np.zeros((0, len(FEATURE_NAMES)), np.float32))
    return DxDesign(np.concatenate(rows).astype(np.float32), np.asarray(owners, np.int64),
                    np.asarray(weights, np.float64), np.asarray(evals, bool), np.concatenate(raws).astype(np.float32))


def fit_dx_full_batch(model: ECGMultiHeadModel, x: np.ndarray | DxDesign, owners: np.ndarray | None,
                      y_records: np.ndarray, cfg: TrainConfig, prevalence: np.ndarray | None = None
                      ) -> dict[str, Any]:
    """Fit ``model.dx_head`` on a design (:class:`DxDesign`, or rows ``x`` (M, D) of records ``owners`` (M,), all
    weight 1 and judging their record) with record targets ``y_records`` (R, C), and choose its decisions.

    Out of fold (``cfg.dx_oof_folds`` folds by record): each held-out record's judging rows (its digitized pages
    when it has any) are predicted; their probabilities fit the per-class calibration (``cfg.dx_calibrate``,
    :mod:`ecgentry.calibration`), go through the head's rhythm rules and are averaged per record (as
    ``run_record`` averages pages); the thresholds are chosen on those record probabilities (``cfg.dx_thresholds``
    "oof": F-maximising for classes with at least ``cfg.dx_min_positives`` positive records, 0.5 otherwise;
    "fixed": 0.5) and capped at ``cfg.dx_max_rate_ratio`` times the class's ``prevalence`` (C,) (default: its share
    of these records). Then the head is fitted on all rows. Returns a summary dict (thresholds, calibration and
    its report, out-of-fold macro F and predicted-vs-true counts)."""
    import copy

    from ecgentry.calibration import apply_calibration, calibration_report, choose_thresholds, fit_calibration
    from models.heads import balanced_pos_weight, fit_dx_head, out_of_fold_probabilities
    from models.rhythm_rules import apply_rhythm_rules

    design = x if isinstance(x, DxDesign) else DxDesign(
        np.asarray(x, np.float32), np.asarray(owners, np.int64), np.ones(len(x)), np.ones(len(x), bool),
        np.full((len(x), len(FEATURE_NAMES)), np.nan, np.float32))
    head = model.dx_head
    classes = list(head.classes)
    fit_rows = np.flatnonzero(design.weights > 0)
    y = y_records[design.owners]
    pos_weight = balanced_pos_weight(y[fit_rows], cfg.dx_pos_weight_limit)
    records = np.unique(design.owners[fit_rows])
    rules = head.rhythm_rules if head.extra_features and design.raw.shape[1] == len(FEATURE_NAMES) else []

    def fit(rows: np.ndarray, target: Any) -> None:
        fit_dx_head(target, design.x[rows], y[rows], l2=cfg.dx_l2, pos_weight=pos_weight, seed=cfg.seed,
                    sample_weight=design.weights[rows])

    row_probs: dict[int, np.ndarray] = {}  # out-of-fold probabilities of each judging row

    def fit_predict(train_groups: np.ndarray, test_groups: np.ndarray) -> np.ndarray:
        fold_head = copy.deepcopy(head).cpu()
        fit(fit_rows[np.isin(design.owners[fit_rows], records[train_groups])], fold_head)
        fold_head.eval()
        out = []
        with torch.no_grad():
            for g in records[test_groups]:
                rows = np.flatnonzero((design.owners == g) & design.evals)
                if not len(rows):  # every page of the record failed: not judged (fallback labels at run time)
                    out.append(np.full(len(classes), np.nan))
                    continue
                p = torch.sigmoid(fold_head.logits_from_inputs(torch.from_numpy(design.x[rows]))).numpy()
                for r, pr in zip(rows, p):
                    row_probs[int(r)] = pr.astype(np.float64)
                out.append(p.mean(axis=0))
        return np.stack(out)

    oof, groups = out_of_fold_probabilities(fit_predict, len(records), cfg.dx_oof_folds, cfg.seed)
    if len(groups):
        groups = groups[np.isfinite(oof).all(axis=1)]
    thresholds = np.full(head.num_classes, 0.5)
    calibration: dict[str, Any] | None = None
    report: dict[str, Any] = {}
    decisions: dict[str, Any] = {}
    oof_f = float("nan")
    counts: dict[str, list[int]] = {}
    if len(groups):
        rows = np.array(sorted(row_probs), np.int64)
        p_rows = np.stack([row_probs[int(r)] for r in rows])
        owner_rows = design.owners[rows]
        # each record counts once in the calibration fit, whatever its number of pages
        per_record = np.bincount(owner_rows, minlength=len(y_records)).astype(np.float64)
        if cfg.dx_calibrate:
            calibration = fit_calibration(p_rows, y_records[owner_rows], 1.0 / per_record[owner_rows])
        cal_rows = apply_calibration(p_rows, calibration)
        oof_targets = y_records[records[groups]]

        def per_record_probs(p: np.ndarray, th: np.ndarray) -> np.ndarray:
            if rules:
                p = apply_rhythm_rules(p, design.raw[rows], FEATURE_NAMES, classes, rules, th)
            return np.stack([p[owner_rows == g].mean(axis=0) for g in records[groups]])

        raw_records = np.stack([p_rows[owner_rows == g].mean(axis=0) for g in records[groups]])
        rec = per_record_probs(cal_rows, thresholds)
        prev = (oof_targets.mean(axis=0) if prevalence is None else np.asarray(prevalence, np.float64))
        thresholds, decisions = choose_thresholds(rec, oof_targets, prev, cfg.dx_min_positives, cfg.dx_max_rate_ratio,
                                                  tune=cfg.dx_thresholds == "oof")
        if rules:  # the rules' "unless AFIB/AFL is predicted" with the chosen thresholds, then once more
            rec = per_record_probs(cal_rows, thresholds)
            thresholds, decisions = choose_thresholds(rec, oof_targets, prev, cfg.dx_min_positives,
                                                      cfg.dx_max_rate_ratio, tune=cfg.dx_thresholds == "oof")
        oof_f = macro_f(rec, oof_targets, thresholds)
        pred = _decide(rec, thresholds)
        counts = {c: [int(pred[:, j].sum()), int(oof_targets[:, j].sum())] for j, c in enumerate(classes)}
        report = {"uncalibrated": calibration_report(raw_records, oof_targets, classes),
                  "calibrated": calibration_report(rec, oof_targets, classes) if calibration else {}}
    fit(fit_rows, head)
    head.set_thresholds(thresholds)
    logger.info("Dx head fitted on %d rows of %d records (full batch, l2 %.3g); out-of-fold macro F %.3f; "
                "out-of-fold predicted/true per class %s", len(fit_rows), len(records), cfg.dx_l2, oof_f, counts)
    return {"thresholds": thresholds, "oof_macro_f": oof_f, "rows": int(len(fit_rows)), "records": int(len(records)),
            "calibration": calibration, "calibration_report": report, "decisions": decisions,
            "oof_predicted_vs_true": counts}


def _decide(probs: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """(N, C) bool decisions: classes at or above their threshold, else the most probable class."""
    pred = probs >= thresholds[None, :]
    none = ~pred.any(axis=1)
    pred[none, probs[none].argmax(axis=1)] = True
    return pred


def _loop_needed(model: ECGMultiHeadModel, cfg: TrainConfig) -> bool:
    """Does the page loop train anything the full-batch Dx fit does not? (digitization heads, or a trainable
    backbone under an image-fed Dx head)."""
    if cfg.dx_fit != "full_batch" or model.dx_head is None:
        return True
    if model.segmentation_head is not None or model.digitization_head is not None:
        return True
    return bool(model.dx_head.use_image and any(p.requires_grad for p in model.backbone.parameters()))


class _LossModule(torch.nn.Module):
    """Forward pass and loss in one module, so that DistributedDataParallel sees every trained parameter
    (including the loss-balancing log-variances the loss itself owns) inside ``forward``."""

    def __init__(self, model: ECGMultiHeadModel):
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float], dict[str, Any]]:
        outputs = self.model(batch["pixel_values"], batch.get("extra_features"))
        total, parts = self.model.compute_loss(
            outputs, dx_targets=batch["dx_targets"], signal_targets=batch.get("signal_targets"),
            seg_targets=batch.get("seg_targets"),
        )
        return total, parts, outputs


def _lr_lambda(total_steps: int, warmup_fraction: float):
    warm = max(1, int(total_steps * warmup_fraction))

    def f(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        progress = (step - warm) / max(1, total_steps - warm)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return f


def _run_epoch(runner: torch.nn.Module, batcher: _Batcher, examples: list[Example], indices: np.ndarray,
               cfg: TrainConfig, ctx: ddp_utils.DistContext, optimizer=None, scheduler=None, progress=None,
               seen: list[int] | None = None) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """One pass over ``examples[indices]`` (this rank's shard); trains when an optimizer is given.

    Returns the mean loss parts over all ranks' examples and the Dx probabilities and targets (N, C) of all
    ranks (gathered in rank order). ``seen`` collects the example indices this rank trained on."""
    training = optimizer is not None
    runner.train(training)
    sums: dict[str, float] = {}
    count = 0
    probs, targets = [], []
    for k in range(0, len(indices), cfg.batch_size):
        group_idx = [int(i) for i in indices[k:k + cfg.batch_size]]
        batch = batcher([examples[i] for i in group_idx])
        if training and not ddp_utils.all_true(ctx, batch is not None):
            continue  # every rank skips the step together (one rank had no readable page)
        if batch is None:
            continue
        if seen is not None:
            seen.extend(group_idx)
        with torch.set_grad_enabled(training):
            total, parts, outputs = runner(batch)
        if training:
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            torch.nn.utils.clip_grad_norm_([p for p in runner.parameters() if p.requires_grad], 5.0)
            optimizer.step()
            scheduler.step()
        n = batch["pixel_values"].shape[0]
        for key, value in parts.items():
            sums[key] = sums.get(key, 0.0) + float(value) * n
        count += n
        probs.append(torch.sigmoid(outputs["dx_logits"]).detach().float().cpu().numpy())
        targets.append(batch["dx_targets"].cpu().numpy())
        if progress is not None:
            progress.update(1)
            progress.set_postfix(loss=f"{parts['total']:.3f}")
    sums, total_count = ddp_utils.all_reduce_sums(ctx, sums, count)
    means = {k: v / max(total_count, 1) for k, v in sums.items()}
    local = (np.concatenate(probs) if probs else np.zeros((0, 0)), np.concatenate(targets) if targets else np.zeros((0, 0)))
    gathered = [pair for pair in ddp_utils.all_gather_objects(ctx, local) if pair[0].size]
    p = np.concatenate([g[0] for g in gathered]) if gathered else np.zeros((0, 0))
    t = np.concatenate([g[1] for g in gathered]) if gathered else np.zeros((0, 0))
    return means, p, t


def fit_dx_rhythm_rules(model: ECGMultiHeadModel, batcher: _Batcher, infos: list[RecordInfo], classes: list[str],
                        cfg: TrainConfig) -> list[dict[str, Any]]:
    """Fit :mod:`models.rhythm_rules` on the raw signal features of the training records and store them in the Dx
    head; returns them (empty when off or not applicable). A record counts by its digitized own pages when it has
    any (:func:`attach_digitized_pages`), else by all corruption variants of its true signal."""
    from models.rhythm_rules import fit_rhythm_rules

    head = model.dx_head
    if head is None or not cfg.dx_rhythm_rules or not head.extra_features:
        return []
    design = batcher.design_rows(infos, raw=True)
    rows, owners = design.raw[design.evals], design.owners[design.evals]
    if not len(rows):
        return []
    rules = fit_rhythm_rules(rows, FEATURE_NAMES, _labels_matrix(infos, classes)[owners] > 0.5, classes)
    head.set_rhythm_rules(rules)
    for r in rules:
        logger.info("rhythm rule: %s", r.describe())
    return head.rhythm_rules


def macro_f(probs: np.ndarray, targets: np.ndarray, thresholds: np.ndarray) -> float:
    """Macro F over the classes present in ``targets`` (a record with nothing above threshold gets its argmax)."""
    if probs.size == 0:
        return float("nan")
    pred = probs >= thresholds[None, :]
    none = ~pred.any(axis=1)
    pred[none, probs[none].argmax(axis=1)] = True
    scores = []
    for c in range(targets.shape[1]):
        if targets[:, c].sum() == 0:
            continue
        tp = float((pred[:, c] & (targets[:, c] > 0)).sum())
        fp = float((pred[:, c] & (targets[:, c] == 0)).sum())
        fn = float((~pred[:, c] & (targets[:, c] > 0)).sum())
        scores.append(2 * tp / max(2 * tp + fp + fn, 1e-9))
    return float(np.mean(scores)) if scores else float("nan")


def _known_dx(probs: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows of a page epoch's Dx outputs whose targets are known (crops of pages have NaN targets)."""
    keep = np.isfinite(targets).all(axis=1) if targets.size else np.zeros(0, bool)
    return probs[keep], targets[keep]


def _tune_on_pages(loss_module: torch.nn.Module, batcher: _Batcher, train_examples: list[Example],
                   val_examples: list[Example], classes: list[str], cfg: TrainConfig,
                   ctx: ddp_utils.DistContext) -> tuple[np.ndarray, float]:
    """Per-class thresholds (C,) for a head trained by the page loop (tuned on the validation pages, the training
    pages when there is no validation split), and the validation macro F with them."""
    from models.heads import tune_thresholds

    tune_on = val_examples if val_examples else train_examples
    _, probs, targets = _run_epoch(loss_module, batcher, tune_on,
                                   ddp_utils.eval_shard(len(tune_on), ctx.rank, ctx.world_size), cfg, ctx)
    probs, targets = _known_dx(probs, targets)
    thresholds = np.asarray(tune_thresholds(probs, targets), dtype=np.float64)
    # A threshold tuned on one or two positives is noise (benchmarks/classify.py): such classes are tuned on the
    # training and validation pages together, and keep 0.5 when even those have too few positives.
    counts = targets.sum(axis=0) if targets.size else np.zeros(len(classes))
    too_few = counts < MIN_POSITIVES_TO_TUNE
    if too_few.any() and val_examples:
        _, train_probs, train_targets = _run_epoch(
            loss_module, batcher, train_examples, ddp_utils.eval_shard(len(train_examples), ctx.rank, ctx.world_size),
            cfg, ctx)
        train_probs, train_targets = _known_dx(train_probs, train_targets)
        if train_targets.size:
            pooled_probs = np.concatenate([probs, train_probs])
            pooled_targets = np.concatenate([targets, train_targets])
            pooled = np.asarray(tune_thresholds(pooled_probs, pooled_targets), dtype=np.float64)
            thresholds[too_few] = pooled[too_few]
            counts = pooled_targets.sum(axis=0)
    thresholds[counts < MIN_POSITIVES_TO_TUNE] = 0.5
    return thresholds, macro_f(probs, targets, thresholds)


def _state_digest(model: torch.nn.Module) -> str:
    """sha256 over the model's state dict (names, dtypes, shapes and bytes), to compare weights across ranks."""
    h = hashlib.sha256()
    for name, value in sorted(model.state_dict().items()):
        t = value.detach().to("cpu").contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()


def _fingerprint(infos: list[RecordInfo], train_examples: list[Example], val_examples: list[Example]) -> dict[str, Any]:
    """What a checkpoint must agree with to be resumed: the records (names and labels) and page counts."""
    h = hashlib.sha256()
    for info in infos:
        h.update(f"{os.path.basename(info.record)}|{','.join(info.labels)}|{len(info.image_files)}\n".encode())
    return {"records": len(infos), "records_sha256": h.hexdigest(), "train_pages": len(train_examples),
            "val_pages": len(val_examples)}


def _comparable_config(cfg_dict: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in cfg_dict.items() if k not in RESUMABLE_CHANGES}


def _resume_mismatch(meta: dict[str, Any], cfg: TrainConfig, fingerprint: dict[str, Any]) -> str | None:
    """Why the checkpoint cannot be resumed by this run (None when it can)."""
    old, new = _comparable_config(meta.get("config", {})), _comparable_config(cfg.to_dict())
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if changed:
        return f"configuration changed ({', '.join(changed)})"
    if meta.get("fingerprint") != fingerprint:
        return "training data changed"
    return None


def _stop_after_epochs() -> int | None:
    text = os.environ.get(ENV_STOP_AFTER_EPOCHS, "").strip()
    return int(text) if text else None


def train(data_folder: str, model_folder: str, cfg: TrainConfig, verbose: bool = False) -> dict[str, Any]:
    """Train on ``data_folder`` and save a self-describing model folder; returns the training summary.

    Runs data-parallel (DistributedDataParallel) when started under ``torchrun`` (``WORLD_SIZE`` > 1); otherwise
    in this process. A checkpoint is written to ``MODEL/checkpoint/`` after every epoch; a run on a model folder
    holding a checkpoint made with the same configuration and data continues from it (a different configuration
    or data set starts again from scratch, with a warning). The checkpoint is removed once ``entry.json`` is
    written."""
    t_start = time.time()
    ctx = ddp_utils.setup(cfg.device)
    try:
        return _train(data_folder, model_folder, cfg, verbose, ctx, t_start)
    finally:
        ctx.close()


def _train(data_folder: str, model_folder: str, cfg: TrainConfig, verbose: bool, ctx: ddp_utils.DistContext,
           t_start: float) -> dict[str, Any]:
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    if cfg.num_threads:
        torch.set_num_threads(int(cfg.num_threads))
    device = ctx.device

    infos, skipped = scan_records(data_folder, cfg.max_records)
    if ctx.is_main:
        for rel, reason in skipped:
            logger.warning("skipping record %s: %s", rel, reason)
    if not infos:
        raise ValueError(f"no usable training records in {data_folder!r} ({len(skipped)} skipped: "
                         "each needs labels and an image or a signal)")
    classes = order_classes([i.labels for i in infos])
    train_idx, val_idx = split_by_record(len(infos), cfg.val_fraction, cfg.seed)
    train_infos = [infos[i] for i in train_idx]
    val_infos = [infos[i] for i in val_idx]

    pos_weight = positive_weights([i.labels for i in train_infos], classes) if cfg.balance_classes else None
    model = build_model(build_model_config(cfg, classes, pos_weight)).to(device)
    if not model.backbone.pretrained:
        if ctx.is_main:
            logger.warning("backbone %s is randomly initialised and trained from scratch", cfg.backbone.name)
        if cfg.dx_use_image == "auto" and cfg.signal_features:
            # Image features of a backbone trained from scratch on a few hundred pages hurt the diagnosis
            # (benchmarks/classify.py): the Dx head then sees the signal features alone.
            torch.manual_seed(cfg.seed)
            model = build_model(build_model_config(cfg, classes, pos_weight, pretrained=False)).to(device)

    def examples_for(subset: list[RecordInfo], limit: int) -> list[Example]:
        own = [Example(info=i, image_file=f) for i in subset for f in i.image_files]
        rendered = render_training_pages(model, subset, cfg, rng, limit) if model.segmentation_head is not None else []
        return own + rendered

    # Every rank builds the same example lists (same seed); the sampler gives each rank its own shard.
    n_val_pages = int(round(cfg.max_rendered_pages * cfg.val_fraction))
    train_examples = examples_for(train_infos, cfg.max_rendered_pages - n_val_pages)
    val_examples = examples_for(val_infos, n_val_pages)
    if not train_examples:
        raise ValueError("no training pages: records need readable images or signals the renderer can draw")
    if ctx.is_main:
        logger.info("%d training pages (%d records), %d validation pages (%d records), classes %s",
                    len(train_examples), len(train_infos), len(val_examples), len(val_infos), classes)

    batcher = _Batcher(model, classes, cfg, device)
    loss_module = _LossModule(model)
    runner: torch.nn.Module = loss_module
    if ctx.enabled:
        from torch.nn.parallel import DistributedDataParallel

        runner = DistributedDataParallel(loss_module, device_ids=[device.index] if device.type == "cuda" else None,
                                         find_unused_parameters=True)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    shard_len = math.ceil(len(train_examples) / ctx.world_size)
    steps_per_epoch = math.ceil(shard_len / cfg.batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(steps_per_epoch * cfg.epochs, cfg.warmup_fraction))

    fingerprint = _fingerprint(infos, train_examples, val_examples)
    state = ckpt.TrainingState()
    meta = ckpt.read_checkpoint_meta(model_folder)
    if meta is not None:
        why = _resume_mismatch(meta, cfg, fingerprint)
        if why is None:
            state = ckpt.restore_checkpoint(model_folder, meta, model=model, optimizer=optimizer, scheduler=scheduler,
                                            np_rng=rng, device=device)
            if ctx.is_main:
                logger.info("resuming from the checkpoint after epoch %d in %s", state.epoch, model_folder)
        elif ctx.is_main:
            logger.warning("not resuming the checkpoint in %s: %s; training from scratch", model_folder, why)

    trace_dir = os.environ.get(ENV_TRAIN_TRACE_DIR, "").strip()
    seen_per_epoch: list[list[int]] = []
    stop_after = _stop_after_epochs()
    progress = None
    if verbose and ctx.is_main:
        from tqdm import tqdm

        progress = tqdm(total=steps_per_epoch * cfg.epochs, initial=steps_per_epoch * state.epoch, desc="training",
                        unit="batch")
    val_indices = ddp_utils.eval_shard(len(val_examples), ctx.rank, ctx.world_size)
    run_loop = _loop_needed(model, cfg)
    if not run_loop and ctx.is_main:
        logger.info("no page loop: only the Dx head is trained, by the full-batch fit")
    for epoch in range(state.epoch, cfg.epochs if run_loop else 0):
        batcher.epoch = epoch
        if state.stopped_early:
            break
        shard = ddp_utils.epoch_shard(len(train_examples), epoch, cfg.seed, ctx.rank, ctx.world_size)
        seen: list[int] = []
        train_parts, _, _ = _run_epoch(runner, batcher, train_examples, shard, cfg, ctx, optimizer, scheduler,
                                       progress, seen)
        seen_per_epoch.append(seen)
        row = {"epoch": epoch + 1, **{f"train_{k}": v for k, v in train_parts.items()}}
        if val_examples:
            val_parts, vp, vt = _run_epoch(loss_module, batcher, val_examples, val_indices, cfg, ctx)
            row.update({f"val_{k}": v for k, v in val_parts.items()})
            row["val_macro_f@0.5"] = macro_f(vp, vt, np.full(len(classes), 0.5))
            score = val_parts.get("total", float("inf"))
        else:
            score = train_parts.get("total", float("inf"))
        state.history.append(row)
        state.epoch = epoch + 1
        if ctx.is_main:
            logger.info("epoch %d: %s", epoch + 1, {k: round(v, 4) for k, v in row.items() if k != "epoch"})
        if score < state.best_loss - 1e-6:
            state.best_loss, state.bad_epochs = score, 0
            state.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            state.bad_epochs += 1
            if state.bad_epochs >= cfg.patience:
                if ctx.is_main:
                    logger.info("early stopping after epoch %d", epoch + 1)
                state.stopped_early = True
        if ctx.is_main:
            ckpt.save_checkpoint(model_folder, model=model, optimizer=optimizer, scheduler=scheduler, np_rng=rng,
                                 state=state, config=cfg.to_dict(), fingerprint=fingerprint)
            from ecgentry.report import write_report_csv

            write_report_csv(model_folder, state.history)
        ctx.barrier()
        if stop_after is not None and state.epoch >= stop_after and state.epoch < cfg.epochs and not state.stopped_early:
            if progress is not None:
                progress.close()
            _write_trace(trace_dir, ctx, model, seen_per_epoch)
            raise TrainingInterrupted(f"${ENV_STOP_AFTER_EPOCHS}={stop_after}: stopped after epoch {state.epoch} "
                                      f"(checkpoint in {Path(model_folder) / ckpt.CHECKPOINT_DIR})")
    if progress is not None:
        progress.close()
    _write_trace(trace_dir, ctx, model, seen_per_epoch)
    history = state.history
    if state.best_state is not None:
        model.load_state_dict(state.best_state)

    dx_fit: dict[str, Any] = {}
    digitized_pages: dict[str, Any] = {}
    prevalence = {c: int(sum(c in i.labels for i in infos)) for c in classes}
    full_batch = cfg.dx_fit == "full_batch" and model.dx_head is not None
    if cfg.dx_page_cache or (full_batch and cfg.dx_digitized_pages):
        from ecgentry.digitized_training import CACHE_FOLDER, FeatureCache

        batcher.feature_cache = FeatureCache(cfg.dx_page_cache or os.path.join(model_folder, CACHE_FOLDER))
    if full_batch and cfg.dx_digitized_pages and model.dx_head.extra_features:
        digitized_pages = attach_digitized_pages(batcher, infos, cfg, model_folder, ctx, verbose)
    rules = fit_dx_rhythm_rules(model, batcher, infos, classes, cfg)
    if full_batch:
        design = dx_design(model, batcher, infos, train_examples + val_examples, cfg, device)
        if len(design):
            dx_fit = fit_dx_full_batch(model, design, None, _labels_matrix(infos, classes), cfg,
                                       np.array([prevalence[c] / len(infos) for c in classes]))
            thresholds, val_f = dx_fit["thresholds"], dx_fit["oof_macro_f"]
        else:
            logger.warning("no record gives Dx head inputs for the full-batch fit; keeping the page-loop head")
    if not dx_fit:
        thresholds, val_f = _tune_on_pages(loss_module, batcher, train_examples, val_examples, classes, cfg, ctx)
        model.dx_head.set_thresholds(thresholds)

    trace_source = cfg.trace_source
    trace_scores: dict[str, float] = {}
    if cfg.digitizer == "pipeline" and trace_source == "auto":
        from ecgentry.infer import choose_trace_source

        if ctx.is_main:
            trace_source, trace_scores = choose_trace_source(
                model, val_infos or train_infos, cfg.render_preset, cfg.trace_source_pages, cfg.seed + 1, device
            )
        trace_source, trace_scores = ddp_utils.broadcast_object(ctx, (trace_source, trace_scores))

    summary = {
        "records_used": len(infos),
        "records_skipped": len(skipped),
        "skipped": [f"{r}: {why}" for r, why in skipped[:100]],
        "train_pages": len(train_examples),
        "val_pages": len(val_examples),
        "classes": classes,
        "class_counts": prevalence,
        "fallback_labels": [max(prevalence, key=prevalence.get)] if prevalence else [],
        "thresholds": [float(t) for t in thresholds],
        "rhythm_rules": rules,
        "val_macro_f_tuned": val_f,
        "dx_calibration": dx_fit.get("calibration"),
        "dx_calibration_report": dx_fit.get("calibration_report", {}),
        "dx_decisions": dx_fit.get("decisions", {}),
        "dx_oof_predicted_vs_true": dx_fit.get("oof_predicted_vs_true", {}),
        "dx_digitized_pages": digitized_pages,
        "dx_fit": cfg.dx_fit if dx_fit else "sgd",
        "dx_fit_rows": dx_fit.get("rows", 0),
        "digitizer": cfg.digitizer,
        "trace_source": trace_source,
        "trace_source_snr_db": trace_scores,
        "history": history,
        "weights_source": model.config.weights_source,
        "world_size": ctx.world_size,
        "seconds": round(time.time() - t_start, 1),
    }
    if ctx.is_main:
        from ecgentry.report import write_report_csv, write_report_png

        Path(model_folder).mkdir(parents=True, exist_ok=True)  # no checkpoint made it when the page loop was skipped
        write_report_csv(model_folder, history)
        write_report_png(model_folder, history)
        save_entry(model_folder, model, cfg, summary)  # entry.json last: the folder is complete from here on
        ckpt.remove_checkpoint(model_folder)
        if skipped:
            logger.warning("%d record(s) skipped during training (see %s)", len(skipped), ENTRY_FILE)
    ctx.barrier()
    return summary


def _write_trace(trace_dir: str, ctx: ddp_utils.DistContext, model: torch.nn.Module, seen: list[list[int]]) -> None:
    """Diagnostics for ``$ECG_TRAIN_TRACE_DIR``: ``rank<r>.json`` with the example indices this rank trained on
    per epoch (of this run) and the sha256 of its weights."""
    if not trace_dir:
        return
    os.makedirs(trace_dir, exist_ok=True)
    payload = {"rank": ctx.rank, "world_size": ctx.world_size, "examples": seen, "state_sha256": _state_digest(model)}
    with open(os.path.join(trace_dir, f"rank{ctx.rank}.json"), "w", encoding="utf-8") as f:
        json.dump(payload, f)


def save_entry(model_folder: str, model: ECGMultiHeadModel, cfg: TrainConfig, summary: dict[str, Any]) -> None:
    """Write the model folder: ``model/`` (config.json + safetensors), the lead-label classifier
    (``ecgdigitize.lead_labels.CLASSIFIER_FILE``), ``train_config.json`` and, last,
    ``entry.json``; ``load_models`` only accepts a folder whose ``entry.json`` exists, so an interrupted save is
    never loaded."""
    folder = Path(model_folder)
    folder.mkdir(parents=True, exist_ok=True)
    entry = folder / ENTRY_FILE
    if entry.exists():
        entry.unlink()
    target = folder / MODEL_SUBFOLDER
    if target.exists():
        shutil.rmtree(target)
    model.save(target)
    lead_labels.save_classifier(folder)
    cfg.to_json(folder / "train_config.json")
    tmp = folder / (ENTRY_FILE + ".tmp")
    tmp.write_text(json.dumps(summary, indent=2, default=float) + "\n", encoding="utf-8")
    os.replace(tmp, entry)
