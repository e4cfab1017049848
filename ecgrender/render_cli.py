"""``python -m ecgrender render``: render WFDB records as paper-ECG images with sidecars and masks.

For each record ``<rel>/<name>`` under ``-i`` it writes, under ``-o`` (mirrored subfolders):
``<name>.hea/.dat`` (12 canonical leads, format 16, 1000/mV, input comments kept plus ``# Image:``),
and per image k: ``<name>-<k>.png``, ``<name>-<k>.json`` (sidecar), ``<name>-<k>_leads.png`` and
``<name>-<k>_classes.png`` (uint8 masks).  Per-record seeds derive from ``--seed`` and the record's
relative name, so results do not depend on ``--workers``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

from ecgrender.distort import PRESETS, apply_preset
from ecgrender.page import LAYOUTS, PageSpec, render_page
from ecgrender.records import load_record_12, write_challenge_record
from ecgvocab import STANDARD_LEADS

logger = logging.getLogger(__name__)


@dataclass
class RecordResult:
    record: str
    ok: bool
    num_images: int
    message: str = ""


def find_records(folder: Path) -> list[str]:
    """Relative record paths (no extension, '/' separators) of every ``.hea`` under ``folder``, sorted."""
    out = []
    for root, _dirs, files in os.walk(folder):
        for f in files:
            if f.endswith(".hea"):
                rel = Path(root, f[:-4]).relative_to(folder)
                out.append(rel.as_posix())
    return sorted(out)


def record_seed(seed: int, record: str) -> np.random.Generator:
    """Generator seeded from the global seed and the record's relative name (stable across processes)."""
    digest = hashlib.sha256(record.encode("utf-8")).digest()
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, int.from_bytes(digest[:8], "little")])


def plotted_mask(sidecar: dict[str, Any], num_samples: int) -> np.ndarray:
    """(num_samples, 12) bool: samples drawn on this image (NaN samples excluded)."""
    mask = np.zeros((num_samples, len(STANDARD_LEADS)), bool)
    for lead in sidecar["leads"]:
        s, e = int(lead["start_sample"]), min(int(lead["end_sample"]), num_samples)
        if e <= s:
            continue
        j = STANDARD_LEADS.index(lead["name"])
        mask[s:e, j] = True
        missing = np.asarray(lead.get("missing_samples", []), dtype=np.int64)
        if missing.size:
            mask[missing[missing < num_samples], j] = False
    return mask


def _remove(paths: Sequence[Path]) -> None:
    for p in paths:
        try:
            p.unlink()
        except FileNotFoundError:
            pass


