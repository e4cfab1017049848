"""models.backbone: a weight file that is there but unreadable is an error, never random initialisation; weights
that are not available offline fall back to random initialisation with one warning."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from models.backbone import BackboneWeightsError, create_backbone
from models.config import BackboneConfig

TINY_CONVNEXT = {"model_type": "convnextv2", "depths": [1, 1, 1, 1], "hidden_sizes": [8, 16, 32, 64]}


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach the network or see a developer's backbone folder."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("ECG_BACKBONE_DIR", raising=False)
    torch.manual_seed(0)


def tiny_cfg(**kw) -> BackboneConfig:
    return BackboneConfig(
        source="hf", name="ecg-test/tiny", hf_config=dict(TINY_CONVNEXT), image_height=64, image_width=128, **kw
    )


def saved_tiny(folder: Path) -> Path:
    """A tiny pre-trained HF backbone saved in ``folder``; returns its weight file."""
    create_backbone(tiny_cfg(pretrained=False)).body.save_pretrained(str(folder))
    (weights,) = folder.glob("*.safetensors")
    return weights


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_weight_file_is_a_clear_error(tmp_path: Path, damage: str) -> None:
    weights = saved_tiny(tmp_path / "tiny")
    data = weights.read_bytes()
    weights.write_bytes(b"not a safetensors file" if damage == "garbage" else data[: len(data) // 2])
    with pytest.raises(BackboneWeightsError, match="cannot be loaded") as info:
        create_backbone(tiny_cfg(pretrained=True, local_dir=str(tmp_path / "tiny")))
    assert str(weights) in str(info.value)


def test_folder_without_weights_falls_back_with_one_warning(tmp_path: Path, caplog) -> None:
    weights = saved_tiny(tmp_path / "tiny")
    weights.unlink()  # config.json only: the weights are not available
    caplog.set_level(logging.INFO, logger="models.backbone")
    bb = create_backbone(tiny_cfg(pretrained=True, local_dir=str(tmp_path / "tiny")))
    assert bb.pretrained is False
    warnings = [r for r in caplog.records if r.name == "models.backbone" and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "RANDOM" in warnings[0].getMessage()
    assert any("not available" in r.getMessage() for r in caplog.records if r.levelno == logging.INFO)
