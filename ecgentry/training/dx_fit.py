"""The Dx head's decisions: its full-batch fit on signal features (the digitized training pages, out-of-fold
calibration and thresholds, rhythm rules), or the thresholds of a head trained by the page loop."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import numpy as np
import torch

from ecgentry import distributed as ddp_utils
from ecgentry.config import TrainConfig
from ecgentry.records import RecordInfo
from ecgentry.training.batches import FEATURE_VARIANTS, Batcher, DxDesign
from ecgentry.training.data import Example, labels_matrix
from ecgentry.training.loop import run_epoch
from ecgentry.training.metrics import decide, known_dx, macro_f
from ecgfeatures.features import FEATURE_NAMES, features_to_model_input
from models.model import ECGMultiHeadModel

logger = logging.getLogger(__name__)

MIN_POSITIVES_TO_TUNE = 3  # classes with fewer validation positives keep the 0.5 threshold


def attach_digitized_pages(
    batcher: "Batcher",
    infos: list[RecordInfo],
    cfg: TrainConfig,
    model_folder: str,
    ctx: ddp_utils.DistContext | None = None,
    verbose: bool = False,
) -> dict[str, Any]:
    """Digitize (or read from the cache) every own page of ``infos`` and give the batcher their raw features
    (pages whose digitization failed are left out; leads the self-check blames are NaN). Returns the counts
    for the training summary. Under several ranks the main rank digitizes, the others read its cache."""
    from ecgentry.digitized_training import CACHE_FOLDER, FeatureCache, digitize_training_pages, page_raw_features

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


def dx_design(
    model: ECGMultiHeadModel,
    batcher: Batcher,
    infos: list[RecordInfo],
    examples: list[Example],
    cfg: TrainConfig,
    device: torch.device,
) -> DxDesign:
    """Input rows of the Dx head for a full-batch fit (:class:`DxDesign`).

    Signal-features-only head: :meth:`Batcher.design_rows` (digitization-like feature variants of every record
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
        group = examples[start : start + cfg.batch_size]
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
            judged = [
                ex.info.record in batcher.pages_failed
                or any(batcher.page_features.get(f) is not None for f in ex.info.image_files)
                for ex in kept
            ]
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
                    rows.append(
                        head.inputs(feats[sel] if torch.is_tensor(feats) else [f[sel] for f in feats], extra)
                        .float()
                        .cpu()
                        .numpy()
                    )
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
        return DxDesign(
            empty, np.zeros(0, np.int64), np.zeros(0), np.zeros(0, bool), np.zeros((0, len(FEATURE_NAMES)), np.float32)
        )
    return DxDesign(
        np.concatenate(rows).astype(np.float32),
        np.asarray(owners, np.int64),
        np.asarray(weights, np.float64),
        np.asarray(evals, bool),
        np.concatenate(raws).astype(np.float32),
    )


def fit_dx_full_batch(
    model: ECGMultiHeadModel,
    x: np.ndarray | DxDesign,
    owners: np.ndarray | None,
    y_records: np.ndarray,
    cfg: TrainConfig,
    prevalence: np.ndarray | None = None,
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

    design = (
        x
        if isinstance(x, DxDesign)
        else DxDesign(
            np.asarray(x, np.float32),
            np.asarray(owners, np.int64),
            np.ones(len(x)),
            np.ones(len(x), bool),
            np.full((len(x), len(FEATURE_NAMES)), np.nan, np.float32),
        )
    )
    head = model.dx_head
    classes = list(head.classes)
    fit_rows = np.flatnonzero(design.weights > 0)
    y = y_records[design.owners]
    pos_weight = balanced_pos_weight(y[fit_rows], cfg.dx_pos_weight_limit)
    records = np.unique(design.owners[fit_rows])
    rules = head.rhythm_rules if head.extra_features and design.raw.shape[1] == len(FEATURE_NAMES) else []

    def fit(rows: np.ndarray, target: Any) -> None:
        fit_dx_head(
            target,
            design.x[rows],
            y[rows],
            l2=cfg.dx_l2,
            pos_weight=pos_weight,
            seed=cfg.seed,
            sample_weight=design.weights[rows],
        )

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
        prev = oof_targets.mean(axis=0) if prevalence is None else np.asarray(prevalence, np.float64)
        thresholds, decisions = choose_thresholds(
            rec, oof_targets, prev, cfg.dx_min_positives, cfg.dx_max_rate_ratio, tune=cfg.dx_thresholds == "oof"
        )
        if rules:  # the rules' "unless AFIB/AFL is predicted" with the chosen thresholds, then once more
            rec = per_record_probs(cal_rows, thresholds)
            thresholds, decisions = choose_thresholds(
                rec, oof_targets, prev, cfg.dx_min_positives, cfg.dx_max_rate_ratio, tune=cfg.dx_thresholds == "oof"
            )
        oof_f = macro_f(rec, oof_targets, thresholds)
        pred = decide(rec, thresholds)
        counts = {c: [int(pred[:, j].sum()), int(oof_targets[:, j].sum())] for j, c in enumerate(classes)}
        report = {
            "uncalibrated": calibration_report(raw_records, oof_targets, classes),
            "calibrated": calibration_report(rec, oof_targets, classes) if calibration else {},
        }
    fit(fit_rows, head)
    head.set_thresholds(thresholds)
    logger.info(
        "Dx head fitted on %d rows of %d records (full batch, l2 %.3g); out-of-fold macro F %.3f; "
        "out-of-fold predicted/true per class %s",
        len(fit_rows),
        len(records),
        cfg.dx_l2,
        oof_f,
        counts,
    )
    return {
        "thresholds": thresholds,
        "oof_macro_f": oof_f,
        "rows": int(len(fit_rows)),
        "records": int(len(records)),
        "calibration": calibration,
        "calibration_report": report,
        "decisions": decisions,
        "oof_predicted_vs_true": counts,
    }


def fit_dx_rhythm_rules(
    model: ECGMultiHeadModel, batcher: Batcher, infos: list[RecordInfo], classes: list[str], cfg: TrainConfig
) -> list[dict[str, Any]]:
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
    rules = fit_rhythm_rules(rows, FEATURE_NAMES, labels_matrix(infos, classes)[owners] > 0.5, classes)
    head.set_rhythm_rules(rules)
    for r in rules:
        logger.info("rhythm rule: %s", r.describe())
    return head.rhythm_rules


def tune_on_pages(
    loss_module: torch.nn.Module,
    batcher: Batcher,
    train_examples: list[Example],
    val_examples: list[Example],
    classes: list[str],
    cfg: TrainConfig,
    ctx: ddp_utils.DistContext,
) -> tuple[np.ndarray, float]:
    """Per-class thresholds (C,) for a head trained by the page loop (tuned on the validation pages, the training
    pages when there is no validation split), and the validation macro F with them."""
    from models.heads import tune_thresholds

    tune_on = val_examples if val_examples else train_examples
    _, probs, targets = run_epoch(
        loss_module, batcher, tune_on, ddp_utils.eval_shard(len(tune_on), ctx.rank, ctx.world_size), cfg, ctx
    )
    probs, targets = known_dx(probs, targets)
    thresholds = np.asarray(tune_thresholds(probs, targets), dtype=np.float64)
    # A threshold tuned on one or two positives is noise (benchmarks/classify.py): such classes are tuned on the
    # training and validation pages together, and keep 0.5 when even those have too few positives.
    counts = targets.sum(axis=0) if targets.size else np.zeros(len(classes))
    too_few = counts < MIN_POSITIVES_TO_TUNE
    if too_few.any() and val_examples:
        _, train_probs, train_targets = run_epoch(
            loss_module,
            batcher,
            train_examples,
            ddp_utils.eval_shard(len(train_examples), ctx.rank, ctx.world_size),
            cfg,
            ctx,
        )
        train_probs, train_targets = known_dx(train_probs, train_targets)
        if train_targets.size:
            pooled_probs = np.concatenate([probs, train_probs])
            pooled_targets = np.concatenate([targets, train_targets])
            pooled = np.asarray(tune_thresholds(pooled_probs, pooled_targets), dtype=np.float64)
            thresholds[too_few] = pooled[too_few]
            counts = pooled_targets.sum(axis=0)
    thresholds[counts < MIN_POSITIVES_TO_TUNE] = 0.5
    return thresholds, macro_f(probs, targets, thresholds)
