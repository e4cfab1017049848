"""Tests for models.losses: metrics against independent numpy code, gradients, surrogates, soft-DTW."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from models.losses import LOSSES, DigitizationLoss, SoftDTWLoss, _BandedSoftDTW, get_loss

NAMES = ["snr", "dtw", "mae", "rmse", "ks", "asci"]


# ------------------------------------------------------------------------------------------------
# independent numpy references (one lead, 1-D arrays; valid = finite target and mask)
# ------------------------------------------------------------------------------------------------


def _valid_pair(ref: np.ndarray, est: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = np.isfinite(ref) & mask
    r = ref[keep].astype(np.float64)
    e = est[keep].astype(np.float64).copy()
    e[np.isnan(e)] = 0.0
    return r, e


def np_snr(r: np.ndarray, e: np.ndarray) -> float:
    signal = np.sum(r**2)
    noise = np.sum((r - e) ** 2)
    if signal > 0 and noise > 0:
        return 10 * np.log10(signal / noise)
    if signal > 0:
        return math.inf
    return math.nan


def np_mae(r: np.ndarray, e: np.ndarray) -> float:
    return float(np.mean(np.abs(r - e)))


def np_rmse(r: np.ndarray, e: np.ndarray) -> float:
    return float(np.sqrt(np.mean((r - e) ** 2)))


def np_ks(r: np.ndarray, e: np.ndarray) -> float:
    cr = np.cumsum(np.abs(r))
    ce = np.cumsum(np.abs(e))
    if cr[-1] > 0:
        cr = cr / cr[-1]
    if ce[-1] > 0:
        ce = ce / ce[-1]
    return 1.0 - float(np.max(np.abs(cr - ce)))


def np_asci(r: np.ndarray, e: np.ndarray, beta: float = 0.05) -> float:
    threshold = beta * np.std(r)
    score = np.where(np.abs(r - e) <= threshold, 1.0, -1.0)
    return float(np.mean(score))


def _block_mean(a: np.ndarray, s: int) -> np.ndarray:
    return np.array([a[i : i + s].mean() for i in range(0, len(a), s)])


def np_dtw(r: np.ndarray, e: np.ndarray, band: int = 50, downsample: int = 1) -> float:
    """Hard DTW with |r_i - e_j| cost inside |i - j| <= ceil(band/downsample), divided by n."""
    if downsample > 1:
        r, e = _block_mean(r, downsample), _block_mean(e, downsample)
        band = math.ceil(band / downsample)
    n = len(r)
    acc = np.full((n, n), np.inf)
    for i in range(n):
        for j in range(max(0, i - band), min(n, i + band + 1)):
            cost = abs(r[i] - e[j])
            if i == 0 and j == 0:
                acc[i, j] = cost
                continue
            best = np.inf
            if i > 0:
                best = min(best, acc[i - 1, j])
            if j > 0:
                best = min(best, acc[i, j - 1])
            if i > 0 and j > 0:
                best = min(best, acc[i - 1, j - 1])
            acc[i, j] = cost + best
    return float(acc[n - 1, n - 1] / n)


NUMPY_METRICS = {"snr": np_snr, "mae": np_mae, "rmse": np_rmse, "ks": np_ks, "asci": np_asci}


def _random_case(seed: int, b: int = 2, l: int = 3, t: int = 64):
    """Random pred/target (mV) with NaN gaps in the target, padding, one fully masked lead."""
    rng = np.random.default_rng(seed)
    time = np.arange(t) / 50.0
    target = np.sin(2 * np.pi * rng.uniform(0.5, 2.0, (b, l, 1)) * time) + 0.3 * rng.standard_normal((b, l, t))
    pred = target + 0.4 * rng.standard_normal((b, l, t))
    target[rng.random((b, l, t)) < 0.1] = np.nan  # scattered unknown samples
    target[0, 1, 10:20] = np.nan  # a gap
    mask = np.ones((b, l, t), dtype=bool)
    mask[1, :, t - 9 :] = False  # padding
    mask[1, 2, :] = False  # a fully masked lead
    return pred, target, mask


# ------------------------------------------------------------------------------------------------
# metrics == numpy
# ------------------------------------------------------------------------------------------------


def _assert_per_lead(got: np.ndarray, pred: np.ndarray, target: np.ndarray, mask: np.ndarray, reference) -> None:
    """``got`` (B, L) equals ``reference(ref, est)`` on each lead's valid samples; NaN where there are none."""
    for bi in range(pred.shape[0]):
        for li in range(pred.shape[1]):
            r, e = _valid_pair(target[bi, li], pred[bi, li], mask[bi, li])
            if r.size == 0:
                assert np.isnan(got[bi, li])
                continue
            np.testing.assert_allclose(got[bi, li], reference(r, e), rtol=1e-5, atol=0)


