"""Pages rendered from the training records' signals: segmentation targets for the network, and the choice of
the trace source (classical or learned maps) on rendered validation pages."""

from __future__ import annotations

import logging

import numpy as np
import torch

from ecgentry.config import TrainConfig
from ecgentry.infer import EntryModels, analyse_page
from ecgentry.records import RecordInfo, load_standard_signal
from ecgentry.training.data import Example
from ecgvocab import STANDARD_LEADS, snr_db
from models.model import ECGMultiHeadModel

logger = logging.getLogger(__name__)

MIN_GAIN_DB = 0.5  # a learned trace map must beat the classical one by this much on validation pages


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


def choose_trace_source(
    model: ECGMultiHeadModel, infos: list[RecordInfo], preset: str, num_pages: int, seed: int, device: torch.device
) -> tuple[str, dict[str, float]]:
    """Pick the trace source (classical, segmentation, combined, per-page) that digitizes full-resolution pages
    rendered from the records ``infos`` (validation records) best: median SNR in dB (``ecgvocab.snr_db`` per lead; no
    shift search: the renderer's time axis is exact)."""
    from ecgrender.distort import apply_preset
    from ecgrender.page import PageSpec, render_page

    if model.segmentation_head is None or num_pages <= 0:
        return "classical", {}
    entry = EntryModels(model=model, device=device, summary={"digitizer": "pipeline"})
    model.eval()
    scores: dict[str, list[float]] = {"classical": [], "segmentation": [], "combined": [], "per-page": []}
    rng = np.random.default_rng(seed)
    pages = 0
    for info in infos:
        if pages >= num_pages:
            break
        ref = load_standard_signal(info) if info.has_signal else None
        if ref is None:
            continue
        page_seed = int(rng.integers(2**31))
        try:
            spec = PageSpec.random(page_seed)
            page = apply_preset(
                render_page(ref, info.fs, list(STANDARD_LEADS), spec, rng=page_seed), preset, rng=page_seed + 1
            )
        except Exception as exc:
            logger.warning("rendering %s failed: %s", info.record, exc)
            continue
        pages += 1
        for source in scores:
            est, _ = analyse_page(
                entry, page.image, fs=info.fs, num_samples=ref.shape[0], lead_names=list(STANDARD_LEADS), source=source
            )
            scores[source].append(snr_db(ref, est, per_lead=True))
    medians = {k: float(np.median(v)) for k, v in scores.items() if v}
    if not medians:
        return "classical", {}
    # The network's maps must earn their place: they replace the classical map only when clearly better.
    best = "classical"
    for source in ("combined", "segmentation", "per-page"):
        if medians.get(source, -np.inf) > medians.get(best, -np.inf) + MIN_GAIN_DB:
            best = source
    logger.info("trace source on %d validation pages (median SNR dB): %s -> %s", pages, medians, best)
    return best, medians
