"""Running the trained entry on one record (what ``team_code.run_models`` runs)."""

from __future__ import annotations

import json
import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

import helper_code as hc
from ecgdigitize import lead_labels
from ecgdigitize.image_io import load_image
from ecgdigitize.pipeline import digitize_page
from ecgentry.calibration import apply_calibration
from ecgentry.model_folder import ENTRY_FILE, MODEL_SUBFOLDER
from ecgentry.records import header_facts, read_header, record_image_files, resample_signal, standard_leads
from ecgfeatures.features import FEATURE_NAMES, extract_features, features_to_model_input, nothing_measured
from ecgfeatures.trust import page_usable, trusted_signal
from ecgvocab import OUTPUT_LIMIT_MV, clip_for_wfdb, lead_key
from models.model import ECGMultiHeadModel

logger = logging.getLogger(__name__)


@dataclass
class EntryModels:
    """The loaded entry: one multi-head model serving both digitization and classification."""

    model: ECGMultiHeadModel
    device: torch.device
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def classes(self) -> list[str]:
        return self.model.classes

    @property
    def trace_source(self) -> str:
        source = self.summary.get("trace_source", "classical")
        return (
            "classical"
            if source == "auto" or self.model.segmentation_head is None and source != "classical"
            else source
        )


def load_entry(model_folder: str, device: str = "auto") -> EntryModels:
    """Load a model folder written by ``ecgentry.train``; FileNotFoundError when it is missing or incomplete."""
    folder = Path(model_folder)
    entry = folder / ENTRY_FILE
    if not entry.is_file():
        raise FileNotFoundError(f"{model_folder!r} is not a complete model folder (no {ENTRY_FILE}); train first")
    summary = json.loads(entry.read_text(encoding="utf-8"))
    dev = torch.device(
        "cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device)
    )
    model = ECGMultiHeadModel.load(folder / MODEL_SUBFOLDER, device=dev)
    model.eval()
    lead_labels.load_classifier(folder)  # else trained at its first use (older model folders)
    return EntryModels(model=model, device=dev, summary=summary)


