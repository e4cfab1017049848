"""Task heads over backbone feature maps: the multi-label Dx head and the signal (digitization) heads.

- :class:`DxHead`: global average pooling of one stage (+ optional extra feature vector) -> (standardisation)
  -> MLP or linear layer -> one logit per class (multi-label sigmoid), with ``predict`` (thresholds, fallback
  to the most probable class) and :func:`tune_thresholds` (per-class F-score maximisation on a validation
  split). :func:`fit_dx_head` fits the head on precomputed input vectors in one full-batch L-BFGS problem
  (class-balanced BCE + L2: for ``hidden_sizes=[]`` an L2 logistic regression);
  :func:`out_of_fold_probabilities` gives K-fold out-of-fold predictions grouped by record (for thresholds
  and an honest training-set score).
- :class:`RegressionDigitizationHead`: feature map -> small bottleneck -> FC -> ``(B, num_leads, max_len)``
  signals in mV sampled at ``fs`` Hz; :func:`resample_to` maps them to a record's rate and length.
- ``DIGITIZATION_HEADS`` registry and :func:`create_digitization_head` factory.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from models.config import DigitizationHeadConfig, DxHeadConfig

logger = logging.getLogger(__name__)


def _mlp(in_features: int, hidden_sizes: Sequence[int], out_features: int, dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = in_features
    for h in hidden_sizes:
        layers += [nn.Linear(width, h), nn.GELU(), nn.Dropout(dropout)]
        width = h
    layers.append(nn.Linear(width, out_features))
    return nn.Sequential(*layers)


def _select(features: Sequence[torch.Tensor] | torch.Tensor, index: int) -> torch.Tensor:
    if isinstance(features, torch.Tensor):
        return features
    if len(features) == 0:
        raise ValueError("the head received an empty list of feature maps")
    return features[index]


# --------------------------------------------------------------------------------------------------
# Dx head
# --------------------------------------------------------------------------------------------------
class DxHead(nn.Module):
    """Multi-label classifier: pooled features (+ extra features) -> MLP -> logits ``(B, C)``.

    ``in_channels`` is the channel list of the backbone stages; ``cfg.feature_index`` picks the stage
    that is globally average pooled. ``cfg.extra_features = E > 0`` adds an ``(B, E)`` input at forward
    time (e.g. signal features). A binary label set such as ``["Normal", "Abnormal"]`` is handled the
    same way (two sigmoid outputs). Thresholds live in the ``thresholds`` buffer (saved with weights).
    """

    def __init__(self, cfg: DxHeadConfig, in_channels: Sequence[int]) -> None:
        super().__init__()
        self.config = cfg
        self.classes = list(cfg.classes)
        self.feature_index = cfg.feature_index
        self.extra_features = int(cfg.extra_features)
        self.use_image = bool(cfg.use_image)
        channels = int(list(in_channels)[cfg.feature_index]) if self.use_image else 0
        self.norm = nn.LayerNorm(channels) if self.use_image else nn.Identity()
        self.input_size = channels + self.extra_features
        self.standardize = bool(cfg.standardize)
        if self.standardize:  # identity until fit_dx_head sets them; saved with the weights
            self.register_buffer("input_mean", torch.zeros(self.input_size))
            self.register_buffer("input_scale", torch.ones(self.input_size))
        self.mlp = _mlp(self.input_size, cfg.hidden_sizes, len(self.classes), cfg.dropout)
        thresholds = cfg.thresholds if cfg.thresholds is not None else [0.5] * len(self.classes)
        self.register_buffer("thresholds", torch.tensor(thresholds, dtype=torch.float32))

    @property
    def rhythm_rules(self) -> list[dict]:
        """The fitted :class:`models.rhythm_rules.RhythmRule` dicts (kept in the config, saved as JSON)."""
        return list(self.config.rhythm_rules)

    def set_rhythm_rules(self, rules: Sequence[Any]) -> None:
        """Store rhythm rules (RhythmRule objects or dicts) in the head's config."""
        from .rhythm_rules import RhythmRule

        self.config.rhythm_rules = [(r if isinstance(r, RhythmRule) else RhythmRule(**r)).to_dict() for r in rules]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def forward(
        self, features: Sequence[torch.Tensor] | torch.Tensor, extra_features: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``features``: backbone maps (list of (B, C_i, H_i, W_i)) -> logits (B, num_classes)."""
        return self.logits_from_inputs(self.inputs(features, extra_features))

    def logits_from_inputs(self, inputs: torch.Tensor) -> torch.Tensor:
        """Input vectors (B, input_size) made by :meth:`inputs` -> logits (B, num_classes)."""
        if self.standardize:
            inputs = (inputs - self.input_mean) / self.input_scale
        return self.mlp(inputs)

    def inputs(
        self, features: Sequence[torch.Tensor] | torch.Tensor, extra_features: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The head's input vector (B, input_size): the normalised pooled stage (when ``use_image``) followed by
        ``extra_features`` (B, E); before standardisation."""
        if self.use_image:
            pooled = self.norm(_select(features, self.feature_index).mean(dim=(-2, -1)))
        else:  # a head on the extra (signal) features alone
            if extra_features is None:
                raise ValueError("DxHead with use_image=False needs extra_features")
            pooled = extra_features.new_zeros((extra_features.shape[0], 0))
        if self.extra_features:
            if extra_features is None:
                raise ValueError(f"DxHead was built for {self.extra_features} extra features; none given")
            if extra_features.shape != (pooled.shape[0], self.extra_features):
                raise ValueError(
                    f"extra_features must be (B={pooled.shape[0]}, E={self.extra_features}), "
                    f"got {tuple(extra_features.shape)}"
                )
            pooled = torch.cat([pooled, extra_features.to(pooled.dtype)], dim=1)
        elif extra_features is not None:
            raise ValueError("extra_features given but DxHead was built with extra_features=0")
        return pooled

    def set_thresholds(self, thresholds: Sequence[float] | np.ndarray | torch.Tensor) -> None:
        """Replace the per-class decision thresholds (probabilities in (0, 1))."""
        t = torch.as_tensor(np.asarray(thresholds, dtype=np.float32)).to(self.thresholds.device)
        if t.shape != self.thresholds.shape:
            raise ValueError(f"expected {self.num_classes} thresholds, got shape {tuple(t.shape)}")
        self.thresholds.copy_(t)
        self.config.thresholds = [float(v) for v in t.cpu()]

    def predict(
        self, logits: torch.Tensor | np.ndarray, thresholds: Sequence[float] | np.ndarray | None = None
    ) -> list[list[str]]:
        """Labels per record: every class whose probability reaches its threshold; when none does,
        the single most probable class (a record always gets one label)."""
        probs = torch.sigmoid(torch.as_tensor(logits, dtype=torch.float32)).detach().cpu().numpy()
        th = self.thresholds.detach().cpu().numpy() if thresholds is None else np.asarray(thresholds, np.float32)
        return predict_labels(probs, th, self.classes)


def predict_labels(probs: np.ndarray, thresholds: np.ndarray, classes: Sequence[str]) -> list[list[str]]:
    """``probs`` (N, C) -> label lists: classes with ``prob >= threshold``, else the arg-max class."""
    probs = np.atleast_2d(np.asarray(probs, dtype=np.float64))
    thresholds = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), (probs.shape[1],))
    if probs.shape[1] != len(classes):
        raise ValueError(f"probs have {probs.shape[1]} columns for {len(classes)} classes")
    out: list[list[str]] = []
    for row in probs:
        row = np.nan_to_num(row, nan=0.0)
        hits = [classes[j] for j in np.flatnonzero(row >= thresholds)]
        out.append(hits if hits else [classes[int(np.argmax(row))]])
    return out