def render_record(
    in_root: str,
    record: str,
    out_root: str,
    preset: str,
    images_per_record: int,
    seed: int,
    dpi: float | None = None,
    layout: str | None = None,
    mask_unplotted: bool = False,
) -> RecordResult:
    """Render one record (relative path ``record`` under ``in_root``) into ``out_root``; never raises."""
    try:
        signal, fs, present, comments = load_record_12(os.path.join(in_root, record))
        if signal.shape[0] == 0:
            raise ValueError("record has no samples")
    except Exception as exc:  # unreadable record: skipped and counted
        logger.info("skipping unreadable record %s: %s", record, exc)
        return RecordResult(record, False, 0, f"{type(exc).__name__}: {exc}")
    rng = record_seed(seed, record)
    rel = Path(record)
    out_dir = Path(out_root) / rel.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    name = rel.name
    overrides: dict[str, Any] = {}
    if dpi is not None:
        overrides["dpi"] = float(dpi)
    if layout is not None:
        overrides["layout"] = layout
    image_files: list[str] = []
    plotted = np.zeros(signal.shape, bool)
    for k in range(images_per_record):
        stem = f"{name}-{k}"
        files = [out_dir / f"{stem}{suffix}" for suffix in (".png", ".json", "_leads.png", "_classes.png")]
        try:
            spec = PageSpec.random(rng, **overrides)
            page = render_page(signal, fs, STANDARD_LEADS, spec, rng)
            page = apply_preset(page, preset, rng)
            page.sidecar["record"] = record
            page.sidecar["image_file"] = f"{stem}.png"
            Image.fromarray(page.image).save(files[0])
            with open(files[1], "w") as fh:
                json.dump(page.sidecar, fh, allow_nan=False, separators=(",", ":"))
            Image.fromarray(page.lead_mask, mode="L").save(files[2])
            Image.fromarray(page.class_mask, mode="L").save(files[3])
        except Exception as exc:
            logger.warning("image %s of record %s failed: %s", k, record, exc)
            _remove(files)
            continue
        image_files.append(files[0].name)
        plotted |= plotted_mask(page.sidecar, signal.shape[0])
    if not image_files:
        return RecordResult(record, False, 0, "no image could be rendered")
    out_signal = np.where(plotted, signal, np.nan) if mask_unplotted else signal
    try:
        write_challenge_record(out_dir, name, out_signal, fs, STANDARD_LEADS, comments, image_files)
    except Exception as exc:
        logger.warning("writing record %s failed: %s", record, exc)
        _remove([out_dir / f"{name}.hea", out_dir / f"{name}.dat"])
        return RecordResult(record, False, 0, f"write failed: {exc}")
    return RecordResult(record, True, len(image_files))


def build_parser(prog: str = "python -m ecgrender render") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    p.add_argument("-i", "--input", required=True, help="folder of WFDB records (searched recursively)")
    p.add_argument("-o", "--output", required=True, help="output folder (subfolders mirrored)")
    p.add_argument("--preset", default="mixed", choices=PRESETS, help="distortion preset (default: mixed)")
    p.add_argument("--images-per-record", type=int, default=1, help="images per record (default 1)")
    p.add_argument("--seed", type=int, default=0, help="global seed (default 0)")
    p.add_argument("--workers", type=int, default=1, help="parallel worker processes (default 1)")
    p.add_argument("--dpi", type=float, default=None, help="fixed DPI (default: varied 100-300)")
    p.add_argument("--layout", default=None, choices=LAYOUTS, help="fixed layout (default: varied)")
    p.add_argument(
        "--mask-unplotted",
        action="store_true",
        help="write NaN in the output signals for samples not shown on any image",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log progress")
    return p


def main(argv: Sequence[str] | None = None, prog: str = "python -m ecgrender render") -> int:
    args = build_parser(prog).parse_args(list(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    in_root = Path(args.input)
    if not in_root.is_dir():
        print(f"error: input folder {in_root} does not exist", file=sys.stderr)
        return 2
    if args.images_per_record < 1:
        print("error: --images-per-record must be >= 1", file=sys.stderr)
        return 2
    records = find_records(in_root)
    out_root = Path(args.output)
    out_root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    job_args = [
        (
            str(in_root),
            r,
            str(out_root),
            args.preset,
            args.images_per_record,
            args.seed,
            args.dpi,
            args.layout,
            args.mask_unplotted,
        )
        for r in records
    ]
    if args.workers > 1 and len(records) > 1:
        from joblib import Parallel, delayed

        results = Parallel(n_jobs=args.workers, backend="loky")(delayed(render_record)(*a) for a in job_args)
    else:
        results = [render_record(*a) for a in job_args]
    ok = [r for r in results if r.ok]
    skipped = [r for r in results if not r.ok]
    for r in skipped:
        print(f"skipped {r.record}: {r.message}", file=sys.stderr)
    images = sum(r.num_images for r in ok)
    print(
        f"rendered {len(ok)} records ({images} images) to {out_root} in {time.perf_counter() - t0:.1f} s; "
        f"skipped {len(skipped)} unreadable records"
    )
    return 0


def console_main() -> int:
    """The ``ecg-render`` console command (``python -m ecgrender render``)."""
    return main(prog="ecg-render")