def trace_maps(
    entry_model: ECGMultiHeadModel,
    seg_logits: torch.Tensor | None,
    transform: Any,
    image: np.ndarray,
    sources: Sequence[str],
) -> dict[str, np.ndarray]:
    """The learned trace probabilities handed to the vectoriser, by source: "segmentation" (the segmentation head's
    map) and "combined" (the classical map gated by the dilated segmentation map); the head runs once for all of
    them. Made at the digitizer's working size (``image`` downscaled to its long side ``MAX_WORK_SIDE`` px, as
    ``digitize_page`` does), never at the page's full size: a 13200 x 10200 page's float maps would take several
    GB. A head trained on native-resolution crops (``input_mode="tiles"``) runs on tiles of that working image; a
    page-mode head's map comes from ``seg_logits`` (the letterboxed page's logits). Empty without a head (or
    without logits for a page-mode head); "classical" and unknown sources are left out."""
    head = entry_model.segmentation_head
    tiles = head is not None and head.config.input_mode == "tiles"
    wanted = [s for s in sources if s in ("segmentation", "combined")]
    if not wanted or head is None or (seg_logits is None and not tiles):
        return {}
    from dataclasses import replace

    from ecgdigitize.image_io import MAX_WORK_SIDE, downscale
    from models.segmentation import predict_trace_tiles, trace_probability

    work, factor = downscale(image, MAX_WORK_SIDE)
    if tiles:
        prob = predict_trace_tiles(entry_model.backbone, head, work)
    else:
        if factor < 1.0:
            transform = replace(transform, page_height=int(work.shape[0]), page_width=int(work.shape[1]))
        prob = trace_probability(seg_logits, transform)
    out = {}
    for source in wanted:
        if source == "segmentation":
            out[source] = prob
        else:
            import cv2

            from ecgdigitize.trace_map import classical_trace_map

            gate = cv2.dilate((prob > 0.3).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(np.float32)
            out[source] = classical_trace_map(work).prob * np.maximum(gate, 0.1)
    return out


def trace_map(
    entry_model: ECGMultiHeadModel, seg_logits: torch.Tensor | None, transform: Any, image: np.ndarray, source: str
) -> np.ndarray | None:
    """One source's trace probability (see :func:`trace_maps`); None for the classical map."""
    return trace_maps(entry_model, seg_logits, transform, image, (source,)).get(source)


#: the learned trace maps tried, in order, on a page whose classical reading's self-check is not ok
PER_PAGE_ALTERNATIVES = ("combined", "segmentation")
#: a learned reading must keep this share of the classical reading's samples: a reading that lost leads or a
#: rhythm strip has fewer checks to fail, so its status alone would flatter it (ecg-image-kit 100-DPI pages:
#: 3x4+1 read as 3x4, failed -> suspect, 8.2 -> 0.0 dB)
PER_PAGE_MIN_COVERAGE = 0.95


def digitize_per_page(
    entry_model: ECGMultiHeadModel, seg_logits: torch.Tensor | None, transform: Any, image: np.ndarray, **kwargs: Any
) -> Any:
    """The ``"per-page"`` trace source: the page read with the classical trace map, and, when its self-check is
    not ok and the model has a segmentation head, read again with each learned map; the reading whose
    self-check ranks highest (``ecgdigitize.pipeline.reading_rank``) among those keeping the classical reading's
    samples (:data:`PER_PAGE_MIN_COVERAGE`) is returned, its choice in its warnings."""
    from ecgdigitize.pipeline import reading_rank

    first = digitize_page(image, None, **kwargs)
    best, best_source = first, "classical"
    if best.status == "ok" or entry_model.segmentation_head is None:
        return best
    for source, prob in trace_maps(entry_model, seg_logits, transform, image, PER_PAGE_ALTERNATIVES).items():
        candidate = digitize_page(image, prob, **kwargs)
        kept = np.isfinite(candidate.signal).sum() >= PER_PAGE_MIN_COVERAGE * np.isfinite(first.signal).sum()
        if kept and reading_rank(candidate) > reading_rank(best):
            best, best_source = candidate, source
    best.warnings.append(f"trace map chosen by the self-check: {best_source}")
    return best


def analyse_page(
    entry: EntryModels,
    image: np.ndarray,
    *,
    fs: float,
    num_samples: int,
    lead_names: list[str],
    source: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One page -> (signal (num_samples, len(lead_names)) mV with NaN where not printed, Dx probabilities (C,))."""
    signal, probs, _ = analyse_page_result(
        entry, image, fs=fs, num_samples=num_samples, lead_names=lead_names, source=source
    )
    return signal, probs


def analyse_page_result(
    entry: EntryModels,
    image: np.ndarray,
    *,
    fs: float,
    num_samples: int,
    lead_names: list[str],
    source: str | None = None,
    layout: str = "auto",
    paper_speed: float | None = None,
    gain: float = 10.0,
) -> tuple[np.ndarray, np.ndarray, Any]:
    """Like :func:`analyse_page`, plus the digitizer's ``DigitizationResult`` (None with the regression head).
    Dx: the signal features come from the leads the page's self-check trusts (``ecgfeatures.trust``); a page whose
    digitization failed gives no probabilities (its record gets the fallback labels when no other page is read);
    probabilities are calibrated (``dx_calibration`` of ``entry.json``) before the rhythm rules and thresholds.
    ``layout`` ("auto" or a layout name), ``paper_speed`` (mm/s; None: read from the calibration pulses) and
    ``gain`` (mm/mV) go to ``digitize_page``."""
    model = entry.model
    result = None
    pixel_values, transforms = model.backbone.preprocess_with_transforms([image])
    with torch.no_grad():
        feats = model.backbone(pixel_values.to(entry.device))
        if entry.summary.get("digitizer") == "regression" and model.digitization_head is not None:
            head = model.config.digitization_head
            sig12 = model.digitization_head(feats)[0].cpu().numpy().T.astype(np.float64)  # (max_len, 12) at head.fs
            signal = _to_header_leads(resample_signal(sig12, head.fs, fs, num_samples), model.lead_names, lead_names)
        else:
            source = source or entry.trace_source
            page_head = model.segmentation_head is not None and model.segmentation_head.config.input_mode == "page"
            seg = model.segmentation_head(feats)[0].float().cpu() if page_head and source != "classical" else None
            kwargs: dict[str, Any] = {"fs": fs, "num_samples": num_samples, "lead_names": lead_names}
            if layout != "auto":
                kwargs["layout"] = layout
            if paper_speed is not None:
                kwargs["paper_speed"] = paper_speed
            if gain != 10.0:
                kwargs["gain"] = gain
            if source == "per-page":
                result = digitize_per_page(model, seg, transforms[0], image, **kwargs)
            else:
                result = digitize_page(image, trace_map(model, seg, transforms[0], image, source), **kwargs)
            for message in result.warnings:
                logger.info("digitizer: %s", message)
            signal = result.signal
        probs = dx_probabilities(entry, signal, lead_names, fs, result, feats)
    return signal, probs, result


def dx_probabilities(
    entry: EntryModels,
    signal: np.ndarray,
    lead_names: list[str],
    fs: float,
    result: Any = None,
    feats: Any = None,
    check: Any = "from result",
) -> np.ndarray:
    """The Dx probabilities (C,) of one page from its digitized ``signal`` (num_samples, len(lead_names)) and the
    backbone's feature maps ``feats`` (needed only by a head that uses image features); empty when the page is
    no evidence. ``result``: the ``DigitizationResult`` (its self-check decides, unless ``check`` is given: a
    ``SelfCheck`` or its dict, e.g. from a cache; None means no digitizer ran, as with the regression head).

    A page whose digitization failed gives no probabilities (its record gets the fallback labels when no other
    page is read), not a guess from the noise it traced; leads the page's self-check blames are left out of the
    signal features (``ecgfeatures.trust``); a signal-features-only head with nothing measured gives none
    either. Probabilities are calibrated (``entry.json`` ``dx_calibration``; the thresholds were chosen on that
    scale), then the rhythm rules apply."""
    model = entry.model
    if model.dx_head is None:
        return np.zeros(0)
    if isinstance(check, str):
        check = None if result is None else result.check
        judged = result is not None
    else:
        judged = True
    extra = None
    values = None
    if model.dx_uses_signal_features:
        features_signal = signal
        if judged:
            if not page_usable(check):
                logger.info("page digitization failed: no Dx probabilities")
                return np.zeros(0)
            features_signal = trusted_signal(signal, lead_names, check)
        values = extract_features(standard_leads(features_signal, lead_names), fs)
        if not model.dx_uses_image and nothing_measured(values):
            # a head on signal features alone has nothing to go on (the page gave no usable trace): no
            # probabilities, so that the record gets the fallback labels rather than an extrapolation
            logger.info("no signal feature measured on this page: no Dx probabilities")
            return np.zeros(0)
        extra = torch.from_numpy(features_to_model_input(values[None])).to(entry.device)
    calibration = entry.summary.get("dx_calibration")
    return model.predict_dx(
        feats,
        extra,
        calibrate=lambda p: apply_calibration(p, calibration),
        raw_features=values,
        feature_names=FEATURE_NAMES,
    )


def labels_from_probs(entry: EntryModels, probs: np.ndarray) -> list[str]:
    """Classes whose probability reaches its tuned threshold (the most probable class when none does; the
    training set's most frequent class when there are no probabilities)."""
    if not entry.classes:
        return []
    if probs.size == 0:
        return list(entry.summary.get("fallback_labels", []))
    return entry.model.dx_labels(probs)


def _to_header_leads(signal12: np.ndarray, model_leads: list[str], header_leads: list[str]) -> np.ndarray:
    lookup = {lead_key(n): j for j, n in enumerate(model_leads)}
    out = np.full((signal12.shape[0], len(header_leads)), np.nan)
    for j, name in enumerate(header_leads):
        k = lookup.get(lead_key(name))
        if k is not None:
            out[:, j] = signal12[:, k]
    return out


def run_record(entry: EntryModels, record: str, verbose: bool = False) -> tuple[np.ndarray | None, list[str]]:
    """Digitize and classify one record: ``(signal (num_samples, num_channels) mV in the header's lead order and
    sampling rate, labels)``. Never raises for a bad record: a header that cannot be parsed, an image that cannot
    be read (or is refused: outside the record's folder, too large), a page that fails in any step give NaN for
    what is unknown and the training set's most frequent class, with the reason logged; so do pages on which no
    signal feature could be measured when the Dx head sees signal features only. The signal is None only when the
    header does not even give its shape."""
    try:
        return _run_record(entry, record, verbose)
    except Exception as exc:  # noqa: BLE001 - a record is never lost
        logger.warning("record %s failed (%s: %s); signal NaN, fallback labels", record, type(exc).__name__, exc)
        return nan_signal(record), fallback_labels(entry.summary)


def fallback_labels(summary: dict[str, Any]) -> list[str]:
    """The labels of a record the entry could not read: the training set's most frequent class (``entry.json``)."""
    return list(summary.get("fallback_labels", []))


def nan_signal(record: str) -> np.ndarray | None:
    """An all-NaN signal of the header's shape ``(num_samples, num_channels)``, each read on its own from the
    header; None when the header (inside the record's folder) does not give both."""
    try:
        header = read_header(record)
    except Exception:  # noqa: BLE001 - unreadable or outside: no shape to give
        return None
    try:
        num_samples, num_channels = hc.get_num_samples(header), hc.get_num_signals(header)
    except Exception:  # noqa: BLE001
        return None
    if num_samples is None or num_channels is None or int(num_samples) < 0 or int(num_channels) < 0:
        return None
    return np.full((int(num_samples), int(num_channels)), np.nan)


def _run_record(entry: EntryModels, record: str, verbose: bool) -> tuple[np.ndarray | None, list[str]]:
    try:
        header = read_header(record)
        fs, num_samples, lead_names = header_facts(header)
    except Exception as exc:  # noqa: BLE001
        logger.warning("record %s: unreadable header (%s); signal NaN, fallback labels", record, exc)
        return nan_signal(record), fallback_labels(entry.summary)
    signals, probs = [], []
    paths = record_image_files(record, header)
    read = 0
    for path in paths:  # one page in memory at a time
        try:
            image = load_image(path)
        except Exception as exc:  # noqa: BLE001 - unreadable, truncated, refused: NaN for this page
            logger.warning("record %s: unreadable image %s (%s)", record, os.path.basename(path), exc)
            continue
        read += 1
        try:
            s, p = analyse_page(entry, image, fs=fs, num_samples=num_samples, lead_names=lead_names)
        except Exception as exc:  # noqa: BLE001 - never lose a record: NaN signal for this page
            logger.warning(
                "record %s: page %s failed (%s: %s)", record, os.path.basename(path), type(exc).__name__, exc
            )
            continue
        finally:
            del image
        signals.append(s)
        if p.size:
            probs.append(p)
    signal = np.full((num_samples, len(lead_names)), np.nan)
    if signals:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            signal = np.nanmean(np.stack(signals), axis=0)
    signal = clip_for_wfdb(signal, -OUTPUT_LIMIT_MV, OUTPUT_LIMIT_MV)
    if not read:
        logger.warning("record %s: no readable image; signal is NaN", record)
    if entry.classes:
        labels = labels_from_probs(entry, np.mean(np.stack(probs), axis=0) if probs else np.zeros(0))
    else:
        labels = fallback_labels(entry.summary)
    if verbose:
        logger.info("record %s: labels %s", record, labels)
    return signal, labels
