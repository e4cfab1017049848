"""Classification benchmark on real PTB-XL records: the whole entry (train_model.py -> run_model.py ->
evaluate_model.py) and the gain of each part of the Dx head.

    python -m benchmarks.classify [--shared ../shared/data] [--records records100|records500]
                                  [--preset clean] [--dpi 100] [--epochs 12] [--workers 2] [--cv] [--out DIR]

Steps: ``prepare_ptbxl_data.py`` turns ``<shared>/ptbxl/<records>`` into labelled Challenge records;
``python -m ecgrender render`` draws one page per record (``--preset``, ``--layout``, ``--dpi``); records of
PTB-XL ``strat_fold`` 1-6 train (``train_model.py``, signals + images), folds 7-8 are tested with their images
only (``remove_hidden_data.py -m``: no signal, no labels) through ``run_model.py`` and scored with
``evaluate_model.evaluate_model``. Three Dx-head variants are trained and scored on the same pages:

* ``fused``: image features + signal features (``ecgfeatures`` of the digitized signal at run time);
* ``image``: image features only (``{"signal_features": false}``);
* ``signal``: signal features only (``{"dx_use_image": false}``).

``--cv``: 5-fold cross-validation over folds 1-8 (test groups {1,2}, {3,4}, {5,6}, {7}, {8}); the outputs of
the five test groups are pooled and scored once over all records.

Benchmark training configuration (chosen so that the default mode, all three variants, runs in well under an
hour on a 2-core CPU): backbone input 256 x 320 px (the default backbone, randomly initialised when no
pre-trained weights are on disk), ``"segmentation": false`` (no rendered training pages; the digitizer uses
the classical trace map, ``"trace_source": "classical"``), ``--epochs`` (default 12) with early stopping,
batch size 8; pages at 100 DPI, 3x4+1 layout, ``clean`` preset. Override any key with ``--config JSON``.

The Dx head is a class-balanced L2 logistic regression fitted in one full-batch problem after the page loop
(``TrainConfig.dx_fit="full_batch"``, see ``ecgentry/train.py``); with ``"segmentation": false`` and no image
features in the head there is nothing else to train, so no page loop runs (``epochs`` then only matters for the
``image`` variant, whose backbone is trained from scratch). ``benchmarks/classify_features.py`` compares head
variants on cached features in seconds.

``--challenge --kit ../shared/tools/ecg-image-kit.sh``: the Challenge-page mode
(:mod:`benchmarks.classify_challenge`). Every record of ``<shared>/ptbxl/<records>`` is printed once by the
Challenge's own generator (a seeded mix of its five page styles: clean 200 DPI, clean 100 DPI, black and white,
wrinkles, rotation + noise; references masked); the pages are digitized once, two worker processes at most,
and cached by image content in ``OUT/page_cache`` (a rerun digitizes nothing); folds 1-6 train (each record's
prepared header with its full signal and its page), folds 7-8 are tested (``--cv``: the 5-fold CV above), and
three Dx heads are compared (``--variants``, default ``true,true+decide,digitized``): fitted on true signals with
fixed 0.5 thresholds (the head before digitized-page training), the same with calibrated thresholds and the rate
cap, and fitted on the digitized training pages (the default ``TrainConfig``). Test pages are classified from
their cached digitizations through ``ecgentry.infer.dx_probabilities`` and ``labels_from_probs`` (what
``run_record`` does after digitizing); printed: macro F, F per class and the predicted (true) record counts per
class. ``--limit N`` takes a seeded sample of N records (a quicker, smaller run).

Prints, per variant: macro F-measure (over the classes present in the test labels), F per class with the
number of test records carrying the class (support), the digitization SNR and the wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ecgvocab import DX_CLASSES as CLASSES  # noqa: E402 - after the path set-up

VARIANTS: dict[str, dict] = {
    "fused": {},
    "image": {"signal_features": False},
    "signal": {"dx_use_image": False},
}
BENCH_CONFIG: dict = {
    "backbone": {"image_height": 256, "image_width": 320},
    "segmentation": False,
    "trace_source": "classical",
    "trace_source_pages": 0,
    "batch_size": 8,
}
CV_GROUPS: list[tuple[int, ...]] = [(1, 2), (3, 4), (5, 6), (7,), (8,)]
HOLDOUT = ((1, 2, 3, 4, 5, 6), (7, 8))


def _run(cmd: list[str], env: dict[str, str] | None = None, log: Path | None = None) -> None:
    """Run a command from the repository root; raise with the log tail when it fails."""
    full_env = dict(os.environ)
    full_env.setdefault("HF_HUB_OFFLINE", "1")
    full_env.update(env or {})
    t0 = time.time()
    res = subprocess.run(cmd, cwd=ROOT, env=full_env, capture_output=True, text=True)
    text = res.stdout + res.stderr
    if log is not None:
        log.write_text(text, encoding="utf-8")
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({res.returncode}):\n{text[-3000:]}")
    print(f"  [{time.time() - t0:6.1f} s] {' '.join(Path(c).name if '/' in c else c for c in cmd[1:4])}", flush=True)


def record_fold(record_name: str, folds: dict[int, int]) -> int | None:
    """PTB-XL strat_fold of a record named ``<ecg_id>_lr``/``<ecg_id>_hr``; None when unknown."""
    try:
        return folds.get(int(record_name.split("_")[0]))
    except ValueError:
        return None


def link_subset(src: Path, dst: Path, records: list[Path]) -> None:
    """Make ``dst`` a Challenge folder holding the files of ``records`` (paths without extension, under ``src``) as
    hard links (copies across file systems): the entry's path guard refuses files that resolve outside the
    record's folder, symbolic links included."""
    for rec in records:
        rel = rec.relative_to(src)
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        for f in rec.parent.glob(rec.name + "*"):
            if f.name == rec.name + ".hea" or f.name.startswith(rec.name + ".") or f.name.startswith(rec.name + "-"):
                target = dst / rel.parent / f.name
                if not target.exists():
                    try:
                        os.link(f.resolve(), target)
                    except OSError:
                        shutil.copy2(f, target)