@pytest.mark.parametrize("name", sorted(NUMPY_METRICS))
@pytest.mark.parametrize("seed", [0, 1])
def test_metric_matches_numpy(name: str, seed: int) -> None:
    pred, target, mask = _random_case(seed)
    got = get_loss(name).metric(torch.tensor(pred), torch.tensor(target), torch.tensor(mask)).numpy()
    assert got.shape == pred.shape[:2]
    _assert_per_lead(got, pred, target, mask, NUMPY_METRICS[name])


@pytest.mark.parametrize("band,downsample", [(5, 1), (3, 1), (8, 2), (100, 1)])
def test_dtw_metric_matches_numpy(band: int, downsample: int) -> None:
    pred, target, mask = _random_case(3, t=48)
    loss = get_loss("dtw", band=band, downsample=downsample)
    got = loss.metric(torch.tensor(pred), torch.tensor(target), torch.tensor(mask)).numpy()
    _assert_per_lead(got, pred, target, mask, lambda r, e: np_dtw(r, e, band, downsample))


def test_snr_uses_reference_power() -> None:
    ref = torch.sin(torch.linspace(0, 20, 300)).view(1, 1, -1)
    # est = 2 * ref: error power == reference power -> 0 dB (prediction power would give 6 dB)
    snr = get_loss("snr").metric(2 * ref, ref)
    assert abs(float(snr)) < 1e-4
    # est = 0.9 * ref: error power = 1% -> 20 dB; loss = -SNR
    assert abs(float(get_loss("snr").metric(0.9 * ref, ref)) - 20.0) < 1e-3
    assert abs(float(get_loss("snr")(0.9 * ref, ref)) + 20.0) < 1e-3


def test_metric_special_values() -> None:
    ref = torch.zeros(1, 2, 10)
    ref[0, 1] = 1.0
    snr = get_loss("snr").metric(ref.clone(), ref)
    assert math.isnan(float(snr[0, 0])) and math.isinf(float(snr[0, 1]))  # official: nan / +inf
    assert float(get_loss("ks").metric(ref.clone(), ref)[0, 1]) == 1.0
    assert float(get_loss("asci").metric(ref.clone(), ref)[0, 1]) == 1.0
    # NaN in the prediction counts as 0 in the metric (as the official scorer)
    pred = ref.clone()
    pred[0, 1, :5] = float("nan")
    assert abs(float(get_loss("mae").metric(pred, ref)[0, 1]) - 0.5) < 1e-6


# ------------------------------------------------------------------------------------------------
# gradients
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_finite_gradients(name: str) -> None:
    pred_np, target_np, mask_np = _random_case(5)
    target = torch.tensor(target_np, dtype=torch.float32)
    pred0 = torch.tensor(pred_np, dtype=torch.float32)
    pred0[0, 2] = torch.nan_to_num(target[0, 2])  # identical prediction on one lead
    pred0[0, 0, :] = 0.0  # an all-zero prediction
    pred = pred0.clone().requires_grad_(True)
    mask = torch.tensor(mask_np)
    loss = get_loss(name)(pred, target, mask)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert torch.isfinite(pred.grad).all()
    assert torch.all(pred.grad[1, 2] == 0)  # fully masked lead gets no gradient
    assert pred.grad.abs().sum() > 0

    # identical prediction everywhere
    same = torch.nan_to_num(target).clone().requires_grad_(True)
    value = get_loss(name)(same, target, mask)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(same.grad).all()

    # nothing valid at all: 0 with a gradient (finite, zero)
    none = pred0.clone().requires_grad_(True)
    value = get_loss(name)(none, target, torch.zeros_like(mask))
    assert value.item() == 0.0 and value.requires_grad
    value.backward()
    assert torch.all(none.grad == 0)


def test_soft_dtw_gradcheck() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 10, dtype=torch.float64, generator=gen, requires_grad=True)
    y = torch.randn(3, 10, dtype=torch.float64, generator=gen, requires_grad=True)
    n = torch.tensor([10, 6, 1])
    assert torch.autograd.gradcheck(lambda a, b: _BandedSoftDTW.apply(a, b, n, 3, 0.3), (x, y))


def _naive_soft_dtw(x: torch.Tensor, y: torch.Tensor, w: int, gamma: float) -> torch.Tensor:
    """Plain autograd soft-DTW of two 1-D sequences within |i - j| <= w (independent reference)."""
    acc: dict[tuple[int, int], torch.Tensor] = {}
    n = len(x)
    for i in range(n):
        for j in range(max(0, i - w), min(n, i + w + 1)):
            cost = (x[i] - y[j]).abs()
            prev = [acc[c] for c in ((i - 1, j), (i, j - 1), (i - 1, j - 1)) if c in acc]
            acc[i, j] = cost if not prev else cost - gamma * torch.logsumexp(-torch.stack(prev) / gamma, 0)
    return acc[n - 1, n - 1]


