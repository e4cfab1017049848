#!/usr/bin/env python
"""Run the trained Challenge models (official entry script).

Usage::

    python run_model.py -d data_folder -m model_folder -o output_folder [-v] [-f]

For every record under ``data_folder`` (searched recursively) this calls
``team_code.run_models(record, digitization_model, classification_model, verbose)``, which returns
``(signal, labels)``: ``signal`` a ``(num_samples, num_channels)`` array in the header's units (mV)
or None, ``labels`` a list of class names or None. The outputs go to ``output_folder`` under the
record's relative path: the input header is copied (without any ``# Labels:`` line), the signal is
written with ``helper_code.save_signals`` when it is not None, and the labels are appended with
``helper_code.save_labels`` when they are not None (``ecgentry.outputs.write_outputs``, shared with
``python -m ecgentry run``).

``-f`` (``--allow_failures``): an exception in ``run_models`` gives empty outputs for that record
(no signal, an empty ``# Labels:`` line) and the run goes on with the next record.
"""
from __future__ import annotations

import argparse
import os
import sys
import traceback

from ecgentry.outputs import conform_labels, conform_signal, header_without_labels, warn, write_outputs
from ecgvocab import FORMAT_BITS, physical_range
from helper_code import find_records

#: What other code and the tests take from here (the write code lives in ``ecgentry.outputs``).
__all__ = ["FORMAT_BITS", "NoDataError", "conform_labels", "conform_signal", "get_parser", "header_without_labels",
           "physical_range", "run", "warn", "write_outputs"]


class NoDataError(FileNotFoundError):
    """The data folder holds no WFDB records."""


def get_parser() -> argparse.ArgumentParser:
    """Command-line flags of the official script."""
    parser = argparse.ArgumentParser(description="Run the trained Challenge models.")
    parser.add_argument("-d", "--data_folder", type=str, required=True)
    parser.add_argument("-m", "--model_folder", type=str, required=True)
    parser.add_argument("-o", "--output_folder", type=str, required=True)
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("-f", "--allow_failures", action="store_true")
    return parser


def run(args: argparse.Namespace) -> None:
    """Load the models, run them on every record and save the outputs."""
    records = find_records(args.data_folder)
    if not records:
        raise NoDataError(f"no WFDB records (*.hea) found in data folder {args.data_folder!r}")

    from team_code import load_models, run_models  # imported here so that `--help` works without team_code

    if args.verbose:
        print("Loading the Challenge models...")
    digitization_model, classification_model = load_models(args.model_folder, args.verbose)

    os.makedirs(args.output_folder, exist_ok=True)
    if args.verbose:
        print("Running the Challenge models on the Challenge data...")

    num_records = len(records)
    width = len(str(num_records))
    num_failures = 0
    for i, record in enumerate(records):
        if args.verbose:
            print(f"- {i + 1:>{width}}/{num_records}: {record}...")
        data_record = os.path.join(args.data_folder, record)
        output_record = os.path.join(args.output_folder, record)

        try:
            signal, labels = run_models(data_record, digitization_model, classification_model, args.verbose)
        except Exception:
            if not args.allow_failures:
                raise
            num_failures += 1
            warn(f"run_model.py: run_models failed on {record}: {traceback.format_exc(limit=-1).strip()}")
            signal, labels = None, []

        num_failures += write_outputs(data_record, output_record, signal, labels, args.allow_failures)

    if args.verbose:
        print(f"Done ({num_failures} failure(s)).")


if __name__ == "__main__":
    try:
        run(get_parser().parse_args(sys.argv[1:]))
    except NoDataError as error:
        sys.exit(f"run_model.py: error: {error}")
