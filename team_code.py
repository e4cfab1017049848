#!/usr/bin/env python
"""PhysioNet / CinC Challenge 2024 entry points (the interface the organisers call).

One multi-head model (an image backbone shared by a Dx head and a segmentation digitization head) does
both tasks; the segmentation map feeds a page-geometry + vectorisation digitizer (``ecgdigitize``).
The work lives in ``ecgentry`` (training and inference), ``models`` (networks and losses), ``ecgrender``
(synthetic pages with exact masks) and ``ecgdigitize``. Hyper-parameters: ``ecgentry.config.TrainConfig``,
overridable with ``$ECG_TRAIN_CONFIG`` (a JSON file or an inline JSON object).
"""

from __future__ import annotations

import os

from ecgentry.config import TrainConfig
from ecgentry.infer import load_entry, run_record
from ecgentry.logs import configure_logging as _configure_logging
from ecgentry.train import train


def train_models(data_folder, model_folder, verbose):
    """Train the shared model on the records in ``data_folder`` and save it into ``model_folder``."""
    _configure_logging(verbose)
    summary = train(data_folder, model_folder, TrainConfig.from_env(), verbose=bool(verbose))
    if verbose and os.environ.get("RANK", "0") == "0":  # under torchrun: one summary line, from rank 0
        print(
            f"Trained on {summary['records_used']} records ({summary['records_skipped']} skipped); "
            f"validation macro F {summary['val_macro_f_tuned']:.3f}; trace source {summary['trace_source']}."
        )


def load_models(model_folder, verbose):
    """Return ``(digitization_model, classification_model)``: the same loaded entry serves both."""
    _configure_logging(verbose)
    entry = load_entry(model_folder)
    return entry, entry


def run_models(record, digitization_model, classification_model, verbose):
    """Return ``(signal, labels)``: the signal (num_samples, num_channels) in mV at the header's sampling rate,
    length and lead order (NaN where a lead was not printed), and the predicted labels."""
    entry = digitization_model if digitization_model is not None else classification_model
    signal, labels = run_record(entry, record, bool(verbose))
    if classification_model is None:
        labels = []
    if digitization_model is None:
        signal = None
    return signal, labels
