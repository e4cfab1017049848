"""Seconds per record of one whole ``team_code.run_models`` call on the Challenge generator's pages.

Usage: ``python -m benchmarks.run_time --shared ../shared/data [--preset clean200] [-n 12] [--model MODEL]
[--repeats 2]``.

Each chosen page of ``<shared>/ecg-image-kit`` (a 2200 x 1700 px page for the 200-DPI presets) is one record in a
temporary folder holding its header without the signal file (as the organisers' test folders hold them) and its
image. One process loads the model folder through ``team_code.load_models`` (``--model``; default a randomly
initialised entry with the tiny backbone and the classical trace map, ``ecgentry.random_entry``, which costs the
same as a trained one of that configuration), then runs ``team_code.run_models`` on every record ``--repeats``
times; the first call of the process is reported apart (lazy imports, the lead-label classifier). The table gives
the median, smallest and largest seconds per call after the first, with the machine's load average before and after
(the issue's budget: 3 s per 2200 x 1700 page on 2 cores).
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _records(kit: Path, preset: str, n: int) -> list[str]:
    """The first ``n`` records of ``kit/presets.csv`` printed with ``preset``."""
    with open(kit / "presets.csv", newline="") as f:
        rows = [r["record"] for r in csv.DictReader(f) if r["preset"] == preset]
    return rows[:n]


def _test_folder(kit: Path, records: list[str], folder: Path) -> None:
    """Copy each record's header (its signal file left out) and first image into ``folder``."""
    for rec in records:
        shutil.copyfile(kit / f"{rec}.hea", folder / f"{rec}.hea")
        shutil.copyfile(kit / f"{rec}-0.png", folder / f"{rec}-0.png")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shared", type=Path, required=True, help="path of ../shared/data")
    p.add_argument("--preset", default="clean200", help="ecg-image-kit preset of the pages (presets.csv)")
    p.add_argument("-n", type=int, default=12, help="number of pages")
    p.add_argument("--model", default=None, help="trained model folder (default: a random tiny entry)")
    p.add_argument("--repeats", type=int, default=2, help="calls per page")
    args = p.parse_args(argv)

    import team_code

    kit = args.shared / "ecg-image-kit"
    records = _records(kit, args.preset, args.n)
    if not records:
        print(f"no {args.preset} pages in {kit}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        data = tmp_path / "data"
        data.mkdir()
        _test_folder(kit, records, data)
        model = args.model
        if model is None:
            from ecgentry.random_entry import write_random_entry

            model = str(write_random_entry(tmp_path / "model", trace_source="classical"))
        load_before = os.getloadavg()[0]
        t0 = time.perf_counter()
        dig, cls = team_code.load_models(model, False)
        load_s = time.perf_counter() - t0
        seconds: list[float] = []
        first = None
        for _ in range(args.repeats):
            for rec in records:
                t0 = time.perf_counter()
                team_code.run_models(str(data / rec), dig, cls, False)
                dt = time.perf_counter() - t0
                if first is None:
                    first = dt
                else:
                    seconds.append(dt)
        load_after = os.getloadavg()[0]
    print(
        f"\n`team_code.run_models` on {len(records)} ecg-image-kit {args.preset} pages x {args.repeats} "
        f"(model: {args.model or 'random tiny entry, classical trace map'})\n"
    )
    print("| load models (s) | first call (s) | calls | median s/call | min | max | load average before / after |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print(
        f"| {load_s:.2f} | {first:.2f} | {len(seconds)} | {statistics.median(seconds):.2f} | {min(seconds):.2f} | "
        f"{max(seconds):.2f} | {load_before:.1f} / {load_after:.1f} |"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
