"""Digitization losses, registered by name, with the Challenge metric each one is a surrogate of.

Every loss takes

* ``pred``: ``(B, L, T)`` float tensor, predicted signals in mV (batch, lead, sample);
* ``target``: ``(B, L, T)`` float tensor, reference signals in mV, NaN (or inf) for unknown samples;
* ``mask``: optional ``(B, L, T)`` bool tensor (anything broadcastable to it), True = valid sample,
  False = padding.

A sample is valid when ``mask`` is True and the target is finite. ``forward`` returns a scalar: the
mean of the per-lead losses over the ``(batch, lead)`` pairs with at least one valid sample (0, still
attached to the graph, when there is none). ``metric`` returns the Challenge metric per lead,
``(B, L)``, NaN where a lead has no valid sample; ``lead_losses`` returns the per-lead losses
``(B, L)``, NaN there too. Unknown targets are replaced with ``torch.where`` before any arithmetic,
so a NaN target never reaches a loss value or a gradient. A NaN in ``pred`` is *not* hidden by the
losses (it signals a broken network); ``metric`` replaces it with 0 as the official scorer does.

The metric definitions follow the official ``helper_code.py`` of the 2024 Challenge example: each
metric is computed on the valid samples of a lead only (the official code drops non-finite reference
samples and sets NaN outputs to 0).

Use ``get_loss(name, **kwargs)`` for one loss and :class:`DigitizationLoss` for a weighted sum.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator, Mapping
from typing import Any, Callable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

logger = logging.getLogger(__name__)

__all__ = [
    "LOSSES",
    "get_loss",
    "register_loss",
    "DigitizationLoss",
    "SNRLoss",
    "SoftDTWLoss",
    "MAELoss",
    "RMSELoss",
    "KSLoss",
    "ASCILoss",
]

LOSSES: dict[str, type] = {}
"""Registry: loss name -> ``nn.Module`` class."""


def register_loss(name: str) -> Callable[[type], type]:
    """Class decorator that registers a loss class under ``name`` in :data:`LOSSES`."""

    def decorator(cls: type) -> type:
        if name in LOSSES:
            raise ValueError(f"loss {name!r} is already registered ({LOSSES[name].__name__})")
        LOSSES[name] = cls
        cls.name = name
        return cls

    return decorator


def _unknown_loss(name: Any) -> KeyError:
    return KeyError(f"unknown loss {name!r}; valid names: {', '.join(sorted(LOSSES))}")


def get_loss(name: str, **kwargs: Any) -> nn.Module:
    """Build the loss registered under ``name`` with constructor ``kwargs``.

    Raises ``KeyError`` listing the valid names when ``name`` is unknown.
    """
    if not isinstance(name, str) or name not in LOSSES:
        raise _unknown_loss(name)
    return LOSSES[name](**kwargs)


# --------------------------------------------------------------------------------------------------
# shared helpers
# --------------------------------------------------------------------------------------------------


def _prepare(pred: Tensor, target: Tensor, mask: Optional[Tensor]) -> tuple[Tensor, Tensor]:
    """Check shapes; return ``(target with invalid samples set to 0, valid)``, both ``(B, L, T)``."""
    if not isinstance(pred, Tensor) or not isinstance(target, Tensor):
        raise TypeError("pred and target must be torch tensors")
    if pred.ndim != 3:
        raise ValueError(f"pred must have shape (B, L, T), got {tuple(pred.shape)}")
    if tuple(target.shape) != tuple(pred.shape):
        raise ValueError(f"target shape {tuple(target.shape)} != pred shape {tuple(pred.shape)}")
    if not pred.is_floating_point():
        raise TypeError(f"pred must be a floating point tensor, got {pred.dtype}")
    target = target.to(device=pred.device, dtype=pred.dtype)
    valid = torch.isfinite(target)
    if mask is not None:
        mask = torch.as_tensor(mask, device=pred.device)
        if mask.dtype != torch.bool:
            mask = mask != 0
        try:
            mask = mask.expand(pred.shape)
        except RuntimeError as exc:
            raise ValueError(f"mask shape {tuple(mask.shape)} does not broadcast to {tuple(pred.shape)}") from exc
        valid = valid & mask
    tgt = torch.where(valid, target, torch.zeros((), dtype=target.dtype, device=target.device))
    return tgt.detach(), valid


def _masked_diff(pred: Tensor, tgt: Tensor, valid: Tensor) -> Tensor:
    """``pred - tgt`` on valid samples, 0 elsewhere (no NaN ever reaches the arithmetic)."""
    return torch.where(valid, pred - tgt, torch.zeros((), dtype=pred.dtype, device=pred.device))


def _count(valid: Tensor, dtype: torch.dtype) -> Tensor:
    """Number of valid samples per lead, ``(B, L)``, at least 1 (safe denominator)."""
    return valid.sum(-1).clamp_min(1).to(dtype)


def _upcast(pred: Tensor) -> Tensor:
    """Half precision predictions (autocast) are evaluated in float32 (sums of squares overflow)."""
    return pred.float() if pred.dtype in (torch.float16, torch.bfloat16) else pred


class _LeadLoss(nn.Module):
    """Base class: subclasses implement ``_lead_loss`` and ``_lead_metric`` (both ``(B, L)``)."""

    name: str = ""

    def _lead_loss(self, pred: Tensor, tgt: Tensor, valid: Tensor) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    def _lead_metric(self, pred: Tensor, tgt: Tensor, valid: Tensor) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    def lead_losses(self, pred: Tensor, target: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        """Per-lead loss values ``(B, L)``; NaN for leads without a valid sample."""
        pred = _upcast(pred)
        tgt, valid = _prepare(pred, target, mask)
        per_lead = self._lead_loss(pred, tgt, valid)
        return torch.where(valid.any(-1), per_lead, torch.full_like(per_lead, float("nan")))

    def forward(self, pred: Tensor, target: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        """Scalar loss: mean of the per-lead losses over leads with at least one valid sample."""
        pred = _upcast(pred)
        tgt, valid = _prepare(pred, target, mask)
        per_lead = self._lead_loss(pred, tgt, valid)
        has = valid.any(-1)
        total = torch.where(has, per_lead, torch.zeros_like(per_lead)).sum()
        return total / has.sum().clamp_min(1).to(per_lead.dtype)

    @torch.no_grad()
    def metric(self, pred: Tensor, target: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        """Challenge metric per lead ``(B, L)`` (computed in float64), NaN without valid samples."""
        p = pred.detach().to(torch.float64)
        tgt, valid = _prepare(p, target, mask)
        p = torch.where(torch.isnan(p), torch.zeros((), dtype=p.dtype, device=p.device), p)
        value = self._lead_metric(p, tgt, valid)
        value = torch.where(valid.any(-1), value, torch.full_like(value, float("nan")))
        return value.to(pred.dtype)


# --------------------------------------------------------------------------------------------------
# pointwise losses
# --------------------------------------------------------------------------------------------------


@register_loss("mae")
class MAELoss(_LeadLoss):
    """Mean absolute error in mV over the valid samples of each lead. Metric: the same value."""

    def _lead_loss(self, pred: Tensor, tgt: Tensor, valid: Tensor) -> Tensor:
        diff = _masked_diff(pred, tgt, valid)
        return diff.abs().sum(-1) / _count(valid, pred.dtype)

    _lead_metric = _lead_loss


@register_loss("rmse")
class RMSELoss(_LeadLoss):
    """Root mean squared error in mV over the valid samples of each lead.

    The loss is ``sqrt(mse + eps)`` (``eps`` in mV^2) so that its gradient stays finite at a perfect
    prediction; the metric is the exact ``sqrt(mse)``.
    """

    def __init__(self, eps: float = 1e-10) -> None:
        super().__init__()
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        self.eps = float(eps)

    def _mse(self, pred: Tensor, tgt: Tensor, valid: Tensor) -> Tensor:
        diff = _masked_diff(pred, tgt, valid)
        return diff.square().sum(-1) / _count(valid, pred.dtype)

    def _lead_loss(self, pred: Tensor, tgt: Tensor, valid: Tensor) -> Tensor:
        return torch.sqrt(self._mse(pred, tgt, valid) + self.eps)

    def _lead_metric(self, pred: Tensor, tgt: Tensor, valid: Tensor) -> Tensor:
        return torch.sqrt(self._mse(pred, tgt, valid))


@register_loss("snr")
class SNRLoss(_LeadLoss):
    """Minus the Challenge signal-to-noise ratio in dB, per lead.

    ``SNR = 10 * log10(sum ref^2 / sum (ref - est)^2)`` over the valid samples (power of the reference
    over power of the error). The loss uses ``10 * log10((sum ref^2 + eps) / (sum err^2 + eps))``
    (``eps`` in mV^2 * samples) and clamps the SNR into ``[min_db, max_db]``: above ``max_db`` the
    prediction is already practically exact and is not rewarded further (this also keeps identical
    signals finite); below ``min_db`` (error power >= 10^4 x the reference power with the default,
    e.g. a flat all-zero reference lead) the lead stops contributing a gradient, so degenerate leads
    cannot dominate a batch. The metric is the exact official value: ``+inf`` for a perfect
    prediction of a non-zero lead, NaN for an all-zero reference (as the official scorer).
    """

    def __init__(self, eps: float = 1e-8, min_db: float = -40.0, max_db: float = 60.0) -> None:
        super().__init__()
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        if not min_db < max_db:
            raise ValueError(f"min_db ({min_db}) must be < max_db ({max_db})")
        self.eps = float(eps)
        self.min_db = float(min_db)
        self.max_db = float(max_db)

    def _lead_loss(self, pred: Tensor, tgt: Tensor, valid: Tensor) -> Tensor:
        signal = tgt.square().sum(-1)
        noise = _masked_diff(pred, tgt, valid).square().sum(-1)
        snr = 10.0 * (torch.log10(signal + self.eps) - torch.log10(noise + self.eps))
        return -snr.clamp(self.min_db, self.max_db)

    def _lead_metric(self, pred: Tensor, tgt: Tensor, valid: Tensor) -> Tensor:
        signal = tgt.square().sum(-1)
        noise = _masked_diff(pred, tgt, valid).square().sum(-1)
        snr = 10.0 * torch.log10(signal / noise)
        return torch.where(signal > 0, snr, torch.full_like(snr, float("nan")))


# --------------------------------------------------------------------------------------------------
# KS and ASCI
# --------------------------------------------------------------------------------------------------


def _abs_cdf(x: Tensor, valid: Tensor, eps: Optional[float]) -> Tensor:
    """Cumulative sum over time of ``|x|`` on valid samples, normalised by its total.

    ``eps=None``: exact official normalisation (divide only when the total is > 0); otherwise the
    total is clamped to ``eps`` (mV * samples) so the gradient stays finite for tiny totals.
    """
    cum = torch.cumsum(torch.where(valid, x.abs(), torch.zeros_like(x)), dim=-1)
    total = cum[..., -1:]
    if eps is None:
        total = torch.where(total > 0, total, torch.ones_like(total))
    else:
        total = total.clamp_min(eps)
    return cum / total


@register_loss("ks")
class KSLoss(_LeadLoss):
    """Kolmogorov-Smirnov-like Challenge metric on the cumulative absolute signal.

    ``cdf(x)[t] = cumsum(|x|)[t] / sum(|x|)`` over the valid samples; goodness of fit
    ``= 1 - max_t |cdf(ref) - cdf(est)|`` (in [0, 1], 1 is perfect); that is the metric. The loss is
    ``1 - goodness`` with the max replaced by a log-mean-exp smooth maximum at ``temperature``
    (units of the cdf difference, i.e. a fraction of the total): it lies between ``max - temperature *
    log(n)`` and ``max`` and tends to the max as the temperature goes to 0.
    """

    def __init__(self, temperature: float = 0.005, eps: float = 1e-6) -> None:
        super().__init__()
        if not temperature > 0 or not eps > 0:
            raise ValueError("temperature and eps must be > 0")
        self.temperature = float(temperature)
        self.eps = float(eps)

    def _lead_loss(self, pred: Tensor, tgt: Tensor, valid: Tensor) -> Tensor:
        dist = (_abs_cdf(tgt, valid, self.eps) - _abs_cdf(pred, valid, self.eps)).abs()
        scaled = torch.where(valid, dist / self.temperature, torch.full_like(dist, -1e4))
        log_mean = torch.logsumexp(scaled, dim=-1) - torch.log(_count(valid, pred.dtype))
        return self.temperature * log_mean

    def _lead_metric(self, pred: Tensor, tgt: Tensor, valid: Tensor) -> Tensor:
        dist = (_abs_cdf(tgt, valid, None) - _abs_cdf(pred, valid, None)).abs()
        dist = torch.where(valid, dist, torch.zeros_like(dist))
        return 1.0 - dist.amax(dim=-1)


@register_loss("asci")
class ASCILoss(_LeadLoss):
    """Adaptive signed correlation index.

    Metric: mean over the valid samples of +1 where ``|ref - est| <= beta * std(ref)`` and -1
    elsewhere (``std`` is the population standard deviation of the valid reference samples, mV);
    in [-1, 1], 1 is perfect. Loss: ``1 - ASCI_smooth`` where the step is replaced by
    ``sigmoid((beta * std - |ref - est|) / temperature)`` (``temperature`` in mV), in [0, 2].
    """

    def __init__(self, beta: float = 0.05, temperature: float = 0.02) -> None:
        super().__init__()
        if not 0 < beta <= 1:
            raise ValueError(f"beta must be in (0, 1], got {beta}")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.beta = float(beta)
        self.temperature = float(temperature)

    def _threshold(self, tgt: Tensor, valid: Tensor) -> Tensor:
        tgt = tgt.detach()
        count = _count(valid, tgt.dtype)
        mean = tgt.sum(-1, keepdim=True) / count.unsqueeze(-1)
        centred = torch.where(valid, tgt - mean, torch.zeros_like(tgt))
        var = centred.square().sum(-1) / count
        return self.beta * torch.sqrt(var)

    def _lead_loss(self, pred: Tensor, tgt: Tensor, valid: Tensor) -> Tensor:
        threshold = self._threshold(tgt, valid).unsqueeze(-1)
        diff = _masked_diff(pred, tgt, valid).abs()
        soft = 2.0 * torch.sigmoid((threshold - diff) / self.temperature) - 1.0
        soft = torch.where(valid, soft, torch.zeros_like(soft))
        return 1.0 - soft.sum(-1) / _count(valid, pred.dtype)

    def _lead_metric(self, pred: Tensor, tgt: Tensor, valid: Tensor) -> Tensor:
        threshold = self._threshold(tgt, valid).unsqueeze(-1)
        diff = _masked_diff(pred, tgt, valid).abs()
        sign = torch.where(diff <= threshold, 1.0, -1.0).to(pred.dtype)
        sign = torch.where(valid, sign, torch.zeros_like(sign))
        return sign.sum(-1) / _count(valid, pred.dtype)


# --------------------------------------------------------------------------------------------------
# banded (soft-)DTW
# --------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _serial_cpu(tensor: Tensor, elements: int) -> Iterator[None]:
    """Run the DTW recursions' small per-step CPU kernels on one intra-op thread (restored after).

    The recursions issue thousands of kernels on ``elements`` values each; on CPU the intra-op
    thread pool only adds overhead there (exp/log 100x slower measured on a loaded 2-core machine).
    No effect on other devices, with one thread already, or when the per-step work is large.
    """
    threads = torch.get_num_threads()
    if tensor.device.type != "cpu" or threads == 1 or elements > 1 << 16:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _band_indices(n_max: int, w: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """Skewed band layout: anti-diagonal ``k = i + j`` (rows), offset ``d = j - i`` in ``[-w, w]``.

    Returns ``(rows i, cols j, valid)``, each ``(2 * n_max - 1, 2 * w + 1)``; invalid cells (wrong
    parity, outside the matrix) have their indices clamped to 0.
    """
    k = torch.arange(2 * n_max - 1, device=device).unsqueeze(1)
    d = torch.arange(-w, w + 1, device=device).unsqueeze(0)
    twice_i, twice_j = k - d, k + d
    valid = (torch.remainder(twice_i, 2) == 0) & (twice_i >= 0) & (twice_j >= 0)
    i, j = torch.div(twice_i, 2, rounding_mode="floor"), torch.div(twice_j, 2, rounding_mode="floor")
    valid &= (i < n_max) & (j < n_max)
    return i.clamp(0, n_max - 1), j.clamp(0, n_max - 1), valid


def _dtw_recursion(
    x: Tensor, y: Tensor, n: Tensor, w: int, gamma: Optional[float], store: bool
) -> tuple[Tensor, Optional[Tensor]]:
    """Banded (soft-)DTW accumulated cost ``R[n-1, n-1]`` per row of ``x, y`` (``(M, N)``).

    Cost ``|x_i - y_j|`` for ``|i - j| <= w``; ``gamma=None`` uses the hard minimum. ``n`` (``(M,)``,
    >= 1) is the number of leading samples of each row to align. Works on anti-diagonals, vectorised
    over rows; memory ``O(M * N * w)`` when ``store`` (the accumulated costs for the backward pass).
    """
    m, n_max = x.shape
    width = 2 * w + 1
    rows, cols, valid = _band_indices(n_max, w, x.device)
    inf = torch.full((), float("inf"), dtype=x.dtype, device=x.device)
    zero = torch.zeros((), dtype=x.dtype, device=x.device)
    pad = inf.expand(m, 1)
    k_end = 2 * n - 2
    out = x.new_zeros(m)
    store_r = x.new_empty((2 * n_max - 1, m, width)) if store else None
    # diagonals k-1 and k-2, padded with +inf by one column on each side. Only element-wise ops in
    # the loop: small reductions (logsumexp, amin) are very slow on a loaded multi-threaded CPU.
    prev1 = prev2 = inf.expand(m, width + 2)
    for k in range(2 * n_max - 1):
        cost = (x.index_select(1, rows[k]) - y.index_select(1, cols[k])).abs()
        if k == 0:
            r = torch.where(valid[k], cost, inf)
        else:
            up = prev1[:, 2:]  # (i-1, j): offset d+1 on diagonal k-1
            left = prev1[:, :-2]  # (i, j-1): offset d-1 on diagonal k-1
            diag = prev2[:, 1:-1]  # (i-1, j-1): offset d on diagonal k-2
            best = torch.minimum(torch.minimum(up, left), diag)
            if gamma is not None:  # soft minimum, stabilised by the hard one
                low = torch.where(torch.isfinite(best), best, zero)
                total = (
                    torch.exp((low - up) / gamma) + torch.exp((low - left) / gamma) + torch.exp((low - diag) / gamma)
                )
                best = low - gamma * torch.log(total)
            r = torch.where(valid[k], cost + best, inf)
        out = torch.where(k_end == k, r[:, w], out)
        if store_r is not None:
            store_r[k] = r
        prev2, prev1 = prev1, torch.cat([pad, r, pad], dim=1)
    return out, store_r


def _soft_dtw_backward(
    x: Tensor, y: Tensor, n: Tensor, store_r: Tensor, grad_out: Tensor, w: int, gamma: float
) -> tuple[Tensor, Tensor]:
    """Gradients of the soft-DTW values w.r.t. ``x`` and ``y`` (Cuturi & Blondel 2017, alg. 2).

    ``E[i, j]`` (derivative of the end value w.r.t. the cost of cell ``(i, j)``) is propagated
    backwards over the anti-diagonals from each row's end cell. ``S = R - cost`` (the soft minimum
    of the predecessors) is kept with -inf outside the band and ``R`` with +inf, so every exponent
    is finite or -inf (never NaN).
    """
    m, n_max = x.shape
    width = 2 * w + 1
    rows, cols, valid = _band_indices(n_max, w, x.device)
    k_end = 2 * n - 2
    neg_inf = torch.full((), float("-inf"), dtype=x.dtype, device=x.device)
    grad_x, grad_y = torch.zeros_like(x), torch.zeros_like(y)
    # diagonals k+1 and k+2, padded by one column on each side (-inf for S, 0 for E)
    s1 = s2 = neg_inf.expand(m, width + 2)
    e1 = e2 = x.new_zeros(m, width + 2)
    zero_col = x.new_zeros(m, 1)
    ninf_col = neg_inf.expand(m, 1)
    no_grad = torch.zeros_like(grad_out)
    for k in range(2 * n_max - 2, -1, -1):
        r = store_r[k]
        signed = x.index_select(1, rows[k]) - y.index_select(1, cols[k])
        # successors: (i+1, j) offset d-1 and (i, j+1) offset d+1 on k+1, (i+1, j+1) on k+2
        e = (
            torch.exp((s1[:, :-2] - r) / gamma) * e1[:, :-2]
            + torch.exp((s1[:, 2:] - r) / gamma) * e1[:, 2:]
            + torch.exp((s2[:, 1:-1] - r) / gamma) * e2[:, 1:-1]
        )
        e[:, w] += torch.where(k_end == k, grad_out, no_grad)
        contribution = e * torch.sign(signed)
        grad_x.index_add_(1, rows[k], contribution)
        grad_y.index_add_(1, cols[k], -contribution)
        s_k = torch.where(valid[k], r - signed.abs(), neg_inf)
        s2, s1 = s1, torch.cat([ninf_col, s_k, ninf_col], dim=1)
        e2, e1 = e1, torch.cat([zero_col, e, zero_col], dim=1)
    return grad_x, grad_y


class _BandedSoftDTW(torch.autograd.Function):
    """Soft-DTW (Cuturi & Blondel 2017) in a Sakoe-Chiba band with the analytic backward pass."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, y: Tensor, n: Tensor, w: int, gamma: float) -> Tensor:
        with _serial_cpu(x, x.shape[0] * (2 * w + 1)):
            value, store_r = _dtw_recursion(x, y, n, w, gamma, store=True)
        ctx.save_for_backward(x, y, n)
        ctx.store_r = store_r
        ctx.w, ctx.gamma = w, gamma
        return value

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor):  # type: ignore[override]
        x, y, n = ctx.saved_tensors
        with _serial_cpu(x, x.shape[0] * (2 * ctx.w + 1)):
            grad_x, grad_y = _soft_dtw_backward(x, y, n, ctx.store_r, grad_out, ctx.w, ctx.gamma)
        return (
            grad_x if ctx.needs_input_grad[0] else None,
            grad_y if ctx.needs_input_grad[1] else None,
            None,
            None,
            None,
        )


