"""Challenge-page data for ``benchmarks/classify.py --challenge``: PTB-XL records of ``<shared>/ptbxl`` printed by
the Challenge's own page generator (ecg-image-kit, through ``--kit``, the path of ``ecg-image-kit.sh``; never
copied into the project), then the records' pages digitized once and cached by image content.

Page styles (the flags of ``../shared/data/ecg-image-kit`` and of the generator script's header), dealt to the
records by a seeded permutation in the proportions of that folder (12 : 12 : 12 : 6 : 6):

* ``clean200``: no flag (200 DPI); ``clean100``: ``--resolution 100``; ``bw``: ``--random_bw 1``;
* ``wrinkles``: ``--wrinkles``; ``rotnoise``: ``--augment --store_config 1 -rot 10 -noise 50 -c 0`` (the
  augmentation reads the stored page configuration);

every style with ``--mask_unplotted_samples`` (the reference signal is NaN where it was not printed, as the
organisers' test references). ``prepare_image_data.py -i OUT -o OUT`` then adds the ``# Image:`` lines. At most
two generator calls run at a time.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

STYLES: dict[str, list[str]] = {
    "clean200": [],
    "clean100": ["--resolution", "100"],
    "bw": ["--random_bw", "1"],
    "wrinkles": ["--wrinkles"],
    "rotnoise": ["--augment", "--store_config", "1", "-rot", "10", "-noise", "50", "-c", "0"],
}
STYLE_WEIGHTS = {"clean200": 2, "clean100": 2, "bw": 2, "wrinkles": 1, "rotnoise": 1}


def assign_styles(records: list[str], seed: int) -> dict[str, str]:
    """``{record name: style}``: a seeded permutation of the records dealt to the styles in STYLE_WEIGHTS."""
    cycle = [s for s, w in STYLE_WEIGHTS.items() for _ in range(w)]
    order = np.random.default_rng(seed).permutation(len(records))
    return {records[int(i)]: cycle[k % len(cycle)] for k, i in enumerate(order)}


def render_challenge_pages(prepared: Path, out: Path, kit: Path, seed: int = 0, workers: int = 2) -> dict[str, str]:
    """Print every record of ``prepared`` (labelled Challenge records, any depth) with the generator into the flat
    folder ``out`` (records + ``<record>-0.png`` + ``# Image:`` lines); returns ``{record name: style}``. Skipped
    when ``out/.done`` exists."""
    heas = sorted(prepared.rglob("*.hea"))
    styles = assign_styles([h.stem for h in heas], seed)
    if (out / ".done").exists():
        return styles
    if not kit.is_file():
        raise FileNotFoundError(f"{kit} not found: pass --kit pointing at ecg-image-kit.sh")
    staging = out.parent / (out.name + "_staging")  # a style finished in an interrupted run is kept
    shutil.rmtree(out, ignore_errors=True)
    for hea in heas:
        folder = staging / "in" / styles[hea.stem]
        folder.mkdir(parents=True, exist_ok=True)
        for f in hea.parent.glob(hea.stem + ".*"):
            if not (folder / f.name).exists():
                os.symlink(f.resolve(), folder / f.name)

    def one(style: str) -> float:
        t0 = time.time()
        if (staging / "out" / style / ".done").exists():
            return 0.0
        shutil.rmtree(staging / "out" / style, ignore_errors=True)
        cmd = [
            "bash",
            str(kit),
            "-i",
            str(staging / "in" / style),
            "-o",
            str(staging / "out" / style),
            "--seed",
            str(seed + 1),
            "--mask_unplotted_samples",
            *STYLES[style],
        ]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({res.returncode}):\n{(res.stdout + res.stderr)[-3000:]}")
        (staging / "out" / style / ".done").write_text("ok\n")
        return time.time() - t0

    present = sorted({styles[h.stem] for h in heas})
    with ThreadPoolExecutor(max_workers=max(1, min(2, workers))) as pool:
        for style, seconds in zip(present, pool.map(one, present)):
            n = sum(1 for s in styles.values() if s == style)
            print(f"  [{seconds:6.1f} s] ecg-image-kit {style}: {n} pages", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    for style in present:
        for f in (staging / "out" / style).iterdir():
            if f.is_file() and f.name != ".done":
                shutil.move(str(f), out / f.name)
    res = subprocess.run(
        [sys.executable, "prepare_image_data.py", "-i", str(out), "-o", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if res.returncode != 0:
        raise RuntimeError(f"prepare_image_data.py failed:\n{(res.stdout + res.stderr)[-3000:]}")
    shutil.rmtree(staging, ignore_errors=True)
    (out / ".done").write_text("ok\n")
    return styles


# ------------------------------------------------------------------------------------------------------------
# the benchmark on those pages
#: Dx heads compared (TrainConfig overrides on top of the benchmark configuration)
CHALLENGE_VARIANTS: dict[str, dict] = {
    # the head as it was: fitted on true signals with simulated corruptions, fixed 0.5 thresholds
    "true": {"dx_digitized_pages": False, "dx_thresholds": "fixed", "dx_calibrate": False, "dx_max_rate_ratio": 0},
    # fitted on true signals, with the calibrated decisions (thresholds and cap on true-signal out-of-fold rows)
    "true+decide": {"dx_digitized_pages": False},
    # fitted on the digitized training pages (+ the true-signal rows), decisions on their out-of-fold predictions
    "digitized": {},
    # the same with the pages weighing as much as the true-signal rows, or eight times as much
    "digitized-w1": {"dx_digitized_weight": 1.0},
    "digitized-w8": {"dx_digitized_weight": 8.0},
    # the same without the rate cap
    "digitized-nocap": {"dx_max_rate_ratio": 0},
    # thresholds tuned for classes with at least 10 positive records (default 20)
    "digitized-min10": {"dx_min_positives": 10},
}
DEFAULT_CHALLENGE_VARIANTS = ("true", "true+decide", "digitized")


@dataclass
class PageRecord:
    name: str
    fold: int
    labels: list[str]
    image: Path
    fs: float
    num_samples: int
    prepared: Path  # the prepared record (full, unmasked signal), path without extension
    style: str


def collect_records(rendered: Path, prepared: Path, folds: dict[int, int], styles: dict[str, str]) -> list[PageRecord]:
    """The rendered records with an image, their PTB-XL fold, labels and the prepared (unmasked) record."""
    import helper_code as hc

    by_name = {h.stem: h.with_suffix("") for h in prepared.rglob("*.hea")}
    out = []
    for hea in sorted(rendered.glob("*.hea")):
        header = hea.read_text(encoding="utf-8")
        images = [ln.split(":", 1)[1].strip() for ln in header.splitlines() if ln.startswith("# Image:")]
        if not images or hea.stem not in by_name or not (rendered / images[0]).is_file():
            continue
        try:
            fold = folds.get(int(hea.stem.split("_")[0]))
        except ValueError:
            fold = None
        if fold is None:
            continue
        out.append(
            PageRecord(
                hea.stem,
                fold,
                list(hc.get_labels_from_header(header)),
                rendered / images[0],
                float(hc.get_sampling_frequency(header)),
                int(hc.get_num_samples(header)),
                by_name[hea.stem],
                styles.get(hea.stem, "?"),
            )
        )
    return out


def make_train_folder(records: list[PageRecord], folder: Path) -> None:
    """A Challenge training folder: each record's prepared header (full signal) with its ``# Image:`` line, its
    signal files and page (hard links, else copies)."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for r in records:
        header = (r.prepared.with_suffix(".hea")).read_text(encoding="utf-8").rstrip("\n")
        (folder / f"{r.name}.hea").write_text(header + f"\n# Image: {r.image.name}\n", encoding="utf-8")
        for f in [*(f for f in r.prepared.parent.glob(r.name + ".*") if f.suffix != ".hea"), r.image]:
            try:  # hard links: the entry's path guard refuses files that resolve outside the record's folder
                os.link(f.resolve(), folder / f.name)
            except OSError:
                shutil.copy2(f, folder / f.name)


def predict(model: Path, pages: list[Any], read_failed: bool = False) -> list[list[str]]:
    """Labels of each digitized test page by the entry in ``model``, as ``run_record`` decides them (a failed page:
    the fallback labels; ``read_failed``: classified from all its leads anyway, for comparison only)."""
    from ecgentry.infer import dx_probabilities, labels_from_probs, load_entry
    from ecgvocab import STANDARD_LEADS

    entry = load_entry(str(model))
    out = []
    for page in pages:
        probs = np.zeros(0)
        if page.signal is not None and read_failed and page.status == "failed":
            probs = dx_probabilities(entry, page.signal, STANDARD_LEADS, page.fs)
        elif page.signal is not None:
            probs = dx_probabilities(entry, page.signal, STANDARD_LEADS, page.fs, check=page.check)
        out.append(labels_from_probs(entry, probs))
    return out


def score(labels: list[list[str]], outputs: list[list[str]]) -> dict[str, Any]:
    import helper_code as hc

    macro, per_class, classes = hc.compute_f_measure(labels, outputs)
    counts = {c: [sum(c in o for o in outputs), sum(c in t for t in labels)] for c in classes}
    return {"macro_f": macro, "f": dict(zip(classes, [float(v) for v in per_class])), "counts": counts}


def run_challenge(args: Any, work: Path, base_cfg: dict, variants: list[str]) -> int:
    """The Challenge-page benchmark (``classify.py --challenge``)."""
    import pandas as pd

    from ecgentry.config import TrainConfig, _deep_update
    from ecgentry.digitized_training import digitize_training_pages
    from ecgentry.train import train

    ptbxl = Path(args.shared) / "ptbxl"
    db = pd.read_csv(ptbxl / "ptbxl_database.csv", usecols=["ecg_id", "strat_fold"])
    folds = {int(e): int(f) for e, f in zip(db["ecg_id"], db["strat_fold"])}
    prepared, rendered = work / "prepared", work / "kit_pages"
    if not (prepared / ".done").exists():
        shutil.rmtree(prepared, ignore_errors=True)
        res = subprocess.run(
            [
                sys.executable,
                "prepare_ptbxl_data.py",
                "-i",
                str(ptbxl / args.records),
                "-pd",
                str(ptbxl / "ptbxl_database.csv"),
                "-pm",
                str(ptbxl / "scp_statements.csv"),
                "-o",
                str(prepared),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        if res.returncode != 0:
            raise RuntimeError(res.stdout + res.stderr)
        (prepared / ".done").write_text("ok\n")
    t0 = time.time()
    styles = render_challenge_pages(prepared, rendered, Path(args.kit), args.seed, args.workers)
    records = collect_records(rendered, prepared, folds, styles)
    if args.limit:
        rng = np.random.default_rng(args.seed)
        records = [records[int(i)] for i in sorted(rng.permutation(len(records))[: args.limit])]
    print(f"{len(records)} records with a page ({time.time() - t0:.0f} s to render or find them)", flush=True)

    cache = work / "page_cache"
    t0 = time.time()
    pages, stats = digitize_training_pages(
        [(r.name, str(r.image), r.fs, r.num_samples) for r in records],
        str(cache),
        min(2, max(1, args.workers)),
        progress=True,
    )
    page_of = {r.name: p for r, p in zip(records, pages)}
    st = stats.to_dict()
    print(
        f"digitized {st['misses']} pages ({st['hits']} cached) in {time.time() - t0:.0f} s, "
        f"{st['seconds_per_page']} s/page in a worker; status {st['status_counts']}",
        flush=True,
    )
    by_style: dict[str, dict[str, int]] = {}
    for r in records:
        s = by_style.setdefault(r.style, {})
        s[page_of[r.name].status] = s.get(page_of[r.name].status, 0) + 1
    print("status per page style: " + "; ".join(f"{k} {v}" for k, v in sorted(by_style.items())), flush=True)

    splits = (
        [(f"cv{k}", tuple(f for f in range(1, 9) if f not in g), g) for k, g in enumerate(CV_GROUPS)]
        if args.cv
        else [("holdout", (1, 2, 3, 4, 5, 6), (7, 8))]
    )
    pooled: dict[str, tuple[list, list]] = {v: ([], []) for v in variants}
    pooled_failed_read: dict[str, list] = {v: [] for v in variants}
    summaries: dict[str, list[dict]] = {v: [] for v in variants}
    for name, train_folds, test_folds in splits:
        tr = [r for r in records if r.fold in train_folds]
        te = [r for r in records if r.fold in test_folds]
        folder = work / "challenge" / name / "train"
        make_train_folder(tr, folder)
        for variant in variants:
            cfg_dict = json.loads(json.dumps(base_cfg))
            _deep_update(
                cfg_dict,
                {
                    "dx_use_image": False,
                    "dx_page_cache": str(cache),
                    "dx_digitize_workers": min(2, max(1, args.workers)),
                },
            )
            _deep_update(cfg_dict, CHALLENGE_VARIANTS[variant])
            model = work / "challenge" / name / f"model_{variant}"
            shutil.rmtree(model, ignore_errors=True)
            tv = time.time()
            summary = train(str(folder), str(model), TrainConfig.from_dict(cfg_dict))
            outputs = predict(model, [page_of[r.name] for r in te])
            pooled[variant][0].extend(r.labels for r in te)
            pooled[variant][1].extend(outputs)
            pooled_failed_read[variant].extend(predict(model, [page_of[r.name] for r in te], read_failed=True))
            summaries[variant].append(summary)
            sc = score([r.labels for r in te], outputs)
            print(
                f"  {name} {variant}: {len(tr)} train / {len(te)} test records, macro F {sc['macro_f']:.3f}, "
                f"out-of-fold macro F {summary.get('val_macro_f_tuned', float('nan')):.3f}, "
                f"{time.time() - tv:.0f} s",
                flush=True,
            )
    results = {v: score(*pooled[v]) for v in variants}
    mode = "5-fold CV over folds 1-8 (pooled)" if args.cv else "train folds 1-6, test folds 7-8"
    n_test = len(pooled[variants[0]][0])
    print(
        f"\nChallenge-generator pages (ecg-image-kit, mixed styles, references masked), PTB-XL {args.records}, "
        f"{n_test} test records, {mode}; status of all pages {st['status_counts']}"
    )
    print_challenge_table(results, variants)
    read_anyway = {v: score(pooled[v][0], pooled_failed_read[v]) for v in variants}
    print(
        "macro F with the failed pages classified from all their leads instead of the fallback labels "
        "(comparison only): " + ", ".join(f"{v} {read_anyway[v]['macro_f']:.3f}" for v in variants)
    )
    for v in variants:
        rep = summaries[v][-1].get("dx_calibration_report", {})
        if rep.get("calibrated") or rep.get("uncalibrated"):
            u, c = rep.get("uncalibrated", {}), rep.get("calibrated", {})
            print(
                f"{v}: out-of-fold calibration (last split) Brier {u.get('brier')} -> {c.get('brier')}, "
                f"ECE {u.get('ece')} -> {c.get('ece')}"
            )
    out_json = work / ("challenge_cv.json" if args.cv else "challenge_holdout.json")
    out_json.write_text(
        json.dumps(
            {
                "results": results,
                "read_failed_anyway": read_anyway,
                "status": st,
                "by_style": by_style,
                "summaries": {
                    v: [
                        {
                            k: s.get(k)
                            for k in (
                                "thresholds",
                                "dx_calibration_report",
                                "dx_decisions",
                                "dx_digitized_pages",
                                "dx_oof_predicted_vs_true",
                                "classes",
                            )
                        }
                        for s in summaries[v]
                    ]
                    for v in variants
                },
            },
            indent=1,
            default=float,
        )
    )
    return 0


def print_challenge_table(results: dict[str, dict], variants: list[str]) -> None:
    classes = sorted({c for v in variants for c in results[v]["f"]})
    from ecgvocab import sort_classes

    order = sort_classes(classes)
    w = 22
    print(f"{'':<10}{'true':>6}" + "".join(f"{v + ' F (pred)':>{w}}" for v in variants))
    print(f"{'macro F':<10}{'':>6}" + "".join(f"{results[v]['macro_f']:>{w}.3f}" for v in variants))
    for c in order:
        true = results[variants[0]]["counts"][c][1]
        cells = "".join(f"{results[v]['f'][c]:>{w - 6}.3f} ({results[v]['counts'][c][0]:>3})" for v in variants)
        print(f"{c:<10}{true:>6}" + cells)
    print()


CV_GROUPS: list[tuple[int, ...]] = [(1, 2), (3, 4), (5, 6), (7,), (8,)]


def time_training_pages(pages_folder: Path, n: int, workers: list[int], seed: int = 0) -> list[dict[str, Any]]:
    """Seconds per training page of ``ecgentry.digitized_training.digitize_training_pages`` (what ``train_models``
    adds) on a seeded sample of ``n`` pages of ``pages_folder``, each worker count with a fresh cache (the
    lead-label classifier trained once per call, included)."""
    import tempfile

    import helper_code as hc
    from ecgentry.digitized_training import digitize_training_pages

    heas = sorted(pages_folder.glob("*.hea"))
    pick = [heas[int(i)] for i in sorted(np.random.default_rng(seed).permutation(len(heas))[:n])]
    tasks = []
    for hea in pick:
        header = hea.read_text(encoding="utf-8")
        image = [ln.split(":", 1)[1].strip() for ln in header.splitlines() if ln.startswith("# Image:")][0]
        tasks.append(
            (
                hea.stem,
                str(pages_folder / image),
                float(hc.get_sampling_frequency(header)),
                int(hc.get_num_samples(header)),
            )
        )
    rows = []
    for w in workers:
        with tempfile.TemporaryDirectory() as cache:
            t0 = time.time()
            _, stats = digitize_training_pages(tasks, cache, w)
            wall = time.time() - t0
            again0 = time.time()
            _, hits = digitize_training_pages(tasks, cache, w)
            rows.append(
                {
                    "workers": w,
                    "pages": len(tasks),
                    "wall_s": round(wall, 1),
                    "wall_s_per_page": round(wall / len(tasks), 2),
                    "worker_s_per_page": stats.to_dict()["seconds_per_page"],
                    "rerun_s": round(time.time() - again0, 2),
                    "rerun_hits": hits.hits,
                }
            )
            print(rows[-1], flush=True)
    return rows


if __name__ == "__main__":
    # python -m benchmarks.classify_challenge render PREPARED OUT KIT
    # python -m benchmarks.classify_challenge time PAGES_FOLDER N [WORKERS...]   (seconds per training page)
    if sys.argv[1] == "render":
        render_challenge_pages(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))
    elif sys.argv[1] == "time":
        time_training_pages(Path(sys.argv[2]), int(sys.argv[3]), [int(w) for w in sys.argv[4:]] or [1, 2])