def balanced_pos_weight(targets: np.ndarray, limit: float = 1e4) -> np.ndarray:
    """BCE positive weight per class ``(C,)``: negatives / positives of ``targets`` (N, C) multi-hot, clipped to
    [1, ``limit``]; a class without positives gets 1."""
    y = np.asarray(targets, dtype=np.float64) > 0.5
    pos = y.sum(axis=0).astype(np.float64)
    neg = len(y) - pos
    return np.where(pos > 0, np.clip(neg / np.maximum(pos, 1.0), 1.0, float(limit)), 1.0)


def fit_dx_head(
    head: DxHead,
    inputs: np.ndarray | torch.Tensor,
    targets: np.ndarray | torch.Tensor,
    *,
    l2: float = 0.1,
    pos_weight: Sequence[float] | np.ndarray | None = None,
    max_iter: int = 500,
    seed: int = 0,
    sample_weight: Sequence[float] | np.ndarray | None = None,
) -> float:
    """Fit ``head`` (in place) to input vectors ``inputs`` (N, head.input_size) (see :meth:`DxHead.inputs`) and
    multi-hot ``targets`` (N, C) in one full-batch problem: mean BCE with ``pos_weight`` (C,) + ``l2`` times the
    sum of squared weights of the linear layers (biases free), minimised by L-BFGS with a strong-Wolfe line search
    (``max_iter`` iterations; deterministic for a given ``seed``). With ``hidden_sizes=[]`` this is an L2-penalised
    class-weighted logistic regression per class. A ``standardize`` head first takes its mean and scale from
    ``inputs``; dropout is off during the fit (the L2 term regularises). Hidden layers are re-initialised from
    ``seed``. ``sample_weight`` (N,): the rows' weights in the BCE mean (and in the standardisation's mean and
    scale); None: all 1. Returns the final objective value.
    """
    x = torch.as_tensor(np.asarray(inputs, dtype=np.float32) if not torch.is_tensor(inputs) else inputs).float()
    y = torch.as_tensor(np.asarray(targets, dtype=np.float32) if not torch.is_tensor(targets) else targets).float()
    if x.ndim != 2 or x.shape[1] != head.input_size:
        raise ValueError(f"inputs must be (N, {head.input_size}), got {tuple(x.shape)}")
    if y.shape != (x.shape[0], head.num_classes):
        raise ValueError(f"targets must be (N={x.shape[0]}, C={head.num_classes}), got {tuple(y.shape)}")
    if x.shape[0] == 0:
        raise ValueError("fit_dx_head needs at least one example")
    device = head.thresholds.device
    x, y = torch.nan_to_num(x).to(device), y.to(device)
    sw = None
    if sample_weight is not None:
        sw = torch.as_tensor(np.asarray(sample_weight, dtype=np.float32)).to(device).reshape(-1)
        if sw.shape[0] != x.shape[0] or bool((sw < 0).any()) or float(sw.sum()) <= 0:
            raise ValueError("sample_weight must be (N,) non-negative with a positive sum")
        sw = sw / sw.mean()
    if head.standardize:
        if sw is None:
            mean = x.mean(dim=0)
            scale = x.std(dim=0, unbiased=False)
        else:
            mean = (sw[:, None] * x).sum(dim=0) / sw.sum()
            scale = ((sw[:, None] * (x - mean) ** 2).sum(dim=0) / sw.sum()).sqrt()
        head.input_mean.copy_(mean)
        head.input_scale.copy_(torch.where(scale > 1e-6, scale, torch.ones_like(scale)))
    generator = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        for layer in head.mlp:
            if isinstance(layer, nn.Linear):
                bound = 1.0 / max(layer.in_features, 1) ** 0.5
                layer.weight.copy_(torch.empty(layer.weight.shape).uniform_(-bound, bound, generator=generator))
                layer.bias.zero_()
    pw = (
        torch.ones(head.num_classes)
        if pos_weight is None
        else torch.as_tensor(np.asarray(pos_weight), dtype=torch.float32)
    )
    bce = nn.BCEWithLogitsLoss(pos_weight=pw.to(device), reduction="none")

    def loss_fn(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        per_row = bce(logits, targets).mean(dim=1)
        return per_row.mean() if sw is None else (per_row * sw).mean()

    weights = [m.weight for m in head.mlp if isinstance(m, nn.Linear)]
    params = [p for p in head.mlp.parameters()]
    was_training = head.training
    head.eval()  # no dropout: a deterministic objective for L-BFGS
    optimizer = torch.optim.LBFGS(
        params,
        lr=1.0,
        max_iter=int(max_iter),
        history_size=20,
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-7,
        tolerance_change=1e-10,
    )

    def objective() -> torch.Tensor:
        optimizer.zero_grad()
        loss = loss_fn(head.logits_from_inputs(x), y) + float(l2) * sum((w**2).sum() for w in weights)
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(objective)
        final = float(objective().detach())
    head.train(was_training)
    return final


def out_of_fold_probabilities(
    fit_predict: Callable[[np.ndarray, np.ndarray], np.ndarray],
    num_groups: int,
    folds: int = 5,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """K-fold out-of-fold predictions over ``num_groups`` groups (records).

    ``fit_predict(train_groups, test_groups)`` (index arrays of groups) fits a model on the first and returns
    probabilities (len(test_groups), C), one row per test group in the given order. Groups are
    dealt to ``folds`` folds by a seeded permutation (``min(folds, num_groups)``). Returns ``(probs (num_groups,
    C), group index of each row (num_groups,))``, concatenated over folds; empty arrays when ``num_groups < 2``.
    """
    if num_groups < 2:
        return np.zeros((0, 0)), np.zeros(0, dtype=np.int64)
    k = max(2, min(int(folds), num_groups))
    fold_of = np.random.default_rng(seed).permutation(num_groups) % k
    probs, owners = [], []
    for f in range(k):
        test = np.flatnonzero(fold_of == f)
        train = np.flatnonzero(fold_of != f)
        p = np.asarray(fit_predict(train, test), dtype=np.float64)
        if p.shape[0] != len(test):
            raise ValueError(f"fit_predict returned {p.shape[0]} rows for {len(test)} test groups")
        probs.append(p)
        owners.append(test)
    return np.concatenate(probs), np.concatenate(owners)


def tune_thresholds(
    probs: np.ndarray,
    targets: np.ndarray,
    candidates: Sequence[float] | np.ndarray | None = None,
    beta: float = 1.0,
    default: float = 0.5,
) -> np.ndarray:
    """Per-class thresholds ``(C,)`` maximising the F-beta score on a validation split.

    ``probs`` (N, C) in [0, 1]; ``targets`` (N, C) multi-hot (NaN rows/entries are ignored).
    ``candidates``: threshold grid (default 0.02..0.98 step 0.02 plus the midpoints between sorted
    unique probabilities). Among equally good thresholds the middle one is chosen (widest margin).
    A class without positives in the split keeps ``default``.
    """
    probs = np.asarray(probs, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    if probs.ndim != 2 or probs.shape != targets.shape:
        raise ValueError(f"probs and targets must both be (N, C); got {probs.shape} and {targets.shape}")
    n, c = probs.shape
    thresholds = np.full(c, float(default))
    b2 = beta * beta
    for j in range(c):
        valid = np.isfinite(probs[:, j]) & np.isfinite(targets[:, j])
        p, y = probs[valid, j], targets[valid, j] > 0.5
        if y.sum() == 0 or len(p) == 0:
            continue
        if candidates is None:
            u = np.unique(p)
            grid = np.unique(np.concatenate([np.arange(0.02, 0.99, 0.02), (u[1:] + u[:-1]) / 2.0]))
        else:
            grid = np.unique(np.asarray(candidates, dtype=np.float64))
        pred = p[None, :] >= grid[:, None]  # (G, n)
        tp = (pred & y[None, :]).sum(axis=1)
        fp = (pred & ~y[None, :]).sum(axis=1)
        fn = (~pred & y[None, :]).sum(axis=1)
        denom = (1 + b2) * tp + b2 * fn + fp
        f = np.where(denom > 0, (1 + b2) * tp / np.maximum(denom, 1), 0.0)
        best = np.flatnonzero(f >= f.max() - 1e-12)
        thresholds[j] = float(grid[best[len(best) // 2]])
    return thresholds


# --------------------------------------------------------------------------------------------------
# Digitization heads
# --------------------------------------------------------------------------------------------------
class RegressionDigitizationHead(nn.Module):
    """Direct signal regression: feature map -> ``(B, num_leads, max_len)`` in mV at ``cfg.fs`` Hz.

    Layout: 1x1 conv to ``bottleneck_channels`` -> adaptive average pooling to ``pool_size`` (rows,
    cols) -> flatten -> FC layers (``hidden_sizes``) -> one code of ``lead_code_size`` per lead -> a
    shared low-rank linear decoder code -> ``max_len`` samples, plus a learned per-lead bias curve.

    Size: with the defaults (64 channels, 4x8 pool, hidden 512, code 256) the head has about
    4.0 M parameters for a (1024, 12, 12) input with 12 leads x 5000 samples, and stays well under
    20 M for any input size because the pooling grid is fixed and the decoder is shared by the leads.
    """

    def __init__(self, cfg: DigitizationHeadConfig, in_channels: Sequence[int]) -> None:
        super().__init__()
        self.config = cfg
        self.num_leads = int(cfg.num_leads)
        self.max_len = int(cfg.max_len)
        self.fs = float(cfg.fs)
        self.feature_index = cfg.feature_index
        channels = int(list(in_channels)[cfg.feature_index])
        rows, cols = cfg.pool_size
        self.reduce = nn.Sequential(
            nn.Conv2d(channels, cfg.bottleneck_channels, kernel_size=1),
            nn.GroupNorm(1, cfg.bottleneck_channels),
            nn.GELU(),
        )
        self.pool = nn.AdaptiveAvgPool2d((rows, cols))
        flat = cfg.bottleneck_channels * rows * cols
        self.fc = _mlp(flat, cfg.hidden_sizes, self.num_leads * cfg.lead_code_size, cfg.dropout)
        self.lead_code_size = int(cfg.lead_code_size)
        self.decoder = nn.Linear(cfg.lead_code_size, self.max_len)
        self.lead_bias = nn.Parameter(torch.zeros(self.num_leads, self.max_len))

    def forward(self, features: Sequence[torch.Tensor] | torch.Tensor) -> torch.Tensor:
        """``features``: backbone maps -> signals (B, num_leads, max_len) in mV."""
        fmap = _select(features, self.feature_index)
        z = self.pool(self.reduce(fmap)).flatten(1)
        codes = self.fc(z).view(z.shape[0], self.num_leads, self.lead_code_size)
        return self.decoder(codes) + self.lead_bias


DigitizationHeadFactory = Callable[[DigitizationHeadConfig, Sequence[int]], nn.Module]
DIGITIZATION_HEADS: dict[str, DigitizationHeadFactory] = {"regression": RegressionDigitizationHead}
"""Registry of digitization head kinds; a ``"segmentation"`` kind can be added here later."""


def create_digitization_head(cfg: DigitizationHeadConfig, in_channels: Sequence[int]) -> nn.Module:
    """Build the digitization head ``cfg.kind`` for backbone stages with ``in_channels`` channels."""
    try:
        factory = DIGITIZATION_HEADS[cfg.kind]
    except KeyError:
        raise ValueError(
            f"unknown digitization head kind {cfg.kind!r}; registered: {sorted(DIGITIZATION_HEADS)}"
        ) from None
    return factory(cfg, list(in_channels))


def resample_to(
    signal: np.ndarray | torch.Tensor,
    fs_out: float,
    num_samples: int,
    fs_in: float = 500.0,
    fill_value: float = 0.0,
) -> np.ndarray | torch.Tensor:
    """Resample ``signal`` (..., T) sampled at ``fs_in`` Hz to ``num_samples`` samples at ``fs_out`` Hz.

    Linear interpolation on the common time axis (sample k at k / fs seconds; works for numpy arrays and
    torch tensors, gradients flow through tensors). Output samples later than the input's last sample
    get ``fill_value`` (use ``np.nan`` to mark them unknown). Down-sampling is preceded by a centred moving
    average (odd width close to the rate ratio) to limit aliasing. Returns the same type as the input.
    """
    if fs_out <= 0 or fs_in <= 0:
        raise ValueError(f"sampling rates must be > 0 Hz, got fs_in={fs_in}, fs_out={fs_out}")
    num_samples = int(num_samples)
    if num_samples < 0:
        raise ValueError(f"num_samples must be >= 0, got {num_samples}")
    is_torch = isinstance(signal, torch.Tensor)
    x = signal if is_torch else torch.as_tensor(np.asarray(signal, dtype=np.float64))
    t_in = x.shape[-1]
    if t_in == 0:
        raise ValueError("cannot resample an empty signal")
    ratio = fs_in / fs_out
    if ratio > 1.5:  # anti-aliasing: centred (odd-width, so no time shift) box filter ~ decimation width
        k = int(round(ratio)) | 1
        flat = x.reshape(-1, 1, t_in)
        padded = torch.nn.functional.pad(flat, (k // 2, k // 2), mode="replicate")
        x = torch.nn.functional.avg_pool1d(padded, kernel_size=k, stride=1).reshape(x.shape)
    pos = torch.arange(num_samples, dtype=torch.float64, device=x.device) * (fs_in / fs_out)
    lo = torch.clamp(pos.floor().long(), 0, t_in - 1)
    hi = torch.clamp(lo + 1, 0, t_in - 1)
    w = (pos - lo.to(torch.float64)).to(x.dtype)
    out = x[..., lo] * (1 - w) + x[..., hi] * w
    beyond = pos > (t_in - 1) + 1e-9
    if bool(beyond.any()):
        out = out.clone()
        out[..., beyond] = fill_value
    if is_torch:
        return out
    src_dtype = np.asarray(signal).dtype
    result = out.numpy()
    return result.astype(src_dtype if np.issubdtype(src_dtype, np.floating) else np.float64, copy=False)


__all__ = [
    "DxHead",
    "RegressionDigitizationHead",
    "balanced_pos_weight",
    "fit_dx_head",
    "out_of_fold_probabilities",
    "DIGITIZATION_HEADS",
    "create_digitization_head",
    "predict_labels",
    "tune_thresholds",
    "resample_to",
]
