"""Tests for models.heads: Dx head, thresholds, regression head size, resampling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.config import DigitizationHeadConfig, DxHeadConfig
from models.heads import (
    DIGITIZATION_HEADS,
    DxHead,
    RegressionDigitizationHead,
    balanced_pos_weight,
    create_digitization_head,
    fit_dx_head,
    out_of_fold_probabilities,
    predict_labels,
    resample_to,
    tune_thresholds,
)

CLASSES = ["NORM", "Acute MI", "STTC"]


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def test_dx_head_shapes_and_extra_features() -> None:
    head = DxHead(DxHeadConfig(classes=CLASSES, hidden_sizes=[16], extra_features=5), [8, 16, 32])
    feats = [torch.randn(2, 8, 8, 8), torch.randn(2, 16, 4, 4), torch.randn(2, 32, 2, 2)]
    logits = head(feats, torch.randn(2, 5))
    assert logits.shape == (2, 3)
    with pytest.raises(ValueError):
        head(feats)  # extra features required
    with pytest.raises(ValueError):
        head(feats, torch.randn(2, 4))
    plain = DxHead(DxHeadConfig(classes=CLASSES, hidden_sizes=[]), [8, 16, 32])
    assert plain(feats).shape == (2, 3)
    with pytest.raises(ValueError):
        plain(feats, torch.randn(2, 5))


def test_tune_thresholds_known_optimum() -> None:
    # class 0: perfectly separable, any threshold in (0.4, 0.6] gives F1 = 1
    # class 1: F1 is maximal (6/7) only for thresholds in (0.3, 0.45]
    p0 = [0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9]
    y0 = [0, 0, 0, 0, 1, 1, 1, 1]
    p1 = [0.2, 0.3, 0.45, 0.55, 0.7, 0.8, 0.05, 0.1]
    y1 = [0, 0, 1, 0, 1, 1, 0, 0]
    probs = np.array([p0, p1]).T
    targets = np.array([y0, y1]).T
    th = tune_thresholds(probs, targets)
    assert th.shape == (2,)
    assert 0.4 < th[0] <= 0.6
    assert 0.3 < th[1] <= 0.45
    # no positives -> default
    th2 = tune_thresholds(probs, np.zeros_like(targets), default=0.33)
    np.testing.assert_allclose(th2, [0.33, 0.33])
    with pytest.raises(ValueError):
        tune_thresholds(probs, targets[:, :1])


def test_tune_thresholds_with_explicit_grid() -> None:
    probs = np.array([[0.2], [0.6], [0.7]])
    targets = np.array([[0], [1], [1]])
    th = tune_thresholds(probs, targets, candidates=[0.1, 0.5, 0.9])
    assert th[0] == pytest.approx(0.5)


def test_predict_thresholds_and_fallback() -> None:
    head = DxHead(DxHeadConfig(classes=CLASSES, thresholds=[0.5, 0.9, 0.5]), [4])
    logit = lambda p: float(np.log(p / (1 - p)))  # noqa: E731
    logits = torch.tensor(
        [
            [logit(0.6), logit(0.8), logit(0.7)],  # NORM, STTC above; Acute MI below its 0.9
            [logit(0.1), logit(0.3), logit(0.2)],  # none above -> most probable: Acute MI
        ]
    )
    assert head.predict(logits) == [["NORM", "STTC"], ["Acute MI"]]
    assert head.predict(logits, thresholds=[0.95, 0.95, 0.95]) == [["Acute MI"], ["Acute MI"]]
    head.set_thresholds([0.5, 0.5, 0.5])
    assert head.predict(logits)[0] == ["NORM", "Acute MI", "STTC"]
    with pytest.raises(ValueError):
        head.set_thresholds([0.5])


def test_binary_label_set_is_multilabel_sigmoid() -> None:
    head = DxHead(DxHeadConfig(classes=["Normal", "Abnormal"], hidden_sizes=[8]), [16])
    logits = head([torch.randn(3, 16, 2, 2)])
    assert logits.shape == (3, 2)
    labels = head.predict(logits)
    assert all(len(lab) >= 1 and set(lab) <= {"Normal", "Abnormal"} for lab in labels)
    assert predict_labels(np.array([[0.2, 0.3]]), np.array([0.5, 0.5]), ["Normal", "Abnormal"]) == [["Abnormal"]]


def test_regression_head_size_and_shape() -> None:
    cfg = DigitizationHeadConfig(num_leads=12, max_len=5000, fs=500.0)
    head = RegressionDigitizationHead(cfg, [256, 512, 1024])
    n_params = sum(p.numel() for p in head.parameters())
    assert n_params < 20_000_000, n_params
    out = head([torch.randn(2, 256, 48, 48), torch.randn(2, 512, 24, 24), torch.randn(2, 1024, 12, 12)])
    assert out.shape == (2, 12, 5000)
    # the size does not depend on the spatial size of the map
    out2 = head(torch.randn(1, 1024, 7, 31))
    assert out2.shape == (1, 12, 5000)


def test_digitization_registry() -> None:
    head = create_digitization_head(DigitizationHeadConfig(num_leads=3, max_len=100), [8, 16])
    assert isinstance(head, RegressionDigitizationHead)
    assert head(torch.randn(2, 16, 3, 5)).shape == (2, 3, 100)
    assert "regression" in DIGITIZATION_HEADS
    with pytest.raises(ValueError, match="registered"):
        create_digitization_head(DigitizationHeadConfig(kind="segmentation"), [8])


def test_resample_to_numpy_rate_and_length() -> None:
    t_in = np.arange(5000) / 500.0
    sig = np.stack([np.sin(2 * np.pi * 1.0 * t_in), np.cos(2 * np.pi * 2.0 * t_in)])  # (2, 5000)
    out = resample_to(sig, fs_out=250.0, num_samples=2500, fs_in=500.0)
    assert isinstance(out, np.ndarray) and out.shape == (2, 2500)
    t_out = np.arange(2500) / 250.0
    expected = np.stack([np.sin(2 * np.pi * 1.0 * t_out), np.cos(2 * np.pi * 2.0 * t_out)])
    np.testing.assert_allclose(out[:, 5:-5], expected[:, 5:-5], atol=2e-3)
    # up-sampling, longer than the input -> fill value beyond the last input sample
    up = resample_to(sig[:, :500], fs_out=1000.0, num_samples=1200, fs_in=500.0, fill_value=np.nan)
    assert up.shape == (2, 1200)
    assert np.isfinite(up[:, :999]).all() and np.isnan(up[:, 999:]).all()
    same = resample_to(sig, fs_out=500.0, num_samples=5000, fs_in=500.0)
    np.testing.assert_allclose(same, sig)


def test_resample_to_torch_keeps_gradients() -> None:
    x = torch.randn(1, 12, 100, requires_grad=True)
    y = resample_to(x, fs_out=1000.0, num_samples=150, fs_in=500.0)
    assert isinstance(y, torch.Tensor) and y.shape == (1, 12, 150)
    torch.testing.assert_close(y[..., ::2], x[..., :75])
    y.sum().backward()
    assert x.grad is not None
    with pytest.raises(ValueError):
        resample_to(x, fs_out=0.0, num_samples=10)


def test_dx_head_on_signal_features_alone():
    import torch

    from models.config import ConfigError, DxHeadConfig
    from models.heads import DxHead

    head = DxHead(DxHeadConfig(classes=["A", "B"], hidden_sizes=[8], extra_features=5, use_image=False), [16, 32])
    head.eval()  # no dropout
    extra = torch.randn(3, 5)
    out_a = head([torch.randn(3, 32, 2, 2)], extra)
    out_b = head([torch.randn(3, 32, 2, 2)], extra)  # the image features are ignored
    assert out_a.shape == (3, 2) and torch.allclose(out_a, out_b)
    with pytest.raises(ValueError):
        head([torch.randn(3, 32, 2, 2)], None)
    with pytest.raises(ConfigError):
        DxHeadConfig(classes=["A"], use_image=False, extra_features=0)


def _bce(head: DxHead, x: np.ndarray, y: np.ndarray, pos_weight: np.ndarray) -> float:
    with torch.no_grad():
        logits = head.logits_from_inputs(torch.from_numpy(x))
        return float(
            torch.nn.functional.binary_cross_entropy_with_logits(
                logits, torch.from_numpy(y), pos_weight=torch.from_numpy(pos_weight).float()
            )
        )


def test_linear_head_full_batch_fit_learns_and_standardises() -> None:
    """hidden_sizes=[] (logistic regression) on badly scaled features: the loss falls far below its start, the
    fitted head separates both classes, standardisation takes the data's mean/scale and survives a state-dict
    round trip."""
    rng = np.random.default_rng(0)
    n = 120
    x = rng.normal(size=(n, 6)).astype(np.float32)
    x[:, 2] = x[:, 2] * 100.0 + 40.0  # a feature in other units (e.g. bpm): standardisation must handle it
    y = np.stack([(x[:, 0] + 0.2 * rng.normal(size=n)) > 0.8, (x[:, 2] > 60.0)], axis=1).astype(np.float32)
    cfg = DxHeadConfig(classes=["A", "B"], hidden_sizes=[], extra_features=6, use_image=False, standardize=True)
    head = DxHead(cfg, [4])
    pw = balanced_pos_weight(y)
    before = _bce(head, x, y, pw)
    final = fit_dx_head(head, x, y, l2=1e-3, pos_weight=pw)
    after = _bce(head, x, y, pw)
    assert after < 0.5 * before and final >= after
    np.testing.assert_allclose(head.input_mean.numpy(), x.mean(0), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(head.input_scale.numpy(), x.std(0), rtol=1e-3)
    with torch.no_grad():
        probs = torch.sigmoid(head.logits_from_inputs(torch.from_numpy(x))).numpy()
    acc = ((probs >= 0.5) == (y > 0.5)).mean(axis=0)
    assert acc[0] > 0.9 and acc[1] > 0.95, acc
    other = DxHead(DxHeadConfig.from_dict(cfg.to_dict()), [4])
    other.load_state_dict(head.state_dict())
    with torch.no_grad():
        np.testing.assert_allclose(
            other.logits_from_inputs(torch.from_numpy(x)).numpy(),
            head.logits_from_inputs(torch.from_numpy(x)).numpy(),
            rtol=1e-6,
        )
    assert "input_mean" not in DxHead(DxHeadConfig(classes=["A"], extra_features=2, use_image=False), [4]).state_dict()
    with pytest.raises(ValueError):
        fit_dx_head(head, x[:, :5], y)


def test_full_batch_fit_is_deterministic_and_l2_shrinks_weights() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(80, 5)).astype(np.float32)
    y = (x[:, :1] > 0).astype(np.float32)
    cfg = DxHeadConfig(classes=["A"], hidden_sizes=[], extra_features=5, use_image=False, standardize=True)
    a, b, strong = DxHead(cfg, [4]), DxHead(cfg, [4]), DxHead(cfg, [4])
    fit_dx_head(a, x, y, l2=1e-3, seed=3)
    fit_dx_head(b, x, y, l2=1e-3, seed=3)
    fit_dx_head(strong, x, y, l2=1.0, seed=3)
    torch.testing.assert_close(a.mlp[0].weight, b.mlp[0].weight)
    assert strong.mlp[0].weight.norm() < 0.5 * a.mlp[0].weight.norm()


def test_balanced_pos_weight() -> None:
    y = np.zeros((10, 3))
    y[:2, 0] = 1  # 8 / 2 = 4
    y[:, 1] = 1  # all positive: 0 -> clipped to 1
    np.testing.assert_allclose(balanced_pos_weight(y), [4.0, 1.0, 1.0])  # class 2: no positives -> 1
    np.testing.assert_allclose(balanced_pos_weight(y, limit=3.0), [3.0, 1.0, 1.0])


def test_out_of_fold_probabilities_never_predicts_a_training_group() -> None:
    """Every group is predicted exactly once, by a model that did not see it."""
    seen: list[tuple[set[int], list[int]]] = []

    def fit_predict(train: np.ndarray, test: np.ndarray) -> np.ndarray:
        seen.append((set(train.tolist()), test.tolist()))
        return np.stack([np.full(2, float(g)) for g in test])

    probs, groups = out_of_fold_probabilities(fit_predict, 23, folds=5, seed=0)
    assert sorted(groups.tolist()) == list(range(23)) and probs.shape == (23, 2)
    np.testing.assert_allclose(probs[:, 0], groups)  # rows follow the group order returned
    assert len(seen) == 5 and all(not (train & set(test)) and len(train) + len(test) == 23 for train, test in seen)
    empty, _ = out_of_fold_probabilities(fit_predict, 1)
    assert empty.size == 0
