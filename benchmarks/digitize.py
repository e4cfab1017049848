"""Digitization benchmark: held-out signals rendered with several presets, digitized, scored officially.

    python -m benchmarks.digitize [--shared ../shared/data] [--model MODEL_FOLDER] [-n 6] [--out DIR]

Signals: synthetic records from a seed never used in training (and, with --shared, JS00001, PTB s0010_re
(first 10 s) and a PTB-XL slice). Each preset renders one 3x4+1 page per record; the references keep only
the printed samples (NaN elsewhere), as the organisers' hidden references do; pages are digitized with
``team_code.run_models`` when --model is given (the trained entry), else with the classical digitizer;
outputs are written as WFDB and scored with ``evaluate_model.evaluate_model`` (official 2024 SNR with the
shift search). Prints SNR per preset, seconds per page (median) and peak traced memory per page; with
--shared also the layout and scale found on every real scan. The seed's regression head can be compared
by training a model with ``{"regression": true, "digitizer": "regression"}`` and passing it as --model.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PRESETS = [  # name, dpi, distortions (None: clean) or preset name
    ("clean 200 DPI", 200, None),
    ("clean 100 DPI", 100, None),
    ("bw", 200, "bw"),
    ("rotation+noise", 200, ["rotation", "gaussian_noise"]),
    ("wrinkled", 200, "wrinkled"),
    ("photo", 200, "photo"),
    # the Challenge's generator with --augment: rotation up to 10 degrees, a crop, noise, optional wrinkles
    ("ecg-image-kit-like", 200, "ecg-image-kit-like"),
]


def held_out_signals(n: int, shared: Path | None) -> list[tuple[str, np.ndarray, float, list[str]]]:
    """(name, signal (N, 12) mV, fs, labels) for the benchmark records."""
    from ecgrender.records import load_record_12
    from ecgrender.synth import sample_labels, synthesize_ecg

    rng = np.random.default_rng(123456)  # a seed never used for training data
    out = []
    for i in range(n):
        labels = sample_labels(rng)
        sig, _ = synthesize_ecg(labels, fs=500.0, duration_s=10.0, rng=rng)
        out.append((f"synth{i:02d}", sig, 500.0, labels))
    if shared is not None:
        candidates = [shared / "js00001" / "JS00001", shared / "ptbdb_s0010" / "s0010_re"]
        candidates += sorted((shared / "ptbxl" / "records500").rglob("*.hea"))[:3]
        for path in candidates:
            path = Path(str(path).removesuffix(".hea"))
            try:
                sig, fs, _, _ = load_record_12(path)
            except Exception as exc:
                print(f"skipping {path}: {exc}")
                continue
            out.append((path.name, sig[: int(round(10 * fs))], fs, []))
    return out


def render_set(folder: Path, records, dpi: float, distortion, seed: int, mask_unplotted: bool = True) -> None:
    """Render one page per record; the reference signal is NaN where not printed (as the organisers' hidden
    references) unless ``mask_unplotted`` is False."""
    from PIL import Image

    from ecgrender.distort import apply_distortions, apply_preset
    from ecgrender.page import PageSpec, render_page
    from ecgrender.records import write_challenge_record
    from ecgrender.render_cli import plotted_mask
    from ecgvocab import STANDARD_LEADS

    folder.mkdir(parents=True, exist_ok=True)
    for k, (name, sig, fs, labels) in enumerate(records):
        spec = PageSpec(dpi=dpi, layout="3x4+1")
        page = render_page(sig, fs, list(STANDARD_LEADS), spec, rng=seed + k)
        if isinstance(distortion, str):
            page = apply_preset(page, distortion, rng=seed + k)
        elif distortion:
            page = apply_distortions(page, distortion, rng=seed + k)
        Image.fromarray(page.image).save(folder / f"{name}-0.png")
        comments = [f"Labels: {', '.join(labels)}"] if labels else []
        ref = np.where(plotted_mask(page.sidecar, sig.shape[0]), sig, np.nan) if mask_unplotted else sig
        write_challenge_record(folder, name, ref, fs, list(STANDARD_LEADS), comments, [f"{name}-0.png"])


def digitize_folder(
    data: Path, out: Path, model_folder: str | None, trace_source: str | None = None
) -> tuple[list[float], list[float]]:
    """Digitize every record of ``data`` into ``out``; returns seconds per page and peak traced MiB (first pages).
    ``trace_source`` overrides the model's (see ``ecgentry.config.TRACE_SOURCES``)."""
    import helper_code as hc
    from ecgdigitize.image_io import load_image
    from ecgdigitize.pipeline import digitize_page
    from ecgentry.records import record_image_files

    entry = None
    if model_folder:
        import team_code

        entry = team_code.load_models(model_folder, False)
        if trace_source:
            entry[0].summary["trace_source"] = trace_source
    seconds, peaks = [], []

    def digitize(record: str, header: str):
        if entry is not None:
            return team_code.run_models(record, entry[0], entry[1], False)
        image = load_image(record_image_files(record, header)[0])
        return digitize_page(
            image,
            None,
            fs=hc.get_sampling_frequency(header),
            num_samples=hc.get_num_samples(header),
            lead_names=hc.get_signal_names(header),
        ).signal, []

    for k, rec in enumerate(hc.find_records(str(data))):
        record = str(data / rec)
        header = hc.load_header(record)
        t0 = time.perf_counter()
        signal, labels = digitize(record, header)  # timed without tracemalloc (it slows allocation-heavy code)
        seconds.append(time.perf_counter() - t0)
        if k < 3:  # peak traced memory from a second call on the first pages
            tracemalloc.start()
            digitize(record, header)
            peaks.append(tracemalloc.get_traced_memory()[1] / 2**20)
            tracemalloc.stop()
        output = str(out / rec)
        os.makedirs(out, exist_ok=True)
        hc.save_header(output, header)
        comments = [line for line in header.split("\n") if line.startswith("#")]
        hc.save_signals(output, np.clip(np.nan_to_num(signal, nan=np.nan), -30, 30), comments)
        hc.save_labels(output, labels)
    return seconds, peaks


