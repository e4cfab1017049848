"""Peak memory of one whole ``team_code.run_models`` call on the largest pages the image opener accepts.

Usage: ``python -m benchmarks.memory [--folder DIR] [--sources classical combined] [--backbone tiny|default]``.

Makes, in ``--folder`` (default: a new temporary folder, removed afterwards), a synthetic 12-lead record rendered
as a 3x4+1 page at 200 DPI and enlarged to a 1200-DPI letter page (13200 x 10200 px): an RGB PNG, its RGBA twin
(an opaque page with a transparent margin) and a JPEG. Each page is one Challenge record. For every page and trace
source a fresh process loads a randomly initialised model folder (``ecgentry.random_entry``: the tiny backbone, or
with ``--backbone default`` the default ``TrainConfig`` backbone at its input size) through ``team_code.load_models``
and runs ``team_code.run_models`` once; the table gives that process's peak resident set size
(``VmHWM``, MiB) after loading and after the call, the call's seconds and the share of finite output
samples. The issue's budget is 2 GB (1907 MiB) for the whole call.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ecgvocab import STANDARD_LEADS as LEADS  # noqa: E402 - after the path set-up

LETTER_1200_DPI = (13200, 10200)  # width, height in pixels
BUDGET_MIB = 2 * 1000**3 / 2**20  # 2 GB
SOURCES = ("classical", "segmentation", "combined")
FS_HZ = 500.0
NUM_SAMPLES = 5000


def make_pages(folder: Path, seed: int = 0) -> list[tuple[str, str]]:
    """Write the large pages and their records into ``folder``; returns ``[(record path, description)]``."""
    import cv2

    from ecgrender.page import PageSpec, render_page
    from ecgrender.synth import synthesize_ecg

    folder.mkdir(parents=True, exist_ok=True)
    signal, _ = synthesize_ecg(["NORM"], fs=FS_HZ, duration_s=NUM_SAMPLES / FS_HZ, rng=seed)
    small = render_page(signal, FS_HZ, LEADS, PageSpec(dpi=200.0), rng=seed).image
    big = cv2.resize(small, LETTER_1200_DPI, interpolation=cv2.INTER_LINEAR)  # (10200, 13200, 3) RGB
    del small
    bgr = big[..., ::-1]
    out: list[tuple[str, str]] = []
    pages = {
        "rgb.png": ("RGB PNG", lambda p: cv2.imwrite(str(p), bgr, [cv2.IMWRITE_PNG_COMPRESSION, 1])),
        "rgba.png": ("RGBA PNG", lambda p: cv2.imwrite(str(p), _with_alpha(bgr), [cv2.IMWRITE_PNG_COMPRESSION, 1])),
        "rgb.jpg": ("RGB JPEG", lambda p: cv2.imwrite(str(p), bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])),
    }
    for k, (name, (description, write)) in enumerate(pages.items()):
        record = f"page{k}"
        image = f"{record}-{name}"
        if not write(folder / image):
            raise OSError(f"could not write {folder / image}")
        lines = [f"{record} 12 {FS_HZ:g} {NUM_SAMPLES}"]
        lines += [f"{record}.dat 16 1000/mV 16 0 0 0 0 {lead}" for lead in LEADS]
        lines.append(f"# Image: {image}")
        (folder / f"{record}.hea").write_text("\n".join(lines) + "\n")
        size_mb = (folder / image).stat().st_size / 1e6
        out.append(
            (str(folder / record), f"{description} {LETTER_1200_DPI[0]}x{LETTER_1200_DPI[1]} ({size_mb:.1f} MB)")
        )
    return out


def _with_alpha(bgr: np.ndarray) -> np.ndarray:
    """BGRA: the page opaque, a 200-px transparent margin around it."""
    h, w = bgr.shape[:2]
    alpha = np.zeros((h, w, 1), np.uint8)
    alpha[200:-200, 200:-200] = 255
    return np.concatenate([bgr, alpha], axis=2)


def peak_mib() -> float:
    """This process's peak resident set size in MiB: ``VmHWM`` of ``/proc/self/status`` (``getrusage``'s maxrss
    would count the parent's peak too: the parent's memory map is shared until ``exec``)."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    raise OSError("no VmHWM in /proc/self/status")


