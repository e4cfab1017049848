"""Tests for models.config and models.model: JSON round trip, losses, save/load, a few training steps."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from safetensors import safe_open

from models.backbone import create_backbone
from models.config import (
    BackboneConfig,
    ConfigError,
    DigitizationHeadConfig,
    DxHeadConfig,
    LossConfig,
    ModelConfig,
)
from models.model import CONFIG_FILE, WEIGHTS_FILE, ECGMultiHeadModel, build_model

TINY_CONVNEXT = {"model_type": "convnextv2", "depths": [1, 1, 1, 1], "hidden_sizes": [8, 16, 32, 64]}
CLASSES = ["NORM", "Acute MI", "STTC"]
LEADS = ["I", "II", "V1"]


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("ECG_BACKBONE_DIR", raising=False)
    torch.manual_seed(0)


def make_cfg(balancing: str = "uncertainty", local_dir: str | None = None, **loss_kw) -> ModelConfig:
    return ModelConfig(
        backbone=BackboneConfig(
            source="hf",
            name="ecg-test/tiny",
            hf_config=dict(TINY_CONVNEXT),
            pretrained=local_dir is not None,
            local_dir=local_dir,
            image_height=64,
            image_width=128,
        ),
        dx_head=DxHeadConfig(classes=CLASSES, hidden_sizes=[16], dropout=0.0),
        digitization_head=DigitizationHeadConfig(
            num_leads=3,
            max_len=200,
            fs=100.0,
            bottleneck_channels=8,
            pool_size=[2, 4],
            hidden_sizes=[32],
            lead_code_size=16,
            dropout=0.0,
        ),
        loss=LossConfig(digitization_weights={"mae": 1.0, "rmse": 0.5}, balancing=balancing, **loss_kw),
        lead_names=LEADS,
    )


def batch(n: int = 2):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(n, 3, 64, 128, generator=g)
    dx = (torch.rand(n, 3, generator=g) > 0.5).float()
    t = torch.linspace(0, 2, 200)
    sig = torch.stack([torch.stack([torch.sin(2 * math.pi * (k + 1) * t) for k in range(3)])] * n)
    return x, dx, sig


# ------------------------------------------------------------------------------------------------ config
def test_config_json_round_trip_and_unknown_keys() -> None:
    cfg = make_cfg()
    d = cfg.to_dict()
    json.dumps(d)  # plain JSON
    assert d["config_version"] == 1 and d["backbone"]["config_version"] == 1
    back = ModelConfig.from_dict(json.loads(json.dumps(d)))
    assert back == cfg
    assert ModelConfig.from_json(cfg.to_json()) == cfg
    bad = json.loads(json.dumps(d))
    bad["backbone"]["pretraind"] = True
    with pytest.raises(ConfigError, match="pretraind"):
        ModelConfig.from_dict(bad)
    bad = dict(d, extra_key=1)
    with pytest.raises(ConfigError, match="extra_key"):
        ModelConfig.from_dict(bad)
    with pytest.raises(ConfigError, match="config_version"):
        ModelConfig.from_dict(dict(d, config_version=99))
    with pytest.raises(ConfigError):
        BackboneConfig(source="keras")
    with pytest.raises(ConfigError):
        DxHeadConfig(classes=["a", "b"], thresholds=[0.5])
    with pytest.raises(ConfigError):
        ModelConfig(backbone=BackboneConfig(), dx_head=None, digitization_head=None)


# ------------------------------------------------------------------------------------------------ forward/loss
def test_forward_outputs_and_weights_source() -> None:
    model = build_model(make_cfg())
    assert model.config.weights_source == "random"
    x, _, _ = batch()
    out = model(x)
    assert out["dx_logits"].shape == (2, 3) and out["signal"].shape == (2, 3, 200)
    dx_only = build_model(ModelConfig(backbone=make_cfg().backbone, dx_head=DxHeadConfig(classes=["a", "b"])))
    out = dx_only(x)
    assert out["signal"] is None and out["dx_logits"].shape == (2, 2)


def test_uncertainty_weighting_parts_are_separate_from_total() -> None:
    model = build_model(make_cfg("uncertainty"))
    with torch.no_grad():
        model.log_vars["dx"].fill_(0.7)
        model.log_vars["digitization"].fill_(-0.4)
    x, dx, sig = batch()
    out = model(x)
    total, parts = model.compute_loss(out, dx, sig)
    assert {"dx", "digitization", "digitization.mae", "digitization.rmse", "total"} <= set(parts)
    assert all(isinstance(v, float) for v in parts.values())
    expected_dx = torch.nn.functional.binary_cross_entropy_with_logits(out["dx_logits"], dx).item()
    assert parts["dx"] == pytest.approx(expected_dx, rel=1e-5)
    assert parts["digitization"] == pytest.approx(
        parts["digitization.mae"] + 0.5 * parts["digitization.rmse"], rel=1e-5
    )
    expected_total = math.exp(-0.7) * parts["dx"] + 0.7 + math.exp(0.4) * parts["digitization"] - 0.4
    assert parts["total"] == pytest.approx(expected_total, rel=1e-5)
    assert total.item() == pytest.approx(expected_total, rel=1e-5)
    assert parts["total"] != pytest.approx(parts["dx"] + parts["digitization"])
    total.backward()
    assert model.log_vars["dx"].grad is not None and model.log_vars["digitization"].grad is not None


def test_fixed_weighting_nan_targets_and_length_alignment() -> None:
    model = build_model(
        make_cfg("fixed", classification_weight=2.0, digitization_weight=0.5, pos_weight=[1.0, 3.0, 1.0])
    )
    x, dx, sig = batch()
    dx[0, 1] = float("nan")
    sig = sig[..., :150].clone()  # shorter than max_len: padded with NaN
    sig[0, 0, :50] = float("nan")
    total, parts = model.compute_loss(model(x), dx, sig)
    assert math.isfinite(parts["total"])
    assert parts["total"] == pytest.approx(2.0 * parts["dx"] + 0.5 * parts["digitization"], rel=1e-5)
    _, only_dx = model.compute_loss(model(x), dx_targets=dx)
    assert "digitization" not in only_dx
    with pytest.raises(ValueError):
        model.compute_loss(model(x))


def test_a_few_steps_reduce_the_loss() -> None:
    model = build_model(make_cfg("fixed"))
    x, dx, sig = batch(4)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    model.train()
    history = []
    for _ in range(25):
        opt.zero_grad()
        total, parts = model.compute_loss(model(x), dx, sig)
        total.backward()
        opt.step()
        history.append(parts["total"])
    assert history[-1] < 0.7 * history[0], history


# ------------------------------------------------------------------------------------------------ save/load
def _outputs_equal(a: ECGMultiHeadModel, b: ECGMultiHeadModel, x: torch.Tensor) -> None:
    a.eval()
    b.eval()
    with torch.no_grad():
        oa, ob = a(x), b(x)
    torch.testing.assert_close(oa["dx_logits"], ob["dx_logits"], rtol=0, atol=0)
    torch.testing.assert_close(oa["signal"], ob["signal"], rtol=0, atol=0)


def test_save_load_round_trip_random_backbone(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = build_model(make_cfg())
    model.dx_head.set_thresholds([0.3, 0.6, 0.45])
    with torch.no_grad():  # make sure trained (non-initial) weights are what gets saved
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    folder = tmp_path / "m"
    model.save(folder)
    cfg = json.loads((folder / CONFIG_FILE).read_text())
    assert cfg["backbone_saved"] is True and cfg["weights_source"] == "random"
    assert cfg["classes"] == CLASSES and cfg["thresholds"] == pytest.approx([0.3, 0.6, 0.45])
    assert cfg["input_size"] == [64, 128] and "torch" in cfg["versions"] and "transformers" in cfg["versions"]
    with safe_open(str(folder / WEIGHTS_FILE), "pt") as fh:
        assert any(k.startswith("backbone.") for k in fh.keys())
    assert not list(folder.glob(".*tmp"))

    def no_pickle(*a, **k):
        raise AssertionError("torch.load must not be used")

    monkeypatch.setattr(torch, "load", no_pickle)
    loaded = ECGMultiHeadModel.load(folder, device="cpu")
    x, _, _ = batch()
    _outputs_equal(model, loaded, x)
    assert loaded.dx_head.thresholds.tolist() == pytest.approx([0.3, 0.6, 0.45])
    assert loaded.config.weights_source == "random"


def test_save_load_round_trip_frozen_pretrained_backbone(tmp_path) -> None:
    torch.manual_seed(5)
    src = create_backbone(
        BackboneConfig(
            source="hf",
            name="ecg-test/tiny",
            hf_config=dict(TINY_CONVNEXT),
            pretrained=False,
            image_height=64,
            image_width=128,
        )
    )
    src.body.save_pretrained(str(tmp_path / "pretrained"))
    model = build_model(make_cfg(local_dir=str(tmp_path / "pretrained")))
    assert model.backbone.pretrained and model.backbone.frozen
    assert model.config.weights_source == "pretrained"
    model.train()
    assert not model.backbone.body.training
    folder = tmp_path / "m"
    model.save(folder)
    with safe_open(str(folder / WEIGHTS_FILE), "pt") as fh:
        keys = list(fh.keys())
    assert keys and not any(k.startswith("backbone.") for k in keys)
    loaded = ECGMultiHeadModel.load(folder)
    assert loaded.backbone.pretrained and loaded.backbone.frozen
    _outputs_equal(model, loaded, batch()[0])

    # the pre-trained weights vanish -> a clear error instead of a silently random backbone
    import shutil

    shutil.rmtree(tmp_path / "pretrained")
    with pytest.raises(RuntimeError, match="ECG_BACKBONE_DIR"):
        ECGMultiHeadModel.load(folder)


def test_load_rejects_incomplete_or_mixed_folders(tmp_path) -> None:
    a = build_model(make_cfg())
    a.save(tmp_path / "a")
    with pytest.raises(FileNotFoundError):
        ECGMultiHeadModel.load(tmp_path / "missing")
    torch.manual_seed(9)
    b = build_model(make_cfg())
    b.save(tmp_path / "b")
    (tmp_path / "b" / WEIGHTS_FILE).replace(tmp_path / "a" / WEIGHTS_FILE)  # weights of b, config of a
    with pytest.raises(ValueError, match="does not match"):
        ECGMultiHeadModel.load(tmp_path / "a")
    (tmp_path / "b" / "other.txt").write_text("kept")
    b.save(tmp_path / "b")  # overwriting keeps unrelated files
    assert (tmp_path / "b" / "other.txt").read_text() == "kept"
    assert np.isfinite(ECGMultiHeadModel.load(tmp_path / "b")(batch()[0])["signal"].detach().numpy()).all()
