"""Training the shared multi-head model from a Challenge data folder (what ``team_code.train_models`` runs).

Per record: its own images train the Dx head (and the regression digitization head when enabled); its
signal, when present, is rendered into extra pages with pixel-exact masks (``ecgrender``) that train the
segmentation digitization head and the Dx head. Records with labels but no image are used through
rendered pages; records with images but no signal through their images.
"""
from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ecgdigitize.image_io import load_image
from ecgfeatures.features import FEATURE_NAMES, extract_features, features_to_model_input
from ecgentry.config import TrainConfig
from ecgentry.records import RecordInfo, load_standard_signal, resample_signal, scan_records
from ecgrender.page import STANDARD_LEADS
from models.config import DigitizationHeadConfig, DxHeadConfig, LossConfig, ModelConfig
from models.model import ECGMultiHeadModel, build_model

logger = logging.getLogger(__name__)

FINAL_CLASSES = ["NORM", "Acute MI", "Old MI", "STTC", "CD", "HYP", "PAC", "PVC", "AFIB/AFL", "TACHY", "BRADY"]
ENTRY_FILE = "entry.json"
MODEL_SUBFOLDER = "model"
IGNORE_INDEX = 255


@dataclass
class Example:
    """One training input page: a record image file, or a page rendered in memory (letterboxed)."""

    info: RecordInfo
    image_file: str | None = None
    pixels: np.ndarray | None = None  # (H, W, 3) uint8, already letterboxed to the model input
    seg_target: np.ndarray | None = None  # (H, W) uint8 classes, 255 = ignore


def order_classes(labels: list[list[str]]) -> list[str]:
    """Classes seen in the training labels: the 11 final classes in their canonical order first, then others
    (e.g. the early binary ``Normal``/``Abnormal`` set) sorted."""
    seen = {label for record_labels in labels for label in record_labels}
    return [c for c in FINAL_CLASSES if c in seen] + sorted(seen - set(FINAL_CLASSES))


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


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


