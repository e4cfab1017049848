"""Configuration objects for the networks, saved as JSON next to the weights.

Every config is a dataclass with ``to_dict()`` / ``from_dict()`` (plain JSON types only). ``from_dict``
rejects unknown keys with a clear error, so a typo in a hand-written config never passes silently, and
each dict records ``config_version`` so that older files can be recognised later.

Units: image sizes in pixels, ``fs`` in Hz, ``max_len`` in samples.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from ecgvocab import STANDARD_LEADS

CONFIG_VERSION = 1
"""Schema version written into every config dict (bump on incompatible changes)."""

BACKBONE_SOURCES = ("hf", "timm", "torchvision")
BALANCING_MODES = ("uncertainty", "fixed")
WEIGHTS_SOURCES = ("pretrained", "random")

T = TypeVar("T", bound="_ConfigBase")


class ConfigError(ValueError):
    """A configuration dict or value is invalid (unknown key, bad type, unsupported version)."""


@dataclass
class _ConfigBase:
    """Shared JSON round-trip logic for the config dataclasses."""

    _nested: ClassVar[dict[str, Any]] = {}

    def validate(self) -> None:
        """Check field values; raise :class:`ConfigError` on a bad one. Overridden by subclasses."""

    def __post_init__(self) -> None:
        self.validate()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of this config (nested configs become nested dicts)."""
        out: dict[str, Any] = {"config_version": CONFIG_VERSION}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, _ConfigBase):
                value = value.to_dict()
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, dict):
                value = json.loads(json.dumps(value))  # deep copy, and fails early if not JSON-able
            elif isinstance(value, list):
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        """Build the config from a dict made by :meth:`to_dict`; unknown keys raise :class:`ConfigError`."""
        if not isinstance(data, dict):
            raise ConfigError(f"{cls.__name__}.from_dict expects a dict, got {type(data).__name__}")
        data = dict(data)
        version = data.pop("config_version", CONFIG_VERSION)
        if not isinstance(version, int) or version > CONFIG_VERSION or version < 1:
            raise ConfigError(
                f"{cls.__name__}: unsupported config_version {version!r} (this code reads versions 1..{CONFIG_VERSION})"
            )
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"{cls.__name__}: unknown key(s) {unknown}; allowed keys are {sorted(names)}")
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            nested = cls._nested.get(key)
            if isinstance(nested, str):  # "module:Class", resolved lazily (that module imports this one)
                module_name, _, class_name = nested.partition(":")
                nested = getattr(importlib.import_module(module_name), class_name)
            if nested is not None and value is not None and not isinstance(value, _ConfigBase):
                value = nested.from_dict(value)
            kwargs[key] = value
        try:
            return cls(**kwargs)
        except TypeError as exc:  # a required field is missing
            raise ConfigError(f"{cls.__name__}: {exc}") from exc

    def to_json(self, path: str | Path | None = None) -> str:
        """The config as an indented JSON string; also written to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=2, sort_keys=False)
        if path is not None:
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text

    @classmethod
    def from_json(cls: type[T], text_or_path: str | Path) -> T:
        """Parse a JSON string, or read a ``.json`` file when given an existing path."""
        p = Path(text_or_path) if not str(text_or_path).lstrip().startswith("{") else None
        text = p.read_text(encoding="utf-8") if p is not None else str(text_or_path)
        return cls.from_dict(json.loads(text))


def _check_positive_ints(name: str, values: Any) -> None:
    if not isinstance(values, (list, tuple)) or not all(isinstance(v, int) and v > 0 for v in values):
        raise ConfigError(f"{name} must be a list of positive integers, got {values!r}")


@dataclass
class BackboneConfig(_ConfigBase):
    """Image backbone: where it comes from and the input size it is fed.

    - ``source``: ``"hf"`` (transformers ``AutoBackbone``), ``"timm"`` or ``"torchvision"``.
    - ``name``: hub id (``"facebook/convnextv2-atto-1k-224"``), timm name or torchvision name.
    - ``local_dir``: folder (or file, for timm/torchvision) holding the weights; searched first.
    - ``pretrained``: look for pre-trained weights (falls back to random init with one warning).
    - ``out_indices`` / ``out_features``: stages to return, passed to the source as they are
      (HF: indices into ``stage_names`` where 0 is the stem, or names like ``"stage4"``; timm: feature
      indices; torchvision: ``out_features`` are graph node names). ``None``: every stage.
    - ``hf_config``: explicit transformers config kwargs including ``"model_type"`` (random init, tests).
    - ``image_height`` / ``image_width``: network input size in pixels (pages are padded to it).
    - ``freeze_pretrained``: freeze a backbone whose pre-trained weights were loaded.
    """

    source: str = "hf"
    name: str = "facebook/convnextv2-atto-1k-224"
    local_dir: str | None = None
    pretrained: bool = True
    out_indices: list[int] | None = None
    out_features: list[str] | None = None
    hf_config: dict[str, Any] | None = None
    image_height: int = 512
    image_width: int = 1024
    freeze_pretrained: bool = True

    def validate(self) -> None:
        if self.source not in BACKBONE_SOURCES:
            raise ConfigError(f"BackboneConfig.source must be one of {BACKBONE_SOURCES}, got {self.source!r}")
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError("BackboneConfig.name must be a non-empty string")
        if (
            not (isinstance(self.image_height, int) and isinstance(self.image_width, int))
            or min(self.image_height, self.image_width) < 16
        ):
            raise ConfigError(
                f"BackboneConfig image size must be integers >= 16 px, got {self.image_height}x{self.image_width}"
            )
        if self.hf_config is not None and (not isinstance(self.hf_config, dict) or "model_type" not in self.hf_config):
            raise ConfigError("BackboneConfig.hf_config must be a dict with a 'model_type' key")
        if self.out_indices is not None:
            self.out_indices = [int(i) for i in self.out_indices]
        if self.out_features is not None:
            self.out_features = [str(s) for s in self.out_features]


@dataclass
class DxHeadConfig(_ConfigBase):
    """Multi-label diagnosis head.

    ``classes``: label names (from the training labels); ``hidden_sizes``: MLP widths; ``dropout``:
    probability; ``thresholds``: one decision threshold per class (``None``: 0.5 each);
    ``extra_features``: length E of extra per-record feature vectors concatenated to the pooled image
    features (0: none); ``feature_index``: which backbone stage to pool (-1: last); ``use_image``: False
    makes a head on the extra features alone (the image features are ignored; needs E > 0).
    ``hidden_sizes=[]`` is a linear (logistic-regression) head. ``standardize``: the head's input vector
    (pooled image features + extra features) is standardised with a per-input mean and scale kept as
    buffers with the weights (set by :func:`models.heads.fit_dx_head`; identity until then).
    ``rhythm_rules``: :class:`models.rhythm_rules.RhythmRule` dicts applied to the probabilities from the raw
    signal features at run time (fitted at training; empty: none).
    """

    classes: list[str] = field(default_factory=list)
    hidden_sizes: list[int] = field(default_factory=lambda: [256])
    dropout: float = 0.2
    thresholds: list[float] | None = None
    extra_features: int = 0
    feature_index: int = -1
    use_image: bool = True
    standardize: bool = False
    rhythm_rules: list[dict] = field(default_factory=list)

    def validate(self) -> None:
        if not isinstance(self.classes, (list, tuple)) or not self.classes:
            raise ConfigError("DxHeadConfig.classes must be a non-empty list of class names")
        from .rhythm_rules import RhythmRule

        try:
            self.rhythm_rules = [RhythmRule(**dict(r)).to_dict() for r in self.rhythm_rules]
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"DxHeadConfig.rhythm_rules: {exc}") from exc
        self.classes = [str(c) for c in self.classes]
        if len(set(self.classes)) != len(self.classes):
            raise ConfigError(f"DxHeadConfig.classes has duplicates: {self.classes}")
        self.hidden_sizes = list(self.hidden_sizes)
        if self.hidden_sizes:
            _check_positive_ints("DxHeadConfig.hidden_sizes", self.hidden_sizes)
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ConfigError(f"DxHeadConfig.dropout must be in [0, 1), got {self.dropout}")
        if self.thresholds is not None:
            self.thresholds = [float(t) for t in self.thresholds]
            if len(self.thresholds) != len(self.classes):
                raise ConfigError(
                    f"DxHeadConfig.thresholds has {len(self.thresholds)} values for {len(self.classes)} classes"
                )
        if not isinstance(self.extra_features, int) or self.extra_features < 0:
            raise ConfigError(f"DxHeadConfig.extra_features must be an integer >= 0, got {self.extra_features!r}")
        if not self.use_image and self.extra_features == 0:
            raise ConfigError("DxHeadConfig.use_image=False needs extra_features > 0")


@dataclass
class DigitizationHeadConfig(_ConfigBase):
    """Signal (digitization) head.

    ``kind``: key in ``models.heads.DIGITIZATION_HEADS`` (``"regression"``); ``num_leads``: output
    leads; ``max_len``: output samples per lead; ``fs``: output sampling rate in Hz (so ``max_len / fs``
    seconds are covered); ``bottleneck_channels`` / ``pool_size`` (rows, cols): the 1x1-conv + adaptive
    pooling bottleneck; ``hidden_sizes``: FC widths; ``lead_code_size``: per-lead code decoded by a
    shared low-rank linear map to ``max_len`` samples; ``feature_index``: backbone stage used (-1: last).
    """

    kind: str = "regression"
    num_leads: int = 12
    max_len: int = 5000
    fs: float = 500.0
    bottleneck_channels: int = 64
    pool_size: list[int] = field(default_factory=lambda: [4, 8])
    hidden_sizes: list[int] = field(default_factory=lambda: [512])
    lead_code_size: int = 256
    dropout: float = 0.1
    feature_index: int = -1

    def validate(self) -> None:
        for name in ("num_leads", "max_len", "bottleneck_channels", "lead_code_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ConfigError(f"DigitizationHeadConfig.{name} must be a positive integer, got {value!r}")
        if not float(self.fs) > 0:
            raise ConfigError(f"DigitizationHeadConfig.fs must be > 0 Hz, got {self.fs}")
        self.fs = float(self.fs)
        self.pool_size = list(self.pool_size)
        if len(self.pool_size) != 2:
            raise ConfigError(f"DigitizationHeadConfig.pool_size must be [rows, cols], got {self.pool_size}")
        _check_positive_ints("DigitizationHeadConfig.pool_size", self.pool_size)
        self.hidden_sizes = list(self.hidden_sizes)
        if self.hidden_sizes:
            _check_positive_ints("DigitizationHeadConfig.hidden_sizes", self.hidden_sizes)
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ConfigError(f"DigitizationHeadConfig.dropout must be in [0, 1), got {self.dropout}")


@dataclass
class LossConfig(_ConfigBase):
    """How the task losses are combined.

    ``classification_weight``: weight of the Dx BCE loss (fixed balancing); ``digitization_weight``:
    weight of the whole digitization loss (fixed balancing); ``digitization_weights``: weights by name
    of the registered signal losses (``models.losses``); ``balancing``: ``"uncertainty"`` (learned
    log-variance per task) or ``"fixed"``; ``pos_weight``: optional BCE positive weight per class.
    """

    classification_weight: float = 1.0
    digitization_weight: float = 1.0
    digitization_weights: dict[str, float] = field(default_factory=lambda: {"mae": 1.0})
    balancing: str = "uncertainty"
    pos_weight: list[float] | None = None

    def validate(self) -> None:
        if self.balancing not in BALANCING_MODES:
            raise ConfigError(f"LossConfig.balancing must be one of {BALANCING_MODES}, got {self.balancing!r}")
        if not isinstance(self.digitization_weights, dict):
            raise ConfigError("LossConfig.digitization_weights must be a dict name -> weight")
        self.digitization_weights = {str(k): float(v) for k, v in self.digitization_weights.items()}
        self.classification_weight = float(self.classification_weight)
        self.digitization_weight = float(self.digitization_weight)
        if self.pos_weight is not None:
            self.pos_weight = [float(v) for v in self.pos_weight]


@dataclass
class ModelConfig(_ConfigBase):
    """The whole multi-head model: backbone, optional heads, losses, lead names.

    ``weights_source`` is recorded by ``build_model``: ``"pretrained"`` when pre-trained backbone
    weights were loaded, ``"random"`` otherwise (``None`` before the model is built).
    """

    _nested: ClassVar[dict[str, Any]] = {}

    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    dx_head: DxHeadConfig | None = None
    digitization_head: DigitizationHeadConfig | None = None
    segmentation_head: Any = None  # models.segmentation.SegmentationHeadConfig | None
    loss: LossConfig = field(default_factory=LossConfig)
    lead_names: list[str] = field(default_factory=lambda: list(STANDARD_LEADS))
    weights_source: str | None = None

    def validate(self) -> None:
        for name, kind in (("backbone", BackboneConfig), ("loss", LossConfig)):
            if not isinstance(getattr(self, name), kind):
                raise ConfigError(f"ModelConfig.{name} must be a {kind.__name__}")
        if self.dx_head is None and self.digitization_head is None and self.segmentation_head is None:
            raise ConfigError("ModelConfig needs at least one head (dx_head, digitization_head or segmentation_head)")
        if self.segmentation_head is not None and not isinstance(self.segmentation_head, _ConfigBase):
            raise ConfigError("ModelConfig.segmentation_head must be a SegmentationHeadConfig or None")
        self.lead_names = [str(n) for n in self.lead_names]
        if self.digitization_head is not None and len(self.lead_names) != self.digitization_head.num_leads:
            raise ConfigError(
                f"ModelConfig.lead_names has {len(self.lead_names)} names but the digitization head "
                f"outputs {self.digitization_head.num_leads} leads"
            )
        if self.weights_source is not None and self.weights_source not in WEIGHTS_SOURCES:
            raise ConfigError(f"ModelConfig.weights_source must be one of {WEIGHTS_SOURCES} or None")


ModelConfig._nested = {
    "backbone": BackboneConfig,
    "dx_head": DxHeadConfig,
    "digitization_head": DigitizationHeadConfig,
    "segmentation_head": "models.segmentation:SegmentationHeadConfig",
    "loss": LossConfig,
}