@register_loss("dtw")
class SoftDTWLoss(_LeadLoss):
    """Soft-DTW in a Sakoe-Chiba band, normalised by the number of aligned samples.

    Each lead is reduced to its valid samples (in order, as the official metrics do), optionally
    block-averaged by ``downsample`` samples, and aligned with cost ``|ref_i - est_j|`` (mV) inside
    ``|i - j| <= ceil(band / downsample)``. The accumulated cost is divided by the number of
    (downsampled) samples ``n``, so the hard DTW is <= the MAE of the same samples (the diagonal path
    is admissible). Loss: soft-DTW with smoothing ``gamma`` (mV per step; the soft value lies within
    ``gamma * log(3)`` per step below the hard one). ``divergence=True`` returns the soft-DTW
    divergence ``sdtw(r, e) - (sdtw(r, r) + sdtw(e, e)) / 2`` instead (exactly 0 for identical
    signals; costs three alignments). Metric: the hard banded DTW with the same settings.
    Memory ``O(B * L * T * band / downsample^2)`` (float64, about 8 MB per lead for T=5000,
    band=50); the time is ``2T/downsample`` vectorised steps (about 3 s forward+backward for
    (2, 12, 5000) on a loaded 2-core CPU).
    """

    def __init__(self, band: int = 50, gamma: float = 0.01, downsample: int = 1, divergence: bool = False) -> None:
        super().__init__()
        if int(band) < 0:
            raise ValueError(f"band must be >= 0 samples, got {band}")
        if not gamma > 0:
            raise ValueError(f"gamma must be > 0, got {gamma}")
        if int(downsample) < 1:
            raise ValueError(f"downsample must be >= 1, got {downsample}")
        self.band = int(band)
        self.gamma = float(gamma)
        self.downsample = int(downsample)
        self.divergence = bool(divergence)

    def _sequences(self, pred: Tensor, tgt: Tensor, valid: Tensor) -> tuple[Tensor, Tensor, Tensor, int]:
        """Valid samples moved to the front, downsampled, float64: ``(ref, est, n, band)``."""
        b, l, t = pred.shape
        est = pred.reshape(b * l, t).to(torch.float64)
        ref = tgt.reshape(b * l, t).to(torch.float64)
        ok = valid.reshape(b * l, t)
        n = ok.sum(-1)
        if not bool(ok.all()):
            order = torch.sort((~ok).to(torch.uint8), dim=-1, stable=True).indices
            est, ref = est.gather(1, order), ref.gather(1, order)
        n_max = max(int(n.max()), 1)
        est, ref = est[:, :n_max], ref[:, :n_max]
        keep = torch.arange(n_max, device=pred.device).unsqueeze(0) < n.unsqueeze(1)
        zero = torch.zeros((), dtype=est.dtype, device=est.device)
        est, ref = torch.where(keep, est, zero), torch.where(keep, ref, zero)
        s = self.downsample
        if s > 1:
            extra = -n_max % s
            keep_f = F.pad(keep.to(est.dtype), (0, extra)).view(b * l, -1, s).sum(-1).clamp_min(1)
            est = F.pad(est, (0, extra)).view(b * l, -1, s).sum(-1) / keep_f
            ref = F.pad(ref, (0, extra)).view(b * l, -1, s).sum(-1) / keep_f
            n = torch.div(n + s - 1, s, rounding_mode="floor")
        w = min(math.ceil(self.band / s), est.shape[1] - 1)
        return ref, est, n.clamp_min(1), w

    def _lead_loss(self, pred: Tensor, tgt: Tensor, valid: Tensor) -> Tensor:
        ref, est, n, w = self._sequences(pred, tgt, valid)
        value = _BandedSoftDTW.apply(ref, est, n, w, self.gamma)
        if self.divergence:
            self_ref = _BandedSoftDTW.apply(ref, ref, n, w, self.gamma)
            self_est = _BandedSoftDTW.apply(est, est, n, w, self.gamma)
            value = value - 0.5 * (self_ref + self_est)
        return (value / n.to(value.dtype)).to(pred.dtype).view(pred.shape[:2])

    def _lead_metric(self, pred: Tensor, tgt: Tensor, valid: Tensor) -> Tensor:
        ref, est, n, w = self._sequences(pred, tgt, valid)
        with _serial_cpu(ref, ref.shape[0] * (2 * w + 1)):
            value, _ = _dtw_recursion(ref, est, n, w, None, store=False)
        return (value / n.to(value.dtype)).to(pred.dtype).view(pred.shape[:2])


