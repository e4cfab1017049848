"""End to end: a small trained model digitizes clean rendered pages through team_code at >= 15 dB
(official 2024 scorer, references masked to the printed samples as the organisers' are)."""

from __future__ import annotations

import json

import pytest

import helper_code as hc
from evaluate_model import evaluate_model


@pytest.mark.slow
def test_small_trained_model_digitizes_clean_pages(tmp_path, tiny_data, tiny_config_env, monkeypatch, make_folder):
    import team_code

    monkeypatch.setenv("ECG_TRAIN_CONFIG", tiny_config_env)
    model = tmp_path / "model"
    team_code.train_models(str(tiny_data), str(model), False)
    assert json.loads((model / "entry.json").read_text())["digitizer"] == "pipeline"
    digitizer, classifier = team_code.load_models(str(model), False)

    test = make_folder(tmp_path / "test", 2, 500.0, seed=31, dpi=200.0, mask_unplotted=True)
    out = tmp_path / "out"
    out.mkdir()
    for rec in hc.find_records(str(test)):
        header = hc.load_header(str(test / rec))
        signal, labels = team_code.run_models(str(test / rec), digitizer, classifier, False)
        hc.save_header(str(out / rec), header)
        hc.save_signals(str(out / rec), signal, [line for line in header.split("\n") if line.startswith("#")])
        hc.save_labels(str(out / rec), labels)
    scores = evaluate_model(str(test / ""), str(out))
    assert scores["snr"] >= 15.0, scores["snr"]  # measured 18.6 dB
