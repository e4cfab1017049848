"""``ecg-digitize`` (also ``python -m ecgentry digitize``): plain image files (PNG, JPEG, TIFF incl. multi-page,
BMP) -> WFDB records and/or CSV, pictures and a JSON report per page.

    ecg-digitize IMAGE_OR_FOLDER... -o OUT [-m MODEL] [--format wfdb|csv|both] [--plot] [--overlay] [-q | -v]

Without ``-m`` (or with ``-m classical``) the classical trace map is used: no trained model is needed and no
labels are given. With ``-m MODEL`` (a folder written by ``train_model.py``) the model's trace map is used where it
reads the page better, and its Dx head gives labels.

Per page ``OUT/<name>[-p<k>]``: ``.hea``/``.dat`` (12 standard leads, format 16, 1000/mV, NaN where a lead was
not printed), ``.csv`` (``time_s`` then one column per lead, mV, empty = NaN), ``_overlay.png`` (with ``--overlay``
or ``--plot``: what was traced, drawn over the page, legend and status in a margin), ``_plot.png`` (with
``--plot``: the digitized 12-lead signal) and ``.json`` (the report: ``docs/report.schema.json``).
``OUT/summary.json`` lists every file and page with its status: ``ok`` (the self-check passed), ``suspect`` (a
signal, but a check failed or could not be made) or ``failed`` (no signal, or the page is clearly wrong).

Progress: a bar on a terminal, one line per page otherwise; ``-q`` prints only errors, ``-v`` adds details.
Exit code 0 when at least one page gave a signal, 1 otherwise, 2 for a bad argument (one line, before any model
is loaded).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
import traceback
from typing import Any

import numpy as np

from ecgdigitize.export import write_csv  # noqa: F401 - part of this module's interface
from ecgdigitize.report import json_safe as _json_safe
from ecgdigitize.report import page_reasons, page_report, page_status  # noqa: F401 - re-exported
from ecgentry.pages import ImageJob, find_images, iter_pages, plan_jobs, read_image_header
from ecgvocab import STANDARD_LEADS

logger = logging.getLogger(__name__)

LAYOUTS = ("auto", "3x4+1", "3x4+3", "3x4", "3x5", "6x2", "12x1")
FORMATS = ("wfdb", "csv", "both")
PLOT_STYLES = ("rows", "3x4+1")
CLASSICAL = "classical"
#: Accepted ranges of the output's sampling rate (Hz) and length (s): an output is at most 10 minutes at 10 kHz.
MAX_FS_HZ = 10_000.0
MAX_SECONDS = 600.0
#: Files written per page, by suffix after the page's name (checked to lie inside the output folder first).
OUTPUT_SUFFIXES = (".hea", ".dat", ".csv", "_overlay.png", "_plot.png", ".json")
#: Loggers kept at WARNING under ``-v``: the model's loading messages describe the architecture being built
#: before its trained weights are read (e.g. "randomly initialised"), which means nothing at inference.
QUIET_LOGGERS = ("models", "transformers", "huggingface_hub", "matplotlib", "PIL")

_ENTRY: Any = None  # per process: the loaded model (None: classical digitizer)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="IMAGE", help="image files or folders (searched recursively)")
    parser.add_argument("-o", "--output", required=True, help="output folder (created when missing)")
    parser.add_argument(
        "-m",
        "--model",
        default=CLASSICAL,
        help="a trained model folder (labels, learned trace map); default: none, the classical "
        "trace map without labels ('classical' says the same)",
    )
    parser.add_argument("--fs", type=float, default=500.0, help="output sampling rate in Hz (default 500)")
    parser.add_argument("--seconds", type=float, default=10.0, help="output length in seconds (default 10)")
    parser.add_argument("--layout", choices=LAYOUTS, default="auto", help="page layout (default: detected)")
    parser.add_argument("--format", choices=FORMATS, default="both", help="signal output format (default both)")
    parser.add_argument(
        "--plot",
        action="store_true",
        help="also write <name>_plot.png (the digitized 12-lead signal) and <name>_overlay.png",
    )
    parser.add_argument(
        "--plot-style",
        choices=PLOT_STYLES,
        default="rows",
        help="rows: one lead per row over the whole record (default); 3x4+1: the usual printout",
    )
    parser.add_argument("--overlay", action="store_true", help="also write <name>_overlay.png (what was traced)")
    parser.add_argument(
        "--paper-speed",
        type=float,
        default=None,
        help="paper speed in mm/s (default: 50 when the calibration pulses are 10 mm wide, else 25)",
    )
    parser.add_argument("--gain", type=float, default=10.0, help="nominal gain in mm/mV (a calibration pulse wins)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (each loads the model once)")
    parser.add_argument("--device", default="auto", help="torch device for the model (auto, cpu, cuda)")
    talk = parser.add_mutually_exclusive_group()
    talk.add_argument("-q", "--quiet", action="store_true", help="no progress, only errors")
    talk.add_argument(
        "-v", "--verbose", action="store_true", help="details: each page's reasons, labels and time, and INFO logs"
    )


class OneLineParser(argparse.ArgumentParser):
    """An argument error is one line (``prog: error: ...``) and exit code 2, without the usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def get_parser(prog: str = "ecg-digitize") -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=prog,
        description="Digitize ECG page images: the 12-lead signal in mV as WFDB and/or "
        "CSV, a JSON report per page, optional pictures.",
    )
    add_arguments(parser)
    return parser


