#!/usr/bin/env python
"""Add `# Image:` lines to WFDB headers for the ECG images next to each record.

Usage (official flags)::

    python prepare_image_data.py -i input_folder -o output_folder

For every record ``<folder>/<name>`` under ``-i``, the images of the record are the files in
``<folder>`` named ``<name>-<k>.png``, ``.jpg`` or ``.jpeg`` (``k`` a non-negative integer; extension
case-insensitive), sorted by ``k``. Other files such as ``<name>-0_leads.png`` masks or
``<name>-0.json`` sidecars are never listed. Existing ``# Image:`` lines are replaced by one line
``# Image: <name>-0.png, <name>-1.jpg, ...``; a record without images gets no ``# Image:`` line.
The header is written to ``-o`` under the same relative path; when ``-o`` differs from ``-i`` the
signal files and the listed images are copied as well. Every file read, copied or written must resolve
(symlinks included) inside its record's folder (``ecgentry.safe_paths``); others are skipped with a warning.
"""
from __future__ import annotations

import argparse
import logging
import os
import re
import sys

from ecgentry.safe_paths import copy_inside, inside, record_paths, same_folder
from helper_code import find_records, get_signal_files_from_header, load_text, save_text, substring_images

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg")


def get_parser() -> argparse.ArgumentParser:
    """Command-line flags of the official script."""
    parser = argparse.ArgumentParser(description="Add the ECG image file names to the WFDB headers.")
    parser.add_argument("-i", "--input_folder", type=str, required=True)
    parser.add_argument("-o", "--output_folder", type=str, required=True)
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def find_record_images(folder: str, record_name: str) -> list[str]:
    """Basenames of ``<record_name>-<k>.(png|jpg|jpeg)`` in ``folder``, sorted by the integer ``k``."""
    pattern = re.compile(re.escape(record_name) + r"-(\d+)(\.[A-Za-z]+)$")
    found: list[tuple[int, str]] = []
    try:
        entries = os.listdir(folder)
    except FileNotFoundError:
        return []
    for entry in entries:
        match = pattern.fullmatch(entry)
        if (match and match.group(2).lower() in IMAGE_EXTENSIONS
                and os.path.isfile(os.path.join(folder, entry)) and inside(folder, entry, record_name, "image")):
            found.append((int(match.group(1)), entry))
    return [name for _, name in sorted(found)]


def add_image_lines(header: str, image_files: list[str]) -> str:
    """Header without old ``# Image:`` lines and blank lines, plus one ``# Image:`` line when images exist."""
    lines = [line for line in header.split("\n") if line.strip() and not line.startswith(substring_images)]
    if image_files:
        lines.append(f"{substring_images} {', '.join(image_files)}")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    """Update every header; returns the number of records that have at least one image."""
    records = find_records(args.input_folder)
    if not records:
        raise FileNotFoundError(f"no WFDB records (*.hea) found in input folder {args.input_folder!r}")
    in_place = same_folder(args.input_folder, args.output_folder)

    with_images = 0
    for record in records:
        paths = record_paths(args.input_folder, args.output_folder, record)
        if paths is None:
            continue
        record_name, input_dir, output_dir, input_header_file, output_header_file = paths

        image_files = find_record_images(input_dir, record_name)
        if image_files:
            with_images += 1
        else:
            logger.info("%s: no images named %s-<k>.png/.jpg/.jpeg", record, record_name)

        header = load_text(input_header_file)
        save_text(output_header_file, add_image_lines(header, image_files))

        if not in_place:
            for name in [*get_signal_files_from_header(header), *image_files]:
                if copy_inside(input_dir, output_dir, name, record) == "missing":
                    logger.debug("%s: file %s is missing", record, os.path.join(input_dir, name))
        if args.verbose:
            print(f"{record}: {', '.join(image_files) or '(no images)'}")
    if with_images < len(records):
        logger.warning("%d of %d records have no images (no `# Image:` line written)",
                       len(records) - with_images, len(records))
    return with_images


if __name__ == "__main__":
    cli_args = get_parser().parse_args(sys.argv[1:])
    logging.basicConfig(level=logging.INFO if cli_args.verbose else logging.WARNING, format="%(message)s")
    try:
        run(cli_args)
    except FileNotFoundError as error:
        sys.exit(f"prepare_image_data.py: error: {error}")
