"""Pixel segmentation of ECG pages: the neural first stage of the digitizer.

A light FPN-style decoder (:class:`SegmentationHead`) over several backbone stages predicts per-pixel
logits for :data:`NUM_CLASSES` = 4 classes (:data:`CLASS_NAMES`: 0 background, 1 grid, 2 text / label /
calibration pulse, 3 trace). The trace-class probability, mapped back to page pixels by
:func:`trace_probability`, is what ``ecgdigitize.pipeline.digitize_page(image, trace_prob=...)`` consumes.

- :class:`SegmentationHeadConfig`: JSON-able settings (decoder width, stages, loss weights).
- :class:`SegmentationHead`: ``forward(features) -> logits (B, 4, H_in, W_in)`` (or at the finest stride).
- :func:`segmentation_loss`: class-weighted cross-entropy (ignore index 255) + soft Dice on the trace class.
- :func:`target_from_class_mask`: the renderer's ``*_classes.png`` mask letterboxed like the image,
  thin traces preserved when downscaling, padding = :data:`IGNORE_INDEX`.
- :func:`trace_probability`: logits -> ``(page_height, page_width)`` float32 trace probability.
- :func:`predict_trace_probabilities`: pages -> trace probabilities with a backbone + head (inference).
- :func:`random_training_crops` / :func:`predict_trace_tiles`: the native-resolution mode
  (``input_mode="tiles"``): training crops of the network input size, inference on overlapping tiles.

Units: all sizes and coordinates are pixels; "network input" pixels are those of the letterboxed
``(image_height, image_width)`` tensor fed to the backbone (see ``models.backbone.letterbox``).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.backbone import PageTransform
from models.config import ConfigError, _ConfigBase

logger = logging.getLogger(__name__)

NUM_CLASSES = 4
"""Pixel classes predicted by the head."""
BACKGROUND_CLASS, GRID_CLASS, TEXT_CLASS, TRACE_CLASS = 0, 1, 2, 3
CLASS_NAMES: tuple[str, ...] = ("background", "grid", "text", "trace")
IGNORE_INDEX = 255
"""Target value of pixels that carry no label (letterbox padding); skipped by the loss."""
UPSAMPLE_MODES = ("bilinear", "pixelshuffle")
INPUT_MODES = ("page", "tiles")
"""How pages reach the head: ``"page"`` letterboxed whole (one network input per page, traces thinned by
the downscale), ``"tiles"`` at native resolution (trained on crops of the network input size, run on
overlapping tiles of the page: a 1-px trace stays 1 px)."""
TILE_MARGIN_PX = 32
"""Pixels discarded at each inner edge of a tile when stitching (the receptive field sees the page there)."""
TILE_BATCH = 8
"""Tiles per forward pass at inference (memory: ``TILE_BATCH`` network inputs at a time)."""
CROP_ON_TRACE_FRACTION = 0.75
"""Share of training crops centred on a random trace pixel (the rest anywhere: margins, text, grid only)."""

# Rough class frequencies on rendered pages; the classifier bias starts at their logs so that training
# starts from a sensible prior instead of a uniform guess (helps the rare trace class early on).
_CLASS_PRIOR = (0.80, 0.12, 0.04, 0.04)


# --------------------------------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------------------------------
@dataclass
class SegmentationHeadConfig(_ConfigBase):
    """Segmentation head and its loss.

    - ``decoder_channels``: common width of the FPN decoder (channels).
    - ``stages``: indices of the backbone feature maps used (into ``backbone.channels``), finest first
      after sorting; ``None``: every stage.
    - ``num_classes``: output classes (4: background, grid, text, trace).
    - ``trace_weight``: cross-entropy weight of trace pixels (other classes weigh 1).
    - ``dice_weight``: weight of the soft Dice loss on the trace class (0: off).
    - ``input_mode``: one of :data:`INPUT_MODES` (``"tiles"``: native resolution, see
      :func:`random_training_crops` and :func:`predict_trace_tiles`).
    - ``upsample``: ``"bilinear"`` (logits at the finest stride, bilinearly upsampled) or
      ``"pixelshuffle"`` (the classifier predicts ``stride**2`` sub-pixel logits per class, rearranged to
      the input resolution: sharper thin lines for ``num_classes * stride**2`` output channels).
    """

    decoder_channels: int = 64
    stages: list[int] | None = None
    num_classes: int = NUM_CLASSES
    trace_weight: float = 5.0
    dice_weight: float = 1.0
    upsample: str = "bilinear"
    input_mode: str = "page"

    def validate(self) -> None:
        if self.input_mode not in INPUT_MODES:
            raise ConfigError(
                f"SegmentationHeadConfig.input_mode must be one of {INPUT_MODES}, got {self.input_mode!r}"
            )
        if not isinstance(self.decoder_channels, int) or self.decoder_channels <= 0:
            raise ConfigError(
                f"SegmentationHeadConfig.decoder_channels must be a positive integer, got {self.decoder_channels!r}"
            )
        if self.stages is not None:
            if not isinstance(self.stages, (list, tuple)) or not self.stages:
                raise ConfigError(
                    f"SegmentationHeadConfig.stages must be a non-empty list or None, got {self.stages!r}"
                )
            if not all(isinstance(s, int) for s in self.stages):
                raise ConfigError(f"SegmentationHeadConfig.stages must be integers, got {self.stages!r}")
            self.stages = [int(s) for s in self.stages]
        if not isinstance(self.num_classes, int) or self.num_classes < 2:
            raise ConfigError(f"SegmentationHeadConfig.num_classes must be an integer >= 2, got {self.num_classes!r}")
        if not (math.isfinite(float(self.trace_weight)) and float(self.trace_weight) > 0):
            raise ConfigError(f"SegmentationHeadConfig.trace_weight must be > 0, got {self.trace_weight!r}")
        if not (math.isfinite(float(self.dice_weight)) and float(self.dice_weight) >= 0):
            raise ConfigError(f"SegmentationHeadConfig.dice_weight must be >= 0, got {self.dice_weight!r}")
        self.trace_weight = float(self.trace_weight)
        self.dice_weight = float(self.dice_weight)
        if self.upsample not in UPSAMPLE_MODES:
            raise ConfigError(f"SegmentationHeadConfig.upsample must be one of {UPSAMPLE_MODES}, got {self.upsample!r}")


# --------------------------------------------------------------------------------------------------
# The head
# --------------------------------------------------------------------------------------------------
def _conv_block(in_ch: int, out_ch: int, kernel_size: int = 3) -> nn.Sequential:
    """Conv (no bias) -> GroupNorm -> GELU; GroupNorm because segmentation batches are small."""
    groups = math.gcd(8, out_ch)
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2, bias=False),
        nn.GroupNorm(groups, out_ch),
        nn.GELU(),
    )


class SegmentationHead(nn.Module):
    """FPN-style decoder: backbone feature maps -> per-pixel class logits.

    For the selected stages (finest first): 1x1 lateral convs to ``decoder_channels``, top-down pathway
    (upsample the coarser map bilinearly and add), a 3x3 conv block per level, every level upsampled to
    the finest stride and summed, a 3x3 conv block and a 1x1 classifier. The logits are brought to the
    network-input resolution (``H_in = stride * H_finest``) bilinearly or by pixel shuffle.

    Size: about 0.22 M parameters for convnextv2-atto channels ``[40, 80, 160, 320]`` with 64 channels.

    Attributes: ``stages`` (indices into the backbone's feature list), ``stride`` (input pixels per
    finest-level pixel), ``num_classes``, ``config`` (:class:`SegmentationHeadConfig`).
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        reductions: Sequence[int],
        decoder_channels: int = 64,
        stages: Sequence[int] | None = None,
        num_classes: int = NUM_CLASSES,
        upsample: str = "bilinear",
        config: SegmentationHeadConfig | None = None,
    ) -> None:
        super().__init__()
        in_channels = [int(c) for c in in_channels]
        reductions = [int(r) for r in reductions]
        if not in_channels or len(in_channels) != len(reductions):
            raise ValueError(
                f"in_channels {in_channels} and reductions {reductions} must be non-empty and of equal length"
            )
        n = len(in_channels)
        chosen = list(range(n)) if stages is None else [int(s) for s in stages]
        chosen = sorted({s + n if s < 0 else s for s in chosen}, key=lambda s: reductions[s] if 0 <= s < n else 0)
        if not chosen or any(not 0 <= s < n for s in chosen):
            raise ValueError(f"stages {stages} must index the {n} backbone feature maps")
        if config is None:
            config = SegmentationHeadConfig(
                decoder_channels=int(decoder_channels),
                stages=None if stages is None else list(stages),
                num_classes=int(num_classes),
                upsample=upsample,
            )
        self.config = config
        self.stages = chosen
        self.in_channels = in_channels
        self.reductions = reductions
        self.num_classes = int(config.num_classes)
        self.stride = reductions[chosen[0]]
        self.upsample_mode = config.upsample
        width = int(config.decoder_channels)
        self.lateral = nn.ModuleList(nn.Conv2d(in_channels[s], width, kernel_size=1) for s in chosen)
        self.smooth = nn.ModuleList(_conv_block(width, width) for _ in chosen)
        self.fuse = _conv_block(width, width)
        sub = self.stride * self.stride if self.upsample_mode == "pixelshuffle" else 1
        self.classifier = nn.Conv2d(width, self.num_classes * sub, kernel_size=1)
        self._init_classifier(sub)

    @classmethod
    def from_config(
        cls, cfg: SegmentationHeadConfig, in_channels: Sequence[int], reductions: Sequence[int]
    ) -> "SegmentationHead":
        """Build the head from a config and the backbone's ``.channels`` / ``.reductions``."""
        return cls(in_channels, reductions, cfg.decoder_channels, cfg.stages, cfg.num_classes, cfg.upsample, cfg)

    def _init_classifier(self, sub: int) -> None:
        nn.init.normal_(self.classifier.weight, std=0.01)
        prior = list(_CLASS_PRIOR) if self.num_classes == NUM_CLASSES else [1.0 / self.num_classes] * self.num_classes
        bias = torch.log(torch.tensor(prior, dtype=torch.float32))
        with torch.no_grad():
            # pixel_shuffle expects channel c * sub + k for class c, sub-pixel k
            self.classifier.bias.copy_(bias.repeat_interleave(sub))

    def forward(
        self,
        features: Sequence[torch.Tensor],
        full_resolution: bool = True,
        output_size: tuple[int, int] | None = None,
    ) -> torch.Tensor:
        """``features``: the backbone's list of ``(B, C_i, H_i, W_i)`` maps -> logits ``(B, K, H, W)``.

        ``full_resolution``: logits at the network-input resolution ``(stride * H_f, stride * W_f)``
        (``H_f, W_f``: finest used map); ``False``: at the finest stride (saves memory; targets are then
        made at that size, or resized by :func:`segmentation_loss`). ``output_size`` (H, W) overrides both.
        """
        if isinstance(features, torch.Tensor) or len(features) != len(self.in_channels):
            got = "a tensor" if isinstance(features, torch.Tensor) else f"{len(features)} maps"
            raise ValueError(f"SegmentationHead expects the backbone's list of {len(self.in_channels)} maps, got {got}")
        maps = [features[s] for s in self.stages]
        for m, s in zip(maps, self.stages):
            if m.ndim != 4 or m.shape[1] != self.in_channels[s]:
                raise ValueError(f"feature map {s} must be (B, {self.in_channels[s]}, H, W), got {tuple(m.shape)}")
        laterals = [conv(m) for conv, m in zip(self.lateral, maps)]
        for i in range(len(laterals) - 2, -1, -1):  # top-down
            laterals[i] = laterals[i] + F.interpolate(
                laterals[i + 1], size=laterals[i].shape[-2:], mode="bilinear", align_corners=False
            )
        finest = laterals[0].shape[-2:]
        fused = self.smooth[0](laterals[0])
        for block, lat in zip(self.smooth[1:], laterals[1:]):
            fused = fused + F.interpolate(block(lat), size=finest, mode="bilinear", align_corners=False)
        logits = self.classifier(self.fuse(fused))
        if self.upsample_mode == "pixelshuffle":
            logits = F.pixel_shuffle(logits, self.stride)
            if output_size is None and not full_resolution:
                output_size = (int(finest[0]), int(finest[1]))
        elif output_size is None and full_resolution:
            output_size = (int(finest[0]) * self.stride, int(finest[1]) * self.stride)
        if output_size is not None and tuple(logits.shape[-2:]) != tuple(output_size):
            logits = F.interpolate(logits, size=tuple(output_size), mode="bilinear", align_corners=False)
        return logits

    def extra_repr(self) -> str:
        return (
            f"stages={self.stages}, stride={self.stride}, decoder_channels={self.config.decoder_channels}, "
            f"num_classes={self.num_classes}, upsample={self.upsample_mode!r}"
        )


