"""Tests for models.backbone: shapes per source, freezing, offline fallback, pre-processing."""

from __future__ import annotations

import logging
import socket

import numpy as np
import pytest
import torch
from torch import nn

from models.backbone import IMAGENET_MEAN, IMAGENET_STD, create_backbone, hub_reachable, letterbox
from models.config import BackboneConfig

TINY_CONVNEXT = {"model_type": "convnextv2", "depths": [1, 1, 1, 1], "hidden_sizes": [8, 16, 32, 64]}
TINY_RESNET = {
    "model_type": "resnet",
    "embedding_size": 8,
    "depths": [1, 1, 1, 1],
    "hidden_sizes": [8, 16, 32, 64],
    "layer_type": "basic",
}


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach the network or see a developer's backbone folder."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("ECG_BACKBONE_DIR", raising=False)
    torch.manual_seed(0)


def tiny_cfg(hf_config: dict = TINY_CONVNEXT, **kw) -> BackboneConfig:
    kw.setdefault("pretrained", False)
    return BackboneConfig(
        source="hf", name="ecg-test/tiny", hf_config=dict(hf_config), image_height=64, image_width=128, **kw
    )


@pytest.mark.parametrize("hf_config", [TINY_CONVNEXT, TINY_RESNET], ids=["convnextv2", "resnet"])
def test_hf_random_backbone_shapes(hf_config: dict) -> None:
    bb = create_backbone(tiny_cfg(hf_config))
    assert bb.channels == [8, 16, 32, 64]
    assert bb.reductions == [4, 8, 16, 32]
    assert bb.pretrained is False and bb.frozen is False
    assert all(p.requires_grad for p in bb.parameters())
    feats = bb(torch.randn(2, 3, 64, 128))
    assert [tuple(f.shape) for f in feats] == [(2, 8, 16, 32), (2, 16, 8, 16), (2, 32, 4, 8), (2, 64, 2, 4)]
    # real feature maps, not logits: spatial maps that depend on the input location
    assert feats[-1].ndim == 4 and feats[-1].shape[-1] > 1


def test_hf_out_indices_select_stages() -> None:
    bb = create_backbone(tiny_cfg(out_indices=[2, 4]))
    assert bb.channels == [16, 64] and bb.reductions == [8, 32]
    assert len(bb(torch.randn(1, 3, 64, 128))) == 2


def test_swinv2_random_config_gives_feature_maps() -> None:
    cfg = tiny_cfg(
        {
            "model_type": "swinv2",
            "image_size": 64,
            "patch_size": 4,
            "window_size": 4,
            "embed_dim": 8,
            "depths": [1, 1, 1, 1],
            "num_heads": [1, 1, 2, 2],
        }
    )
    bb = create_backbone(cfg)
    feats = bb(torch.randn(1, 3, 64, 128))
    assert bb.channels == [8, 16, 32, 64]
    assert [tuple(f.shape[1:]) for f in feats] == [(8, 16, 32), (16, 8, 16), (32, 4, 8), (64, 2, 4)]


def _save_tiny_pretrained(folder) -> nn.Module:
    torch.manual_seed(1)
    src = create_backbone(tiny_cfg())
    src.body.save_pretrained(str(folder))
    return src


def test_frozen_pretrained_backbone_has_no_grads_and_stays_eval(tmp_path) -> None:
    src = _save_tiny_pretrained(tmp_path / "tiny")
    bb = create_backbone(tiny_cfg(pretrained=True, local_dir=str(tmp_path / "tiny")))
    assert bb.pretrained is True and bb.frozen is True
    assert not any(p.requires_grad for p in bb.parameters())
    x = torch.randn(2, 3, 64, 128)
    src.eval()
    for a, b in zip(src(x), bb(x)):
        torch.testing.assert_close(a, b)

    parent = nn.Sequential()
    parent.add_module("bb", bb)
    head = nn.Linear(64, 1)
    parent.train()
    assert parent.training and bb.training  # the wrapper follows, the body does not
    assert not bb.body.training
    assert not any(m.training for m in bb.body.modules())
    feats = bb(x)
    head(feats[-1].mean(dim=(2, 3))).sum().backward()
    assert all(p.grad is None for p in bb.parameters())
    assert head.weight.grad is not None


def test_not_frozen_when_freeze_disabled(tmp_path) -> None:
    _save_tiny_pretrained(tmp_path / "tiny")
    bb = create_backbone(tiny_cfg(pretrained=True, local_dir=str(tmp_path / "tiny"), freeze_pretrained=False))
    assert bb.pretrained and not bb.frozen
    bb.train()
    assert bb.body.training and all(p.requires_grad for p in bb.parameters())


