"""``python -m ecgentry digitize``: plain image files (PNG, JPEG, TIFF incl. multi-page, BMP) -> WFDB records
and/or CSV, an overlay picture and a JSON report per page.

Per page ``OUT/<name>[-p<k>]``: ``.hea``/``.dat`` (12 standard leads, format 16, 1000/mV, NaN where a lead was
not printed), ``.csv`` (``time_s`` then one column per lead, mV, empty = NaN), ``_overlay.png`` (with
``--overlay``) and ``.json`` (status and its reasons, the self-check, layout, fit, scale, calibration, orientation,
confidence, warnings, labels when the model has a Dx head). ``OUT/summary.json`` lists every file and page with its
status: ``ok`` (the self-check passed), ``suspect`` (a signal, but a check failed or could not be made) or
``failed`` (no signal, or the page is clearly wrong).
"""
from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import os
import sys
import traceback
from typing import Any

import numpy as np

from ecgentry.pages import ImageJob, find_images, iter_pages, plan_jobs, read_image_header

logger = logging.getLogger(__name__)

STANDARD_LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
LAYOUTS = ("auto", "3x4+1", "3x4+3", "3x4", "6x2", "12x1")
FORMATS = ("wfdb", "csv", "both")
#: Accepted ranges of the output's sampling rate (Hz) and length (s): an output is at most 10 minutes at 10 kHz.
MAX_FS_HZ = 10_000.0
MAX_SECONDS = 600.0
#: Files written per page, by suffix after the page's name (checked to lie inside the output folder first).
OUTPUT_SUFFIXES = (".hea", ".dat", ".csv", "_overlay.png", ".json")

_ENTRY: Any = None  # per process: the loaded model (None: classical digitizer)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", help="image files or folders (searched recursively)")
    parser.add_argument("-m", "--model", required=True,
                        help="a trained model folder, or 'classical' (classical trace map, no labels)")
    parser.add_argument("-o", "--output", required=True, help="output folder")
    parser.add_argument("--fs", type=float, default=500.0, help="output sampling rate in Hz (default 500)")
    parser.add_argument("--seconds", type=float, default=10.0, help="output length in seconds (default 10)")
    parser.add_argument("--layout", choices=LAYOUTS, default="auto", help="page layout (default: detected)")
    parser.add_argument("--format", choices=FORMATS, default="both", help="signal output format (default both)")
    parser.add_argument("--overlay", action="store_true", help="also write <name>_overlay.png")
    parser.add_argument("--paper-speed", type=float, default=None,
                        help="paper speed in mm/s (default: 50 when the calibration pulses are 10 mm wide, else 25)")
    parser.add_argument("--gain", type=float, default=10.0, help="nominal gain in mm/mV (a calibration pulse wins)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (each loads the model once)")
    parser.add_argument("--device", default="auto", help="torch device for the model (auto, cpu, cuda)")
    parser.add_argument("-v", "--verbose", action="store_true", help="progress bar and per-page information")


def _init_worker(model: str, device: str, threads: int | None) -> None:
    """Load the model once per process (nothing for 'classical')."""
    global _ENTRY
    if threads:
        from ecgentry.parallel import limit_threads

        limit_threads(threads)
    if model == "classical":
        _ENTRY = None
    else:
        from ecgentry.infer import load_entry

        _ENTRY = load_entry(model, device=device)


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return _json_safe(value.tolist())
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def page_report(result: Any) -> dict[str, Any]:
    """The JSON-ready facts of a ``DigitizationResult`` (pixels of the rectified working image, mm, mV)."""
    rep: dict[str, Any] = {"confidence": getattr(result, "confidence", None),
                           "warnings": list(getattr(result, "warnings", []) or [])}
    check = getattr(result, "check", None)
    if check is not None:
        rep["self_check"] = check.to_dict()
    lay = getattr(result, "layout", None)
    if lay is not None:
        rep["layout"] = {"name": lay.name, "fits": lay.fits, "cost": lay.cost, "costs": dict(lay.costs),
                         "rows": len(lay.rows), "columns": lay.columns,
                         "leads": [{"name": b.name, "row": b.row, "column": b.column, "t0_s": b.t0, "t1_s": b.t1,
                                    "rhythm": b.rhythm} for b in lay.boxes]}
    sc = getattr(result, "scale", None)
    if sc is not None:
        rep["scale"] = {"px_per_mm_x": sc.px_per_mm_x, "px_per_mm_y": sc.px_per_mm_y, "source": sc.source,
                        "confidence": sc.confidence}
    cal = getattr(result, "calibration", None)
    if cal is not None:
        rep["calibration"] = {"source": cal.source, "gain_mm_per_mv": cal.gain_mm_per_mv, "mv_per_px": cal.mv_per_px,
                              "pulses": len(cal.pulses)}
    ori = getattr(result, "orientation", None)
    if ori is not None:
        rep["orientation"] = {"angle_deg": ori.angle_deg, "quarter_turns": ori.quarter_turns, "keystone": ori.keystone}
    rep["timings_s"] = dict(getattr(result, "timings_s", {}) or {})
    return _json_safe(rep)


