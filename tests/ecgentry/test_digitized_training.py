"""Training the Dx head on the records' own digitized pages (ecgentry.digitized_training), its cache, the
calibrated decisions (ecgentry.calibration), the leads the self-check does not trust (ecgfeatures.trust) and the
fallback labels of a page whose digitization failed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]


# ---------------------------------------------------------------------------------------------------------------
# thresholds, cap and calibration on constructed cases
def test_threshold_choice_finds_the_known_optimum():
    """Class 0: positives at 0.55-0.9, negatives at 0.05-0.45 plus three negatives at 0.6: the F-maximising
    threshold lies between 0.45 and 0.55 (F = 40 / 43); class 1 has too few positives to tune (stays 0.5)."""
    from ecgentry.calibration import choose_thresholds, f_at

    rng = np.random.default_rng(0)
    pos = rng.uniform(0.55, 0.9, 20)
    neg = np.concatenate([rng.uniform(0.05, 0.45, 77), [0.6, 0.6, 0.6]])
    p = np.zeros((100, 2))
    y = np.zeros((100, 2))
    p[:, 0] = np.concatenate([pos, neg])
    y[:20, 0] = 1
    p[:, 1] = rng.uniform(0, 1, 100)
    y[:3, 1] = 1
    th, info = choose_thresholds(p, y, min_positives=10, max_rate_ratio=0)
    assert 0.45 < th[0] <= 0.55
    assert f_at(p[:, 0], y[:, 0] > 0, th[0]) == pytest.approx(40 / 43)
    assert th[1] == 0.5 and info["tuned"] == [True, False]


def test_rate_cap_raises_a_threshold_but_lets_rule_decisions_pass():
    """A class with prevalence 10 % predicted for half of the records at its threshold is capped at 1.5 x 10 %;
    probabilities of exactly 1 (a rhythm rule fired) still pass."""
    from ecgentry.calibration import choose_thresholds

    p = np.linspace(0.0, 0.99, 100)[:, None].copy()
    y = np.zeros((100, 1))
    y[90:] = 1
    th, info = choose_thresholds(p, y, min_positives=1000, max_rate_ratio=1.5)
    assert info["capped"] == [True]
    assert np.sum(p[:, 0] >= th[0]) == 15
    p[:40, 0] = 1.0  # 40 rule decisions
    th, _ = choose_thresholds(p, y, min_positives=1000, max_rate_ratio=1.5)
    assert th[0] == 1.0 and np.sum(p[:, 0] >= th[0]) == 40


def test_platt_calibration_recovers_a_known_distortion_and_reports_it():
    """Labels drawn with P(y) = sigmoid(z); the head reports sigmoid(2 z + 1.5): calibration finds slope 1/2 and
    intercept -0.75 and lowers the Brier score and ECE."""
    from ecgentry.calibration import apply_calibration, calibration_report, fit_calibration

    rng = np.random.default_rng(1)
    z = rng.normal(0, 2, 20000)
    y = (rng.uniform(size=z.size) < 1 / (1 + np.exp(-z))).astype(float)[:, None]
    reported = 1 / (1 + np.exp(-(2 * z + 1.5)))[:, None]
    cal = fit_calibration(reported, y)
    assert cal["slope"][0] == pytest.approx(0.5, abs=0.03)
    assert cal["intercept"][0] == pytest.approx(-0.75, abs=0.06)
    fixed = apply_calibration(reported, cal)
    before, after = calibration_report(reported, y, ["A"]), calibration_report(fixed, y, ["A"])
    assert after["brier"] < before["brier"] and after["ece"] < 0.02 < before["ece"]
    assert np.all(
        apply_calibration(np.array([0.0, 1.0]), {"slope": [0.5, 0.5], "intercept": [-1, -1]}) == [0.0, 1.0]
    )  # rule decisions stay


# ---------------------------------------------------------------------------------------------------------------
# trust
def _true_signal(fs: float = 500.0) -> np.ndarray:
    import tempfile

    import helper_code as hc
    from ecgrender.synth import write_synthetic_records

    with tempfile.TemporaryDirectory() as d:
        names = write_synthetic_records(d, 1, fs=fs, seed=3)
        sig, _ = hc.load_signals(str(Path(d) / names[0]))
    return np.asarray(sig, np.float64)


def test_untrusted_leads_are_missing_features():
    """A sign-flipped III: Einthoven and III = 2/3 (aVF - aVL) fail, the laws without III pass and clear I, II,
    aVR, aVL, aVF: III alone is blamed and its features become NaN. A flat V2 is blamed by ``flat``. A page with
    three failed checks is 'failed': nothing of it is used."""
    from ecgdigitize.selfcheck import check_signal
    from ecgfeatures.features import FEATURE_NAMES, extract_features
    from ecgfeatures.trust import page_usable, trusted_signal, untrusted_leads

    sig = _true_signal()
    assert untrusted_leads(check_signal(sig, LEADS, 500.0)) == set()
    flipped = sig.copy()
    flipped[:, LEADS.index("III")] *= -1
    check = check_signal(flipped, LEADS, 500.0)
    assert check.status == "suspect" and untrusted_leads(check) == {"III"}
    assert untrusted_leads(check.to_dict()) == {"III"}  # the cached (dict) form says the same
    trusted = trusted_signal(flipped, LEADS, check)
    assert np.isnan(trusted[:, 2]).all() and np.isfinite(np.delete(trusted, 2, axis=1)).all()
    values = extract_features(trusted, 500.0)
    assert np.isnan(values[FEATURE_NAMES.index("st_III_mv")]) and np.isnan(values[FEATURE_NAMES.index("t_III_mv")])
    assert np.isfinite(values[FEATURE_NAMES.index("t_II_mv")])

    flat = sig.copy()
    flat[:, LEADS.index("V2")] = 0.001
    assert untrusted_leads(check_signal(flat, LEADS, 500.0)) == {"V2"}
    both = flipped.copy()
    both[:, LEADS.index("V2")] = 0.001
    failed = check_signal(both, LEADS, 500.0)
    assert failed.status == "failed" and not page_usable(failed)
    assert np.isnan(trusted_signal(both, LEADS, failed)).all()


def test_failed_page_gets_the_fallback_labels(tmp_path, monkeypatch):
    """A page read with a signal but judged 'failed' by its self-check gives no Dx probabilities: its record gets
    the fallback labels; the same reading judged 'ok' is classified."""
    from PIL import Image

    from ecgdigitize import pipeline
    from ecgdigitize.selfcheck import SelfCheck
    from ecgentry import infer
    from ecgentry.random_entry import write_random_entry

    folder = write_random_entry(tmp_path / "model", trace_source="classical", classes=("NORM", "Old MI", "CD"))
    summary = json.loads((folder / "entry.json").read_text())
    summary["fallback_labels"] = ["CD"]
    (folder / "entry.json").write_text(json.dumps(summary))
    entry = infer.load_entry(str(folder))
    sig = _true_signal(500.0)
    status = {"value": "failed"}

    def fake_digitize(image, prob=None, **kwargs):
        check = SelfCheck(status["value"], [] if status["value"] == "ok" else ["limb laws"], [], 0.1)
        return pipeline.DigitizationResult(signal=sig.copy(), lead_names=LEADS, fs=500.0, check=check)

    monkeypatch.setattr(infer, "digitize_page", fake_digitize)
    rec = tmp_path / "data" / "r1"
    rec.parent.mkdir()
    Image.new("RGB", (220, 170), "white").save(rec.parent / "r1-0.png")
    hea = [f"r1 12 500 {sig.shape[0]}"] + [f"r1.dat 16 1000/mV 16 0 0 0 0 {n}" for n in LEADS] + ["# Image: r1-0.png"]
    (rec.parent / "r1.hea").write_text("\n".join(hea) + "\n")
    _, labels = infer.run_record(entry, str(rec))
    assert labels == ["CD"]
    _, probs, _ = infer.analyse_page_result(
        entry, np.full((170, 220, 3), 255, np.uint8), fs=500.0, num_samples=sig.shape[0], lead_names=LEADS
    )
    assert probs.size == 0
    status["value"] = "ok"
    _, probs, _ = infer.analyse_page_result(
        entry, np.full((170, 220, 3), 255, np.uint8), fs=500.0, num_samples=sig.shape[0], lead_names=LEADS
    )
    assert probs.shape == (3,)


# ---------------------------------------------------------------------------------------------------------------
# training on digitized pages whose signals disagree with the images
N_TRAIN, N_TEST = 10, 6


def _write_disagreeing(folder: Path) -> tuple[Path, Path]:
    """Records whose label says how large the signal is (A: largest lead about 1.5 mV peak-to-peak, B: about
    0.75 mV) and whose page is printed at twice the stored signal (A pages 3 mV, B pages 1.5 mV). Each A/B pair shares one of two
    synthetic beats' morphology (amplitude is all that tells the classes apart): a head fitted on the stored
    signals calls the B pages A; one fitted on the pages tells them apart."""
    import wfdb

    import helper_code as hc
    from ecgrender import render_cli
    from ecgrender.synth import write_synthetic_records

    raw = folder / "raw"
    bases = write_synthetic_records(raw, 2, fs=100.0, seed=11)
    base_sigs = [np.asarray(hc.load_signals(str(raw / b))[0], np.float64) for b in bases]
    rng = np.random.default_rng(2)
    names = [f"r{k:02d}" for k in range(N_TRAIN + N_TEST)]
    pages_in, out = folder / "pages_in", folder / "rendered"
    pages_in.mkdir()
    truth = {}
    for k, name in enumerate(names):
        sig = base_sigs[(k // 2) % 2]
        label = "A" if k % 2 == 0 else "B"
        size = (1.5 if label == "A" else 0.75) * rng.uniform(0.9, 1.1)
        sig = sig * (size / max(np.ptp(sig, axis=0).max(), 1e-3)) + rng.normal(0, 0.01, sig.shape)
        truth[name] = (label, sig)
        wfdb.wrsamp(
            name,
            fs=100,
            units=["mV"] * 12,
            sig_name=LEADS,
            p_signal=2.0 * sig,
            fmt=["16"] * 12,
            adc_gain=[1000.0] * 12,
            baseline=[0] * 12,
            comments=[f"Labels: {label}"],
            write_dir=str(pages_in),
        )
    assert (
        render_cli.main(
            [
                "-i",
                str(pages_in),
                "-o",
                str(out),
                "--preset",
                "clean",
                "--seed",
                "5",
                "--layout",
                "3x4+1",
                "--dpi",
                "100",
            ]
        )
        == 0
    )
    train, test = folder / "train", folder / "test"
    for k, name in enumerate(names):
        dst = train if k < N_TRAIN else test
        dst.mkdir(exist_ok=True)
        label, sig = truth[name]
        png = sorted(out.rglob(f"{name}-*.png"))[0]
        shutil.copy(png, dst / png.name)
        wfdb.wrsamp(
            name,
            fs=100,
            units=["mV"] * 12,
            sig_name=LEADS,
            p_signal=sig,
            fmt=["16"] * 12,
            adc_gain=[1000.0] * 12,
            baseline=[0] * 12,
            comments=[f"Labels: {label}", f"Image: {png.name}"],
            write_dir=str(dst),
        )
    return train, test


@pytest.fixture(scope="module")
def disagreeing(tmp_path_factory):
    return _write_disagreeing(tmp_path_factory.mktemp("disagree"))


def _train(data: Path, model: Path, tiny: str, **overrides) -> dict:
    from ecgentry.config import TrainConfig
    from ecgentry.train import train

    cfg = TrainConfig.from_dict(
        {
            **json.loads(tiny),
            "segmentation": False,
            "trace_source": "classical",
            "dx_use_image": False,
            "dx_hidden_sizes": [],
            "dx_min_positives": 3,
            "dx_oof_folds": 5,
            "dx_digitize_workers": 2,
            **overrides,
        }
    )
    return train(str(data), str(model), cfg)


def _macro_f_on_pages(model: Path, test: Path, cache: Path) -> float:
    from ecgentry.digitized_training import STANDARD_LEADS, digitize_training_pages
    from ecgentry.infer import dx_probabilities, labels_from_probs, load_entry
    from ecgentry.records import scan_records

    entry = load_entry(str(model))
    infos, _ = scan_records(str(test))
    pages, _ = digitize_training_pages(
        [(i.record, i.image_files[0], i.fs, i.num_samples) for i in infos], str(cache), 2
    )
    truth = [i.labels[0] for i in infos]
    pred = [
        labels_from_probs(entry, dx_probabilities(entry, p.signal, STANDARD_LEADS, p.fs, check=p.check)) for p in pages
    ]
    scores = []
    for c in ("A", "B"):
        tp = sum(c in p and t == c for p, t in zip(pred, truth))
        fp = sum(c in p and t != c for p, t in zip(pred, truth))
        fn = sum(c not in p and t == c for p, t in zip(pred, truth))
        scores.append(2 * tp / max(2 * tp + fp + fn, 1))
    return float(np.mean(scores))


@pytest.mark.slow
def test_head_fitted_on_digitized_pages_beats_the_true_signal_head_and_the_cache_is_reused(
    disagreeing, tmp_path, tiny_config_env
):
    train_folder, test_folder = disagreeing
    dig_model, true_model = tmp_path / "dig", tmp_path / "true"
    summary = _train(train_folder, dig_model, tiny_config_env, dx_digitized_pages=True)
    pages = summary["dx_digitized_pages"]
    assert pages["pages"] == N_TRAIN and pages["misses"] == N_TRAIN and pages["hits"] == 0
    assert pages["records_with_pages"] == N_TRAIN - pages["failed"]  # a failed page is left out
    assert summary["dx_calibration"] is not None and "brier" in summary["dx_calibration_report"]["uncalibrated"]
    assert (dig_model / "digitized_pages").is_dir()
    _train(train_folder, true_model, tiny_config_env, dx_digitized_pages=False)
    cache = dig_model / "digitized_pages"
    f_dig = _macro_f_on_pages(dig_model, test_folder, cache)
    f_true = _macro_f_on_pages(true_model, test_folder, cache)
    assert f_dig >= 0.8 and f_dig > f_true + 0.2, (f_dig, f_true)

    # a second training on the same model folder reads every page from the cache
    again = _train(train_folder, dig_model, tiny_config_env, dx_digitized_pages=True)["dx_digitized_pages"]
    assert again["misses"] == 0 and again["hits"] == N_TRAIN


def test_page_cache_hit_miss_and_changed_image(disagreeing, tmp_path):
    from PIL import Image

    from ecgentry.digitized_training import digitize_training_pages

    train_folder, _ = disagreeing
    png = sorted(train_folder.glob("*.png"))[0]
    page = tmp_path / png.name
    shutil.copy(png, page)
    task = [("r", str(page), 100.0, 1000)]
    _, first = digitize_training_pages(task, str(tmp_path / "cache"), 1)
    _, second = digitize_training_pages(task, str(tmp_path / "cache"), 1)
    assert (first.misses, first.hits) == (1, 0) and (second.misses, second.hits) == (0, 1)
    img = np.array(Image.open(page).convert("RGB"))
    img[:5, :5] = 0
    Image.fromarray(img).save(page)
    _, third = digitize_training_pages(task, str(tmp_path / "cache"), 1)
    assert (third.misses, third.hits) == (1, 0)


def test_checks_list_the_leads_they_blame():
    """Each failing check lists its leads (``Check.leads``, in the report as ``leads``), and trust reads that list;
    a report written before checks had it still names them in its detail text."""
    from ecgdigitize.selfcheck import check_signal
    from ecgfeatures.trust import untrusted_leads

    sig = _true_signal()
    two_flat = sig.copy()
    for name in ("V2", "V5"):
        two_flat[:, LEADS.index(name)] = 0.001
    check = check_signal(two_flat, LEADS, 500.0)
    flat = {c.name: c for c in check.checks}["flat"]
    assert flat.passed is False and set(flat.leads) == {"V2", "V5"}
    assert untrusted_leads(check) == {"V2", "V5"}
    old_report = check.to_dict()
    for c in old_report["checks"]:
        c.pop("leads")
    assert untrusted_leads(old_report) == {"V2", "V5"}
    laws = {c.name: c for c in check_signal(sig, LEADS, 500.0).checks}
    assert set(laws["einthoven"].leads) == {"I", "II", "III"} and laws["einthoven"].passed
