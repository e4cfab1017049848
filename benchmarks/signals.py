"""Signal-side speed: synthetic record generation and feature extraction per 10 s record.

    python -m benchmarks.signals [--repeats 7]

Prints the median wall time per call (and the ratio to the 10 s of signal) for synthesize_ecg at 100/500/
1000 Hz and extract_features on a synthetic and a digitized-like (3x4+1 windows) record.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def median_time(fn, repeats: int) -> float:
    fn()  # warm-up (lazy imports)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    from ecgentry.train import digitization_like
    from ecgfeatures.features import extract_features
    from ecgrender.synth import synthesize_ecg

    print("| what | fs (Hz) | median s per 10 s record |\n| --- | --- | --- |")
    for fs in (100.0, 500.0, 1000.0):
        t = median_time(lambda: synthesize_ecg(["AFIB/AFL", "CD", "PVC"], fs=fs, duration_s=10.0, rng=1), args.repeats)
        print(f"| synthesize_ecg | {fs:.0f} | {t:.4f} |")
    sig, _ = synthesize_ecg(["NORM"], fs=500.0, duration_s=10.0, rng=0)
    windows = digitization_like(sig, 500.0, np.random.default_rng(0))
    for name, x in (("extract_features (full 12 x 10 s)", sig), ("extract_features (3x4+1 windows)", windows)):
        t = median_time(lambda: extract_features(x, 500.0), args.repeats)
        print(f"| {name} | 500 | {t:.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
