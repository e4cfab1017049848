"""Benchmark the image backbones on this CPU: parameters, feature sizes, time and memory per page.

Usage: ``python -m benchmarks.models [--sizes 256x512 512x1024] [--runs 3] [--threads N]``

Every HF row is built from a random-init config of the named architecture (no weights are downloaded).
timm / torchvision rows print ``n/a`` when the package is not importable. Times are medians over
``--runs`` repetitions with batch size 1 (one page). Each row runs in a fresh child process, so the
memory column is that row's own peak resident set size (``resource.getrusage``, Linux KiB -> MiB) minus
the child's size after building the model: roughly the activation memory of forward + backward.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import multiprocessing as mp
import os
import resource
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.backbone import _builtin_hf_config, count_parameters, create_backbone  # noqa: E402
from models.config import BackboneConfig  # noqa: E402

HF_ROWS = [
    "facebook/convnextv2-atto-1k-224",
    "microsoft/resnet-18",
    "microsoft/swinv2-tiny-patch4-window16-256",
]
OPTIONAL_ROWS = [("timm", "convnextv2_atto"), ("timm", "resnet18"), ("torchvision", "resnet18")]


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _median_time(fn, runs: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_one(cfg: BackboneConfig, runs: int, threads: int | None = None) -> dict[str, str]:
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    logging.basicConfig(level=logging.ERROR)
    bb = create_backbone(cfg)
    gc.collect()
    rss0 = _peak_rss_mib()
    x = torch.randn(1, 3, cfg.image_height, cfg.image_width)
    bb.eval()

    def fwd() -> None:
        with torch.no_grad():
            bb(x)

    bb.train()

    def fwd_bwd() -> None:
        feats = bb(x)
        sum(f.float().mean() for f in feats).backward()
        bb.zero_grad(set_to_none=True)

    t_fwd = _median_time(fwd, runs)
    t_bwd = _median_time(fwd_bwd, runs)
    with torch.no_grad():
        shapes = [tuple(f.shape[1:]) for f in bb.eval()(x)]
    row = {
        "params_M": f"{count_parameters(bb) / 1e6:.2f}",
        "trainable_M": f"{count_parameters(bb, trainable_only=True) / 1e6:.2f}",
        "last_stage": "x".join(str(s) for s in shapes[-1]),
        "fwd_s": f"{t_fwd:.3f}",
        "fwd_bwd_s": f"{t_bwd:.3f}",
        "peak_MiB": f"{max(0.0, _peak_rss_mib() - rss0):.0f}",
    }
    bb = None  # release the backbone (fwd and fwd_bwd refer to it) before collecting
    gc.collect()
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["256x512", "512x1024"], help="HEIGHTxWIDTH in pixels")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    sizes = [tuple(int(v) for v in s.lower().split("x")) for s in args.sizes]
    cols = ["source", "name", "input", "params_M", "trainable_M", "last_stage", "fwd_s", "fwd_bwd_s", "peak_MiB"]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch 1, median of {args.runs} runs")
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    rows: list[tuple[str, str]] = [("hf", n) for n in HF_ROWS] + OPTIONAL_ROWS
    for source, name in rows:
        available = True
        if source != "hf":
            try:
                importlib.import_module(source)
            except Exception:  # noqa: BLE001 - not installed or broken build
                available = False
        for h, w in sizes:
            base = {"source": source, "name": name, "input": f"{h}x{w}"}
            if not available:
                vals = {c: "n/a" for c in cols[3:]}
            else:
                hf_config = _builtin_hf_config(name) if source == "hf" else None
                cfg = BackboneConfig(
                    source=source, name=name, pretrained=False, hf_config=hf_config, image_height=h, image_width=w
                )
                with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as pool:
                    vals = pool.submit(bench_one, cfg, args.runs, args.threads).result()
            merged = {**base, **vals}
            print("| " + " | ".join(merged[c] for c in cols) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