def read_labels(folder: Path) -> dict[str, list[str]]:
    """``{record path relative to folder: labels}`` from the headers under ``folder``."""
    out = {}
    for hea in sorted(folder.rglob("*.hea")):
        labels: list[str] = []
        for line in hea.read_text(encoding="utf-8").splitlines():
            if line.startswith("# Labels:"):
                labels = [x.strip() for x in line.split(":", 1)[1].split(",") if x.strip()]
        out[str(hea.relative_to(folder).with_suffix(""))] = labels
    return out


def prepare(args: argparse.Namespace, work: Path) -> tuple[Path, dict[int, int]]:
    """Prepared + rendered PTB-XL records under ``work/rendered`` and ``{ecg_id: strat_fold}``."""
    import pandas as pd

    ptbxl = Path(args.shared) / "ptbxl"
    db_file = ptbxl / "ptbxl_database.csv"
    if not db_file.is_file():
        raise FileNotFoundError(f"{db_file} not found: pass --shared pointing at the shared data folder")
    db = pd.read_csv(db_file, usecols=["ecg_id", "strat_fold"])
    folds = {int(e): int(f) for e, f in zip(db["ecg_id"], db["strat_fold"])}
    prepared, rendered = work / "prepared", work / "rendered"
    if not (rendered / ".done").exists():
        shutil.rmtree(prepared, ignore_errors=True)
        shutil.rmtree(rendered, ignore_errors=True)
        py = sys.executable
        _run(
            [
                py,
                "prepare_ptbxl_data.py",
                "-i",
                str(ptbxl / args.records),
                "-pd",
                str(db_file),
                "-pm",
                str(ptbxl / "scp_statements.csv"),
                "-o",
                str(prepared),
            ]
        )
        cmd = [
            py,
            "-m",
            "ecgrender",
            "render",
            "-i",
            str(prepared),
            "-o",
            str(rendered),
            "--preset",
            args.preset,
            "--seed",
            str(args.seed),
            "--workers",
            str(args.workers),
            "--layout",
            args.layout,
        ]
        if args.dpi:
            cmd += ["--dpi", str(args.dpi)]
        _run(cmd)
        (rendered / ".done").write_text("ok\n")
    return rendered, folds


