"""The multi-head model: image backbone + optional Dx head + optional digitization heads.

The digitization heads are the regression head (``signal``) and the segmentation head (``seg_logits``,
per-pixel classes background/grid/text/trace that feed the ``ecgdigitize`` vectoriser).
``build_model(cfg)`` builds it; ``model(pixel_values)`` returns ``{"dx_logits": (B, C) | None,
"signal": (B, num_leads, max_len) mV | None, "seg_logits": (B, 4, H, W) | None}``; ``model.compute_loss(...)`` combines the task losses
(learned uncertainty weighting or fixed weights); ``model.save(folder)`` / ``ECGMultiHeadModel.load``
store ``config.json`` + ``model.safetensors`` (no pickle). A frozen pre-trained backbone is not stored:
its weights are found again from its source at load time.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import logging
import os
import uuid
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from models.backbone import ImageBackbone, create_backbone
from models.config import ModelConfig
from models.heads import DxHead, create_digitization_head
from models.rhythm_rules import apply_rhythm_rules

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
FORMAT_NAME = "ecg-multihead-model"
FORMAT_VERSION = 1


def _versions() -> dict[str, str]:
    out = {"torch": torch.__version__}
    for mod in ("transformers", "safetensors", "numpy", "timm", "torchvision"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - optional packages
            continue
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class ECGMultiHeadModel(nn.Module):
    """Backbone + heads. ``forward(pixel_values (B, 3, H, W), extra_features (B, E) | None)`` ->
    ``{"dx_logits": (B, C) or None, "signal": (B, num_leads, max_len) in mV or None}``."""

    def __init__(self, cfg: ModelConfig, backbone: ImageBackbone | None = None) -> None:
        super().__init__()
        self.config = cfg
        self.backbone = backbone if backbone is not None else create_backbone(cfg.backbone)
        self.dx_head = DxHead(cfg.dx_head, self.backbone.channels) if cfg.dx_head is not None else None
        self.digitization_head = (
            create_digitization_head(cfg.digitization_head, self.backbone.channels)
            if cfg.digitization_head is not None
            else None
        )
        self.segmentation_head = None
        if cfg.segmentation_head is not None:
            from models.segmentation import SegmentationHead

            self.segmentation_head = SegmentationHead(
                self.backbone.channels, self.backbone.reductions, config=cfg.segmentation_head
            )
        self.config.weights_source = "pretrained" if self.backbone.pretrained else "random"
        tasks = [
            name
            for name, head in (
                ("dx", self.dx_head),
                ("digitization", self.digitization_head),
                ("segmentation", self.segmentation_head),
            )
            if head is not None
        ]
        self.balancing = cfg.loss.balancing
        self.log_vars = nn.ParameterDict(
            {t: nn.Parameter(torch.zeros(())) for t in tasks} if self.balancing == "uncertainty" else {}
        )
        if cfg.loss.pos_weight is not None:
            if self.dx_head is None or len(cfg.loss.pos_weight) != self.dx_head.num_classes:
                raise ValueError("LossConfig.pos_weight needs a Dx head and one value per class")
            self.register_buffer("pos_weight", torch.tensor(cfg.loss.pos_weight, dtype=torch.float32))
        else:
            self.pos_weight = None
        self._signal_loss: nn.Module | None = None
        if self.digitization_head is not None:
            from models.losses import DigitizationLoss

            self._signal_loss = DigitizationLoss(dict(cfg.loss.digitization_weights))

    # ----------------------------------------------------------------------------------------------
    @property
    def classes(self) -> list[str]:
        """Dx class names (empty without a Dx head)."""
        return list(self.dx_head.classes) if self.dx_head is not None else []

    @property
    def lead_names(self) -> list[str]:
        return list(self.config.lead_names)

    def preprocess(self, images: Any) -> torch.Tensor:
        """Pages (list of (H, W, 3) uint8 / PIL) -> pixel_values; see ``ImageBackbone.preprocess``."""
        return self.backbone.preprocess(images)

    # ----------------------------------------------------------------------------------------------
    # Dx prediction of one page
    # ----------------------------------------------------------------------------------------------
    @property
    def dx_uses_signal_features(self) -> bool:
        """Does the Dx head read signal features (``extra`` of :meth:`predict_dx`)?"""
        return self.dx_head is not None and bool(self.dx_head.extra_features)

    @property
    def dx_uses_image(self) -> bool:
        """Does the Dx head read the backbone's feature maps (``feats`` of :meth:`predict_dx`)?"""
        return self.dx_head is not None and bool(self.dx_head.use_image)

    def dx_thresholds(self) -> np.ndarray:
        """The Dx head's decision thresholds (C,) float; empty without a Dx head."""
        if self.dx_head is None:
            return np.zeros(0)
        return self.dx_head.thresholds.detach().cpu().numpy()

    def predict_dx(
        self,
        feats: Sequence[torch.Tensor] | None,
        extra: torch.Tensor | None = None,
        calibrate: Callable[[np.ndarray], np.ndarray] | None = None,
        raw_features: np.ndarray | None = None,
        feature_names: Sequence[str] = (),
    ) -> np.ndarray:
        """Dx probabilities (C,) of one page: the sigmoid of the Dx head on the backbone's feature maps ``feats``
        (list of (1, C_i, H_i, W_i); None when the head does not use them) and the model-ready signal features
        ``extra`` (1, E); then ``calibrate`` ((C,) -> (C,)), then the head's rhythm rules on the page's raw signal
        features ``raw_features`` (E,) named ``feature_names`` (skipped when None or the head has no rules).
        Empty without a Dx head."""
        if self.dx_head is None:
            return np.zeros(0)
        if self.dx_uses_image and feats is None:
            raise ValueError("a Dx head with image features needs the backbone's feature maps")
        with torch.no_grad():
            probs = torch.sigmoid(self.dx_head(feats, extra))[0].cpu().numpy()
        if calibrate is not None:
            probs = calibrate(probs).astype(probs.dtype)
        if raw_features is not None and self.dx_head.rhythm_rules:
            probs = apply_rhythm_rules(
                probs,
                raw_features,
                list(feature_names),
                self.dx_head.classes,
                self.dx_head.rhythm_rules,
                self.dx_thresholds(),
            ).astype(probs.dtype)
        return probs

    def dx_labels(self, probs: np.ndarray) -> list[str]:
        """Classes whose probability (C,) reaches its threshold; the most probable class when none does."""
        labels = [c for c, p, t in zip(self.classes, probs, self.dx_thresholds()) if p >= t]
        return labels or [self.classes[int(np.argmax(probs))]]

    def forward(
        self, pixel_values: torch.Tensor, extra_features: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor | None]:
        feats = self.backbone(pixel_values)
        return {
            "dx_logits": self.dx_head(feats, extra_features) if self.dx_head is not None else None,
            "signal": self.digitization_head(feats) if self.digitization_head is not None else None,
            "seg_logits": self.segmentation_head(feats) if self.segmentation_head is not None else None,
        }

    # ----------------------------------------------------------------------------------------------
    def _dx_loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        targets = targets.to(device=logits.device, dtype=logits.dtype)
        if targets.shape != logits.shape:
            raise ValueError(f"dx_targets must be {tuple(logits.shape)}, got {tuple(targets.shape)}")
        valid = torch.isfinite(targets)
        per = nn.functional.binary_cross_entropy_with_logits(
            logits,
            torch.where(valid, targets, torch.zeros_like(targets)),
            pos_weight=self.pos_weight,
            reduction="none",
        )
        n = valid.sum()
        return (per * valid).sum() / n.clamp(min=1)

    def _align_signal(
        self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Crop or NaN-pad targets (and mask) in time to the head's ``max_len``."""
        target = target.to(device=pred.device, dtype=pred.dtype)
        if target.shape[:2] != pred.shape[:2]:
            raise ValueError(
                f"signal_targets must be (B, L, T) with B, L = {tuple(pred.shape[:2])}, got {tuple(target.shape)}"
            )
        t_pred, t_tgt = pred.shape[-1], target.shape[-1]
        if t_tgt > t_pred:
            target = target[..., :t_pred]
            mask = mask[..., :t_pred] if mask is not None else None
        elif t_tgt < t_pred:
            target = nn.functional.pad(target, (0, t_pred - t_tgt), value=float("nan"))
            if mask is not None:
                mask = nn.functional.pad(mask.to(torch.bool), (0, t_pred - t_tgt), value=False)
        if mask is not None:
            mask = mask.to(device=pred.device, dtype=torch.bool)
        return target, mask

    def compute_loss(
        self,
        outputs: dict[str, torch.Tensor | None],
        dx_targets: torch.Tensor | None = None,
        signal_targets: torch.Tensor | None = None,
        signal_mask: torch.Tensor | None = None,
        seg_targets: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Total training loss and its parts.

        ``dx_targets`` (B, C) multi-hot floats (NaN = unknown) -> BCE-with-logits (``pos_weight`` from
        the config); ``signal_targets`` (B, L, T) mV (NaN = unknown, cropped/padded to ``max_len``) ->
        ``DigitizationLoss``; ``seg_targets`` (B, H, W) long pixel classes (255 = ignore) ->
        ``models.segmentation.segmentation_loss`` (skipped when every pixel is ignored). Tasks whose targets are ``None`` are skipped. Balancing: ``"uncertainty"``
        gives ``sum_i exp(-s_i) L_i + s_i`` with a learned log-variance ``s_i`` per task, ``"fixed"``
        gives ``w_dx L_dx + w_dig L_dig``. ``parts`` holds detached floats: ``"dx"``,
        ``"digitization"``, ``"digitization.<name>"`` per signal loss, ``"weight.<task>"`` and ``"total"``.
        """
        losses: dict[str, torch.Tensor] = {}
        parts: dict[str, float] = {}
        if dx_targets is not None:
            if self.dx_head is None or outputs.get("dx_logits") is None:
                raise ValueError("dx_targets given but the model has no Dx head output")
            losses["dx"] = self._dx_loss(outputs["dx_logits"], dx_targets)
        if signal_targets is not None:
            pred = outputs.get("signal")
            if self._signal_loss is None or pred is None:
                raise ValueError("signal_targets given but the model has no digitization head output")
            target, mask = self._align_signal(pred, signal_targets, signal_mask)
            total_sig, sig_parts = self._signal_loss(pred, target, mask)
            losses["digitization"] = total_sig
            for name, value in sig_parts.items():
                parts[f"digitization.{name}"] = float(value.detach()) if torch.is_tensor(value) else float(value)
        if seg_targets is not None:
            logits = outputs.get("seg_logits")
            if self.segmentation_head is None or logits is None:
                raise ValueError("seg_targets given but the model has no segmentation head output")
            from models.segmentation import IGNORE_INDEX, segmentation_loss

            if bool((seg_targets != IGNORE_INDEX).any()):
                scfg = self.config.segmentation_head
                seg_loss, seg_parts = segmentation_loss(
                    logits, seg_targets.to(logits.device), trace_weight=scfg.trace_weight, dice_weight=scfg.dice_weight
                )
                losses["segmentation"] = seg_loss
                for name, value in seg_parts.items():
                    parts[f"segmentation.{name}"] = float(value)
        if not losses:
            raise ValueError("compute_loss needs dx_targets, signal_targets and/or seg_targets")
        fixed = {
            "dx": self.config.loss.classification_weight,
            "digitization": self.config.loss.digitization_weight,
            "segmentation": self.config.loss.digitization_weight,
        }
        total: torch.Tensor | None = None
        for task, loss in losses.items():
            parts[task] = float(loss.detach())
            if self.balancing == "uncertainty":
                s = self.log_vars[task]
                term = torch.exp(-s) * loss + s
                parts[f"weight.{task}"] = float(torch.exp(-s).detach())
            else:
                term = fixed[task] * loss
                parts[f"weight.{task}"] = float(fixed[task])
            total = term if total is None else total + term
        assert total is not None
        parts["total"] = float(total.detach())
        return total, parts

    # ----------------------------------------------------------------------------------------------
    @property
    def backbone_is_saved(self) -> bool:
        """A frozen backbone with pre-trained weights is reloaded from its source, not saved."""
        return not (self.backbone.pretrained and self.backbone.frozen)

    def _config_payload(self, digest: str) -> dict[str, Any]:
        cfg = copy.deepcopy(self.config)
        if self.dx_head is not None and cfg.dx_head is not None:
            cfg.dx_head.thresholds = [float(t) for t in self.dx_head.thresholds.detach().cpu()]
        return {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "model": cfg.to_dict(),
            "classes": self.classes,
            "thresholds": cfg.dx_head.thresholds if cfg.dx_head is not None else None,
            "lead_names": self.lead_names,
            "input_size": [self.backbone.image_height, self.backbone.image_width],
            "weights_source": cfg.weights_source,
            "backbone_saved": self.backbone_is_saved,
            "backbone_hf_config": self.backbone.resolved_hf_config if self.backbone_is_saved else None,
            "versions": _versions(),
            "weights_sha256": digest,
        }

    def save(self, folder: str | os.PathLike[str]) -> Path:
        """Write ``config.json`` and ``model.safetensors`` into ``folder`` (created if needed; other
        files there are left alone). Files are written under temporary names and moved into place with
        ``os.replace``, weights first; ``config.json`` records the weights' SHA-256 so a folder whose
        files do not belong together is refused by :meth:`load`."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = self.state_dict()
        if not self.backbone_is_saved:
            state = {k: v for k, v in state.items() if not k.startswith("backbone.")}
        tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
        tag = uuid.uuid4().hex[:8]
        tmp_weights = folder / f".{WEIGHTS_FILE}.{tag}.tmp"
        tmp_config = folder / f".{CONFIG_FILE}.{tag}.tmp"
        try:
            save_file(tensors, str(tmp_weights), metadata={"format": FORMAT_NAME})
            payload = self._config_payload(_sha256(tmp_weights))
            tmp_config.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
            os.replace(tmp_weights, folder / WEIGHTS_FILE)
            os.replace(tmp_config, folder / CONFIG_FILE)
        finally:
            for tmp in (tmp_weights, tmp_config):
                if tmp.exists():
                    tmp.unlink()
        logger.info("saved model to %s (backbone %s)", folder, "included" if self.backbone_is_saved else "by reference")
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike[str], device: str | torch.device = "cpu") -> "ECGMultiHeadModel":
        """Rebuild a model saved by :meth:`save` (JSON + safetensors only; nothing is unpickled).

        Raises ``FileNotFoundError`` for a missing file, ``ValueError`` for a foreign or inconsistent
        folder, and ``RuntimeError`` when a by-reference pre-trained backbone cannot be found again
        (set ``ECG_BACKBONE_DIR`` or ``BackboneConfig.local_dir``).
        """
        from safetensors.torch import load_file

        folder = Path(folder)
        config_path, weights_path = folder / CONFIG_FILE, folder / WEIGHTS_FILE
        for p in (config_path, weights_path):
            if not p.is_file():
                raise FileNotFoundError(f"{p} is missing; not a saved model folder")
        payload = json.loads(config_path.read_text(encoding="utf-8"))
        if payload.get("format") != FORMAT_NAME:
            raise ValueError(f"{config_path} is not a {FORMAT_NAME} config")
        if int(payload.get("format_version", 0)) > FORMAT_VERSION:
            raise ValueError(f"{config_path} has format_version {payload.get('format_version')}, newer than this code")
        digest = payload.get("weights_sha256")
        if digest and _sha256(weights_path) != digest:
            raise ValueError(f"{weights_path} does not match {config_path} (half-written or mixed folder)")
        cfg = ModelConfig.from_dict(payload["model"])
        backbone_saved = bool(payload.get("backbone_saved", True))
        bcfg = cfg.backbone
        if backbone_saved:  # architecture only; the weights come from the file
            hf = payload.get("backbone_hf_config") or bcfg.hf_config
            bcfg = dataclasses.replace(bcfg, pretrained=False, hf_config=hf, freeze_pretrained=False)
        backbone = create_backbone(bcfg)
        if not backbone_saved and not backbone.pretrained:
            raise RuntimeError(
                f"the model in {folder} uses the pre-trained backbone {bcfg.name!r} by reference, but its weights "
                "were not found; put them under $ECG_BACKBONE_DIR/<name with '/' -> '--'> or set local_dir"
            )
        weights_source = cfg.weights_source
        model = cls(cfg, backbone=backbone)
        model.config.weights_source = weights_source
        state = load_file(str(weights_path), device="cpu")
        result = model.load_state_dict(state, strict=False)
        missing = [k for k in result.missing_keys if backbone_saved or not k.startswith("backbone.")]
        if missing or result.unexpected_keys:
            raise ValueError(
                f"weights in {weights_path} do not fit the config: missing {missing[:5]}, "
                f"unexpected {list(result.unexpected_keys)[:5]}"
            )
        model.to(device)
        model.eval()
        logger.info(
            "model loaded from %s (%s)",
            folder,
            "all weights from the file" if backbone_saved else "heads from the file, pre-trained backbone",
        )
        return model


def build_model(cfg: ModelConfig) -> ECGMultiHeadModel:
    """Build backbone and heads from ``cfg``; records ``cfg.weights_source`` (pretrained/random)."""
    model = ECGMultiHeadModel(cfg)
    logger.info(
        "built model: backbone %s/%s (%s, frozen=%s), dx head %s, digitization head %s, segmentation head %s",
        cfg.backbone.source,
        cfg.backbone.name,
        cfg.weights_source,
        model.backbone.frozen,
        cfg.dx_head is not None,
        cfg.digitization_head.kind if cfg.digitization_head else None,
        cfg.segmentation_head is not None,
    )
    return model


__all__ = ["ECGMultiHeadModel", "build_model", "CONFIG_FILE", "WEIGHTS_FILE"]