# --------------------------------------------------------------------------------------------------
# Loss
# --------------------------------------------------------------------------------------------------
def resize_target(target: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Nearest-neighbour resize of an integer label map ``(B, H, W)`` to ``size`` (H', W')."""
    if tuple(target.shape[-2:]) == tuple(size):
        return target
    resized = F.interpolate(target[:, None].float(), size=tuple(int(s) for s in size), mode="nearest-exact")
    return resized[:, 0].round().long()


def segmentation_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    trace_weight: float = 5.0,
    dice_weight: float = 1.0,
    class_weights: Sequence[float] | None = None,
    ignore_index: int = IGNORE_INDEX,
    trace_class: int = TRACE_CLASS,
    smooth: float = 1.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Class-weighted cross-entropy + soft Dice on the trace class.

    ``logits`` (B, K, H, W); ``target`` (B, H, W) integer labels in ``0..K-1`` or ``ignore_index``
    (resized nearest-neighbour when its size differs from the logits). Cross-entropy weights are
    ``class_weights`` (default 1 for every class) with ``trace_weight`` for the trace class, averaged
    over the weights of the labelled pixels. The Dice term ``1 - (2 sum(p g) + s) / (sum(p) + sum(g) + s)``
    runs over every labelled pixel of the batch (``p``: softmax trace probability, ``g``: trace label).
    A batch without labelled pixels gives a zero loss (with finite, zero gradients).

    Returns ``(total, parts)``; ``parts`` holds plain floats ``{"ce", "dice", "total"}``.
    """
    if logits.ndim != 4:
        raise ValueError(f"logits must be (B, K, H, W), got {tuple(logits.shape)}")
    if target.ndim == 2:
        target = target[None]
    if target.ndim != 3 or target.shape[0] != logits.shape[0]:
        raise ValueError(f"target must be (B={logits.shape[0]}, H, W), got {tuple(target.shape)}")
    if target.is_floating_point():
        raise TypeError(f"target must hold integer labels, got dtype {target.dtype}")
    k = logits.shape[1]
    if not 0 <= trace_class < k:
        raise ValueError(f"trace_class {trace_class} out of range for {k} classes")
    target = resize_target(target.to(logits.device).long(), logits.shape[-2:])
    valid = target != ignore_index
    if bool(((target < 0) | (target >= k))[valid].any()):
        bad = torch.unique(target[valid & ((target < 0) | (target >= k))]).tolist()
        raise ValueError(f"target holds labels {bad[:10]} outside 0..{k - 1} (and not ignore_index={ignore_index})")
    weights = torch.ones(k, dtype=torch.float32, device=logits.device)
    if class_weights is not None:
        if len(class_weights) != k:
            raise ValueError(f"class_weights has {len(class_weights)} values for {k} classes")
        weights = torch.as_tensor(list(class_weights), dtype=torch.float32, device=logits.device)
    weights[trace_class] = float(trace_weight)

    logits32 = logits.float()
    safe_target = torch.where(valid, target, torch.zeros_like(target))
    ce_pix = F.cross_entropy(logits32, safe_target, reduction="none")
    pix_w = weights[safe_target] * valid.float()
    ce = (ce_pix * pix_w).sum() / pix_w.sum().clamp_min(1e-6)

    total = ce
    dice = torch.zeros((), dtype=torch.float32, device=logits.device)
    if dice_weight > 0:
        prob = torch.softmax(logits32, dim=1)[:, trace_class]
        vf = valid.float()
        gt = (target == trace_class).float() * vf
        p = prob * vf
        inter = (p * gt).sum()
        dice = 1.0 - (2.0 * inter + smooth) / (p.sum() + gt.sum() + smooth)
        total = total + float(dice_weight) * dice
    parts = {"ce": float(ce.detach()), "dice": float(dice.detach()), "total": float(total.detach())}
    return total, parts


# --------------------------------------------------------------------------------------------------
# Targets and outputs in page coordinates
# --------------------------------------------------------------------------------------------------
def _page_region(transform: PageTransform, fy: float, fx: float) -> tuple[int, int, int, int]:
    """(top, left, rows, cols) of the page inside a grid that is the network input scaled by (fy, fx)."""
    top = int(round(transform.pad_top * fy))
    left = int(round(transform.pad_left * fx))
    rows = max(1, int(round(transform.resized_height * fy)))
    cols = max(1, int(round(transform.resized_width * fx)))
    return top, left, rows, cols


def target_from_class_mask(
    class_mask: np.ndarray,
    transform: PageTransform,
    height: int,
    width: int,
    input_size: tuple[int, int] | None = None,
    preserve_classes: Sequence[int] = (TRACE_CLASS,),
    num_classes: int = NUM_CLASSES,
) -> np.ndarray:
    """The renderer's class mask mapped onto the network input, like ``models.backbone.letterbox``.

    ``class_mask``: ``(page_height, page_width)`` uint8 labels (0 background, 1 grid, 2 text, 3 trace).
    ``transform``: the page's :class:`PageTransform` (from letterboxing the image). ``height``/``width``:
    size of the target in pixels; by default the network input size. ``input_size`` (H, W): the network
    input size when the target is wanted at another resolution (e.g. the head's finest stride: pass
    ``height = H // 4``, ``width = W // 4``, ``input_size = (H, W)``).

    Labels are resized nearest-neighbour (pixel-centre aligned), except that every class in
    ``preserve_classes`` (the trace) is set wherever any of its page pixels falls into a target pixel
    when downscaling (max pooling), so 1-px traces survive any scale < 1. Pixels outside the page
    (padding) are :data:`IGNORE_INDEX`. Returns ``(height, width)`` int64.
    """
    import cv2

    mask = np.asarray(class_mask)
    if mask.ndim == 3 and mask.shape[2] in (1, 3, 4):
        channels = range(1, min(3, mask.shape[2]))
        if not all(np.array_equal(mask[..., 0], mask[..., c]) for c in channels):
            raise ValueError("class_mask must be a single-channel label image, got differing colour channels")
        mask = mask[..., 0]
    if mask.ndim != 2:
        raise ValueError(f"class_mask must be (H, W), got shape {mask.shape}")
    if mask.shape != (transform.page_height, transform.page_width):
        raise ValueError(
            f"class_mask is {mask.shape[0]}x{mask.shape[1]} px but the transform is for a "
            f"{transform.page_height}x{transform.page_width} px page"
        )
    if not np.issubdtype(mask.dtype, np.integer):
        if not np.all(np.isfinite(mask)) or not np.all(mask == np.round(mask)):
            raise ValueError("class_mask must hold integer labels")
    mask = mask.astype(np.int64)
    if mask.size and (mask.min() < 0 or mask.max() >= num_classes):
        raise ValueError(f"class_mask labels must be in 0..{num_classes - 1}, got {mask.min()}..{mask.max()}")
    height, width = int(height), int(width)
    if height < 1 or width < 1:
        raise ValueError(f"target size must be positive, got {height}x{width}")
    in_h, in_w = (height, width) if input_size is None else (int(input_size[0]), int(input_size[1]))
    fy, fx = height / in_h, width / in_w
    top, left, rows, cols = _page_region(transform, fy, fx)
    rows, cols = min(rows, height - top), min(cols, width - left)
    out = np.full((height, width), IGNORE_INDEX, dtype=np.int64)
    if rows <= 0 or cols <= 0:
        logger.warning("the page falls outside the %dx%d target; every pixel is ignored", height, width)
        return out
    small = mask.astype(np.uint8)
    region = cv2.resize(small, (cols, rows), interpolation=cv2.INTER_NEAREST_EXACT).astype(np.int64)
    downscale = rows < mask.shape[0] or cols < mask.shape[1]
    if downscale:
        for cls in preserve_classes:
            binary = (mask == int(cls)).astype(np.float32)
            if not binary.any():
                continue
            cover = cv2.resize(binary, (cols, rows), interpolation=cv2.INTER_AREA)
            region[cover > 1e-3] = int(cls)
    out[top : top + rows, left : left + cols] = region
    return out


def trace_probability(
    logits: torch.Tensor | np.ndarray,
    transform: PageTransform,
    input_size: tuple[int, int] | None = None,
    trace_class: int = TRACE_CLASS,
) -> np.ndarray:
    """Softmax trace probability mapped back to the original page.

    ``logits``: ``(K, h, w)`` or ``(1, K, h, w)`` for one page. By default they are taken to cover the
    network input pixel for pixel; ``input_size`` (H, W) is the network input size when they are at
    another resolution (e.g. the finest stride). The padding is cropped and the page region resized
    bilinearly (pixel-centre aligned) to ``(transform.page_height, transform.page_width)``.
    Returns float32 in [0, 1].
    """
    import cv2

    t = torch.as_tensor(logits)
    if t.ndim == 4:
        if t.shape[0] != 1:
            raise ValueError(f"trace_probability takes one page; got a batch of {t.shape[0]}")
        t = t[0]
    if t.ndim != 3:
        raise ValueError(f"logits must be (K, h, w) or (1, K, h, w), got {tuple(t.shape)}")
    if not 0 <= trace_class < t.shape[0]:
        raise ValueError(f"trace_class {trace_class} out of range for {t.shape[0]} classes")
    h, w = int(t.shape[1]), int(t.shape[2])
    prob = torch.softmax(t.detach().float(), dim=0)[trace_class].cpu().numpy()
    prob = np.nan_to_num(prob, nan=0.0).astype(np.float32)
    in_h, in_w = (h, w) if input_size is None else (int(input_size[0]), int(input_size[1]))
    fy, fx = h / in_h, w / in_w
    ph, pw = int(transform.page_height), int(transform.page_width)
    # page pixel centre (x + 0.5) -> input coordinate (x + 0.5) * sx + pad -> logit pixel index
    sx = transform.resized_width / pw * fx
    sy = transform.resized_height / ph * fy
    ox = 0.5 * sx + transform.pad_left * fx - 0.5
    oy = 0.5 * sy + transform.pad_top * fy - 0.5
    if (
        (fy, fx) == (1.0, 1.0)
        and transform.pad_top + transform.resized_height <= h
        and (transform.pad_left + transform.resized_width <= w)
    ):  # logits at input resolution: crop the page, resize it (same centre-aligned mapping as below)
        crop = prob[
            transform.pad_top : transform.pad_top + transform.resized_height,
            transform.pad_left : transform.pad_left + transform.resized_width,
        ]
        out = crop if crop.shape == (ph, pw) else cv2.resize(crop, (pw, ph), interpolation=cv2.INTER_LINEAR)
    else:  # keep only the cells that overlap the page, so padding values never bleed into the edges
        top0, left0 = int(math.floor(transform.pad_top * fy)), int(math.floor(transform.pad_left * fx))
        bottom = min(h, max(top0 + 1, int(math.ceil((transform.pad_top + transform.resized_height) * fy))))
        right = min(w, max(left0 + 1, int(math.ceil((transform.pad_left + transform.resized_width) * fx))))
        prob = np.ascontiguousarray(prob[top0:bottom, left0:right])
        matrix = np.array([[sx, 0.0, ox - left0], [0.0, sy, oy - top0]], dtype=np.float64)
        out = cv2.warpAffine(
            prob, matrix, (pw, ph), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE
        )
    return np.clip(out, 0.0, 1.0).astype(np.float32, copy=False)


@torch.no_grad()
def predict_trace_probabilities(
    backbone: Any, head: SegmentationHead, images: Sequence[Any] | np.ndarray
) -> list[np.ndarray]:
    """Inference: pages (``(H, W, 3)`` uint8 RGB) -> one ``(H, W)`` float32 trace probability per page.

    ``backbone`` is a ``models.backbone.ImageBackbone`` (its ``preprocess_with_transforms`` letterboxes
    the pages); the logits are computed at the finest stride and mapped back to each page.
    """
    was_training = head.training, backbone.training
    backbone.eval()
    head.eval()
    try:
        pixels, transforms = backbone.preprocess_with_transforms(images)
        logits = head(backbone(pixels), full_resolution=False)
        size = (int(pixels.shape[-2]), int(pixels.shape[-1]))
        return [trace_probability(logits[i], tr, input_size=size) for i, tr in enumerate(transforms)]
    finally:
        head.train(was_training[0])
        backbone.train(was_training[1])


def random_training_crops(
    image: np.ndarray, class_mask: np.ndarray, height: int, width: int, count: int, rng: np.random.Generator
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``count`` native-resolution crops ``(pixels (height, width, 3) uint8, target (height, width) uint8)`` of
    a rendered page and its class mask, for heads with ``input_mode="tiles"``.

    :data:`CROP_ON_TRACE_FRACTION` of the crops are centred on a random trace pixel, the others anywhere on
    the page. Parts of a crop beyond the page are white paper with target :data:`IGNORE_INDEX`.
    """
    mask = np.asarray(class_mask)
    if mask.ndim == 3:
        mask = mask[..., 0]
    if mask.shape != image.shape[:2]:
        raise ValueError(f"class_mask {mask.shape} does not match the image {image.shape[:2]}")
    ph, pw = mask.shape
    trace_y, trace_x = np.nonzero(mask == TRACE_CLASS)
    out = []
    for _ in range(int(count)):
        if trace_y.size and rng.random() < CROP_ON_TRACE_FRACTION:
            k = int(rng.integers(trace_y.size))
            cy = int(trace_y[k]) + int(rng.integers(-height // 4, height // 4 + 1))
            cx = int(trace_x[k]) + int(rng.integers(-width // 4, width // 4 + 1))
        else:
            cy, cx = int(rng.integers(ph)), int(rng.integers(pw))
        top = int(np.clip(cy - height // 2, min(0, ph - height), max(0, ph - height)))
        left = int(np.clip(cx - width // 2, min(0, pw - width), max(0, pw - width)))
        pixels = np.full((height, width, 3), 255, np.uint8)
        target = np.full((height, width), IGNORE_INDEX, np.uint8)
        y0, x0 = max(top, 0), max(left, 0)
        y1, x1 = min(top + height, ph), min(left + width, pw)
        pixels[y0 - top : y1 - top, x0 - left : x1 - left] = image[y0:y1, x0:x1, :3]
        target[y0 - top : y1 - top, x0 - left : x1 - left] = mask[y0:y1, x0:x1]
        out.append((pixels, target))
    return out


def _tile_starts(length: int, tile: int, margin: int) -> list[int]:
    """Tile origins (pixels) along one axis: tiles of ``tile`` px whose inner ``margin`` px overlap."""
    if length <= tile:
        return [0]
    step = max(1, tile - 2 * margin)
    starts = list(range(0, length - tile, step))
    return starts + [length - tile]


@torch.no_grad()
def predict_trace_tiles(
    backbone: Any, head: SegmentationHead, image: np.ndarray, margin: int = TILE_MARGIN_PX, batch: int = TILE_BATCH
) -> np.ndarray:
    """Inference at native resolution: the page ``(H, W, 3)`` uint8 RGB cut into overlapping tiles of the
    network input size, each tile's trace probability kept away from its inner edges (``margin`` px), stitched
    into one ``(H, W)`` float32 map in [0, 1]. Memory: one page-sized float32 map plus ``batch`` tiles."""
    th, tw = int(backbone.image_height), int(backbone.image_width)
    ph, pw = image.shape[:2]
    margin = int(min(margin, th // 4, tw // 4))
    prob = np.zeros((ph, pw), np.float32)
    origins = [(y, x) for y in _tile_starts(ph, th, margin) for x in _tile_starts(pw, tw, margin)]
    was_training = head.training, backbone.training
    backbone.eval()
    head.eval()
    try:
        for b in range(0, len(origins), batch):
            chunk = origins[b : b + batch]
            tiles = []
            for y, x in chunk:
                tile = np.full((th, tw, 3), 255, np.uint8)
                part = image[y : y + th, x : x + tw, :3]
                tile[: part.shape[0], : part.shape[1]] = part
                tiles.append(tile)
            pixels, _ = backbone.preprocess_with_transforms(tiles)
            logits = head(backbone(pixels), output_size=(th, tw))
            tile_prob = torch.softmax(logits.float(), dim=1)[:, TRACE_CLASS].cpu().numpy()
            for (y, x), p in zip(chunk, tile_prob):
                # keep each tile's centre; a page edge keeps its own pixels (no neighbour covers them)
                ty0 = 0 if y == 0 else margin
                tx0 = 0 if x == 0 else margin
                ty1 = min(th, ph - y) if y + th >= ph else th - margin
                tx1 = min(tw, pw - x) if x + tw >= pw else tw - margin
                prob[y + ty0 : y + ty1, x + tx0 : x + tx1] = p[ty0:ty1, tx0:tx1]
    finally:
        head.train(was_training[0])
        backbone.train(was_training[1])
    return np.clip(np.nan_to_num(prob, nan=0.0), 0.0, 1.0)


__all__ = [
    "INPUT_MODES",
    "CLASS_NAMES",
    "IGNORE_INDEX",
    "NUM_CLASSES",
    "TRACE_CLASS",
    "SegmentationHead",
    "SegmentationHeadConfig",
    "predict_trace_probabilities",
    "predict_trace_tiles",
    "random_training_crops",
    "resize_target",
    "segmentation_loss",
    "target_from_class_mask",
    "trace_probability",
]