class _TqdmHandler(logging.Handler):
    """Log lines written through ``tqdm.write``: above the progress bar, never through it."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm

            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # noqa: BLE001
            self.handleError(record)


def configure_logging(args: argparse.Namespace) -> None:
    """Root logger: one handler that writes above the bar; ERROR with ``-q``, INFO with ``-v``, else WARNING;
    Python warnings go through logging too."""
    root = logging.getLogger()
    for handler in list(root.handlers):  # ours from an earlier call, or a plain stderr handler (basicConfig)
        if isinstance(handler, _TqdmHandler) or (
            type(handler) is logging.StreamHandler and getattr(handler, "stream", None) in (sys.stderr, sys.__stderr__)
        ):
            root.removeHandler(handler)
    handler = _TqdmHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(_level(args))
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, _level(args)))
    logging.captureWarnings(True)


def _level(args: argparse.Namespace) -> int:
    if getattr(args, "quiet", False):
        return logging.ERROR
    return logging.INFO if getattr(args, "verbose", False) else logging.WARNING


class _Captured(logging.Handler):
    """Collects log records (as plain, picklable dicts) while a page is digitized: they are sent back with the
    page's result and logged by the parent process, above its progress bar."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if record.exc_info:
            msg += "\n" + "".join(traceback.format_exception(*record.exc_info, limit=-2)).rstrip()
        self.records.append({"name": record.name, "levelno": record.levelno, "levelname": record.levelname, "msg": msg})


class _capture_logs:  # noqa: N801 - used as a context manager
    def __init__(self, level: int) -> None:
        self.level = level
        self.handler = _Captured()

    def __enter__(self) -> _Captured:
        root = logging.getLogger()
        self.saved = (list(root.handlers), root.level)
        root.handlers = [self.handler]
        root.setLevel(self.level)
        logging.captureWarnings(True)
        return self.handler

    def __exit__(self, *exc: Any) -> None:
        root = logging.getLogger()
        root.handlers, level = self.saved
        root.setLevel(level)


def _replay(records: list[dict[str, Any]]) -> None:
    for rec in records:
        logger_ = logging.getLogger(rec["name"])
        if logger_.isEnabledFor(rec["levelno"]):
            logger_.handle(
                logging.makeLogRecord(
                    {
                        "name": rec["name"],
                        "levelno": rec["levelno"],
                        "levelname": rec["levelname"],
                        "msg": rec["msg"],
                        "args": None,
                    }
                )
            )


