#!/usr/bin/env python
"""Remove the data that is hidden from the models at test time.

Usage (official flags)::

    python remove_hidden_data.py -i input_folder -o output_folder [-w] [-l] [-m]

For every record under ``-i`` a reduced header is written to ``-o`` (same relative path):

* record line: only name, number of signals, sampling frequency (Hz) and number of samples
  (base time and date are dropped);
* signal lines: file name, format, gain/baseline/units, ADC resolution and ADC zero are kept; the
  initial value, checksum and block size are blanked; the signal name is kept;
* comment lines are dropped (age, sex, height, weight, ...), except ``# Labels:`` with ``-l``
  (``--include_labels``) and ``# Image:`` with ``-m`` (``--include_images``).

Signal files are copied only with ``-w`` (``--include_waveforms``); when ``-o`` is ``-i`` and ``-w``
is not given they are deleted. Images listed in ``# Image:`` are copied only with ``-m``. Every file read,
copied, written or deleted must resolve (symlinks included) inside its record's folder
(``ecgentry.safe_paths``); others are skipped with a warning, so nothing outside the folders changes.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

from ecgentry.safe_paths import copy_inside, record_paths, remove_inside, same_folder
from helper_code import (
    find_records,
    get_image_files_from_header,
    get_signal_files_from_header,
    load_text,
    save_text,
    substring_images,
    substring_labels,
)

logger = logging.getLogger(__name__)


def get_parser() -> argparse.ArgumentParser:
    """Command-line flags of the official script."""
    parser = argparse.ArgumentParser(description="Remove hidden data.")
    parser.add_argument("-i", "--input_folder", type=str, required=True)
    parser.add_argument("-w", "--include_waveforms", action="store_true")
    parser.add_argument("-l", "--include_labels", action="store_true")
    parser.add_argument("-m", "--include_images", action="store_true")
    parser.add_argument("-o", "--output_folder", type=str, required=True)
    return parser


def strip_signal_line(line: str) -> str:
    """Blank the initial value, checksum and block size (fields 6-8) of a WFDB signal line."""
    fields = line.split(" ")
    if len(fields) < 6:  # nothing after the ADC zero: nothing to hide
        return line
    name = " ".join(fields[8:])
    return " ".join(fields[:5] + ["", "", "", name])


def strip_header(header: str, include_labels: bool = False, include_images: bool = False) -> str:
    """The header without hidden fields; keeps ``# Labels:``/``# Image:`` lines only when asked."""
    lines = header.split("\n")
    record_fields = lines[0].strip().split(" ")
    try:
        num_signals = int(record_fields[1].split("/")[0])
    except (IndexError, ValueError) as error:
        raise ValueError(f"malformed record line: {lines[0]!r}") from error

    output = [" ".join(record_fields[:4])]
    signals_seen = 0
    for line in lines[1:]:
        if line.startswith("#"):
            if line.startswith(substring_labels) and include_labels:
                output.append(line.rstrip())
            elif line.startswith(substring_images) and include_images:
                output.append(line.rstrip())
        elif line.strip() and signals_seen < num_signals:
            output.append(strip_signal_line(line.rstrip()))
            signals_seen += 1
    return "\n".join(output) + "\n"


def run(args: argparse.Namespace) -> int:
    """Write the reduced records; returns the number of records."""
    records = find_records(args.input_folder)
    if not records:
        raise FileNotFoundError(f"no WFDB records (*.hea) found in input folder {args.input_folder!r}")
    in_place = same_folder(args.input_folder, args.output_folder)

    for record in records:
        paths = record_paths(args.input_folder, args.output_folder, record)
        if paths is None:
            continue
        record_name, input_dir, output_dir, input_header_file, output_header_file = paths

        input_header = load_text(input_header_file)
        signal_files = get_signal_files_from_header(input_header)
        image_files: list[str] = []
        if args.include_images:
            try:
                image_files = [f for f in get_image_files_from_header(input_header) if f]
            except Exception:  # helper_code raises when a header has no `# Image:` line
                image_files = []

        save_text(output_header_file, strip_header(input_header, args.include_labels, args.include_images))

        if args.include_waveforms and not in_place:
            for name in signal_files:
                copy_inside(input_dir, output_dir, name, record, "signal file")
        elif not args.include_waveforms and in_place:
            for name in signal_files:
                remove_inside(output_dir, name, record, "signal file")

        if not in_place:
            for name in image_files:
                if copy_inside(input_dir, output_dir, name, record, "image") == "missing":
                    logger.warning("%s: image %s is missing", record, os.path.join(input_dir, name))
    return len(records)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        run(get_parser().parse_args(sys.argv[1:]))
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f"remove_hidden_data.py: error: {error}")