def build_model_config(cfg: TrainConfig, classes: list[str], pos_weight: list[float] | None = None) -> ModelConfig:
    """The model configuration for these classes."""
    dig = DigitizationHeadConfig(kind="regression") if cfg.regression else None
    seg = None
    if cfg.segmentation:
        from models.segmentation import SegmentationHeadConfig

        seg = SegmentationHeadConfig(decoder_channels=cfg.segmentation_decoder_channels)
    return ModelConfig(
        backbone=cfg.backbone,
        dx_head=DxHeadConfig(classes=classes, hidden_sizes=list(cfg.dx_hidden_sizes), dropout=cfg.dx_dropout,
                             extra_features=len(FEATURE_NAMES) if cfg.signal_features else 0,
                             use_image=cfg.dx_use_image),
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
    letterboxed to the model input, with segmentation targets from the renderer's class masks."""
    from ecgrender.distort import apply_preset
    from ecgrender.page import PageSpec, render_page
    from models.backbone import letterbox
    from models.segmentation import target_from_class_mask

    h, w = model.backbone.image_height, model.backbone.image_width
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
            pixels, transform = letterbox(page.image, h, w)
            target = target_from_class_mask(page.class_mask, transform, h, w).astype(np.uint8)
            out.append(Example(info=info, pixels=pixels, seg_target=target))
    return out


# Leads of each 2.5 s column of the common 3x4 printout; lead II is also printed for 10 s as the rhythm strip.
_PRINTED_COLUMNS = (("I", "II", "III"), ("aVR", "aVL", "aVF"), ("V1", "V2", "V3"), ("V4", "V5", "V6"))


def digitization_like(signal: np.ndarray, fs: float, rng: np.random.Generator) -> np.ndarray:
    """A true (N, 12) mV signal made to look digitized: with probability 0.7 only the 3x4+1 printed windows are
    kept (NaN elsewhere), then a small gain error (+-5 %), offset (+-0.05 mV), shift (+-20 ms) and noise."""
    out = np.array(signal, dtype=np.float64)
    n = out.shape[0]
    if rng.random() < 0.7:
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
        self._features: dict[str, np.ndarray] = {}
        self._rng = np.random.default_rng(cfg.seed + 7)

    def _record_features(self, info: RecordInfo) -> np.ndarray:
        """Model-ready signal features of the record's true signal, corrupted like a digitized one (cached)."""
        if info.record not in self._features:
            sig = load_standard_signal(info) if info.has_signal else None
            if sig is None:
                feats = np.full(len(FEATURE_NAMES), np.nan, np.float32)
            else:
                feats = extract_features(digitization_like(sig, info.fs, self._rng), info.fs)
            self._features[info.record] = features_to_model_input(feats[None])[0]
        return self._features[info.record]

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
            for label in ex.info.labels:
                if label in self.classes:
                    dx[i, self.classes.index(label)] = 1.0
        batch: dict[str, Any] = {"pixel_values": pixel_values, "dx_targets": torch.from_numpy(dx).to(self.device)}
        if self.model.dx_head is not None and self.model.dx_head.extra_features:
            extra = np.stack([self._record_features(ex.info) for ex in kept]).astype(np.float32)
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


def _batches(examples: list[Example], batch_size: int, rng: np.random.Generator | None) -> list[list[Example]]:
    order = rng.permutation(len(examples)) if rng is not None else np.arange(len(examples))
    return [[examples[i] for i in order[k:k + batch_size]] for k in range(0, len(order), batch_size)]


def _lr_lambda(total_steps: int, warmup_fraction: float):
    warm = max(1, int(total_steps * warmup_fraction))

    def f(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        progress = (step - warm) / max(1, total_steps - warm)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return f


def _run_epoch(model, batcher, examples, cfg, optimizer=None, scheduler=None, rng=None, progress=None):
    """One pass; trains when an optimizer is given. Returns mean parts and (probs, targets) of the Dx head."""
    training = optimizer is not None
    model.train(training)
    sums: dict[str, float] = {}
    count = 0
    probs, targets = [], []
    for group in _batches(examples, cfg.batch_size, rng):
        batch = batcher(group)
        if batch is None:
            continue
        with torch.set_grad_enabled(training):
            outputs = model(batch["pixel_values"], batch.get("extra_features"))
            total, parts = model.compute_loss(
                outputs, dx_targets=batch["dx_targets"], signal_targets=batch.get("signal_targets"),
                seg_targets=batch.get("seg_targets"),
            )
        if training:
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 5.0)
            optimizer.step()
            scheduler.step()
        n = batch["pixel_values"].shape[0]
        for key, value in parts.items():
            sums[key] = sums.get(key, 0.0) + float(value) * n
        count += n
        probs.append(torch.sigmoid(outputs["dx_logits"]).detach().cpu().numpy())
        targets.append(batch["dx_targets"].cpu().numpy())
        if progress is not None:
            progress.update(1)
            progress.set_postfix(loss=f"{parts['total']:.3f}")
    means = {k: v / max(count, 1) for k, v in sums.items()}
    p = np.concatenate(probs) if probs else np.zeros((0, 0))
    t = np.concatenate(targets) if targets else np.zeros((0, 0))
    return means, p, t


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


def train(data_folder: str, model_folder: str, cfg: TrainConfig, verbose: bool = False) -> dict[str, Any]:
    """Train on ``data_folder`` and save a self-describing model folder; returns the training summary."""
    t_start = time.time()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    if cfg.num_threads:
        torch.set_num_threads(int(cfg.num_threads))
    device = resolve_device(cfg.device)

    infos, skipped = scan_records(data_folder, cfg.max_records)
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
        logger.warning("backbone %s is randomly initialised and trained from scratch", cfg.backbone.name)

    def examples_for(subset: list[RecordInfo], limit: int) -> list[Example]:
        own = [Example(info=i, image_file=f) for i in subset for f in i.image_files]
        rendered = render_training_pages(model, subset, cfg, rng, limit) if model.segmentation_head is not None else []
        return own + rendered

    n_val_pages = int(round(cfg.max_rendered_pages * cfg.val_fraction))
    train_examples = examples_for(train_infos, cfg.max_rendered_pages - n_val_pages)
    val_examples = examples_for(val_infos, n_val_pages)
    if not train_examples:
        raise ValueError("no training pages: records need readable images or signals the renderer can draw")
    logger.info("%d training pages (%d records), %d validation pages (%d records), classes %s",
                len(train_examples), len(train_infos), len(val_examples), len(val_infos), classes)

    batcher = _Batcher(model, classes, cfg, device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(train_examples) / cfg.batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(steps_per_epoch * cfg.epochs, cfg.warmup_fraction))

    history: list[dict[str, float]] = []
    best_loss, best_state, bad_epochs = float("inf"), None, 0
    progress = None
    if verbose:
        from tqdm import tqdm

        progress = tqdm(total=steps_per_epoch * cfg.epochs, desc="training", unit="batch")
    for epoch in range(cfg.epochs):
        train_parts, _, _ = _run_epoch(model, batcher, train_examples, cfg, optimizer, scheduler, rng, progress)
        row = {"epoch": epoch + 1, **{f"train_{k}": v for k, v in train_parts.items()}}
        if val_examples:
            val_parts, vp, vt = _run_epoch(model, batcher, val_examples, cfg)
            row.update({f"val_{k}": v for k, v in val_parts.items()})
            row["val_macro_f@0.5"] = macro_f(vp, vt, np.full(len(classes), 0.5))
            score = val_parts.get("total", float("inf"))
        else:
            score = train_parts.get("total", float("inf"))
        history.append(row)
        logger.info("epoch %d: %s", epoch + 1, {k: round(v, 4) for k, v in row.items() if k != "epoch"})
        if score < best_loss - 1e-6:
            best_loss, bad_epochs = score, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            bad_epochs += 1
            if bad_epochs >= cfg.patience:
                logger.info("early stopping after epoch %d", epoch + 1)
                break
    if progress is not None:
        progress.close()
    if best_state is not None:
        model.load_state_dict(best_state)

    # Per-class thresholds on the validation pages (the training pages when there is no validation split).
    from models.heads import tune_thresholds

    tune_on = val_examples if val_examples else train_examples
    _, probs, targets = _run_epoch(model, batcher, tune_on, cfg)
    thresholds = np.asarray(tune_thresholds(probs, targets), dtype=np.float64)
    model.dx_head.set_thresholds(thresholds)
    val_f = macro_f(probs, targets, thresholds)

    prevalence = {c: int(sum(c in i.labels for i in infos)) for c in classes}
    trace_source = cfg.trace_source
    trace_scores: dict[str, float] = {}
    if cfg.digitizer == "pipeline" and trace_source == "auto":
        from ecgentry.infer import choose_trace_source

        trace_source, trace_scores = choose_trace_source(
            model, val_infos or train_infos, cfg.render_preset, cfg.trace_source_pages, cfg.seed + 1, device
        )

    summary = {
        "records_used": len(infos),
        "records_skipped": len(skipped),
        "skipped": [f"{r}: {why}" for r, why in skipped[:100]],
        "train_pages": len(train_examples),
        "val_pages": len(val_examples),
        "classes": classes,
        "class_counts": prevalence,
        "fallback_labels": [max(prevalence, key=prevalence.get)] if prevalence else [],
        "thresholds": thresholds.tolist(),
        "val_macro_f_tuned": val_f,
        "digitizer": cfg.digitizer,
        "trace_source": trace_source,
        "trace_source_snr_db": trace_scores,
        "history": history,
        "weights_source": model.config.weights_source,
        "seconds": round(time.time() - t_start, 1),
    }
    save_entry(model_folder, model, cfg, summary)
    if skipped:
        logger.warning("%d record(s) skipped during training (see %s)", len(skipped), ENTRY_FILE)
    return summary


def save_entry(model_folder: str, model: ECGMultiHeadModel, cfg: TrainConfig, summary: dict[str, Any]) -> None:
    """Write the model folder: ``model/`` (config.json + safetensors), ``train_config.json`` and, last,
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
    cfg.to_json(folder / "train_config.json")
    tmp = folder / (ENTRY_FILE + ".tmp")
    tmp.write_text(json.dumps(summary, indent=2, default=float) + "\n", encoding="utf-8")
    os.replace(tmp, entry)