def split(
    rendered: Path,
    folds: dict[int, int],
    work: Path,
    name: str,
    train_folds: tuple[int, ...],
    test_folds: tuple[int, ...],
) -> tuple[Path, Path, Path]:
    """(train folder, labelled test folder, hidden test folder: images only) for one split."""
    base = work / name
    train, test, hidden = base / "train", base / "test", base / "test_hidden"
    if not (base / ".done").exists():
        shutil.rmtree(base, ignore_errors=True)
        records = [h.with_suffix("") for h in sorted(rendered.rglob("*.hea"))]
        tr = [r for r in records if record_fold(r.name, folds) in train_folds]
        te = [r for r in records if record_fold(r.name, folds) in test_folds]
        link_subset(rendered, train, tr)
        link_subset(rendered, test, te)
        _run([sys.executable, "remove_hidden_data.py", "-i", str(test), "-o", str(hidden), "-m"])
        (base / ".done").write_text("ok\n")
    return train, test, hidden


def train_and_run(variant: str, cfg: dict, train: Path, hidden: Path, outputs: Path, model: Path) -> dict:
    """Train one variant and run it on the hidden test folder (outputs into ``outputs``); returns entry.json."""
    py = sys.executable
    env = {"ECG_TRAIN_CONFIG": json.dumps(cfg)}
    shutil.rmtree(model, ignore_errors=True)
    _run([py, "train_model.py", "-d", str(train), "-m", str(model)], env, model.parent / f"{model.name}_train.log")
    _run(
        [py, "run_model.py", "-d", str(hidden), "-m", str(model), "-o", str(outputs), "-f"],
        env,
        model.parent / f"{model.name}_run.log",
    )
    return json.loads((model / "entry.json").read_text(encoding="utf-8"))