def write_csv(path: str, signal: np.ndarray, fs: float, lead_names: list[str]) -> None:
    """``time_s`` (seconds) then one column per lead in mV (4 decimals); NaN is an empty cell."""
    tmp = path + ".tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["time_s", *lead_names])
        for i, row in enumerate(signal):
            writer.writerow([f"{i / fs:.6f}"] + [f"{v:.4f}" if math.isfinite(v) else "" for v in row])
    os.replace(tmp, path)


def _digitize_one(args: tuple[ImageJob, dict[str, Any]]) -> dict[str, Any]:
    """All pages of one file -> outputs, one page in memory at a time; never raises (errors go into the returned
    record)."""
    job, opts = args
    out: dict[str, Any] = {"file": job.path, "pages": []}
    try:
        n_pages = read_image_header(job.path).frames
        pages = iter_pages(job.path)
    except Exception as exc:  # noqa: BLE001 - a bad file is reported, never fatal
        out["error"] = f"unreadable image: {type(exc).__name__}: {exc}"
        return out
    k = 0
    while True:
        name = job.name if n_pages == 1 else f"{job.name}-p{k + 1}"
        try:
            image = next(pages)
        except StopIteration:
            break
        except Exception as exc:  # noqa: BLE001 - this page (and the frames after it) cannot be read
            if k == 0:
                out["error"] = f"unreadable image: {type(exc).__name__}: {exc}"
            else:
                out["pages"].append({"name": name, "page": k + 1, "status": "error",
                                     "error": f"unreadable page: {type(exc).__name__}: {exc}"})
            break
        try:
            out["pages"].append(_digitize_page(image, job, name, k, n_pages, opts))
        except Exception as exc:  # noqa: BLE001
            out["pages"].append({"name": name, "page": k + 1, "status": "error",
                                 "error": f"{type(exc).__name__}: {exc}",
                                 "traceback": traceback.format_exc(limit=-2)})
        del image
        k += 1
    return out


