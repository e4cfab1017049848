"""Writing one record's Challenge outputs, as ``run_model.py`` does: the input header without its labels, the
signal fitted to that header (shape and storable range) and the labels.

Shared by ``run_model.py`` and ``python -m ecgentry run`` so that both write byte-identical outputs; only the
official ``helper_code`` writers are used.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any

import numpy as np

from ecgvocab import clip_for_wfdb, physical_range
from helper_code import (
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


def conform_signal(signal: Any, header: str) -> np.ndarray:
    """Make a model's signal writable for ``header``: float64 ``(num_samples, num_signals)``.

    A 1-D signal is one channel; a ``(num_signals, num_samples)`` signal is transposed; rows are
    truncated or padded with NaN to the header's number of samples; finite values and +-inf are
    clipped to each channel's :func:`ecgvocab.physical_range`; NaN stays NaN (written as the format's NaN).
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
        values[:, channel] = clip_for_wfdb(
            values[:, channel], *physical_range(formats[channel], gains[channel], baselines[channel])
        )
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
    lines = [
        line for line in header.split("\n") if not (line.startswith("#") and line.lstrip("#").strip().startswith(key))
    ]
    text = "\n".join(lines)
    return text if text.endswith("\n") else text + "\n"


def warn(message: str) -> None:
    """One line on stderr."""
    print(message, file=sys.stderr, flush=True)


def write_outputs(data_record: str, output_record: str, signal: Any, labels: Any, allow_failures: bool) -> int:
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