def ecg_image_kit(
    folder: Path, out: Path, model_folder: str | None = None, trace_source: str | None = None
) -> dict[str, float]:
    """Digitize the Challenge generator's pages in ``folder`` (``presets.csv`` names each record's style) with the
    classical digitizer (or the model's, ``trace_source`` overriding its trace source) and score them with the official scorer against their masked references; prints one row
    per preset and returns {preset: mean SNR dB} (plus ``all``)."""
    import csv

    from evaluate_model import evaluate_model

    presets: dict[str, str] = {}
    with open(folder / "presets.csv", newline="") as f:
        for row in csv.DictReader(f):
            presets[row["record"]] = row["preset"]
    seconds, peaks = digitize_folder(folder, out, model_folder, trace_source)
    scores = evaluate_model(str(folder), str(out))
    per_record: dict[str, list[float]] = {}
    for (record, _lead), snr in scores["snr_per_lead"].items():
        per_record.setdefault(record, []).append(snr)
    table: dict[str, float] = {}
    print("\n| ecg-image-kit preset | pages | SNR (dB) | worst page (dB) |\n| --- | --- | --- | --- |")
    for preset in sorted(set(presets.values())):
        recs = [r for r, p in presets.items() if p == preset and r in per_record]
        means = {r: float(np.nanmean(per_record[r])) for r in recs}
        table[preset] = float(np.nanmean([v for r in recs for v in per_record[r]]))
        worst = min(means, key=means.get)
        print(f"| {preset} | {len(recs)} | {table[preset]:.2f} | {means[worst]:.2f} ({worst}) |")
    table["all"] = float(scores["snr"])
    print(f"| all | {len(per_record)} | {table['all']:.2f} | |")
    print(f"s/page median {np.median(seconds):.2f}, peak traced MiB median {np.median(peaks):.0f}")
    return table


