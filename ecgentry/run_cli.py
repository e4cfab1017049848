"""``python -m ecgentry run``: the official ``run_model.py`` with N worker processes.

Every worker loads the model once (``ecgentry.infer.load_entry``, what ``team_code.load_models`` loads; one torch
thread) and runs ``ecgentry.infer.run_record`` (what ``team_code.run_models`` runs) on whole records; this process
writes the outputs with ``ecgentry.outputs.write_outputs``, which ``run_model.py`` uses too, so headers, signals and
labels are byte-identical to the serial official run. ``-f`` has the
official meaning (a failing record gets empty outputs; without it the first failure stops the run). A worker
that dies on a record (killed, out of memory) is replaced; the record runs once more in the fresh worker and, if
that one dies too, is written with a NaN signal of the header's shape and the fallback labels (the run goes on).
"""

from __future__ import annotations

import argparse
import logging
import os
import traceback
from typing import Any

logger = logging.getLogger(__name__)

_ENTRY: Any = None  # this worker's loaded entry (ecgentry.infer.EntryModels)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-d", "--data_folder", required=True)
    parser.add_argument("-m", "--model_folder", required=True)
    parser.add_argument("-o", "--output_folder", required=True)
    parser.add_argument("-f", "--allow_failures", action="store_true")
    parser.add_argument(
        "--workers",
        type=int,
        default=max(1, min(4, os.cpu_count() or 1)),
        help="worker processes (default: min(4, CPUs))",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="progress bar")


def _init_worker(model_folder: str, threads: int | None) -> None:
    global _ENTRY
    if threads:
        from ecgentry.parallel import limit_threads

        limit_threads(threads)
    from ecgentry.infer import load_entry
    from ecgentry.logs import configure_logging

    configure_logging(False)
    _ENTRY = load_entry(model_folder)


def _run_one(args: tuple[str, str]) -> tuple[str, Any, Any, str | None]:
    """``(record, signal, labels, error)``: the entry on one record; the error is a traceback summary."""
    data_folder, record = args
    from ecgentry.infer import run_record

    try:
        signal, labels = run_record(_ENTRY, os.path.join(data_folder, record), False)
        return record, signal, labels, None
    except Exception:  # noqa: BLE001 - reported (and re-raised without -f) by the main process
        return record, None, None, traceback.format_exc(limit=-1).strip()


def write_record_outputs(
    data_folder: str, output_folder: str, record: str, signal: Any, labels: Any, allow_failures: bool
) -> int:
    """Write one record's outputs exactly as ``run_model.py`` does (``ecgentry.outputs.write_outputs``); returns
    the number of failures (0 or 1)."""
    from ecgentry.outputs import write_outputs

    return write_outputs(
        os.path.join(data_folder, record), os.path.join(output_folder, record), signal, labels, allow_failures
    )


def crashed_record_outputs(data_folder: str, model_folder: str, record: str) -> tuple[Any, list[str]]:
    """``(signal, labels)`` of a record whose worker died on every try: NaN of the header's shape (None when the
    header gives none) and the entry's fallback labels."""
    import json

    from ecgentry.infer import fallback_labels, nan_signal
    from ecgentry.model_folder import ENTRY_FILE

    try:
        with open(os.path.join(model_folder, ENTRY_FILE), encoding="utf-8") as f:
            labels = fallback_labels(json.load(f))
    except (OSError, ValueError):
        labels = []
    return nan_signal(os.path.join(data_folder, record)), labels


class RecordFailed(RuntimeError):
    """``run_models`` raised on a record and ``-f`` was not given."""


def run(args: argparse.Namespace) -> int:
    """Run the entry on every record of the data folder; returns the exit code."""
    from ecgentry.parallel import WorkerCrashed, WorkerInitFailed, run_tasks
    from helper_code import find_records

    records = find_records(args.data_folder)
    if not records:
        logger.error("no WFDB records (*.hea) found in data folder %r", args.data_folder)
        return 2
    if not os.path.isfile(os.path.join(args.model_folder, "entry.json")):
        logger.error("%r is not a complete model folder (no entry.json); train first", args.model_folder)
        return 2
    os.makedirs(args.output_folder, exist_ok=True)
    workers = max(1, int(args.workers))
    threads = 1 if workers > 1 else None
    failures = 0
    tasks = [(args.data_folder, r) for r in records]
    try:
        for i, res in run_tasks(
            _run_one,
            tasks,
            workers,
            _init_worker,
            (args.model_folder, threads),
            progress="records" if args.verbose else None,
        ):
            if isinstance(res, WorkerCrashed):
                logger.warning("record %s: %s; written as NaN with the fallback labels", records[i], res)
                signal, labels = crashed_record_outputs(args.data_folder, args.model_folder, records[i])
                res = (records[i], signal, labels, None)
            record, signal, labels, error = res
            if error is not None:
                if not args.allow_failures:
                    raise RecordFailed(f"run_models failed on {record}: {error}")
                failures += 1
                logger.warning("run_models failed on %s: %s", record, error)
                signal, labels = None, []
            failures += write_record_outputs(
                args.data_folder, args.output_folder, record, signal, labels, args.allow_failures
            )
    except WorkerInitFailed as exc:
        logger.error("the model %r could not be loaded: %s", args.model_folder, str(exc).strip().splitlines()[-1])
        return 2
    logger.info("%d record(s), %d failure(s)", len(records), failures)
    return 0