def test_soft_dtw_matches_naive_autograd() -> None:
    gen = torch.Generator().manual_seed(1)
    ref = torch.randn(1, 1, 15, dtype=torch.float64, generator=gen)
    est = torch.randn(1, 1, 15, dtype=torch.float64, generator=gen, requires_grad=True)
    loss = SoftDTWLoss(band=4, gamma=0.2)
    value = loss(est, ref)
    (grad,) = torch.autograd.grad(value, est)
    est2 = est.detach().clone().requires_grad_(True)
    expected = _naive_soft_dtw(ref[0, 0], est2[0, 0], 4, 0.2) / 15
    expected.backward()
    assert torch.allclose(value, expected, rtol=1e-10)
    assert torch.allclose(grad, est2.grad, rtol=1e-8, atol=1e-12)


# ------------------------------------------------------------------------------------------------
# surrogates -> metric
# ------------------------------------------------------------------------------------------------


def _case_tensors(seed: int = 7):
    pred, target, mask = _random_case(seed, t=96)
    return torch.tensor(pred), torch.tensor(target), torch.tensor(mask)


def test_exact_surrogates_equal_metric() -> None:
    pred, target, mask = _case_tensors()
    ok = mask.any(-1) & torch.isfinite(target).any(-1)
    for name, relation in (("mae", 1.0), ("rmse", 1.0)):
        loss = get_loss(name)
        assert torch.allclose(loss.lead_losses(pred, target, mask)[ok], relation * loss.metric(pred, target, mask)[ok])
    snr = get_loss("snr", eps=1e-12, min_db=-1e3, max_db=1e3)
    assert torch.allclose(snr.lead_losses(pred, target, mask)[ok], -snr.metric(pred, target, mask)[ok], rtol=1e-8)


@pytest.mark.parametrize(
    "name,param,values",
    [
        ("ks", "temperature", [0.05, 0.005, 0.0002]),
        ("asci", "temperature", [0.1, 0.01, 0.0001]),
        ("dtw", "gamma", [0.3, 0.03, 0.0003]),
    ],
)
def test_smooth_surrogate_approaches_metric(name: str, param: str, values: list[float]) -> None:
    pred, target, mask = _case_tensors()
    ok = mask.any(-1) & torch.isfinite(target).any(-1)
    metric = get_loss(name).metric(pred, target, mask)[ok]
    goal = metric if name == "dtw" else 1.0 - metric  # dtw: loss ~ metric; ks, asci: loss ~ 1 - metric
    errors = []
    for value in values:
        loss = get_loss(name, **{param: value}).lead_losses(pred, target, mask)[ok]
        errors.append(float((loss - goal).abs().max()))
    assert errors[0] > errors[-1]
    assert errors[-1] < 2e-3


# ------------------------------------------------------------------------------------------------
# soft-DTW specifics
# ------------------------------------------------------------------------------------------------


def _ecg_like(t: int, shift: int = 0) -> torch.Tensor:
    """A train of narrow Gaussian spikes (mV), every 100 samples, shifted by ``shift`` samples."""
    time = torch.arange(t, dtype=torch.float64)
    centres = torch.arange(50, t + 200, 100, dtype=torch.float64) + shift
    return torch.exp(-0.5 * ((time[:, None] - centres[None]) / 4.0) ** 2).sum(-1).view(1, 1, t)


def test_soft_dtw_identical_is_about_zero() -> None:
    sig = _ecg_like(400)
    assert abs(float(SoftDTWLoss(gamma=1e-4)(sig, sig))) < 1e-3
    assert abs(float(SoftDTWLoss(divergence=True)(sig, sig))) < 1e-9
    assert float(SoftDTWLoss().metric(sig, sig)) == 0.0
    # the divergence is positive for different signals
    assert float(SoftDTWLoss(divergence=True)(0.5 * sig, sig)) > 1e-3


def test_soft_dtw_band_limits_the_path() -> None:
    ref = _ecg_like(600)
    near, far = _ecg_like(600, 10), _ecg_like(600, 35)
    narrow = SoftDTWLoss(band=20, gamma=1e-3)
    wide = SoftDTWLoss(band=60, gamma=1e-3)
    mae = get_loss("mae")
    # within the band the shift is almost free; beyond it, it costs (close to the unaligned MAE)
    assert float(narrow(near, ref)) < 0.2 * float(mae(near, ref))
    assert float(narrow(far, ref)) > 5 * float(narrow(near, ref))
    assert float(wide(far, ref)) < 0.2 * float(narrow(far, ref))
    assert float(SoftDTWLoss(band=0).metric(far, ref)) == pytest.approx(float(mae.metric(far, ref)))


