"""One factory for image backbones from three sources: Hugging Face transformers, timm, torchvision.

``create_backbone(cfg)`` returns an :class:`ImageBackbone` whose ``forward(pixel_values)`` gives a list of
feature maps ``(B, C_i, H_i, W_i)``, one per selected stage, with ``.channels`` (``C_i``), ``.reductions``
(stride of each map in input pixels), ``.pretrained`` (were pre-trained weights loaded) and
``.preprocess(images)`` (aspect-preserving resize + pad + normalisation to the configured input size).

Weights are looked up, for the HF source, in this order (never a long network hang):

1. ``cfg.local_dir``;
2. ``$ECG_BACKBONE_DIR/<name with '/' replaced by '--'>``, or ``$ECG_BACKBONE_DIR`` itself when it holds
   a model (``config.json``);
3. the Hugging Face cache (``local_files_only=True``);
4. the hub, only when ``HF_HUB_OFFLINE`` is not set and a 2-second connectivity check passes.

A weight file that is found but cannot be loaded (corrupt, truncated, not this architecture) raises
:class:`BackboneWeightsError`; only weights that are not available (none on disk, hub offline or failing) fall
back: the same architecture is built with random weights (config from ``cfg.hf_config``,
a local/cached ``config.json`` or a built-in table of known names), ONE warning is logged and
``.pretrained`` is ``False``. A backbone with loaded weights is frozen when ``cfg.freeze_pretrained``:
no gradients and kept in eval mode even when the parent module calls ``.train()``.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import urlparse

import numpy as np
import torch
from torch import nn

from models.config import BackboneConfig

logger = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
ENV_BACKBONE_DIR = "ECG_BACKBONE_DIR"
_PROBE_SIZE = 256  # px, square probe image used to measure strides / channels
#: Weight files looked for in a local folder, in order of preference.
WEIGHT_FILE_PATTERNS: tuple[str, ...] = ("model.safetensors", "*.safetensors", "pytorch_model.bin", "*.pth", "*.bin")
#: Weight files of a hub model looked for in the Hugging Face cache.
HUB_WEIGHT_FILES: tuple[str, ...] = ("model.safetensors", "pytorch_model.bin")


class BackboneWeightsError(RuntimeError):
    """A backbone weight file exists but cannot be loaded (corrupt, truncated, or not this architecture)."""


def _unusable_weights(path: Path | str, exc: BaseException) -> BackboneWeightsError:
    """The error raised for a weight file that is there but cannot be loaded."""
    return BackboneWeightsError(
        f"backbone weights {path} exist but cannot be loaded ({type(exc).__name__}: {exc}); the file is corrupt, "
        "truncated or for another architecture: replace or delete it (without it the backbone starts from random "
        "weights)"
    )


# --------------------------------------------------------------------------------------------------
# Pre-processing
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PageTransform:
    """How one page was mapped into the network input.

    ``model_xy = page_xy * scale + (pad_left, pad_top)`` in pixels; the page occupies the rectangle
    ``[pad_left, pad_left + resized_width) x [pad_top, pad_top + resized_height)`` of the input.
    """

    scale: float
    pad_top: int
    pad_left: int
    resized_height: int
    resized_width: int
    page_height: int
    page_width: int

    def to_page(self, x: np.ndarray | float, y: np.ndarray | float) -> tuple[Any, Any]:
        """Network-input pixel coordinates -> page pixel coordinates."""
        return (np.asarray(x) - self.pad_left) / self.scale, (np.asarray(y) - self.pad_top) / self.scale

    def to_model(self, x: np.ndarray | float, y: np.ndarray | float) -> tuple[Any, Any]:
        """Page pixel coordinates -> network-input pixel coordinates."""
        return np.asarray(x) * self.scale + self.pad_left, np.asarray(y) * self.scale + self.pad_top


def _as_rgb_uint8(image: Any) -> np.ndarray:
    """A page as ``(H, W, 3)`` uint8 RGB; accepts numpy arrays (gray, RGB, RGBA) and PIL images."""
    if not isinstance(image, np.ndarray):
        if hasattr(image, "convert") and hasattr(image, "size"):  # PIL image
            image = np.asarray(image.convert("RGB"))
        else:
            raise TypeError(f"expected a numpy uint8 image or a PIL image, got {type(image).__name__}")
    arr = image
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an image of shape (H, W, 3), got {arr.shape}")
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    elif arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"empty image of shape {arr.shape}")
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating) and float(np.nanmax(arr)) <= 1.0:
            arr = arr * 255.0
        arr = np.clip(np.nan_to_num(arr), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr)


def letterbox(image: np.ndarray, height: int, width: int, pad_value: int = 255) -> tuple[np.ndarray, PageTransform]:
    """Resize ``image`` (H, W, 3) uint8 keeping its aspect ratio so it fits ``height x width`` pixels,
    then pad (bottom/right, with ``pad_value``: white paper by default) to exactly that size."""
    import cv2

    h, w = image.shape[:2]
    scale = min(height / h, width / w)
    new_h = min(height, max(1, int(round(h * scale))))
    new_w = min(width, max(1, int(round(w * scale))))
    if (new_h, new_w) != (h, w):
        interp = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
        resized = cv2.resize(image, (new_w, new_h), interpolation=interp)
    else:
        resized = image
    out = np.full((height, width, 3), pad_value, dtype=np.uint8)
    out[:new_h, :new_w] = resized
    return out, PageTransform(float(scale), 0, 0, new_h, new_w, h, w)


# --------------------------------------------------------------------------------------------------
# The module
# --------------------------------------------------------------------------------------------------
class ImageBackbone(nn.Module):
    """A feature extractor: ``forward(pixel_values (B, 3, H, W)) -> list of (B, C_i, H_i, W_i)``.

    Attributes: ``source``, ``name``, ``channels`` (list of C_i), ``reductions`` (input pixels per
    feature-map pixel), ``pretrained`` (pre-trained weights loaded), ``frozen``, ``mean`` / ``std``
    (per-channel normalisation of 0..1 RGB), ``image_height`` / ``image_width`` (input size, px),
    ``resolved_hf_config`` (HF source only: the architecture's transformers config dict).
    """

    def __init__(
        self,
        body: nn.Module,
        cfg: BackboneConfig,
        *,
        channels: Sequence[int],
        reductions: Sequence[int],
        pretrained: bool,
        mean: Sequence[float],
        std: Sequence[float],
        output_adapter: Any = None,
        resolved_hf_config: dict[str, Any] | None = None,
        weights_location: str | None = None,
    ) -> None:
        super().__init__()
        self.body = body
        self.config = cfg
        self.source = cfg.source
        self.name = cfg.name
        self.channels = [int(c) for c in channels]
        self.reductions = [int(r) for r in reductions]
        self.pretrained = bool(pretrained)
        self.frozen = bool(pretrained and cfg.freeze_pretrained)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.image_height = int(cfg.image_height)
        self.image_width = int(cfg.image_width)
        self.resolved_hf_config = resolved_hf_config
        self.weights_location = weights_location
        self._adapter = output_adapter
        if self.frozen:
            for p in self.body.parameters():
                p.requires_grad_(False)
            self.body.eval()

    def train(self, mode: bool = True) -> "ImageBackbone":
        """Like ``nn.Module.train`` but a frozen backbone stays in eval mode (batch-norm statistics,
        dropout and stochastic depth stay off)."""
        super().train(mode)
        if self.frozen:
            self.body.eval()
        return self

    def forward(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        """``pixel_values``: (B, 3, H, W) normalised floats -> list of (B, C_i, H_i, W_i) feature maps."""
        if pixel_values.ndim != 4 or pixel_values.shape[1] != 3:
            raise ValueError(f"pixel_values must be (B, 3, H, W), got {tuple(pixel_values.shape)}")
        if self.frozen:
            with torch.no_grad():
                feats = self._adapter(self.body, pixel_values)
        else:
            feats = self._adapter(self.body, pixel_values)
        return list(feats)

    @property
    def device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        return torch.device("cpu")

    def preprocess_with_transforms(
        self, images: Sequence[Any] | np.ndarray, pad_value: int = 255
    ) -> tuple[torch.Tensor, list[PageTransform]]:
        """Pages -> ``(pixel_values (B, 3, image_height, image_width), transforms)``.

        Each page (``(H, W, 3)`` uint8 RGB array or PIL image) is resized keeping its aspect ratio,
        padded bottom/right with ``pad_value`` (white) and normalised with the model's mean/std.
        ``transforms[i]`` maps network-input pixels back to page pixels.
        """
        if isinstance(images, np.ndarray) and images.ndim == 3:
            images = [images]
        if len(images) == 0:
            raise ValueError("preprocess needs at least one image")
        batch = np.empty((len(images), self.image_height, self.image_width, 3), dtype=np.uint8)
        transforms: list[PageTransform] = []
        for i, image in enumerate(images):
            batch[i], tr = letterbox(_as_rgb_uint8(image), self.image_height, self.image_width, pad_value)
            transforms.append(tr)
        x = torch.from_numpy(batch).permute(0, 3, 1, 2).float().div_(255.0)
        mean = torch.tensor(self.mean, dtype=torch.float32).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32).view(1, 3, 1, 1)
        x = (x - mean) / std
        return x.contiguous().to(self.device), transforms

    def preprocess(self, images: Sequence[Any] | np.ndarray, pad_value: int = 255) -> torch.Tensor:
        """Pages -> ``pixel_values (B, 3, image_height, image_width)``; see :meth:`preprocess_with_transforms`."""
        return self.preprocess_with_transforms(images, pad_value)[0]

    def extra_repr(self) -> str:
        return (
            f"source={self.source!r}, name={self.name!r}, channels={self.channels}, "
            f"reductions={self.reductions}, pretrained={self.pretrained}, frozen={self.frozen}"
        )


def _probe(adapter: Any, body: nn.Module, size: int = _PROBE_SIZE) -> tuple[list[int], list[int]]:
    """Run a dummy ``size x size`` image through ``body``; returns (channels, reductions)."""
    was_training = body.training
    body.eval()
    try:
        with torch.no_grad():
            feats = adapter(body, torch.zeros(1, 3, size, size))
    finally:
        body.train(was_training)
    channels = [int(f.shape[1]) for f in feats]
    reductions = [int(round(size / f.shape[-1])) for f in feats]
    return channels, reductions


# --------------------------------------------------------------------------------------------------
# Network helpers
# --------------------------------------------------------------------------------------------------
def _env_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def hub_reachable(timeout: float = 2.0) -> bool:
    """True when ``HF_HUB_OFFLINE`` is not set and the hub host accepts a TCP connection within ``timeout`` s."""
    if _env_offline():
        return False
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    parsed = urlparse(endpoint)
    host = parsed.hostname or "huggingface.co"
    port = parsed.port or (443 if parsed.scheme != "http" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def local_folder_name(name: str) -> str:
    """Sub-folder name for a hub id inside ``ECG_BACKBONE_DIR`` (``org/model`` -> ``org--model``)."""
    return name.replace("/", "--")


def _candidate_dirs(cfg: BackboneConfig) -> list[tuple[Path, str]]:
    """Local places to look for weights, in order, with a label for logs."""
    out: list[tuple[Path, str]] = []
    if cfg.local_dir:
        out.append((Path(cfg.local_dir).expanduser(), "local_dir"))
    env = os.environ.get(ENV_BACKBONE_DIR)
    if env:
        root = Path(env).expanduser()
        out.append((root / local_folder_name(cfg.name), ENV_BACKBONE_DIR))
        out.append((root / cfg.name.split("/")[-1], ENV_BACKBONE_DIR))
        out.append((root, ENV_BACKBONE_DIR))
    return out


# --------------------------------------------------------------------------------------------------
# Hugging Face transformers
# --------------------------------------------------------------------------------------------------
def _builtin_hf_config(name: str) -> dict[str, Any] | None:
    """Architecture kwargs (with ``model_type``) for well-known hub names, for offline random init."""
    base = name.split("/")[-1].lower()
    m = re.match(r"convnextv2-(atto|femto|pico|nano|tiny|base|large|huge)", base)
    if m:
        table = {
            "atto": ([2, 2, 6, 2], [40, 80, 160, 320]),
            "femto": ([2, 2, 6, 2], [48, 96, 192, 384]),
            "pico": ([2, 2, 6, 2], [64, 128, 256, 512]),
            "nano": ([2, 2, 8, 2], [80, 160, 320, 640]),
            "tiny": ([3, 3, 9, 3], [96, 192, 384, 768]),
            "base": ([3, 3, 27, 3], [128, 256, 512, 1024]),
            "large": ([3, 3, 27, 3], [192, 384, 768, 1536]),
            "huge": ([3, 3, 27, 3], [352, 704, 1408, 2816]),
        }
        depths, hidden = table[m.group(1)]
        return {"model_type": "convnextv2", "depths": depths, "hidden_sizes": hidden}
    m = re.match(r"resnet-(18|26|34|50|101|152)$", base)
    if m:
        table = {
            "18": ([2, 2, 2, 2], "basic"),
            "26": ([2, 2, 2, 2], "bottleneck"),
            "34": ([3, 4, 6, 3], "basic"),
            "50": ([3, 4, 6, 3], "bottleneck"),
            "101": ([3, 4, 23, 3], "bottleneck"),
            "152": ([3, 8, 36, 3], "bottleneck"),
        }
        depths, layer_type = table[m.group(1)]
        hidden = [64, 128, 256, 512] if layer_type == "basic" else [256, 512, 1024, 2048]
        return {
            "model_type": "resnet",
            "embedding_size": 64,
            "depths": depths,
            "hidden_sizes": hidden,
            "layer_type": layer_type,
        }
    m = re.match(r"swinv2-(tiny|small|base)-patch(\d+)-window(\d+)-(\d+)", base)
    if m:
        size, patch, window, image = m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4))
        table = {
            "tiny": (96, [2, 2, 6, 2], [3, 6, 12, 24]),
            "small": (96, [2, 2, 18, 2], [3, 6, 12, 24]),
            "base": (128, [2, 2, 18, 2], [4, 8, 16, 32]),
        }
        embed, depths, heads = table[size]
        return {
            "model_type": "swinv2",
            "image_size": image,
            "patch_size": patch,
            "window_size": window,
            "embed_dim": embed,
            "depths": depths,
            "num_heads": heads,
        }
    return None


def _hf_apply_out(config: Any, cfg: BackboneConfig) -> Any:
    """Select the returned stages on a transformers backbone config (default: every stage)."""
    from transformers.utils.backbone_utils import get_aligned_output_features_output_indices

    stage_names = list(getattr(config, "stage_names", []))
    if not stage_names:
        raise ValueError(f"transformers config of type {type(config).__name__} has no stages; not a backbone")
    out_features = cfg.out_features
    out_indices = cfg.out_indices
    if out_features is None and out_indices is None:
        out_features = [s for s in stage_names if s != "stem"]
    out_features, out_indices = get_aligned_output_features_output_indices(
        out_features=out_features, out_indices=out_indices, stage_names=stage_names
    )
    config._out_features = list(out_features)
    config._out_indices = list(out_indices)
    return config


def _read_norm_json(path: Path | None) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    if path is None or not Path(path).is_file():
        return None
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        mean, std = data.get("image_mean"), data.get("image_std")
        if isinstance(mean, (list, tuple)) and isinstance(std, (list, tuple)) and len(mean) == 3 and len(std) == 3:
            return tuple(float(v) for v in mean), tuple(float(v) for v in std)
    except (OSError, ValueError) as exc:
        logger.debug("could not read %s: %s", path, exc)
    return None


def _hf_norm_from(location: str) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """Image mean/std from the model's image-processor config (local folder or HF cache), if any."""
    p = Path(location)
    if p.is_dir():
        return _read_norm_json(p / "preprocessor_config.json")
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(location, "preprocessor_config.json")
        if isinstance(cached, str):
            return _read_norm_json(Path(cached))
    except (OSError, ValueError) as exc:  # optional metadata only (a name that is not a hub id: ValueError)
        logger.debug("no cached image processor for %s: %s", location, exc)
    return None


def _hf_adapter(body: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    return list(body(pixel_values=x).feature_maps)


def _hf_weight_files(location: str) -> list[Path]:
    """The weight files present for ``location``: in the folder, or for a hub id in the Hugging Face cache."""
    folder = Path(location)
    if folder.is_dir():
        return [f for pattern in WEIGHT_FILE_PATTERNS for f in sorted(folder.glob(pattern))]
    try:
        from huggingface_hub import try_to_load_from_cache

        hits = [try_to_load_from_cache(location, name) for name in HUB_WEIGHT_FILES]
    except ValueError:  # not a valid hub id: nothing cached
        return []
    return [Path(h) for h in hits if isinstance(h, str)]


def _hf_try_load(location: str, cfg: BackboneConfig, local_only: bool) -> nn.Module | None:
    """Load config + weights from ``location`` (folder or hub id); ``None`` when they are not available (no
    weight file there, or the hub cannot give them). A weight file that is there but fails to load raises
    :class:`BackboneWeightsError`."""
    from transformers import AutoBackbone, AutoConfig

    present = _hf_weight_files(location)
    try:
        config = AutoConfig.from_pretrained(location, local_files_only=local_only)
        _hf_apply_out(config, cfg)
        return AutoBackbone.from_pretrained(location, config=config, local_files_only=local_only)
    except Exception as exc:
        if present:
            raise _unusable_weights(present[0], exc) from exc
        if not isinstance(exc, (OSError, ValueError, KeyError)):
            raise
        logger.info("HF weights not available from %s: %s", location, str(exc).strip().splitlines()[0])
    return None


def _hf_random_config(cfg: BackboneConfig) -> tuple[Any, str]:
    """A transformers config for random init and where it came from."""
    from transformers import AutoConfig

    if cfg.hf_config is not None:
        kwargs = dict(cfg.hf_config)
        model_type = kwargs.pop("model_type")
        for key in (
            "out_features",
            "out_indices",
            "_out_features",
            "_out_indices",
            "transformers_version",
            "architectures",
        ):
            kwargs.pop(key, None)
        return AutoConfig.for_model(model_type, **kwargs), "cfg.hf_config"
    for folder, label in _candidate_dirs(cfg):
        if (folder / "config.json").is_file():
            try:
                return AutoConfig.from_pretrained(str(folder), local_files_only=True), f"{label} {folder}"
            except (OSError, ValueError, KeyError) as exc:
                logger.debug("unusable config in %s: %s", folder, exc)
    try:
        return AutoConfig.from_pretrained(cfg.name, local_files_only=True), "HF cache"
    except (OSError, ValueError, KeyError) as exc:
        logger.debug("no cached config for %s: %s", cfg.name, exc)
    builtin = _builtin_hf_config(cfg.name)
    if builtin is not None:
        model_type = builtin.pop("model_type")
        return AutoConfig.for_model(model_type, **builtin), "built-in table"
    raise ValueError(
        f"cannot build HF backbone {cfg.name!r}: no weights or config.json found (local_dir, ${ENV_BACKBONE_DIR}, "
        "HF cache) and the name is not in the built-in table; pass BackboneConfig.hf_config"
    )


def _config_to_dict(config: Any) -> dict[str, Any]:
    d = config.to_dict()
    d["model_type"] = getattr(config, "model_type", d.get("model_type"))
    for key in ("transformers_version", "architectures", "_name_or_path", "id2label", "label2id"):
        d.pop(key, None)
    return json.loads(json.dumps(d, default=str))


def _create_hf(cfg: BackboneConfig) -> ImageBackbone:
    try:
        importlib.import_module("transformers")
    except ImportError as exc:  # pragma: no cover - transformers is a hard requirement
        raise ImportError("BackboneConfig(source='hf') needs the 'transformers' package") from exc
    from transformers import AutoBackbone

    body: nn.Module | None = None
    location: str | None = None
    tried: list[str] = []
    if cfg.pretrained:
        for folder, label in _candidate_dirs(cfg):
            tried.append(f"{label} {folder}")
            if (folder / "config.json").is_file():
                body = _hf_try_load(str(folder), cfg, local_only=True)
                if body is not None:
                    location = str(folder)
                    break
        if body is None:
            tried.append("HF cache")
            body = _hf_try_load(cfg.name, cfg, local_only=True)
            location = cfg.name if body is not None else None
        if body is None:
            if hub_reachable():
                tried.append("hub")
                body = _hf_try_load(cfg.name, cfg, local_only=False)
                location = cfg.name if body is not None else None
            else:
                tried.append("hub (skipped: offline)")
    pretrained = body is not None
    if body is None:
        config, origin = _hf_random_config(cfg)
        _hf_apply_out(config, cfg)
        body = AutoBackbone.from_config(config)
        if cfg.pretrained:
            logger.warning(
                "No pre-trained weights for HF backbone %r (looked in: %s); using the same architecture "
                "(config from %s) with RANDOM weights. Put the model under $%s/%s to use pre-trained weights.",
                cfg.name,
                ", ".join(tried),
                origin,
                ENV_BACKBONE_DIR,
                local_folder_name(cfg.name),
            )
        else:
            logger.info(
                "HF backbone %r built from its config (%s): random weights until trained or loaded", cfg.name, origin
            )
    else:
        logger.info("HF backbone %r: pre-trained weights from %s", cfg.name, location)
    norm = _hf_norm_from(location) if location is not None else None
    if norm is None and cfg.local_dir:
        norm = _hf_norm_from(cfg.local_dir)
    mean, std = norm if norm is not None else (IMAGENET_MEAN, IMAGENET_STD)
    channels, reductions = _probe(_hf_adapter, body)
    if hasattr(body, "channels") and list(body.channels) != channels:
        logger.debug("HF reported channels %s, probe measured %s", list(body.channels), channels)
    return ImageBackbone(
        body,
        cfg,
        channels=channels,
        reductions=reductions,
        pretrained=pretrained,
        mean=mean,
        std=std,
        output_adapter=_hf_adapter,
        resolved_hf_config=_config_to_dict(body.config),
        weights_location=location,
    )


# --------------------------------------------------------------------------------------------------
# timm
# --------------------------------------------------------------------------------------------------
def _import_optional(module: str, source: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"BackboneConfig(source={source!r}) needs the optional package {module!r}, which is not installed "
            f"or cannot be imported ({exc}); install it (pip install {module}) or use source='hf'"
        ) from exc


def _find_weight_file(cfg: BackboneConfig) -> Path | None:
    """A weights file (``*.safetensors`` preferred, else ``*.pth``/``*.bin``) in the local candidates."""
    for folder, _label in _candidate_dirs(cfg):
        if folder.is_file():
            return folder
        if folder.is_dir():
            for pattern in WEIGHT_FILE_PATTERNS:
                hits = sorted(folder.glob(pattern))
                if hits:
                    return hits[0]
    return None


def _list_adapter(body: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    out = body(x)
    if isinstance(out, dict):
        return list(out.values())
    return list(out)


def _create_timm(cfg: BackboneConfig) -> ImageBackbone:
    timm = _import_optional("timm", "timm")
    kwargs: dict[str, Any] = {"features_only": True}
    if cfg.out_indices is not None:
        kwargs["out_indices"] = tuple(cfg.out_indices)
    body: nn.Module | None = None
    tried: list[str] = []
    if cfg.pretrained:
        weight_file = _find_weight_file(cfg)
        if weight_file is None:
            tried.append("local_dir/$" + ENV_BACKBONE_DIR)
            try:  # the HF cache, where timm itself stores hub weights
                from huggingface_hub import try_to_load_from_cache

                probe = timm.create_model(cfg.name, pretrained=False, **kwargs)
                hub_id = (getattr(probe, "pretrained_cfg", None) or {}).get("hf_hub_id")
                if hub_id:
                    tried.append("HF cache")
                    for fname in HUB_WEIGHT_FILES:
                        hit = try_to_load_from_cache(hub_id, fname)
                        if isinstance(hit, str):
                            weight_file = Path(hit)
                            break
            except (OSError, ValueError, RuntimeError) as exc:  # unknown name or hub id: nothing cached
                logger.debug("timm cache lookup failed for %s: %s", cfg.name, exc)
        if weight_file is not None:
            try:
                body = timm.create_model(
                    cfg.name, pretrained=True, pretrained_cfg_overlay={"file": str(weight_file)}, **kwargs
                )
            except Exception as exc:
                raise _unusable_weights(weight_file, exc) from exc
        elif hub_reachable():
            tried.append("hub")
            try:
                body = timm.create_model(cfg.name, pretrained=True, **kwargs)
            except OSError as exc:  # download failed: not available
                logger.info("timm weights not available from the hub for %s: %s", cfg.name, exc)
        else:
            tried.append("hub (skipped: offline)")
    pretrained = body is not None
    if body is None:
        body = timm.create_model(cfg.name, pretrained=False, **kwargs)
        if cfg.pretrained:
            logger.warning(
                "No pre-trained weights for timm backbone %r (looked in: %s); using RANDOM weights.",
                cfg.name,
                ", ".join(tried),
            )
    try:
        data_cfg = timm.data.resolve_data_config({}, model=body)
        mean, std = tuple(data_cfg["mean"]), tuple(data_cfg["std"])
    except Exception as exc:  # noqa: BLE001
        logger.debug("timm data config unavailable for %s: %s", cfg.name, exc)
        mean, std = IMAGENET_MEAN, IMAGENET_STD
    channels, reductions = _probe(_list_adapter, body)
    return ImageBackbone(
        body,
        cfg,
        channels=channels,
        reductions=reductions,
        pretrained=pretrained,
        mean=mean,
        std=std,
        output_adapter=_list_adapter,
    )


# --------------------------------------------------------------------------------------------------
# torchvision
# --------------------------------------------------------------------------------------------------
def _torchvision_return_nodes(model: nn.Module) -> list[str]:
    """Graph nodes at the end of each resolution stage: ``layer1..4`` for ResNet-like models, else the
    last child of ``model.features`` before each spatial down-sampling (stride >= 4 only)."""
    if all(hasattr(model, f"layer{i}") for i in range(1, 5)):
        return [f"layer{i}" for i in range(1, 5)]
    features = getattr(model, "features", None)
    if isinstance(features, nn.Sequential):
        nodes: list[str] = []
        x = torch.zeros(1, 3, _PROBE_SIZE, _PROBE_SIZE)
        sizes: list[int] = []
        channels_last = type(model).__name__.lower().startswith("swin")
        was_training = model.training
        model.eval()
        with torch.no_grad():
            for child in features:
                x = child(x)
                sizes.append(int(x.shape[1] if channels_last else x.shape[-2]))
        model.train(was_training)
        names = [name for name, _ in features.named_children()]
        for i, size in enumerate(sizes):
            last_at_size = i == len(sizes) - 1 or sizes[i + 1] != size
            if last_at_size and _PROBE_SIZE / size >= 4:
                nodes.append(f"features.{names[i]}")
        if nodes:
            return nodes
    raise ValueError(
        f"cannot find stages of torchvision model {type(model).__name__}; set BackboneConfig.out_features to "
        "graph node names (torchvision.models.feature_extraction.get_graph_node_names)"
    )


def _channels_first_adapter(body: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """For torchvision Swin models whose stages are channels-last (B, H, W, C)."""
    return [f.permute(0, 3, 1, 2).contiguous() for f in _list_adapter(body, x)]


def _create_torchvision(cfg: BackboneConfig) -> ImageBackbone:
    tv_models = _import_optional("torchvision.models", "torchvision")
    fx = _import_optional("torchvision.models.feature_extraction", "torchvision")
    model = tv_models.get_model(cfg.name, weights=None)
    pretrained = False
    tried: list[str] = []
    if cfg.pretrained:
        state: dict[str, torch.Tensor] | None = None
        weight_file = _find_weight_file(cfg)
        tried.append("local_dir/$" + ENV_BACKBONE_DIR)
        source: Path | None = weight_file
        if weight_file is not None:
            try:
                if weight_file.suffix == ".safetensors":
                    from safetensors.torch import load_file

                    state = load_file(str(weight_file))
                else:
                    state = torch.load(str(weight_file), map_location="cpu", weights_only=True)
            except Exception as exc:
                raise _unusable_weights(weight_file, exc) from exc
        else:
            try:
                weights_enum = tv_models.get_model_weights(cfg.name).DEFAULT
            except (ValueError, KeyError, AttributeError) as exc:  # no published weights for this name
                logger.info("torchvision has no weights for %s: %s", cfg.name, exc)
                weights_enum = None
            if weights_enum is not None:
                cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(weights_enum.url).path)
                tried.append(f"torch hub cache {cached}")
                if cached.is_file():
                    source = cached
                    try:
                        state = weights_enum.get_state_dict(progress=False)
                    except Exception as exc:
                        raise _unusable_weights(cached, exc) from exc
                elif hub_reachable():
                    try:
                        state = weights_enum.get_state_dict(progress=False)
                    except OSError as exc:  # download failed: not available
                        logger.info("torchvision weights not available from the hub for %s: %s", cfg.name, exc)
        if state is not None:
            try:
                model.load_state_dict(state)
                pretrained = True
            except RuntimeError as exc:
                raise _unusable_weights(source or cfg.name, exc) from exc
        if not pretrained:
            logger.warning(
                "No pre-trained weights for torchvision backbone %r (looked in: %s); using RANDOM weights.",
                cfg.name,
                ", ".join(tried),
            )
    nodes = list(cfg.out_features) if cfg.out_features else _torchvision_return_nodes(model)
    if cfg.out_indices is not None and not cfg.out_features:
        nodes = [nodes[i] for i in cfg.out_indices]
    body = fx.create_feature_extractor(model, return_nodes={n: n for n in nodes})
    adapter = _channels_first_adapter if type(model).__name__.lower().startswith("swin") else _list_adapter
    channels, reductions = _probe(adapter, body)
    return ImageBackbone(
        body,
        cfg,
        channels=channels,
        reductions=reductions,
        pretrained=pretrained,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        output_adapter=adapter,
    )


_SOURCES = {"hf": _create_hf, "timm": _create_timm, "torchvision": _create_torchvision}


def create_backbone(cfg: BackboneConfig) -> ImageBackbone:
    """Build the image backbone described by ``cfg`` (see the module docstring for the weight lookup).

    Never needs the network: without reachable weights it returns a randomly initialised backbone of the
    same architecture (``.pretrained == False``) after one warning. Raises ``ImportError`` for a missing
    optional source package and ``ValueError`` for an unknown source or an architecture it cannot build.
    """
    if not isinstance(cfg, BackboneConfig):
        raise TypeError(f"create_backbone expects a BackboneConfig, got {type(cfg).__name__}")
    try:
        factory = _SOURCES[cfg.source]
    except KeyError:
        raise ValueError(f"unknown backbone source {cfg.source!r}; choose from {sorted(_SOURCES)}") from None
    backbone = factory(cfg)
    logger.debug("created %r", backbone)
    return backbone


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (all, or only those with ``requires_grad``)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


__all__ = [
    "ImageBackbone",
    "PageTransform",
    "create_backbone",
    "count_parameters",
    "hub_reachable",
    "letterbox",
    "local_folder_name",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ENV_BACKBONE_DIR",
]
