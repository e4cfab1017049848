"""Fast comparison of Dx heads on cached signal features of PTB-XL (development benchmark for issue 6).

    python -m benchmarks.classify_features --rendered DIR [--cache FILE] [--variants 8] [--workers 2] [--cv]
                                           [--heads NAME,NAME]

``--rendered``: a folder of prepared + rendered PTB-XL records, e.g. ``<work>/rendered`` of a
``python -m benchmarks.classify --out <work>`` run (headers with labels, signals, one page ``<record>-0.png``).

Once (cached in ``--cache``): for every record, ``ecgfeatures`` of (a) its true signal, (b) ``--variants``
digitization-like corruptions of it (``ecgentry.train.digitization_like``, seeded per record as training does)
and (c) the signal digitized from its rendered page by the classical digitizer (``digitize_page`` with the
classical trace map, what ``run_model.py`` does with ``"trace_source": "classical"``). Then every head in
``HEADS`` is trained on the records of PTB-XL folds 1-6 (on the training-feature source chosen per row) and
scored on folds 7-8 with the features of their *digitized* pages: macro F over the classes present (the
scorer's definition, a record with no class above threshold gets its arg-max class) and F per class.
``--cv`` adds an 8-fold cross-validation over PTB-XL folds 1-8 (each fold tested once on its digitized pages,
trained on the other seven; predictions pooled over all records): with 1-3 test records in the rare classes
the holdout numbers move by 0.2-0.5 per record, so choices were made on the CV row.

The digitizer changes while this project is developed: the cache holds the features of the pages as digitized
when it was built (``--rebuild`` to refresh).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ecgvocab import DX_CLASSES as CLASSES  # noqa: E402 - after the path set-up


def _record_features(
    header_path: str, variants: int, seed: int
) -> tuple[str, list[str], np.ndarray, np.ndarray, np.ndarray]:
    """(name, labels, true features (E,), corrupted features (K, E), digitized-page features (E,))."""
    import helper_code as hc
    from ecgdigitize.image_io import load_image
    from ecgdigitize.pipeline import digitize_page
    from ecgentry.records import header_facts, standard_leads
    from ecgentry.train import digitization_like
    from ecgfeatures.features import FEATURE_NAMES, extract_features

    record = header_path[:-4]
    header = hc.load_header(record)
    labels = hc.get_labels_from_header(header)
    fs, num_samples, lead_names = header_facts(header)
    signal = standard_leads(np.asarray(hc.load_signals(record)[0], dtype=np.float64), lead_names)
    true = extract_features(signal, fs)
    rng = np.random.default_rng([seed + 7, zlib.crc32(os.path.basename(record).encode())])
    corrupted = np.stack([extract_features(digitization_like(signal, fs, rng), fs) for _ in range(variants)])
    digitized = np.full(len(FEATURE_NAMES), np.nan)
    image = Path(record + "-0.png")
    if image.is_file():
        try:
            res = digitize_page(load_image(str(image)), None, fs=fs, num_samples=num_samples, lead_names=lead_names)
            digitized = extract_features(standard_leads(res.signal, lead_names), fs)
        except Exception as exc:  # keep the record; NaN features
            print(f"digitizing {image} failed: {exc}", file=sys.stderr)
    return os.path.basename(record), list(labels), true, corrupted, digitized


def build_cache(rendered: Path, cache: Path, variants: int, workers: int, seed: int) -> dict[str, np.ndarray]:
    """Features of every record under ``rendered`` (see :func:`_record_features`), saved to ``cache`` (.npz)."""
    from joblib import Parallel, delayed

    headers = sorted(str(h) for h in rendered.rglob("*.hea"))
    t0 = time.time()
    rows = Parallel(n_jobs=workers)(delayed(_record_features)(h, variants, seed) for h in headers)
    print(f"features of {len(rows)} records in {time.time() - t0:.0f} s", flush=True)
    data = {
        "names": np.array([r[0] for r in rows]),
        "labels": np.array(["|".join(r[1]) for r in rows]),
        "true": np.stack([r[2] for r in rows]),
        "corrupted": np.stack([r[3] for r in rows]),
        "digitized": np.stack([r[4] for r in rows]),
    }
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **data)
    return data


def load_data(args: argparse.Namespace) -> dict[str, np.ndarray]:
    cache = Path(args.cache)
    if cache.is_file() and not args.rebuild:
        return dict(np.load(cache))
    if not args.rendered or not Path(args.rendered).is_dir():
        raise SystemExit(f"no cache at {cache}: pass --rendered <work>/rendered of a benchmarks.classify --out run")
    return build_cache(Path(args.rendered), cache, args.variants, args.workers, args.seed)


def folds_of(names: np.ndarray, shared: str) -> np.ndarray:
    """PTB-XL strat_fold of each record name (0 when unknown)."""
    import pandas as pd

    db = pd.read_csv(Path(shared) / "ptbxl" / "ptbxl_database.csv", usecols=["ecg_id", "strat_fold"])
    fold = dict(zip(db["ecg_id"].astype(int), db["strat_fold"].astype(int)))
    return np.array([fold.get(int(str(n).split("_")[0]), 0) for n in names])


def macro_f(pred: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Macro F over classes present in ``y`` (N, C) and F per class (NaN where absent)."""
    tp = (pred & y).sum(0)
    fp = (pred & ~y).sum(0)
    fn = (~pred & y).sum(0)
    f = np.where(y.sum(0) > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), np.nan)
    return float(np.nanmean(f)), f