# --------------------------------------------------------------------------------------------------
# weighted sum
# --------------------------------------------------------------------------------------------------


class DigitizationLoss(nn.Module):
    """Weighted sum of registered losses.

    ``weights`` maps loss names to non-negative weights; ``kwargs`` maps loss names to dicts of
    constructor arguments, e.g. ``DigitizationLoss({"snr": 1.0, "dtw": 0.5}, dtw={"band": 25})``.
    ``forward`` returns ``(total, parts)``: ``total = sum(weight * part)`` and ``parts`` the unweighted
    scalar value of every loss (separate tensors, still attached to the graph). Losses with weight 0
    are still computed and reported.
    """

    def __init__(self, weights: dict[str, float], **kwargs: Any) -> None:
        super().__init__()
        if not isinstance(weights, Mapping) or not weights:
            raise ValueError("weights must be a non-empty dict of loss name -> weight")
        for name in list(weights) + list(kwargs):
            if name not in LOSSES:
                raise _unknown_loss(name)
        for name, options in kwargs.items():
            if not isinstance(options, Mapping):
                raise TypeError(f"options for loss {name!r} must be a dict, got {type(options).__name__}")
            if name not in weights:
                logger.warning("options given for loss %r, which has no weight; ignored", name)
        self.weights: dict[str, float] = {}
        for name, weight in weights.items():
            weight = float(weight)
            if not math.isfinite(weight) or weight < 0:
                raise ValueError(f"weight of loss {name!r} must be finite and >= 0, got {weight}")
            self.weights[name] = weight
        self.losses = nn.ModuleDict({name: get_loss(name, **dict(kwargs.get(name, {}))) for name in self.weights})

    def forward(self, pred: Tensor, target: Tensor, mask: Optional[Tensor] = None) -> tuple[Tensor, dict[str, Tensor]]:
        """Return ``(weighted total, {name: unweighted loss})``, all scalars."""
        parts: dict[str, Tensor] = {}
        total = pred.new_zeros(())
        for name, loss in self.losses.items():
            value = loss(pred, target, mask)
            parts[name] = value
            total = total + self.weights[name] * value
        return total, parts