def _init_worker(model: str, device: str, threads: int | None, level: int = logging.WARNING) -> None:
    """Load the model once per process (nothing for the classical digitizer)."""
    global _ENTRY
    if threads:  # a worker process: its log records travel back with each page's result
        if model == CLASSICAL:  # no torch needed (the digitizer alone may be installed without it)
            import cv2

            cv2.setNumThreads(threads)
        else:
            from ecgentry.parallel import limit_threads

            limit_threads(threads)
        logging.getLogger().handlers = [logging.NullHandler()]
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(max(logging.WARNING, level))
    if model == CLASSICAL:
        _ENTRY = None
    else:
        from ecgentry.infer import load_entry

        _ENTRY = load_entry(model, device=device)


def _digitize_one(args: tuple[ImageJob, dict[str, Any]]) -> dict[str, Any]:
    """All pages of one file -> outputs, one page in memory at a time; never raises (errors go into the returned
    record, and the log records emitted meanwhile into its ``log``)."""
    job, opts = args
    with _capture_logs(opts.get("log_level", logging.WARNING)) as captured:
        out = _digitize_file(job, opts)
    out["log"] = captured.records
    return out


def _digitize_file(job: ImageJob, opts: dict[str, Any]) -> dict[str, Any]:
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
                out["pages"].append(
                    {
                        "name": name,
                        "page": k + 1,
                        "status": "error",
                        "error": f"unreadable page: {type(exc).__name__}: {exc}",
                    }
                )
            break
        t0 = time.perf_counter()
        try:
            out["pages"].append(_digitize_page(image, job, name, k, n_pages, opts))
        except Exception as exc:  # noqa: BLE001
            out["pages"].append(
                {
                    "name": name,
                    "page": k + 1,
                    "status": "error",
                    "error": f"{type(exc).__name__}: {exc}",
                    "traceback": traceback.format_exc(limit=-2),
                }
            )
        out["pages"][-1]["seconds"] = round(time.perf_counter() - t0, 2)
        del image
        k += 1
    return out


def _digitize_page(
    image: np.ndarray, job: ImageJob, name: str, k: int, n_pages: int, opts: dict[str, Any]
) -> dict[str, Any]:
    """One page: digitize, then write its files through :class:`ecgdigitize.api.DigitizedECG` (the Python API's
    result: the same CSV, WFDB, pictures and report)."""
    from ecgdigitize.api import from_result
    from ecgdigitize.pipeline import digitize_page

    fs, num_samples = opts["fs"], opts["num_samples"]
    labels: list[str] | None = None
    probs: dict[str, float] | None = None
    reading = dict(
        fs=fs,
        num_samples=num_samples,
        lead_names=list(STANDARD_LEADS),
        layout=opts["layout"],
        paper_speed=opts["paper_speed"],
        gain=opts["gain"],
    )
    if _ENTRY is None:
        result = digitize_page(image, None, **reading)
        signal = result.signal
    else:
        from ecgentry.infer import analyse_page_result, labels_from_probs

        signal, p, result = analyse_page_result(_ENTRY, image, **reading)
        if p.size:
            labels = labels_from_probs(_ENTRY, p)
            probs = {c: float(v) for c, v in zip(_ENTRY.classes, p)}
    base = os.path.join(job.out_dir, name)
    _check_outputs_inside(opts["output"], base)
    os.makedirs(job.out_dir, exist_ok=True)
    files: list[str] = []
    if opts["format"] in ("wfdb", "both"):
        files += [base + ".hea", base + ".dat"]
    if opts["format"] in ("csv", "both"):
        files.append(base + ".csv")
    if opts["overlay"] and result is not None:
        files.append(base + "_overlay.png")
    if opts["plot"]:
        files.append(base + "_plot.png")
    ecg = from_result(
        result,
        image,
        signal=signal,
        name=name,
        source=os.path.abspath(job.path),
        page=k + 1,
        pages_in_file=n_pages,
        model=opts["model"],
        labels=labels,
        probabilities=probs,
        outputs=[os.path.basename(f) for f in files],
    )
    if opts["format"] in ("wfdb", "both"):
        comments = [f"Source: {os.path.basename(job.path)}" + (f" page {k + 1} of {n_pages}" if n_pages > 1 else "")]
        if labels:
            comments.append("Labels: " + ", ".join(labels))
        ecg.to_wfdb(base, comments=comments)
    if opts["format"] in ("csv", "both"):
        ecg.to_csv(base + ".csv")
    if opts["overlay"] and result is not None:
        ecg.overlay(base + "_overlay.png")
    if opts["plot"]:
        ecg.plot(base + "_plot.png", style=opts.get("plot_style", "rows"))
    with open(base + ".json", "w", encoding="utf-8") as f:
        json.dump(ecg.report, f, indent=1)
    return {
        "name": name,
        "page": k + 1,
        "status": ecg.status,
        "status_reasons": ecg.status_reasons,
        "confidence": ecg.confidence,
        "layout": ecg.layout,
        "labels": labels,
        "warnings": ecg.report.get("warnings", []),
    }