def test_env_backbone_dir_lookup(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    _save_tiny_pretrained(tmp_path / "ecg-test--tiny")
    monkeypatch.setenv("ECG_BACKBONE_DIR", str(tmp_path))
    bb = create_backbone(tiny_cfg(pretrained=True))
    assert bb.pretrained is True
    assert bb.weights_location == str(tmp_path / "ecg-test--tiny")


def test_offline_fallback_warns_once_and_is_random(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    def no_network(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket, "create_connection", no_network)
    assert hub_reachable() is False
    caplog.set_level(logging.WARNING, logger="models.backbone")
    bb = create_backbone(tiny_cfg(pretrained=True))  # name unknown to any cache
    ours = [r for r in caplog.records if r.name == "models.backbone" and r.levelno == logging.WARNING]
    assert len(ours) == 1 and "RANDOM" in ours[0].getMessage()
    assert bb.pretrained is False and bb.frozen is False
    assert all(p.requires_grad for p in bb.parameters())


def test_offline_fallback_builtin_architecture_for_known_name(caplog) -> None:
    caplog.set_level(logging.WARNING, logger="models.backbone")
    cfg = BackboneConfig(source="hf", name="ecg-test-org/convnextv2-atto-1k-224", image_height=64, image_width=64)
    bb = create_backbone(cfg)
    assert bb.channels == [40, 80, 160, 320] and not bb.pretrained
    assert sum(r.name == "models.backbone" for r in caplog.records) == 1


def test_unknown_name_without_config_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="hf_config"):
        create_backbone(BackboneConfig(source="hf", name="ecg-test-org/no-such-model", pretrained=False))


def test_preprocess_keeps_aspect_ratio_and_pads() -> None:
    bb = create_backbone(tiny_cfg())
    page = np.zeros((100, 300, 3), dtype=np.uint8)  # black landscape page, aspect 3:1
    page[:, 150:] = (255, 0, 0)  # right half red
    x, (tr,) = bb.preprocess_with_transforms([page])
    assert x.shape == (1, 3, 64, 128) and x.dtype == torch.float32
    assert tr.resized_width == 128 and tr.resized_height == 43  # 100 * 128 / 300 = 42.7
    assert tr.scale == pytest.approx(128 / 300)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    pixels = x[0] * std + mean  # back to 0..1
    torch.testing.assert_close(pixels[:, 43:, :], torch.ones(3, 21, 128), atol=1e-5, rtol=0)  # white padding
    torch.testing.assert_close(pixels[:, :42, :60], torch.zeros(3, 42, 60), atol=1e-5, rtol=0)
    assert pixels[0, 20, 100] > 0.99 and pixels[1, 20, 100] < 0.01  # red stays on the right
    px, py = tr.to_page(*tr.to_model(150.0, 50.0))
    assert px == pytest.approx(150.0) and py == pytest.approx(50.0)


def test_preprocess_portrait_pil_and_gray_inputs() -> None:
    from PIL import Image

    bb = create_backbone(tiny_cfg())
    portrait = Image.fromarray(np.full((300, 100, 3), 10, dtype=np.uint8))
    gray = np.full((64, 128), 7, dtype=np.uint8)
    x, trs = bb.preprocess_with_transforms([portrait, gray])
    assert x.shape == (2, 3, 64, 128)
    assert (trs[0].resized_height, trs[0].resized_width) == (64, 21)
    assert trs[1].scale == 1.0
    assert torch.equal(bb.preprocess([gray]), x[1:2])
    with pytest.raises(ValueError):
        bb.preprocess([np.zeros((10, 10, 5), dtype=np.uint8)])
    with pytest.raises(TypeError):
        bb.preprocess(["not an image"])


def test_letterbox_never_squashes() -> None:
    img = np.zeros((50, 50, 3), dtype=np.uint8)
    out, tr = letterbox(img, 64, 128)
    assert out.shape == (64, 128, 3) and tr.resized_height == tr.resized_width == 64
    assert (out[:, 64:] == 255).all() and (out[:, :64] == 0).all()


def test_timm_backbone_feature_maps() -> None:
    pytest.importorskip("timm")
    cfg = BackboneConfig(source="timm", name="resnet18", pretrained=False, image_height=64, image_width=128)
    bb = create_backbone(cfg)
    feats = bb(torch.randn(1, 3, 64, 128))
    assert len(feats) == len(bb.channels) and all(f.ndim == 4 for f in feats)
    assert [f.shape[1] for f in feats] == bb.channels


def test_torchvision_backbone_feature_maps() -> None:
    pytest.importorskip("torchvision")
    cfg = BackboneConfig(source="torchvision", name="resnet18", pretrained=False, image_height=64, image_width=128)
    bb = create_backbone(cfg)
    feats = bb(torch.randn(1, 3, 64, 128))
    assert bb.channels == [64, 128, 256, 512] and bb.reductions == [4, 8, 16, 32]
    assert [tuple(f.shape[1:]) for f in feats] == [(64, 16, 32), (128, 8, 16), (256, 4, 8), (512, 2, 4)]


def test_missing_optional_package_message(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins
    import sys

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.split(".")[0] == "timm":
            raise ImportError("No module named 'timm'")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "timm", raising=False)
    monkeypatch.setattr(builtins, "__import__", fake_import)
    monkeypatch.setattr("importlib.import_module", lambda name, *a: fake_import(name))
    with pytest.raises(ImportError, match="optional package 'timm'"):
        create_backbone(BackboneConfig(source="timm", name="resnet18"))