def real_scans(folder: Path, out: Path) -> None:
    """Digitize every real scan in ``folder``: prints the layout, scale, self-check status and its first reasons per
    scan, and writes each scan's overlay picture to ``out`` (look at them: no reference signal exists)."""
    from PIL import Image

    from ecgdigitize.image_io import load_image
    from ecgdigitize.overlay import draw_overlay
    from ecgdigitize.pipeline import digitize_page

    out.mkdir(parents=True, exist_ok=True)
    print(f"\nReal scans (overlays in {out}):\n")
    print(
        "| scan | size | layout | fits | px/mm x/y (source) | status | s | reasons |\n| --- | --- | --- | --- | --- | --- "
        "| --- | --- |"
    )
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in (".png", ".jpg", ".jpeg"):
            continue
        t0 = time.perf_counter()
        image = load_image(path)
        res = digitize_page(image, None)
        seconds = time.perf_counter() - t0
        lay, sc = res.layout, res.scale
        Image.fromarray(draw_overlay(image, res)).save(out / f"{path.stem}_overlay.png")
        scale = f"{sc.px_per_mm_x:.2f}/{sc.px_per_mm_y:.2f} ({sc.source})" if sc else "-"
        print(
            f"| {path.name} | {image.shape[1]}x{image.shape[0]} | {lay.name if lay else '-'} | "
            f"{lay.fits if lay else False} | {scale} | {res.status} | {seconds:.2f} | "
            f"{'; '.join(res.status_reasons[:2])[:160]} |"
        )


def main(argv: list[str] | None = None) -> int:
    from ecgentry.config import TRACE_SOURCES

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=None, help="path of ../shared/data (optional)")
    parser.add_argument("--model", default=None, help="trained model folder (default: classical digitizer)")
    parser.add_argument(
        "--trace-source",
        default=None,
        choices=TRACE_SOURCES[1:],
        help="with --model: the trace map to use (default: the model's own choice)",
    )
    parser.add_argument("-n", type=int, default=6, help="synthetic held-out records")
    parser.add_argument("--out", type=Path, default=None, help="work folder (default: a temporary one)")
    parser.add_argument(
        "--kit-only",
        action="store_true",
        help="only the ecg-image-kit pages and the real scans of --shared (no rendered presets)",
    )
    parser.add_argument(
        "--unmasked",
        action="store_true",
        help="keep the whole reference signal (SNR then scales with the printed fraction)",
    )
    args = parser.parse_args(argv)
    from evaluate_model import evaluate_model

    work = args.out or Path(tempfile.mkdtemp(prefix="digitize-bench-"))
    records = [] if args.kit_only else held_out_signals(args.n, args.shared)
    print(
        f"{len(records)} held-out records; digitizer: {args.model or 'classical'}"
        f"{' (trace source ' + args.trace_source + ')' if args.trace_source else ''}; work folder {work}\n"
    )
    if records:
        print("| preset | pages | SNR (dB) | s/page (median) | peak MiB (median) |\n| --- | --- | --- | --- | --- |")
    for i, (name, dpi, distortion) in enumerate(PRESETS if records else []):
        data = work / f"set{i}" / "data"
        out = work / f"set{i}" / "out"
        shutil.rmtree(work / f"set{i}", ignore_errors=True)
        render_set(data, records, dpi, distortion, seed=1000 * (i + 1), mask_unplotted=not args.unmasked)
        seconds, peaks = digitize_folder(data, out, args.model, args.trace_source)
        scores = evaluate_model(str(data), str(out))
        print(
            f"| {name} | {len(seconds)} | {scores['snr']:.2f} | {np.median(seconds):.2f} | {np.median(peaks):.0f} |",
            flush=True,
        )
    if args.shared is not None and (args.shared / "ecg-image-kit" / "presets.csv").is_file():
        ecg_image_kit(args.shared / "ecg-image-kit", work / "ecg-image-kit", args.model, args.trace_source)
    if args.shared is not None and (args.shared / "real-scans").is_dir():
        real_scans(args.shared / "real-scans", work / "real-scans")
    return 0


if __name__ == "__main__":
    sys.exit(main())
