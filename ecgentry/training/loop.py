"""The network's page loop: forward pass and loss in one module, the learning-rate schedule, one epoch."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ecgentry import distributed as ddp_utils
from ecgentry.config import TrainConfig
from ecgentry.training.batches import Batcher
from ecgentry.training.data import Example
from models.model import ECGMultiHeadModel


def loop_needed(model: ECGMultiHeadModel, cfg: TrainConfig) -> bool:
    """Does the page loop train anything the full-batch Dx fit does not? (digitization heads, or a trainable
    backbone under an image-fed Dx head)."""
    if cfg.dx_fit != "full_batch" or model.dx_head is None:
        return True
    if model.segmentation_head is not None or model.digitization_head is not None:
        return True
    return bool(model.dx_head.use_image and any(p.requires_grad for p in model.backbone.parameters()))


class LossModule(torch.nn.Module):
    """Forward pass and loss in one module, so that DistributedDataParallel sees every trained parameter
    (including the loss-balancing log-variances the loss itself owns) inside ``forward``."""

    def __init__(self, model: ECGMultiHeadModel):
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float], dict[str, Any]]:
        outputs = self.model(batch["pixel_values"], batch.get("extra_features"))
        total, parts = self.model.compute_loss(
            outputs,
            dx_targets=batch["dx_targets"],
            signal_targets=batch.get("signal_targets"),
            seg_targets=batch.get("seg_targets"),
        )
        return total, parts, outputs


def lr_lambda(total_steps: int, warmup_fraction: float):
    warm = max(1, int(total_steps * warmup_fraction))

    def f(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        progress = (step - warm) / max(1, total_steps - warm)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return f


def run_epoch(
    runner: torch.nn.Module,
    batcher: Batcher,
    examples: list[Example],
    indices: np.ndarray,
    cfg: TrainConfig,
    ctx: ddp_utils.DistContext,
    optimizer=None,
    scheduler=None,
    progress=None,
    seen: list[int] | None = None,
) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """One pass over ``examples[indices]`` (this rank's shard); trains when an optimizer is given.

    Returns the mean loss parts over all ranks' examples and the Dx probabilities and targets (N, C) of all
    ranks (gathered in rank order). ``seen`` collects the example indices this rank trained on."""
    training = optimizer is not None
    runner.train(training)
    sums: dict[str, float] = {}
    count = 0
    probs, targets = [], []
    for k in range(0, len(indices), cfg.batch_size):
        group_idx = [int(i) for i in indices[k : k + cfg.batch_size]]
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
    local = (
        np.concatenate(probs) if probs else np.zeros((0, 0)),
        np.concatenate(targets) if targets else np.zeros((0, 0)),
    )
    gathered = [pair for pair in ddp_utils.all_gather_objects(ctx, local) if pair[0].size]
    p = np.concatenate([g[0] for g in gathered]) if gathered else np.zeros((0, 0))
    t = np.concatenate([g[1] for g in gathered]) if gathered else np.zeros((0, 0))
    return means, p, t