def decide(probs: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Labels (N, C) bool: probability >= threshold, else the arg-max class (the entry's rule)."""
    pred = probs >= thresholds[None]
    none = ~pred.any(1)
    pred[none, probs[none].argmax(1)] = True
    return pred


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rendered", default="", help="prepared + rendered PTB-XL folder (needed to build the cache)")
    p.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "ecg_classify_features.npz"))
    p.add_argument("--shared", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--variants", type=int, default=8)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rebuild", action="store_true")
    p.add_argument("--heads", default="", help="comma-separated subset of head names")
    p.add_argument("--cv", action="store_true", help="also 8-fold CV over PTB-XL folds 1-8 (pooled predictions)")
    args = p.parse_args(argv)

    from benchmarks.classify_heads import HEADS, run_head

    data = load_data(args)
    names = data["names"]
    labels = [str(s).split("|") if str(s) else [] for s in data["labels"]]
    folds = folds_of(names, args.shared)
    classes = [c for c in CLASSES if any(c in lab for lab in labels)]
    y = np.array([[c in lab for c in classes] for lab in labels])
    tr, te = (folds >= 1) & (folds <= 6), (folds >= 7) & (folds <= 8)
    print(f"{tr.sum()} training records, {te.sum()} test records; classes {classes}")
    present = [j for j in range(len(classes)) if y[te, j].any()]
    wanted = [h for h in args.heads.split(",") if h] or list(HEADS)
    header = f"{'head':<34}{'macro':>7}" + "".join(f"{classes[j][:6]:>7}" for j in present)
    print(header)
    print(f"{'support':<34}{'':>7}" + "".join(f"{int(y[te, j].sum()):>7}" for j in present))
    print(f"{'CV support':<34}{'':>7}" + "".join(f"{int(y[:, j].sum()):>7}" for j in present))
    for name in wanted:
        t0 = time.time()
        probs, thresholds = run_head(HEADS[name], data, tr, te, y, classes)
        mf, f = macro_f(decide(probs, thresholds), y[te])
        print(
            f"{name:<34}{mf:>7.3f}" + "".join(f"{f[j]:>7.2f}" for j in present) + f"  ({time.time() - t0:.1f} s)",
            flush=True,
        )
        if args.cv:
            pred = np.zeros_like(y)
            for k in range(1, 9):
                probs, thresholds = run_head(HEADS[name], data, (folds != k) & (folds > 0), folds == k, y, classes)
                pred[folds == k] = decide(probs, thresholds)
            mf, f = macro_f(pred[folds > 0], y[folds > 0])
            print(f"{'  8-fold CV':<34}{mf:>7.3f}" + "".join(f"{f[j]:>7.2f}" for j in present), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