def _check_outputs_inside(output: str, base: str) -> None:
    """OutsideFolder when one of the page's output files (``base`` + :data:`OUTPUT_SUFFIXES`) would be written
    outside the output folder (a symlink there pointing out)."""
    from ecgentry.safe_paths import require_inside

    for suffix in OUTPUT_SUFFIXES:
        require_inside(output, os.path.relpath(base + suffix, output), os.path.basename(base), "output file")


def validate_arguments(args: argparse.Namespace) -> str | None:
    """The first problem with the arguments, in one line, or None; checked before any model is loaded."""
    if args.model != CLASSICAL and not os.path.isfile(os.path.join(args.model, "entry.json")):
        return f"-m {args.model!r} is not a complete model folder (no entry.json); leave -m out to digitize without one"
    if args.model != CLASSICAL:
        import importlib.util

        if importlib.util.find_spec("torch") is None:
            return "-m needs the model's dependencies (torch ...): pip install 'ecg-digitize[model]'"
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


def run(args: argparse.Namespace) -> int:
    """Digitize every input; returns the exit code (0 when at least one page gave a signal, 1 when none did, 2 for a
    bad argument or a model that cannot be loaded)."""
    args.model = args.model or CLASSICAL
    problem = validate_arguments(args)
    if problem:
        print(f"ecg-digitize: error: {problem}", file=sys.stderr)
        return 2
    quiet, verbose = bool(getattr(args, "quiet", False)), bool(getattr(args, "verbose", False))
    files, missing = find_images(list(args.inputs), skip_under=args.output)
    jobs = plan_jobs(files, args.output)
    if not jobs:
        logger.error("no image files found in %s", ", ".join(args.inputs))
        return 1
    plot = bool(getattr(args, "plot", False))
    opts = {
        "fs": float(args.fs),
        "num_samples": int(round(args.fs * args.seconds)),
        "layout": args.layout,
        "format": args.format,
        "overlay": bool(args.overlay) or plot,
        "plot": plot,
        "plot_style": getattr(args, "plot_style", "rows"),
        "paper_speed": None if args.paper_speed is None else float(args.paper_speed),
        "gain": float(args.gain),
        "model": args.model,
        "output": args.output,
        "log_level": _level(args),
    }
    from ecgentry.parallel import WorkerCrashed, WorkerInitFailed, run_tasks

    # every file's header is read before the model loads: unreadable, corrupt and oversized files are reported now
    results: list[dict[str, Any] | None] = [None] * len(jobs)
    readable: list[int] = []
    total_pages = 0
    for i, job in enumerate(jobs):
        try:
            total_pages += read_image_header(job.path).frames
            readable.append(i)
        except Exception as exc:  # noqa: BLE001 - reported, never fatal
            results[i] = {"file": job.path, "pages": [], "error": f"unreadable image: {type(exc).__name__}: {exc}"}
            logger.error("%s: %s", job.path, results[i]["error"])
    progress = _Progress(total_pages, quiet=quiet, verbose=verbose, output=args.output)
    threads = 1 if args.workers > 1 else None
    try:
        done = (
            run_tasks(
                _digitize_one,
                [(jobs[i], opts) for i in readable],
                args.workers,
                _init_worker,
                (args.model, args.device, threads, _level(args)),
            )
            if readable
            else []
        )
        for j, res in done:
            i = readable[j]
            if isinstance(res, WorkerCrashed):
                res = {"file": jobs[i].path, "pages": [], "error": str(res)}
            elif isinstance(res, Exception):
                res = {"file": jobs[i].path, "pages": [], "error": f"{type(res).__name__}: {res}"}
            _replay(res.pop("log", []))
            results[i] = res
            progress.file_done(res)
    except WorkerInitFailed as exc:
        progress.close()
        logger.error("the model %r could not be loaded: %s", args.model, str(exc).strip().splitlines()[-1])
        return 2
    finally:
        progress.close()
    pages = [p for r in results if r for p in r.get("pages", [])]
    ok = sum(p["status"] == "ok" for p in pages)
    suspect = sum(p["status"] == "suspect" for p in pages)
    bad_files = sum(1 for r in results if r and r.get("error"))
    summary = {
        "model": args.model,
        "files": len(jobs),
        "unreadable_files": bad_files,
        "missing_inputs": missing,
        "pages": len(pages),
        "pages_ok": ok,
        "pages_suspect": suspect,
        "pages_failed": len(pages) - ok - suspect,
        "results": results,
    }
    with open(os.path.join(args.output, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(_json_safe(summary), f, indent=1)
    if not quiet:
        print(
            f"digitized {ok + suspect} of {len(pages)} page(s) from {len(jobs)} file(s): {ok} ok, {suspect} "
            f"suspect, {len(pages) - ok - suspect} failed ({bad_files} unreadable) -> {args.output}",
            file=sys.stderr,
        )
    return 0 if ok + suspect > 0 else 1


class _Progress:
    """What the user sees while pages are digitized: on a terminal a bar (pages that are not ``ok`` get a line above
    it), otherwise one line per page with its status; nothing with ``quiet`` but errors. ``verbose`` adds each
    page's reasons, labels and time."""

    def __init__(self, total: int, quiet: bool, verbose: bool, output: str) -> None:
        self.total, self.quiet, self.verbose, self.output = total, quiet, verbose, output
        self.done = 0
        self.bar = None
        if not quiet and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="page", desc="digitizing", file=sys.stderr, dynamic_ncols=True)

    def _write(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr, flush=True)

    def file_done(self, res: dict[str, Any]) -> None:
        if res.get("error"):
            logger.error("%s: %s", res["file"], res["error"])
        for page in res.get("pages", []):
            self.done += 1
            if page["status"] == "error":
                logger.error("%s page %d: %s", res["file"], page["page"], page["error"])
                if self.verbose and page.get("traceback"):
                    self._write(page["traceback"].rstrip())
            elif not self.quiet and (self.bar is None or self.verbose or page["status"] != "ok"):
                self._write(self.page_line(res["file"], page))
            if self.bar is not None:
                self.bar.update(1)

    def page_line(self, file: str, page: dict[str, Any]) -> str:
        """``[3/10] scans/a.png -> a: ok, layout 3x4+1, confidence 0.73`` (+ reasons; -v: all reasons, labels,
        time)."""
        where = file + (
            f" page {page['page']}"
            if page.get("name", "").rsplit("-p", 1)[-1].isdigit() and "-p" in page.get("name", "")
            else ""
        )
        line = (
            f"[{self.done}/{self.total}] {where} -> {page['name']}: {page['status']}, layout "
            f"{page.get('layout') or 'none'}, confidence {page.get('confidence') or 0.0:.2f}"
        )
        reasons = list(page.get("status_reasons") or [])
        if reasons:
            shown = reasons if self.verbose else reasons[:2]
            line += (
                " ("
                + "; ".join(shown)
                + (f"; +{len(reasons) - len(shown)} more" if len(reasons) > len(shown) else "")
                + ")"
            )
        if self.verbose:
            if page.get("labels"):
                line += f", labels {', '.join(page['labels'])}"
            if page.get("seconds") is not None:
                line += f", {page['seconds']:.1f} s"
        return line

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def main(argv: list[str] | None = None) -> int:
    """The ``ecg-digitize`` console command."""
    args = get_parser().parse_args(argv)
    configure_logging(args)
    try:
        return run(args)
    except KeyboardInterrupt:
        print("ecg-digitize: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
