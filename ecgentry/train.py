"""Training the shared multi-head model from a Challenge data folder (what ``team_code.train_models`` runs).

Per record: its own images train the Dx head (and the regression digitization head when enabled); its
signal, when present, is rendered into extra pages with pixel-exact masks (``ecgrender``) that train the
segmentation digitization head and the Dx head. Records with labels but no image are used through
rendered pages; records with images but no signal through their images.

:func:`train` runs the steps of :mod:`ecgentry.training` in order: records and split, pages, the network's page
loop with checkpoints, the Dx fit (thresholds, calibration, rhythm rules), the trace source, the model folder.
"""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ecgentry import checkpoint as ckpt
from ecgentry import distributed as ddp_utils
from ecgentry.config import TrainConfig
from ecgentry.model_folder import ENTRY_FILE, save_entry
from ecgentry.records import RecordInfo, scan_records
from ecgentry.training.batches import Batcher, digitization_like
from ecgentry.training.data import Example, labels_matrix, order_classes, positive_weights, split_by_record
from ecgentry.training.dx_fit import (
    attach_digitized_pages,
    dx_design,
    fit_dx_full_batch,
    fit_dx_rhythm_rules,
    tune_on_pages,
)
from ecgentry.training.loop import LossModule, loop_needed, lr_lambda, run_epoch
from ecgentry.training.metrics import macro_f
from ecgentry.training.pages import choose_trace_source, render_training_pages
from ecgentry.training.resume import (
    ENV_STOP_AFTER_EPOCHS,
    ENV_TRAIN_TRACE_DIR,
    TrainingInterrupted,
    resume_mismatch,
    stop_after_epochs,
    training_fingerprint,
    write_trace,
)
from ecgfeatures.features import FEATURE_NAMES
from ecgvocab import STANDARD_LEADS
from models.config import DigitizationHeadConfig, DxHeadConfig, LossConfig, ModelConfig
from models.model import build_model

logger = logging.getLogger(__name__)

#: Names other modules and scripts take from here.
__all__ = [
    "TrainingInterrupted",
    "build_model_config",
    "digitization_like",
    "fit_dx_full_batch",
    "macro_f",
    "order_classes",
    "positive_weights",
    "split_by_record",
    "train",
]


def build_model_config(
    cfg: TrainConfig, classes: list[str], pos_weight: list[float] | None = None, pretrained: bool = True
) -> ModelConfig:
    """The model configuration for these classes (``pretrained``: were pre-trained backbone weights found;
    with ``dx_use_image="auto"`` the Dx head uses image features only then)."""
    dig = DigitizationHeadConfig(kind="regression") if cfg.regression else None
    seg = None
    if cfg.segmentation:
        from models.segmentation import SegmentationHeadConfig

        seg = SegmentationHeadConfig(
            decoder_channels=cfg.segmentation_decoder_channels, input_mode=cfg.segmentation_input
        )
    return ModelConfig(
        backbone=cfg.backbone,
        dx_head=DxHeadConfig(
            classes=classes,
            hidden_sizes=list(cfg.dx_hidden_sizes),
            dropout=cfg.dx_dropout,
            extra_features=len(FEATURE_NAMES) if cfg.signal_features else 0,
            standardize=bool(cfg.dx_standardize),
            use_image=cfg.dx_use_image is True or (cfg.dx_use_image == "auto" and pretrained),
        ),
        digitization_head=dig,
        segmentation_head=seg,
        loss=LossConfig(
            digitization_weights=dict(cfg.digitization_losses), balancing=cfg.balancing, pos_weight=pos_weight
        ),
        lead_names=list(STANDARD_LEADS),
    )


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


