"""All training and run-time hyper-parameters of the entry in one configuration object."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, ClassVar

from models.config import BackboneConfig, ConfigError, _ConfigBase

ENV_TRAIN_CONFIG = "ECG_TRAIN_CONFIG"
TRACE_SOURCES = ("auto", "classical", "segmentation", "combined", "per-page")
DIGITIZERS = ("pipeline", "regression")


@dataclass
class TrainConfig(_ConfigBase):
    """Hyper-parameters of ``team_code.train_models`` (saved into the model folder as ``train_config.json``).

    Model: ``backbone`` (source, name, input size in px), Dx head ``dx_hidden_sizes`` (``[]``: linear, a
    logistic regression per class) / ``dx_dropout`` / ``dx_standardize`` (standardised head inputs), ``dx_fit``
    ("full_batch": after the page loop the head is refitted on all records in one L-BFGS problem, class-balanced
    BCE with positive weights up to ``dx_pos_weight_limit`` + ``dx_l2`` x squared weights; the page loop is
    skipped when nothing else needs it; "sgd": the head keeps what the page loop taught it, thresholds tuned on
    the validation split), ``dx_thresholds`` for "full_batch" ("fixed": 0.5, which the balanced loss makes the
    prior-corrected decision point; "oof": tuned on ``dx_oof_folds``-fold out-of-fold predictions for classes
    with at least ``dx_min_positives`` positive records, 0.5 for the others), ``dx_rhythm_rules`` (TACHY, BRADY
    and AFIB/AFL decided by rate / AF-score rules fitted on the training records' signal features,
    :mod:`models.rhythm_rules`; needs ``signal_features``),
    ``signal_features`` (fuse ``ecgfeatures`` of the digitized signal, or in training of the true signal with
    digitization-like corruptions, into the Dx head), ``dx_use_image`` (False: the Dx head sees the signal
    features only; "auto": image features too only when pre-trained backbone weights were found), ``balance_classes`` (BCE positive weights from the training class frequencies),
    ``segmentation`` (train the segmentation digitization head on pages rendered from training signals),
    ``segmentation_input`` ("page": whole pages letterboxed to the network input; "tiles": native resolution,
    ``crops_per_page`` crops of the network input size per rendered page, tiled inference),
    ``regression`` (also train the seed's regression digitization head on the records' own images),
    ``digitization_losses`` (weights by name, regression head only), ``balancing`` of the task losses.
    Data: ``val_fraction`` of records held out (by record), ``pages_per_record`` rendered per record with a
    signal (``render_preset``), ``max_rendered_pages``, ``max_records`` (None: all).
    Optimisation: AdamW ``lr``/``weight_decay``, ``epochs``, ``batch_size``, linear warm-up over
    ``warmup_fraction`` of the steps then cosine decay, early stopping after ``patience`` epochs without a
    better validation loss, ``seed``. Run time: ``digitizer`` ("pipeline": segmentation + vectoriser,
    "regression": the regression head), ``trace_source`` ("per-page": the classical map, and the learned maps
    too on pages whose self-check is not ok, the best self-checked result kept; "auto" picks one of the sources
    on validation pages).
    Dx on digitized pages (``ecgentry.digitized_training``): ``dx_digitized_pages`` (each training record's own
    images are digitized as test pages will be, in ``dx_digitize_workers`` processes (0: one per CPU, at most 8),
    cached by image content in ``dx_page_cache`` (empty: ``MODEL/digitized_pages``); the Dx head and the rhythm
    rules are fitted on those pages' features, leads the self-check blames left out, failed pages left out; the
    true-signal rows stay as extra rows; records without images train from their signals),
    ``dx_digitized_weight`` (a record's digitized pages weigh this times its true-signal rows in the fit; the
    out-of-fold predictions, thresholds and calibration are taken on the digitized pages where a record has
    any), ``dx_calibrate`` (per-class Platt scaling of the head's probabilities on the out-of-fold predictions,
    :mod:`ecgentry.calibration`; thresholds then apply to calibrated probabilities), ``dx_max_rate_ratio`` (a
    class's threshold is raised until it is predicted for at most this times its training prevalence of the
    out-of-fold records; a rule-fired probability of 1 still passes; 0: no cap).
    """

    _nested: ClassVar[dict[str, type]] = {"backbone": BackboneConfig}

    backbone: BackboneConfig = field(
        default_factory=lambda: BackboneConfig(
            name="facebook/convnextv2-atto-1k-224", image_height=576, image_width=768
        )
    )
    dx_hidden_sizes: list[int] = field(default_factory=list)
    dx_dropout: float = 0.2
    dx_fit: str = "full_batch"
    dx_l2: float = 0.1
    dx_pos_weight_limit: float = 1e4
    dx_standardize: bool = True
    dx_thresholds: str = "oof"
    dx_min_positives: int = 10
    dx_oof_folds: int = 5
    dx_rhythm_rules: bool = True
    signal_features: bool = True
    dx_use_image: bool | str = "auto"
    balance_classes: bool = True
    segmentation: bool = True
    segmentation_decoder_channels: int = 32
    segmentation_input: str = "page"
    crops_per_page: int = 6
    regression: bool = False
    digitization_losses: dict[str, float] = field(default_factory=lambda: {"mae": 1.0, "snr": 0.05})
    balancing: str = "uncertainty"
    val_fraction: float = 0.2
    pages_per_record: int = 1
    render_preset: str = "mixed"
    max_rendered_pages: int = 2000
    max_records: int | None = None
    epochs: int = 12
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 1e-2
    warmup_fraction: float = 0.1
    patience: int = 3
    seed: int = 0
    device: str = "auto"
    num_threads: int | None = None
    digitizer: str = "pipeline"
    trace_source: str = "auto"
    trace_source_pages: int = 4
    dx_digitized_pages: bool = True
    dx_digitized_weight: float = 2.0
    dx_digitize_workers: int = 0
    dx_page_cache: str = ""
    dx_calibrate: bool = True
    dx_max_rate_ratio: float = 1.5

    def validate(self) -> None:
        if not 0.0 <= float(self.val_fraction) < 1.0:
            raise ConfigError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        for name in ("epochs", "batch_size", "pages_per_record", "max_rendered_pages"):
            if int(getattr(self, name)) < (0 if name in ("pages_per_record", "max_rendered_pages") else 1):
                raise ConfigError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.digitizer not in DIGITIZERS:
            raise ConfigError(f"digitizer must be one of {DIGITIZERS}, got {self.digitizer!r}")
        if self.segmentation_input not in ("page", "tiles") or int(self.crops_per_page) < 1:
            raise ConfigError(
                f"segmentation_input must be \"page\" or \"tiles\" and crops_per_page >= 1, got "
                f"{self.segmentation_input!r}, {self.crops_per_page!r}"
            )
        if self.trace_source not in TRACE_SOURCES:
            raise ConfigError(f"trace_source must be one of {TRACE_SOURCES}, got {self.trace_source!r}")
        if self.dx_fit not in ("full_batch", "sgd"):
            raise ConfigError(f"dx_fit must be \"full_batch\" or \"sgd\", got {self.dx_fit!r}")
        if self.dx_thresholds not in ("fixed", "oof"):
            raise ConfigError(f"dx_thresholds must be \"fixed\" or \"oof\", got {self.dx_thresholds!r}")
        if float(self.dx_l2) < 0 or float(self.dx_pos_weight_limit) < 1 or int(self.dx_oof_folds) < 2:
            raise ConfigError("dx_l2 must be >= 0, dx_pos_weight_limit >= 1 and dx_oof_folds >= 2")
        if (
            float(self.dx_digitized_weight) < 0
            or float(self.dx_max_rate_ratio) < 0
            or int(self.dx_digitize_workers) < 0
        ):
            raise ConfigError("dx_digitized_weight, dx_max_rate_ratio and dx_digitize_workers must be >= 0")
        if self.dx_use_image not in (True, False, "auto"):
            raise ConfigError(f"dx_use_image must be true, false or \"auto\", got {self.dx_use_image!r}")
        if self.dx_use_image is False and not self.signal_features:
            raise ConfigError("the Dx head needs image features, signal features or both")
        if self.digitizer == "regression" and not self.regression:
            raise ConfigError("digitizer 'regression' needs regression=True")

    @classmethod
    def from_env(cls, **overrides: Any) -> "TrainConfig":
        """Defaults, updated by ``$ECG_TRAIN_CONFIG`` (a JSON file path or an inline JSON object of overrides;
        nested keys such as ``{"backbone": {"image_width": 512}}`` update the nested config), then ``overrides``."""
        data = cls().to_dict()
        text = os.environ.get(ENV_TRAIN_CONFIG, "").strip()
        if text:
            if not text.startswith("{"):
                with open(text, encoding="utf-8") as f:
                    text = f.read()
            try:
                update = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"${ENV_TRAIN_CONFIG} is not valid JSON: {exc}") from exc
            _deep_update(data, update)
        _deep_update(data, overrides)
        return cls.from_dict(data)


def _deep_update(base: dict[str, Any], update: dict[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_update(base[key], value)
        else:
            base[key] = value