def child(record: str, model_folder: str) -> dict[str, float]:
    """In a fresh process: load the models, run ``run_models`` once; peak RSS (MiB) after each step."""
    import team_code

    if os.environ.get("ECG_MEMORY_OPEN_GATE") == "1":
        # a random segmentation head gates the whole classical map away and the digitizer stops at "no ink";
        # an open gate (trace probability 1 everywhere) makes the combined source digitize the page in full
        import models.segmentation as seg

        real = seg.trace_probability
        seg.trace_probability = lambda *a, **k: np.ones_like(real(*a, **k))
    models = team_code.load_models(model_folder, False)
    loaded = peak_mib()
    t0 = time.perf_counter()
    signal, labels = team_code.run_models(record, models[0], models[1], False)
    seconds = time.perf_counter() - t0
    finite = float(np.isfinite(signal).mean()) if signal is not None else 0.0
    return {"loaded_mib": loaded, "peak_mib": peak_mib(), "seconds": seconds, "finite": finite}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folder", default=None, help="work folder for the pages and models (default: a temporary one)")
    ap.add_argument("--sources", nargs="+", choices=SOURCES, default=["classical", "combined"])
    ap.add_argument("--backbone", choices=("tiny", "default"), default="tiny")
    ap.add_argument(
        "--open-gate",
        action="store_true",
        help="combined source: segmentation map 1 everywhere, so the page is digitized in full",
    )
    ap.add_argument("--child", nargs=2, metavar=("RECORD", "MODEL"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        print(json.dumps(child(*args.child)))
        return 0

    from ecgentry.random_entry import write_random_entry

    folder = Path(args.folder) if args.folder else Path(tempfile.mkdtemp(prefix="ecg-memory-"))
    try:
        t0 = time.perf_counter()
        records = make_pages(folder / "data")
        print(f"pages made in {time.perf_counter() - t0:.0f} s in {folder}", file=sys.stderr)
        rows = []
        for source in args.sources:
            model = folder / f"model-{args.backbone}-{source}"
            write_random_entry(model, trace_source=source, backbone=None if args.backbone == "tiny" else {})
            for record, description in records:
                env = {
                    **os.environ,
                    "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
                    "ECG_MEMORY_OPEN_GATE": "1" if args.open_gate and source == "combined" else "0",
                }
                res = subprocess.run(
                    [sys.executable, "-m", "benchmarks.memory", "--child", record, str(model)],
                    cwd=ROOT,
                    env=env,
                    capture_output=True,
                    text=True,
                )
                if res.returncode != 0:
                    print(res.stderr[-2000:], file=sys.stderr)
                    rows.append((description, source, "failed", "", "", ""))
                    continue
                r = json.loads(res.stdout.strip().splitlines()[-1])
                label = source + (" (open gate)" if args.open_gate and source == "combined" else "")
                rows.append(
                    (
                        description,
                        label,
                        f"{r['loaded_mib']:.0f}",
                        f"{r['peak_mib']:.0f}",
                        f"{r['seconds']:.1f}",
                        f"{100 * r['finite']:.0f} %",
                    )
                )
                print(" | ".join(rows[-1]), file=sys.stderr)
        print(f"\nrun_models peak RSS, {args.backbone} random backbone (budget {BUDGET_MIB:.0f} MiB)\n")
        print("| page | trace source | RSS after load_models (MiB) | peak RSS of the call (MiB) | s | finite samples |")
        print("| --- | --- | --- | --- | --- | --- |")
        for row in rows:
            print("| " + " | ".join(row) + " |")
    finally:
        if not args.folder:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