def print_table(results: dict[str, dict], support: dict[str, int], seconds: dict[str, float]) -> None:
    """Macro F, F per class (support = test records with the class), SNR and time per variant."""
    names = list(results)
    present = [c for c in CLASSES if support.get(c, 0) > 0]
    others = sorted(c for c in support if c not in CLASSES and support[c] > 0)
    width = 12
    print()
    print(f"{'':<16}{'support':>8}" + "".join(f"{n:>{width}}" for n in names))
    print(f"{'macro F':<16}{'':>8}" + "".join(f"{results[n]['f_measure']:>{width}.3f}" for n in names))
    for c in present + others:
        row = [results[n]["f_per_class"].get(c, float("nan")) for n in names]
        print(f"{c:<16}{support[c]:>8}" + "".join(f"{v:>{width}.3f}" for v in row))
    print(f"{'SNR (dB)':<16}{'':>8}" + "".join(f"{results[n]['snr']:>{width}.2f}" for n in names))
    print(f"{'seconds':<16}{'':>8}" + "".join(f"{seconds[n]:>{width}.0f}" for n in names))
    print()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shared", default=str(ROOT.parent / "shared" / "data"), help="shared data folder")
    p.add_argument(
        "--records",
        default="records100",
        choices=["records100", "records500"],
        help="records100: all 353 at 100 Hz; records500: 244 at 500 Hz",
    )
    p.add_argument("--preset", default="clean", help="render preset (clean, scan, photo, bw, wrinkled, mixed, ...)")
    p.add_argument("--layout", default="3x4+1", help="page layout of the rendered images")
    p.add_argument("--dpi", type=float, default=100.0, help="render DPI (0: varied 100-300)")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--workers", type=int, default=2, help="render worker processes")
    p.add_argument("--variants", default="fused,image,signal", help="comma-separated subset of fused,image,signal")
    p.add_argument("--cv", action="store_true", help="5-fold cross-validation over folds 1-8")
    p.add_argument("--config", default="", help="extra JSON overrides of the benchmark training config")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--challenge",
        action="store_true",
        help="pages of the Challenge's own generator (needs --kit); see the module docstring",
    )
    p.add_argument(
        "--kit",
        default=str(ROOT.parent / "shared" / "tools" / "ecg-image-kit.sh"),
        help="path of ecg-image-kit.sh (the Challenge generator; never copied into the project)",
    )
    p.add_argument("--limit", type=int, default=0, help="--challenge: a seeded sample of this many records (0: all)")
    p.add_argument("--out", default="", help="work folder (default: a fresh temporary folder, removed at the end)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from benchmarks.classify_challenge import CHALLENGE_VARIANTS, DEFAULT_CHALLENGE_VARIANTS
    from ecgentry.config import _deep_update
    from evaluate_model import evaluate_model

    known = CHALLENGE_VARIANTS if args.challenge else VARIANTS
    if args.challenge and args.variants == "fused,image,signal":
        args.variants = ",".join(DEFAULT_CHALLENGE_VARIANTS)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in known]
    if unknown:
        print(f"error: unknown variants {unknown}; choose from {list(known)}", file=sys.stderr)
        return 2
    base_cfg = json.loads(json.dumps(BENCH_CONFIG))
    base_cfg["epochs"] = args.epochs
    base_cfg["seed"] = args.seed
    if args.config:
        _deep_update(base_cfg, json.loads(args.config))

    import tempfile

    work = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="ecg_classify_"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    print(f"work folder {work}; benchmark config {json.dumps(base_cfg)}", flush=True)
    if args.challenge:
        from benchmarks.classify_challenge import run_challenge

        code = run_challenge(args, work, base_cfg, variants)
        print(f"total {time.time() - t0:.0f} s")
        if not args.out:
            shutil.rmtree(work, ignore_errors=True)
        return code
    base_cfg["dx_page_cache"] = str(work / "page_cache")  # digitized training pages, kept between variants and runs
    rendered, folds = prepare(args, work)
    splits = (
        [(f"cv{k}", tuple(f for f in range(1, 9) if f not in g), g) for k, g in enumerate(CV_GROUPS)]
        if args.cv
        else [("holdout", *HOLDOUT)]
    )

    results: dict[str, dict] = {}
    seconds: dict[str, float] = {}
    label_folder = rendered if args.cv else None
    for variant in variants:
        cfg = json.loads(json.dumps(base_cfg))
        _deep_update(cfg, VARIANTS[variant])
        outputs = work / f"outputs_{variant}"
        shutil.rmtree(outputs, ignore_errors=True)
        tv = time.time()
        for name, train_folds, test_folds in splits:
            train, test, hidden = split(rendered, folds, work, name, train_folds, test_folds)
            if label_folder is None:
                label_folder = test
            print(f"{variant} / {name}: train folds {train_folds}, test folds {test_folds}", flush=True)
            entry = train_and_run(variant, cfg, train, hidden, outputs, work / name / f"model_{variant}")
            score = (
                "out-of-fold macro F (training records)"
                if entry.get("dx_fit") == "full_batch"
                else "val macro F (tuned)"
            )
            print(
                f"  records_used {entry.get('records_used')}, train pages {entry.get('train_pages')}, "
                f"Dx fit {entry.get('dx_fit', 'sgd')}, {score} {entry.get('val_macro_f_tuned', float('nan')):.3f}, "
                f"epochs run {len(entry.get('history', []))}",
                flush=True,
            )
        seconds[variant] = time.time() - tv
        if args.cv:  # pooled: every record of folds 1-8 has exactly one output
            label_folder = work / "cv_labels"
            if not label_folder.exists():
                records = [
                    h.with_suffix("")
                    for h in sorted(rendered.rglob("*.hea"))
                    if record_fold(h.stem, folds) in range(1, 9)
                ]
                link_subset(rendered, label_folder, records)
        results[variant] = evaluate_model(str(label_folder), str(outputs))

    labels = read_labels(label_folder)
    support: dict[str, int] = {}
    for lab in labels.values():
        for c in lab:
            support[c] = support.get(c, 0) + 1
    mode = "5-fold CV over folds 1-8 (pooled)" if args.cv else "train folds 1-6, test folds 7-8"
    print(
        f"\nPTB-XL {args.records}, {len(labels)} test records, {mode}; preset {args.preset}, layout {args.layout}, "
        f"dpi {args.dpi or 'varied'}, epochs {args.epochs}"
    )
    print_table(results, support, seconds)
    print(f"total {time.time() - t0:.0f} s")
    if not args.out:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