def _digitize_page(image: np.ndarray, job: ImageJob, name: str, k: int, n_pages: int,
                   opts: dict[str, Any]) -> dict[str, Any]:
    from PIL import Image

    from ecgdigitize.pipeline import digitize_page

    fs, num_samples = opts["fs"], opts["num_samples"]
    labels: list[str] | None = None
    probs: dict[str, float] | None = None
    if _ENTRY is None:
        result = digitize_page(image, None, fs=fs, num_samples=num_samples, lead_names=list(STANDARD_LEADS),
                               layout=opts["layout"], paper_speed=opts["paper_speed"], gain=opts["gain"])
        signal = result.signal
    else:
        from ecgentry.infer import analyse_page_result, labels_from_probs

        signal, p, result = analyse_page_result(_ENTRY, image, fs=fs, num_samples=num_samples,
                                                lead_names=list(STANDARD_LEADS), layout=opts["layout"],
                                                paper_speed=opts["paper_speed"], gain=opts["gain"])
        if p.size:
            labels = labels_from_probs(_ENTRY, p)
            probs = {c: float(v) for c, v in zip(_ENTRY.classes, p)}
    signal = np.clip(np.asarray(signal, dtype=np.float64), -30.0, 30.0)
    finite = np.isfinite(signal)
    base = os.path.join(job.out_dir, name)
    _check_outputs_inside(opts["output"], base)
    os.makedirs(job.out_dir, exist_ok=True)
    files: list[str] = []
    if opts["format"] in ("wfdb", "both"):
        from ecgrender.records import write_challenge_record

        comments = [f"Source: {os.path.basename(job.path)}" + (f" page {k + 1} of {n_pages}" if n_pages > 1 else "")]
        if labels:
            comments.append("Labels: " + ", ".join(labels))
        write_challenge_record(job.out_dir, name, signal, fs, STANDARD_LEADS, comments=comments)
        files += [base + ".hea", base + ".dat"]
    if opts["format"] in ("csv", "both"):
        write_csv(base + ".csv", signal, fs, STANDARD_LEADS)
        files.append(base + ".csv")
    if opts["overlay"] and result is not None:
        from ecgdigitize.overlay import draw_overlay

        Image.fromarray(draw_overlay(image, result)).save(base + "_overlay.png")
        files.append(base + "_overlay.png")
    report = {
        "source": os.path.abspath(job.path), "page": k + 1, "pages_in_file": n_pages, "name": name,
        "status": page_status(result, finite.any()), "status_reasons": page_reasons(result, finite.any()),
        "fs": fs, "num_samples": num_samples,
        "leads": STANDARD_LEADS, "digitized_fraction_per_lead": dict(zip(STANDARD_LEADS, finite.mean(axis=0).tolist())),
        "model": opts["model"], "labels": labels, "probabilities": probs,
        **(page_report(result) if result is not None else {}),
        "outputs": [os.path.basename(f) for f in files],
    }
    with open(base + ".json", "w", encoding="utf-8") as f:
        json.dump(_json_safe(report), f, indent=1)
    return {"name": name, "page": k + 1, "status": report["status"], "status_reasons": report["status_reasons"],
            "confidence": report.get("confidence"), "labels": labels, "warnings": report.get("warnings", [])}


def _check_outputs_inside(output: str, base: str) -> None:
    """OutsideFolder when one of the page's output files (``base`` + :data:`OUTPUT_SUFFIXES`) would be written
    outside the output folder (a symlink there pointing out)."""
    from ecgentry.safe_paths import require_inside

    for suffix in OUTPUT_SUFFIXES:
        require_inside(output, os.path.relpath(base + suffix, output), os.path.basename(base), "output file")


def validate_arguments(args: argparse.Namespace) -> str | None:
    """The first problem with the arguments, in one line, or None; checked before any model is loaded."""
    if args.model != "classical" and not os.path.isfile(os.path.join(args.model, "entry.json")):
        return f"{args.model!r} is neither 'classical' nor a complete model folder (no entry.json)"
    if not (math.isfinite(args.fs) and 0 < args.fs <= MAX_FS_HZ):
        return f"--fs must be in (0, {MAX_FS_HZ:g}] Hz, got {args.fs:g}"
    if not (math.isfinite(args.seconds) and 0 < args.seconds <= MAX_SECONDS):
        return f"--seconds must be in (0, {MAX_SECONDS:g}] s, got {args.seconds:g}"
    if round(args.fs * args.seconds) < 1:
        return f"--fs {args.fs:g} Hz for --seconds {args.seconds:g} s gives no sample"
    if not (math.isfinite(args.gain) and args.gain > 0):
        return f"--gain must be a positive number of mm/mV, got {args.gain:g}"
    if args.paper_speed is not None and not (math.isfinite(args.paper_speed) and args.paper_speed > 0):
        return f"--paper-speed must be a positive number of mm/s, got {args.paper_speed:g}"
    if args.workers < 1:
        return f"--workers must be at least 1, got {args.workers}"
    missing = [item for item in args.inputs if not os.path.exists(item)]
    if missing:
        return "no such file or folder: " + ", ".join(missing)
    if os.path.exists(args.output) and not os.path.isdir(args.output):
        return f"-o {args.output!r} exists and is not a folder"
    try:
        os.makedirs(args.output, exist_ok=True)
    except OSError as exc:
        return f"-o {args.output!r}: cannot create the output folder ({exc.strerror or exc})"
    if not os.access(args.output, os.W_OK):
        return f"-o {args.output!r}: the output folder is not writable"
    return None