def test_soft_dtw_full_size_runs() -> None:
    gen = torch.Generator().manual_seed(0)
    target = torch.randn(2, 12, 5000, generator=gen)
    target[:, :, 4000:] = float("nan")
    pred = torch.randn(2, 12, 5000, generator=gen, requires_grad=True)
    value = SoftDTWLoss(band=50)(pred, target)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(pred.grad).all()
    assert torch.all(pred.grad[:, :, 4000:] == 0)


# ------------------------------------------------------------------------------------------------
# registry and weighted sum
# ------------------------------------------------------------------------------------------------


def test_registry() -> None:
    assert set(NAMES) <= set(LOSSES)
    for name in NAMES:
        assert isinstance(get_loss(name), LOSSES[name])
        assert isinstance(get_loss(name), torch.nn.Module)
    with pytest.raises(KeyError, match="valid names: .*asci.*dtw"):
        get_loss("nope")
    with pytest.raises(TypeError):
        get_loss("dtw", bandwidth=3)


def test_digitization_loss() -> None:
    pred, target, mask = _case_tensors()
    pred = pred.float().requires_grad_(True)
    target = target.float()
    weights = {"snr": 0.1, "mae": 2.0, "dtw": 0.5, "ks": 1.0, "asci": 0.3, "rmse": 0.0}
    combo = DigitizationLoss(weights, dtw={"band": 10})
    assert combo.losses["dtw"].band == 10
    total, parts = combo(pred, target, mask)
    assert set(parts) == set(weights)
    expected = sum(weights[k] * parts[k] for k in weights)
    assert torch.allclose(total, expected)
    for name, part in parts.items():
        assert part is not total and part.data_ptr() != total.data_ptr()
        assert torch.allclose(part, get_loss(name, **({"band": 10} if name == "dtw" else {}))(pred, target, mask))
    total.backward()
    assert torch.isfinite(pred.grad).all()
    single_total, single_parts = DigitizationLoss({"mae": 1.0})(pred, target, mask)
    assert single_total is not single_parts["mae"]
    with pytest.raises(KeyError, match="valid names"):
        DigitizationLoss({"mae": 1.0, "bogus": 1.0})
    with pytest.raises(KeyError, match="valid names"):
        DigitizationLoss({"mae": 1.0}, bogus={"a": 1})
    with pytest.raises(ValueError):
        DigitizationLoss({"mae": -1.0})
    with pytest.raises(ValueError):
        DigitizationLoss({})


def test_bad_input() -> None:
    loss = get_loss("mae")
    with pytest.raises(ValueError):
        loss(torch.zeros(2, 3, 10), torch.zeros(2, 3, 11))
    with pytest.raises(ValueError):
        loss(torch.zeros(3, 10), torch.zeros(3, 10))
    with pytest.raises(ValueError):
        loss(torch.zeros(2, 3, 10), torch.zeros(2, 3, 10), torch.ones(2, 4, 10, dtype=torch.bool))
    # a broadcastable mask is accepted
    value = loss(torch.ones(2, 3, 10), torch.zeros(2, 3, 10), torch.ones(2, 1, 10, dtype=torch.bool))
    assert float(value) == 1.0


# ------------------------------------------------------------------------------------------------
# tiny optimisation
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_fitting_reduces_loss(name: str) -> None:
    gen = torch.Generator().manual_seed(0)
    time = torch.arange(200) / 100.0
    target = torch.stack([torch.sin(2 * torch.pi * time), 0.5 * torch.cos(6 * torch.pi * time)]).unsqueeze(0)
    target[0, 0, 50:60] = float("nan")
    mask = torch.ones_like(target, dtype=torch.bool)
    mask[0, 1, 180:] = False
    start = target.nan_to_num() + 0.3 * torch.randn(target.shape, generator=gen)
    param = torch.nn.Parameter(start.clone())
    loss_fn = get_loss(name)
    optimiser = torch.optim.Adam([param], lr=0.02)
    first = float(loss_fn(param, target, mask).detach())
    for _ in range(60):
        optimiser.zero_grad()
        loss = loss_fn(param, target, mask)
        loss.backward()
        optimiser.step()
    last = float(loss_fn(param, target, mask).detach())
    assert math.isfinite(last)
    assert last < first - 0.1 * abs(first)


def test_half_precision_prediction() -> None:
    target = torch.sin(torch.linspace(0, 30, 500)).view(1, 1, -1) * 100.0  # sum of squares > fp16 max
    pred = (0.9 * target).half().requires_grad_(True)
    value = get_loss("snr")(pred, target)
    assert value.dtype == torch.float32 and abs(value.item() + 20.0) < 0.1
    value.backward()
    assert pred.grad.dtype == torch.float16 and torch.isfinite(pred.grad).all()
