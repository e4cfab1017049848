"""Shared pytest set-up: the repository root on sys.path, the optional shared data folder, a tiny rendered
Challenge data set and a tiny, fast training configuration."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SHARED_DATA = Path(os.environ.get("ECG_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ``../shared/data`` (real public ECG material); skips the test when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder {SHARED_DATA} is absent")
    return SHARED_DATA


TINY_TRAIN_CONFIG = {
    "backbone": {
        "name": "tiny-convnextv2-test",
        "pretrained": False,
        "hf_config": {"model_type": "convnextv2", "depths": [1, 1, 1, 1], "hidden_sizes": [8, 16, 32, 64]},
        "image_height": 128,
        "image_width": 160,
    },
    "dx_hidden_sizes": [16],
    "segmentation_decoder_channels": 8,
    "epochs": 3,
    "batch_size": 4,
    "lr": 3e-3,
    "val_fraction": 0.0,
    "trace_source_pages": 1,
    "render_preset": "clean",
    "num_threads": 1,
    "dx_digitized_pages": False,  # digitizing the training pages costs seconds per page (tests of it opt in)
}


def make_challenge_folder(
    folder: Path, n: int, fs: float, seed: int, dpi: float = 100.0, mask_unplotted: bool = False
) -> Path:
    """``n`` synthetic labelled records at ``fs`` Hz, each with one clean 3x4+1 page rendered at ``dpi``
    (with ``mask_unplotted`` the stored signal is NaN where not printed, as the organisers' references)."""
    from ecgrender import render_cli
    from ecgrender.synth import write_synthetic_records

    signals = folder / "signals"
    write_synthetic_records(str(signals), n, fs=fs, seed=seed)
    out = folder / "data"
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
            str(dpi),
        ]
        + (["--mask-unplotted"] if mask_unplotted else [])
    )
    assert code == 0
    return out


@pytest.fixture(scope="session")
def tiny_config_env() -> str:
    return json.dumps(TINY_TRAIN_CONFIG)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    np.random.seed(0)
    return make_challenge_folder(tmp_path_factory.mktemp("tiny"), 6, 500.0, seed=7)


@pytest.fixture(scope="session")
def make_folder():
    """The ``make_challenge_folder(folder, n, fs, seed, dpi=100)`` function, for tests that need more data sets."""
    return make_challenge_folder
