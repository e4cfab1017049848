#!/usr/bin/env python
"""Train the Challenge models (official entry script).

Usage::

    python train_model.py -d data_folder -m model_folder [-v]

Calls ``team_code.train_models(data_folder, model_folder, verbose)``. Fails with a clear message
when ``data_folder`` holds no WFDB records (``*.hea``, searched recursively).
"""
from __future__ import annotations

import argparse
import sys

from helper_code import find_records


class NoDataError(FileNotFoundError):
    """The data folder holds no WFDB records."""


def get_parser() -> argparse.ArgumentParser:
    """Command-line flags of the official script."""
    parser = argparse.ArgumentParser(description="Train the Challenge models.")
    parser.add_argument("-d", "--data_folder", type=str, required=True)
    parser.add_argument("-m", "--model_folder", type=str, required=True)
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def run(args: argparse.Namespace) -> None:
    """Check that there is data, then train and save the models."""
    if not find_records(args.data_folder):
        raise NoDataError(f"no WFDB records (*.hea) found in data folder {args.data_folder!r}")

    from team_code import train_models  # imported here so that `--help` works without team_code

    train_models(args.data_folder, args.model_folder, args.verbose)


if __name__ == "__main__":
    try:
        run(get_parser().parse_args(sys.argv[1:]))
    except NoDataError as error:
        sys.exit(f"train_model.py: error: {error}")
