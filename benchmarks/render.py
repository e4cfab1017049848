"""Renderer speed: pages per second per preset at 100 and 200 DPI, one and N workers, peak memory.

Usage: ``python benchmarks/render.py [--pages 8] [--workers N] [--dpi 100 200] [--presets ...]``.
"render" = render_page + preset; "+io" adds PNG (image and two masks) and JSON encoding in memory.
Peak memory is the maximum resident set size of one worker process (MiB).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ecgrender.distort import PRESETS, apply_preset  # noqa: E402
from ecgrender.page import PageSpec, render_page  # noqa: E402
from ecgvocab import STANDARD_LEADS  # noqa: E402


def _signal(fs: float = 500.0, seconds: float = 10.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(fs * seconds)) / fs
    out = np.zeros((t.size, 12))
    for j in range(12):
        for c in np.arange(0.3, seconds, 0.8):
            out[:, j] += rng.uniform(0.5, 1.5) * np.exp(-(((t - c) / 0.012) ** 2))
            out[:, j] += 0.2 * np.exp(-(((t - c - 0.25) / 0.05) ** 2))
        out[:, j] += 0.1 * np.sin(2 * np.pi * 0.3 * t + j)
    return out


def _run(preset: str, dpi: float, pages: int, seed: int, with_io: bool) -> tuple[float, float]:
    """Render ``pages`` pages; returns (seconds, peak RSS MiB of this process)."""
    from PIL import Image

    sig = _signal()
    rng = np.random.default_rng(seed)
    # warm-up (grid cache, imports) outside the timing
    render_page(sig, 500.0, STANDARD_LEADS, PageSpec(dpi=dpi), rng=0)
    t0 = time.perf_counter()
    for _ in range(pages):
        page = render_page(sig, 500.0, STANDARD_LEADS, PageSpec(dpi=dpi), rng=rng)
        page = apply_preset(page, preset, rng)
        if with_io:
            for arr in (page.image, page.lead_mask, page.class_mask):
                Image.fromarray(arr).save(io.BytesIO(), format="PNG")
            json.dumps(page.sidecar)
    dt = time.perf_counter() - t0
    return dt, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pages", type=int, default=8, help="pages per measurement and worker")
    ap.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1))
    ap.add_argument("--dpi", type=float, nargs="+", default=[100.0, 200.0])
    ap.add_argument("--presets", nargs="+", default=list(PRESETS), choices=PRESETS)
    args = ap.parse_args(argv)
    n = max(1, args.workers)
    print(f"{'preset':20s} {'dpi':>5s} {'1w pages/s':>11s} {'1w +io':>8s} {f'{n}w pages/s':>11s} {'peak MiB':>9s}")
    with ProcessPoolExecutor(max_workers=n) as pool:
        for dpi in args.dpi:
            for preset in args.presets:
                dt, _ = pool.submit(_run, preset, dpi, args.pages, 0, False).result()
                dt_io, peak = pool.submit(_run, preset, dpi, args.pages, 1, True).result()
                futures = [pool.submit(_run, preset, dpi, args.pages, 10 + w, False) for w in range(n)]
                results = [f.result() for f in futures]
                # parallel throughput: total pages over the slowest worker's render time
                par = n * args.pages / max(r[0] for r in results)
                peak = max([peak] + [r[1] for r in results])
                print(
                    f"{preset:20s} {dpi:5.0f} {args.pages / dt:11.1f} {args.pages / dt_io:8.1f} {par:11.1f} "
                    f"{peak:9.0f}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
