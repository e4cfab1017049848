"""Classification path of the entry on tiny synthetic data: the fused Dx head (image + signal features) learns,
the signal-feature-only head tells TACHY from BRADY on rendered pages it digitizes itself, and training uses
records that lack an image or a signal file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ecgentry.config import TrainConfig
from ecgentry.train import train

FS = 100.0  # Hz: small records, fast features and rendering


@pytest.fixture()
def config(tiny_config_env, monkeypatch):
    """``config(**overrides)``: the tiny test TrainConfig (tests/conftest.py) with these overrides."""
    monkeypatch.delenv("ECG_TRAIN_CONFIG", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def make(**overrides) -> TrainConfig:
        return _config(json.loads(tiny_config_env), **overrides)

    return make


def _config(data: dict, **overrides) -> TrainConfig:
    data.update({"trace_source": "classical", "trace_source_pages": 0})
    data.update(overrides)
    return TrainConfig.from_env(**data)


def _write_records(folder: Path, labels: list[list[str]], seed: int, fs: float = FS) -> list[str]:
    """Synthetic WFDB records (10 s, ``fs`` Hz) with the given labels; returns the record names."""
    import wfdb

    from ecgrender.page import STANDARD_LEADS
    from ecgrender.synth import synthesize_ecg

    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i, labs in enumerate(labels):
        rng = np.random.default_rng([seed, i])
        sig, _ = synthesize_ecg(labs, fs=fs, duration_s=10.0, rng=rng)
        name = f"rec_{i:03d}"
        wfdb.wrsamp(
            name,
            fs=fs,
            units=["mV"] * 12,
            sig_name=list(STANDARD_LEADS),
            p_signal=np.clip(sig, -30, 30),
            fmt=["16"] * 12,
            adc_gain=[1000.0] * 12,
            baseline=[0] * 12,
            comments=[f"Labels: {', '.join(labs)}"],
            write_dir=str(folder),
        )
        names.append(name)
    return names


def _render(signals: Path, out: Path, seed: int) -> Path:
    from ecgrender import render_cli

    code = render_cli.main(
        [
            "-i",
            str(signals),
            "-o",
            str(out),
            "--preset",
            "clean",
            "--seed",
            str(seed),
            "--layout",
            "3x4+1",
            "--dpi",
            "100",
        ]
    )
    assert code == 0
    return out


def test_fused_head_trains_and_loss_falls(tiny_data, tmp_path, config):
    """Image + signal features into the Dx head: the model has both inputs and its training loss falls."""
    cfg = config(signal_features=True, dx_use_image=True, segmentation=False, epochs=5, lr=1e-2)
    summary = train(str(tiny_data), str(tmp_path / "model"), cfg)
    losses = [row["train_dx"] for row in summary["history"]]
    assert len(losses) == 5
    # each epoch sees another corruption of the signal features, so the loss moves; it must still fall
    assert losses[-1] < 0.97 * losses[0] and min(losses[1:]) < losses[0], losses
    saved = json.loads((tmp_path / "model" / "model" / "config.json").read_text())
    dx = saved["model"]["dx_head"]
    assert dx.get("extra_features", 0) > 0 and dx.get("use_image", True) and dx.get("standardize")
    # After the page loop (which trains the backbone here) the head is refitted on pooled image features of every
    # page x 4 signal-feature variants; the standardisation buffers are saved with it.
    assert summary["dx_fit"] == "full_batch"
    assert summary["dx_fit_rows"] == 4 * (summary["train_pages"] + summary["val_pages"])


TACHY_BRADY_TEST_LABELS = [["TACHY"], ["BRADY"]] * 2


@pytest.fixture(scope="module")
def tachy_brady(tmp_path_factory) -> tuple[Path, Path]:
    """Rendered TACHY/BRADY pages: 8 training records and 4 test records with their signal and labels hidden."""
    import subprocess
    import sys

    tmp = tmp_path_factory.mktemp("tachy_brady")
    _write_records(tmp / "train_sig", [["TACHY"], ["BRADY"]] * 4, seed=11)
    train_dir = _render(tmp / "train_sig", tmp / "train", 1)
    _write_records(tmp / "test_sig", TACHY_BRADY_TEST_LABELS, seed=99)
    test_dir = _render(tmp / "test_sig", tmp / "test", 2)
    hidden = tmp / "hidden"
    root = Path(__file__).resolve().parents[1]
    subprocess.run(
        [sys.executable, str(root / "remove_hidden_data.py"), "-i", str(test_dir), "-o", str(hidden), "-m"],
        check=True,
        cwd=root,
    )
    assert not list(hidden.glob("*.dat")) and list(hidden.glob("*.png"))
    return train_dir, hidden


@pytest.mark.parametrize("rules", [False, True])
def test_signal_feature_head_separates_tachy_from_brady(tmp_path, config, rules, tachy_brady):
    """Signal features only, trained on true signals (digitization-like corruptions); evaluated on rendered
    pages whose signal and labels are hidden, so the features come from the entry's own digitization. Without
    rhythm rules the logistic head alone must do it; with them the fitted rules are saved with the model."""
    import shutil

    import team_code

    train_dir, shared_hidden = tachy_brady
    test_labels = TACHY_BRADY_TEST_LABELS
    hidden = tmp_path / "hidden"  # a copy: a page of it is blanked below
    shutil.copytree(shared_hidden, hidden)

    cfg = config(
        signal_features=True, dx_use_image=False, segmentation=False, epochs=12, lr=2e-2, dx_rhythm_rules=rules
    )
    summary = train(str(train_dir), str(tmp_path / "model"), cfg)
    assert summary["classes"] == ["TACHY", "BRADY"]
    if rules:
        assert [r["class_name"] for r in summary["rhythm_rules"]] == ["TACHY", "BRADY"]
        saved = json.loads((tmp_path / "model" / "model" / "config.json").read_text())
        assert saved["model"]["dx_head"]["rhythm_rules"] == summary["rhythm_rules"]
    else:
        assert summary["rhythm_rules"] == []
    # Only the Dx head is trained, and the full-batch fit does that: no page loop.
    assert summary["dx_fit"] == "full_batch" and summary["history"] == [] and summary["dx_fit_rows"] == 8 * 4
    entry, _ = team_code.load_models(str(tmp_path / "model"), False)
    for i, labs in enumerate(test_labels):
        signal, predicted = team_code.run_models(str(hidden / f"rec_{i:03d}"), entry, entry, False)
        assert np.isfinite(signal).any(), "the page was not digitized"
        assert predicted == labs, (i, labs, predicted)
    # a page without any trace gives the head no feature: no probabilities, the training set's fallback labels
    import cv2

    from ecgentry.infer import analyse_page

    blank = np.full((850, 1100, 3), 255, np.uint8)
    _, probs = analyse_page(entry, blank, fs=FS, num_samples=1000, lead_names=list(entry.model.lead_names))
    assert probs.size == 0
    cv2.imwrite(str(hidden / "rec_000-0.png"), blank)
    signal, predicted = team_code.run_models(str(hidden / "rec_000"), entry, entry, False)
    assert not np.isfinite(signal).any() and predicted == entry.summary["fallback_labels"] != []


def test_records_without_image_or_signal_are_used(tmp_path, make_folder, config):
    """Records with a signal but no image train through rendered pages; records with an image but no signal
    file through their image; entry.json counts them all."""
    data = make_folder(tmp_path / "mixed", 6, FS, seed=5)
    records = sorted(p.with_suffix("") for p in data.rglob("*.hea"))
    no_image, no_signal = records[:2], records[2:4]
    for rec in no_image:
        for png in rec.parent.glob(rec.name + "-*.png"):
            png.unlink()
    for rec in no_signal:
        for dat in rec.parent.glob(rec.name + ".dat"):
            dat.unlink()
    cfg = config(signal_features=True, segmentation=True, pages_per_record=1, epochs=1)
    summary = train(str(data), str(tmp_path / "model"), cfg)
    entry = json.loads((tmp_path / "model" / "entry.json").read_text())
    assert entry["records_used"] == summary["records_used"] == 6
    assert entry["records_skipped"] == 0
    # own images: 4 records still have one; rendered pages: 4 records still have a signal
    assert entry["train_pages"] == 4 + 4


class _HeadOnly:
    """What ``fit_dx_full_batch`` needs of a model: its ``dx_head``."""

    def __init__(self, head):
        self.dx_head = head


def _design(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """60 records x 3 rows, one label each: class A (30 positives), B (5, too few to tune) and C (25), each told
    by its own feature."""
    rng = np.random.default_rng(seed)
    n = 60
    y = np.zeros((n, 3), np.float32)
    y[:30, 0] = 1
    y[30:35, 1] = 1
    y[35:, 2] = 1
    owners = np.repeat(np.arange(n), 3)
    x = rng.normal(0.0, 0.3, size=(len(owners), 4)).astype(np.float32)
    x[:, :3] += 1.5 * y[owners]
    return x, owners, y


def test_full_batch_fit_with_out_of_fold_thresholds(config):
    """dx_thresholds="oof": thresholds are tuned on out-of-fold record probabilities only where a class has at
    least dx_min_positives positive records; the out-of-fold macro F is reported; with "fixed" all stay 0.5."""
    from ecgentry.train import fit_dx_full_batch
    from models.config import DxHeadConfig
    from models.heads import DxHead

    x, owners, y = _design(0)
    head_cfg = DxHeadConfig(
        classes=["A", "B", "C"], hidden_sizes=[], extra_features=4, use_image=False, standardize=True
    )
    model = _HeadOnly(DxHead(head_cfg, [4]))
    cfg = config(dx_thresholds="oof", dx_min_positives=20, dx_l2=1e-2)
    out = fit_dx_full_batch(model, x, owners, y, cfg)
    assert out["records"] == 60 and out["rows"] == 180
    th = model.dx_head.thresholds.numpy()
    assert th[1] == pytest.approx(0.5)  # 5 positives < 20: not tuned
    assert 0.0 < th[0] < 1.0 and 0.0 < th[2] < 1.0
    # Separable classes: the out-of-fold macro F reaches its optimum, and the final head with the tuned
    # thresholds classifies every training record.
    assert out["oof_macro_f"] == pytest.approx(1.0)
    with torch.no_grad():
        p = torch.sigmoid(model.dx_head.logits_from_inputs(torch.from_numpy(x))).numpy()
    rec = np.stack([p[owners == r].mean(0) for r in range(60)])
    assert ((rec >= th[None]) == (y > 0)).all()
    fixed = _HeadOnly(DxHead(DxHeadConfig.from_dict(head_cfg.to_dict()), [4]))
    fit_dx_full_batch(fixed, x, owners, y, config(dx_thresholds="fixed", dx_l2=1e-2))
    np.testing.assert_allclose(fixed.dx_head.thresholds.numpy(), [0.5, 0.5, 0.5])


def test_dx_fit_options_are_validated():
    from models.config import ConfigError

    for bad in ({"dx_fit": "closed_form"}, {"dx_thresholds": "tuned"}, {"dx_l2": -1.0}, {"dx_oof_folds": 1}):
        with pytest.raises(ConfigError):
            TrainConfig(**bad)
    assert TrainConfig().dx_hidden_sizes == [] and TrainConfig().dx_fit == "full_batch"
