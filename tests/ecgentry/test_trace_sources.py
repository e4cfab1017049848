"""The trace map sources at run time: a segmentation head trained on native-resolution crops (tiles) and the
per-page choice of the trace map by the page's self-check."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

import helper_code as hc
from ecgentry import infer
from ecgentry.config import TrainConfig


def test_tiles_mode_trains_on_crops_and_runs_on_tiles(tmp_path, tiny_data, tiny_config_env, monkeypatch):
    from ecgentry.train import train
    from models import segmentation

    cfg = json.loads(tiny_config_env)
    cfg.update(segmentation_input="tiles", crops_per_page=3, epochs=1, trace_source="segmentation")
    seen = []
    real_crops = segmentation.random_training_crops
    monkeypatch.setattr(segmentation, "random_training_crops", lambda *a, **k: seen.append(a[4]) or real_crops(*a, **k))
    summary = train(str(tiny_data), str(tmp_path / "model"), TrainConfig.from_dict(cfg))
    assert seen and all(n == 3 for n in seen)
    own_images = len(hc.find_records(str(tiny_data)))  # one page per record, used whole
    assert summary["train_pages"] == 3 * len(seen) + own_images  # every rendered page became 3 crops

    entry = infer.load_entry(str(tmp_path / "model"), device="cpu")
    assert entry.model.segmentation_head.config.input_mode == "tiles"
    tiled = []
    real_tiles = segmentation.predict_trace_tiles
    monkeypatch.setattr(
        segmentation, "predict_trace_tiles", lambda *a, **k: tiled.append(a[2].shape) or real_tiles(*a, **k)
    )
    record = str(tiny_data / hc.find_records(str(tiny_data))[0])
    image = np.asarray(hc.load_images(record)[0].convert("RGB"))
    signal, _, result = infer.analyse_page_result(
        entry,
        image,
        fs=500.0,
        num_samples=5000,
        lead_names=["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"],
    )
    assert tiled == [image.shape]  # the map came from the page at its own resolution
    assert signal.shape == (5000, 12) and result is not None


def _reading(status: str, score: float, samples: int = 100, *, tag: str):
    signal = np.full((10, 12), np.nan)
    signal.flat[:samples] = 0.0
    return SimpleNamespace(
        status=status, check=SimpleNamespace(status=status, score=score), warnings=[], tag=tag, signal=signal
    )


@pytest.mark.parametrize(
    "classical,learned,expect",
    [
        (("ok", 0.9), {}, "classical"),  # an ok page is not read again
        (("suspect", 0.5), {"combined": ("ok", 0.6), "segmentation": ("suspect", 0.9)}, "combined"),
        (("suspect", 0.5), {"combined": ("suspect", 0.4), "segmentation": ("failed", 0.9)}, "classical"),
        (("failed", 0.1), {"combined": ("failed", 0.2), "segmentation": ("suspect", 0.1)}, "segmentation"),
        # a learned reading that lost samples (a lead, the rhythm strip) is not taken, whatever its status
        (("failed", 0.1), {"combined": ("suspect", 0.9, 80), "segmentation": ("ok", 0.9, 50)}, "classical"),
    ],
)
def test_per_page_keeps_the_best_self_checked_reading(monkeypatch, classical, learned, expect):
    calls = []

    def fake_digitize(image, prob, **kwargs):
        source = "classical" if prob is None else prob
        calls.append(source)
        return _reading(*(classical if source == "classical" else learned[source]), tag=source)

    monkeypatch.setattr(infer, "digitize_page", fake_digitize)
    monkeypatch.setattr(infer, "trace_maps", lambda model, seg, tr, image, sources: {s: s for s in sources})
    model = SimpleNamespace(segmentation_head=object())
    result = infer.digitize_per_page(model, None, None, np.zeros((4, 4, 3), np.uint8), fs=500.0)
    assert result.tag == expect
    assert calls == (["classical"] if classical[0] == "ok" else ["classical", *infer.PER_PAGE_ALTERNATIVES])
    if classical[0] != "ok":
        assert result.warnings == [f"trace map chosen by the self-check: {expect}"]
    # without a segmentation head there is nothing else to try
    calls.clear()
    infer.digitize_per_page(SimpleNamespace(segmentation_head=None), None, None, np.zeros((4, 4, 3), np.uint8))
    assert calls == ["classical"]
