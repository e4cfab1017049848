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
``helper_code.save_labels`` when they are not None.

``-f`` (``--allow_failures``): an exception in ``run_models`` gives empty outputs for that record
(no signal, an empty ``# Labels:`` line) and the run goes on with the next record.
"""
from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Iterable
from typing import Any

import numpy as np

from helper_code import (
    find_records,
    get_adc_gains,
    get_baselines,
    get_num_samples,
    get_num_signals,
    get_signal_formats,
    load_header,
    save_header,
    save_labels,
    save_signals,
    substring_labels,
)

#: Bits per sample of the WFDB storage formats (the most negative value is the format's NaN).
FORMAT_BITS: dict[str, int] = {
    "8": 8, "16": 16, "24": 24, "32": 32, "61": 16, "80": 8, "160": 16, "212": 12,
    "310": 10, "311": 10, "508": 8, "516": 16, "524": 24,
}


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


def physical_range(signal_format: str, adc_gain: float, baseline: int) -> tuple[float, float]:
    """Smallest and largest physical value (header units, e.g. mV) storable in one channel.

    The digital range of a ``b``-bit format is ``[-2**(b-1) + 1, 2**(b-1) - 1]`` (``-2**(b-1)`` is
    reserved for NaN); physical = (digital - baseline) / gain. Format 16 with gain 1000 and baseline 0
    gives (-32.767, 32.767) mV. Unknown formats count as 16 bits; a gain <= 0 means no limit.
    """
    if not adc_gain or adc_gain <= 0:
        return -np.inf, np.inf
    bits = FORMAT_BITS.get(str(signal_format).strip(), 16)
    digital_max = 2 ** (bits - 1) - 1
    return (-digital_max - baseline) / adc_gain, (digital_max - baseline) / adc_gain


def conform_signal(signal: Any, header: str) -> np.ndarray:
    """Make a model's signal writable for ``header``: float64 ``(num_samples, num_signals)``.

    A 1-D signal is one channel; a ``(num_signals, num_samples)`` signal is transposed; rows are
    truncated or padded with NaN to the header's number of samples; finite values and +-inf are
    clipped to each channel's :func:`physical_range`; NaN stays NaN (written as the format's NaN).
    Raises ValueError when the channel count cannot be matched to the header.
    """
    values = np.array(signal, dtype=np.float64)
    num_signals = get_num_signals(header)
    num_samples = get_num_samples(header)
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2:
        raise ValueError(f"signal must be 2-D (samples x channels), got shape {values.shape}")
    if num_signals is not None and values.shape[1] != num_signals and values.shape[0] == num_signals:
        values = values.T
    if num_signals is not None and values.shape[1] != num_signals:
        raise ValueError(f"signal has {values.shape[1]} channels, the header has {num_signals}")
    if num_samples is not None and values.shape[0] != num_samples:
        fitted = np.full((num_samples, values.shape[1]), np.nan)
        keep = min(num_samples, values.shape[0])
        fitted[:keep] = values[:keep]
        values = fitted

    formats = get_signal_formats(header)
    gains = get_adc_gains(header)
    baselines = get_baselines(header)
    for channel in range(values.shape[1]):
        if channel >= min(len(formats), len(gains), len(baselines)):
            break
        low, high = physical_range(formats[channel], gains[channel], baselines[channel])
        values[:, channel] = np.clip(values[:, channel], low, high)  # NaN passes through
    return np.ascontiguousarray(values)


def conform_labels(labels: Any) -> list[str]:
    """A list of non-empty label strings; a single string is split on commas."""
    if isinstance(labels, str):
        labels = labels.split(",")
    elif not isinstance(labels, Iterable):
        labels = [labels]
    return [str(label).strip() for label in labels if str(label).strip()]


def header_without_labels(header: str) -> str:
    """The header text minus ``# Labels:`` lines (outputs carry the model's labels only)."""
    key = substring_labels.lstrip("#").strip()  # "Labels:"; matches "# Labels:" and "#Labels:"
    lines = [line for line in header.split("\n")
             if not (line.startswith("#") and line.lstrip("#").strip().startswith(key))]
    text = "\n".join(lines)
    return text if text.endswith("\n") else text + "\n"


def warn(message: str) -> None:
    """One line on stderr."""
    print(message, file=sys.stderr, flush=True)


def write_outputs(data_record: str, output_record: str, signal, labels, allow_failures: bool) -> int:
    """Write one record's outputs: the input header (without labels), the signal when not None (converted to
    the header's shape and range) and the labels. Returns 1 when an unusable signal was dropped (only with
    ``allow_failures``; otherwise the error is raised), else 0."""
    failures = 0
    data_header = header_without_labels(load_header(data_record))
    if signal is not None:
        try:
            signal = conform_signal(signal, data_header)
        except (ValueError, TypeError):
            if not allow_failures:
                raise
            failures = 1
            warn(f"run_model.py: unusable signal for {data_record}: {sys.exc_info()[1]}")
            signal = None
    os.makedirs(os.path.dirname(output_record) or ".", exist_ok=True)
    save_header(output_record, data_header)
    if signal is not None:
        comments = [line for line in data_header.split("\n") if line.startswith("#")]
        save_signals(output_record, signal, comments)
    if labels is not None:
        save_labels(output_record, conform_labels(labels))
    return failures


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