def _train(
    data_folder: str, model_folder: str, cfg: TrainConfig, verbose: bool, ctx: ddp_utils.DistContext, t_start: float
) -> dict[str, Any]:
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
        raise ValueError(
            f"no usable training records in {data_folder!r} ({len(skipped)} skipped: "
            "each needs labels and an image or a signal)"
        )
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
        logger.info(
            "%d training pages (%d records), %d validation pages (%d records), classes %s",
            len(train_examples),
            len(train_infos),
            len(val_examples),
            len(val_infos),
            classes,
        )

    batcher = Batcher(model, classes, cfg, device)
    loss_module = LossModule(model)
    runner: torch.nn.Module = loss_module
    if ctx.enabled:
        from torch.nn.parallel import DistributedDataParallel

        runner = DistributedDataParallel(
            loss_module, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=True
        )
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    shard_len = math.ceil(len(train_examples) / ctx.world_size)
    steps_per_epoch = math.ceil(shard_len / cfg.batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_lambda(steps_per_epoch * cfg.epochs, cfg.warmup_fraction)
    )

    fingerprint = training_fingerprint(infos, train_examples, val_examples)
    state = ckpt.TrainingState()
    meta = ckpt.read_checkpoint_meta(model_folder)
    if meta is not None:
        why = resume_mismatch(meta, cfg, fingerprint)
        if why is None:
            state = ckpt.restore_checkpoint(
                model_folder, meta, model=model, optimizer=optimizer, scheduler=scheduler, np_rng=rng, device=device
            )
            if ctx.is_main:
                logger.info("resuming from the checkpoint after epoch %d in %s", state.epoch, model_folder)
        elif ctx.is_main:
            logger.warning("not resuming the checkpoint in %s: %s; training from scratch", model_folder, why)

    trace_dir = os.environ.get(ENV_TRAIN_TRACE_DIR, "").strip()
    seen_per_epoch: list[list[int]] = []
    stop_after = stop_after_epochs()
    progress = None
    if verbose and ctx.is_main:
        from tqdm import tqdm

        progress = tqdm(
            total=steps_per_epoch * cfg.epochs, initial=steps_per_epoch * state.epoch, desc="training", unit="batch"
        )
    val_indices = ddp_utils.eval_shard(len(val_examples), ctx.rank, ctx.world_size)
    run_loop = loop_needed(model, cfg)
    if not run_loop and ctx.is_main:
        logger.info("no page loop: only the Dx head is trained, by the full-batch fit")
    for epoch in range(state.epoch, cfg.epochs if run_loop else 0):
        batcher.epoch = epoch
        if state.stopped_early:
            break
        shard = ddp_utils.epoch_shard(len(train_examples), epoch, cfg.seed, ctx.rank, ctx.world_size)
        seen: list[int] = []
        train_parts, _, _ = run_epoch(
            runner, batcher, train_examples, shard, cfg, ctx, optimizer, scheduler, progress, seen
        )
        seen_per_epoch.append(seen)
        row = {"epoch": epoch + 1, **{f"train_{k}": v for k, v in train_parts.items()}}
        if val_examples:
            val_parts, vp, vt = run_epoch(loss_module, batcher, val_examples, val_indices, cfg, ctx)
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
            ckpt.save_checkpoint(
                model_folder,
                model=model,
                optimizer=optimizer,
                scheduler=scheduler,
                np_rng=rng,
                state=state,
                config=cfg.to_dict(),
                fingerprint=fingerprint,
            )
            from ecgentry.report import write_report_csv

            write_report_csv(model_folder, state.history)
        ctx.barrier()
        if (
            stop_after is not None
            and state.epoch >= stop_after
            and state.epoch < cfg.epochs
            and not state.stopped_early
        ):
            if progress is not None:
                progress.close()
            write_trace(trace_dir, ctx, model, seen_per_epoch)
            raise TrainingInterrupted(
                f"${ENV_STOP_AFTER_EPOCHS}={stop_after}: stopped after epoch {state.epoch} "
                f"(checkpoint in {Path(model_folder) / ckpt.CHECKPOINT_DIR})"
            )
    if progress is not None:
        progress.close()
    write_trace(trace_dir, ctx, model, seen_per_epoch)
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
            dx_fit = fit_dx_full_batch(
                model,
                design,
                None,
                labels_matrix(infos, classes),
                cfg,
                np.array([prevalence[c] / len(infos) for c in classes]),
            )
            thresholds, val_f = dx_fit["thresholds"], dx_fit["oof_macro_f"]
        else:
            logger.warning("no record gives Dx head inputs for the full-batch fit; keeping the page-loop head")
    if not dx_fit:
        thresholds, val_f = tune_on_pages(loss_module, batcher, train_examples, val_examples, classes, cfg, ctx)
        model.dx_head.set_thresholds(thresholds)

    trace_source = cfg.trace_source
    trace_scores: dict[str, float] = {}
    if cfg.digitizer == "pipeline" and trace_source == "auto":
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