def page_status(result: Any, has_signal: bool) -> str:
    """'ok' (the self-check passed), 'suspect' (a signal, but a check failed or could not be made: look at the
    overlay) or 'failed' (no signal, or the page is clearly wrong: do not use it)."""
    if not has_signal:
        return "failed"
    return getattr(result, "status", None) or "suspect"


def page_reasons(result: Any, has_signal: bool) -> list[str]:
    """Why a page is not 'ok' (empty when it is)."""
    if not has_signal:
        warnings = list(getattr(result, "warnings", []) or [])
        return ["no signal read" + (f": {warnings[-1]}" if warnings else "")]
    return list(getattr(result, "status_reasons", []) or [])


def run(args: argparse.Namespace) -> int:
    """Digitize every input; returns the exit code (0 when at least one page gave a signal, else 1)."""
    problem = validate_arguments(args)
    if problem:
        logger.error("%s", problem)
        return 2
    files, missing = find_images(list(args.inputs), skip_under=args.output)
    jobs = plan_jobs(files, args.output)
    if not jobs:
        logger.error("no image files found in %s", ", ".join(args.inputs))
        return 1
    opts = {"fs": float(args.fs), "num_samples": int(round(args.fs * args.seconds)), "layout": args.layout,
            "format": args.format, "overlay": bool(args.overlay), "paper_speed": None if args.paper_speed is None else float(args.paper_speed),
            "gain": float(args.gain), "model": args.model, "output": args.output}
    from ecgentry.parallel import WorkerCrashed, WorkerInitFailed, run_tasks

    # every file's header is read before the model loads: unreadable, corrupt and oversized files are reported now
    results: list[dict[str, Any] | None] = [None] * len(jobs)
    readable: list[int] = []
    for i, job in enumerate(jobs):
        try:
            read_image_header(job.path)
            readable.append(i)
        except Exception as exc:  # noqa: BLE001 - reported, never fatal
            results[i] = {"file": job.path, "pages": [], "error": f"unreadable image: {type(exc).__name__}: {exc}"}
            logger.error("%s: %s", job.path, results[i]["error"])
    threads = 1 if args.workers > 1 else None
    try:
        done = run_tasks(_digitize_one, [(jobs[i], opts) for i in readable], args.workers, _init_worker,
                         (args.model, args.device, threads), progress="digitizing" if args.verbose else None) \
            if readable else []
        for j, res in done:
            i = readable[j]
            if isinstance(res, WorkerCrashed):
                res = {"file": jobs[i].path, "pages": [], "error": str(res)}
            results[i] = res
            if res.get("error"):
                logger.error("%s: %s", res["file"], res["error"])
            for page in res.get("pages", []):
                if page["status"] == "error":
                    logger.error("%s page %d: %s", res["file"], page["page"], page["error"])
                elif page["status"] != "ok":
                    logger.warning("%s page %d: %s (%s)", res["file"], page["page"], page["status"],
                                   "; ".join(page.get("status_reasons", [])[:3]))
                else:
                    logger.info("%s page %d -> %s (confidence %.2f)%s", res["file"], page["page"], page["name"],
                                page.get("confidence") or 0.0, f" labels {page['labels']}" if page.get("labels") else "")
    except WorkerInitFailed as exc:
        logger.error("the model %r could not be loaded: %s", args.model, str(exc).strip().splitlines()[-1])
        return 2
    pages = [p for r in results if r for p in r.get("pages", [])]
    ok = sum(p["status"] == "ok" for p in pages)
    suspect = sum(p["status"] == "suspect" for p in pages)
    bad_files = sum(1 for r in results if r and r.get("error"))
    summary = {"model": args.model, "files": len(jobs), "unreadable_files": bad_files, "missing_inputs": missing,
               "pages": len(pages), "pages_ok": ok, "pages_suspect": suspect,
               "pages_failed": len(pages) - ok - suspect, "results": results}
    with open(os.path.join(args.output, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(_json_safe(summary), f, indent=1)
    print(f"digitized {ok + suspect} of {len(pages)} page(s) from {len(jobs)} file(s): {ok} ok, {suspect} suspect, "
          f"{len(pages) - ok - suspect} failed ({bad_files} unreadable) -> {args.output}", file=sys.stderr)
    return 0 if ok + suspect > 0 else 1
