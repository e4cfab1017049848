#!/usr/bin/env python
"""Evaluate Challenge 2024 model outputs against reference data (digitization SNR, classification F-measure).

Run as the official evaluation script:

    python evaluate_model.py -d data -o outputs [-s scores.csv] [-n] [-x] [-ta snr_per_lead.tsv] [-tb f_per_class.tsv]

where ``data`` holds the reference records (WFDB signals and/or ``# Labels:`` lines) and ``outputs`` the
model outputs with the same relative record names. Printed (and, with ``-s``, saved) scores::

    SNR: x.xxx
    F-measure: x.xxx

Scoring (as the official 2024 evaluation code, with the fixes documented in ``helper_code``):

* Digitization: for every reference record with a signal and every reference lead, the output lead of the
  same name (case-insensitive) is shifted by ``helper_code.align_signals`` (256 amplitude levels) when the
  shift is at most ``round(0.5 * fs)`` samples and 1 mV (``-n`` disables shifting), then scored with
  ``helper_code.compute_snr`` (dB; samples finite in both signals, times the covered fraction of the
  reference; 0 dB when nothing overlaps). Missing output records or leads count as all-NaN (0 dB). The
  summary is the NaN-mean over all record-leads; NaN when no output record has a signal at all.
* Classification: macro F-measure over the classes present in the reference labels; references without
  labels are skipped; a missing output label line counts as no labels; NaN when no output has labels.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

import numpy as np

from helper_code import (align_signals, compute_asci_metric, compute_f_measure, compute_ks_metric, compute_snr,
                         compute_weighted_absolute_difference, find_records, load_labels, load_signals,
                         reorder_signal, save_text)

logger = logging.getLogger(__name__)

NUM_QUANT_LEVELS = 2**8   # amplitude levels of the pictures used to align the signals
MAX_SHIFT_SECONDS = 0.5   # largest horizontal shift kept (s)
MAX_SHIFT_MV = 1.0        # largest vertical shift kept (mV)

# Scale factors from a unit to mV (output records written in another unit are converted).
_UNIT_TO_MV = {'mv': 1.0, 'uv': 1e-3, 'µv': 1e-3, 'μv': 1e-3, 'v': 1e3, 'nv': 1e-6}


def get_parser() -> argparse.ArgumentParser:
    """Command-line parser with the official flags (plus ``-ta``/``-tb`` for per-lead/per-class tables)."""
    parser = argparse.ArgumentParser(description='Evaluate the Challenge models.')
    parser.add_argument('-d', '--folder_ref', '--label_folder', dest='folder_ref', type=str, required=True,
                        help='folder with the reference records (signals and labels)')
    parser.add_argument('-o', '--folder_est', '--output_folder', dest='folder_est', type=str, required=True,
                        help='folder with the model outputs')
    parser.add_argument('-n', '--no_shift', action='store_true', help='do not align the digitized signals')
    parser.add_argument('-x', '--extra_scores', action='store_true', help='also compute the extra metrics')
    parser.add_argument('-s', '--score_file', type=str, required=False, help='save the scores to this file')
    parser.add_argument('-ta', '--snr_file', type=str, required=False,
                        help='save the SNR per record and lead to this TSV file')
    parser.add_argument('-tb', '--f_measure_file', type=str, required=False,
                        help='save the F-measure per class to this TSV file')
    return parser


def _to_mv(signal: np.ndarray, units: list[str], record: str) -> np.ndarray:
    """Convert the columns of ``signal`` from their ``units`` to mV (unknown units are left as they are)."""
    signal = np.array(signal, dtype=np.float64)
    for j, unit in enumerate(units):
        factor = _UNIT_TO_MV.get(str(unit).strip().casefold())
        if factor is None:
            logger.warning('Record %s: unknown unit %r in channel %d; assumed mV.', record, unit, j)
        elif factor != 1.0:
            signal[:, j] *= factor
    return signal


def _nanmean(values: list[float]) -> float:
    """Mean of the non-NaN values; NaN when there are none."""
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0 or np.all(np.isnan(array)):
        return float('nan')
    return float(np.nanmean(array))


def _load_estimate(record_est: str, record: str, channels_ref: list[str],
                   sampling_frequency_ref: float) -> tuple[np.ndarray | None, bool]:
    """Load an output record's signal reordered to the reference channels (mV): ``(signal, present)``.

    ``signal`` is None when the output is absent or unusable (logged); then it counts as all-NaN.
    """
    try:
        signal_est, fields_est = load_signals(record_est)
    except Exception as error:  # a corrupt output must not stop the evaluation
        logger.warning('Record %s: cannot read the output signal (%s); counted as missing.', record, error)
        return None, False
    if signal_est is None:
        return None, False
    if fields_est['fs'] != sampling_frequency_ref:
        logger.warning('Record %s: output sampling frequency %s Hz differs from the reference %s Hz; '
                       'counted as missing.', record, fields_est['fs'], sampling_frequency_ref)
        return None, True
    signal_est = _to_mv(signal_est, list(fields_est['units']), record)
    try:
        signal_est = reorder_signal(signal_est, list(fields_est['sig_name']), channels_ref)
    except ValueError as error:
        logger.warning('Record %s: %s; counted as missing.', record, error)
        return None, True
    return np.asarray(signal_est, dtype=np.float64), True


def evaluate_model(label_folder: str, output_folder: str, shift: bool = True,
                   extra_scores: bool = False) -> dict[str, Any]:
    """Score the outputs in ``output_folder`` against the references in ``label_folder``.

    Returns a dict with ``snr`` (mean dB over record-leads), ``f_measure`` (macro), ``snr_per_lead``
    (``{(record, lead): dB}``), ``shift_per_lead`` (``{(record, lead): (samples, mV)}`` of the shift used),
    ``f_per_class`` (``{class: F}``), ``num_records``, ``num_records_digitized`` (outputs with a signal),
    ``num_records_classified`` (outputs with labels); with ``extra_scores`` also ``snr_median``,
    ``ks_metric``, ``asci_metric`` and ``weighted_absolute_difference`` (means over record-leads).
    Raises ``FileNotFoundError`` when ``label_folder`` holds no records.
    """
    records = find_records(label_folder)
    if not records:
        raise FileNotFoundError(f'No records found in {label_folder}.')

    snr_per_lead: dict[tuple[str, str], float] = dict()
    shift_per_lead: dict[tuple[str, str], tuple[int, float]] = dict()
    extras: dict[str, list[float]] = {'snr_median': [], 'ks_metric': [], 'asci_metric': [],
                                      'weighted_absolute_difference': []}
    num_records_digitized = 0

    for record in records:
        signal_ref, fields_ref = load_signals(os.path.join(label_folder, record))
        if signal_ref is None:
            continue
        channels_ref = list(fields_ref['sig_name'])
        sampling_frequency = float(fields_ref['fs'])
        signal_ref = _to_mv(signal_ref, list(fields_ref['units']), record)

        signal_est, present = _load_estimate(os.path.join(output_folder, record), record, channels_ref,
                                             fields_ref['fs'])
        if present:
            num_records_digitized += 1
        if signal_est is None:
            signal_est = np.full(signal_ref.shape, np.nan)

        max_hz_shift = np.round(MAX_SHIFT_SECONDS * sampling_frequency)
        for j, channel in enumerate(channels_ref):
            x_ref = signal_ref[:, j]
            x_est = signal_est[:, j]
            used_shift = (0, 0.0)
            if shift:
                x_shifted, shift_hz, shift_vt = align_signals(x_ref, x_est, num_quant_levels=NUM_QUANT_LEVELS)
                if abs(shift_hz) <= max_hz_shift and abs(shift_vt) <= MAX_SHIFT_MV:
                    x_est = x_shifted
                    used_shift = (int(shift_hz), float(shift_vt))
            snr_per_lead[(record, channel)] = compute_snr(x_ref, x_est)[0]
            shift_per_lead[(record, channel)] = used_shift

            if extra_scores:
                extras['snr_median'].append(compute_snr(x_ref, x_est, noise_median=True)[0])
                extras['ks_metric'].append(compute_ks_metric(x_ref, x_est))
                extras['asci_metric'].append(compute_asci_metric(x_ref, x_est))
                extras['weighted_absolute_difference'].append(
                    compute_weighted_absolute_difference(x_ref, x_est, sampling_frequency))

    if num_records_digitized > 0:
        mean_snr = _nanmean(list(snr_per_lead.values()))
        mean_extras = {name: _nanmean(values) for name, values in extras.items()}
    else:
        mean_snr = float('nan')
        mean_extras = {name: float('nan') for name in extras}

    # Classification.
    labels_ref: list[list[str]] = list()
    labels_est: list[list[str]] = list()
    num_records_classified = 0
    for record in records:
        try:
            label_ref = load_labels(os.path.join(label_folder, record))
        except Exception:
            label_ref = list()
        label_ref = [label for label in label_ref if label]
        if not label_ref:
            continue
        try:
            label_est = load_labels(os.path.join(output_folder, record))
        except Exception:
            label_est = list()
        label_est = [label for label in label_est if label]
        if label_est:
            num_records_classified += 1
        labels_ref.append(label_ref)
        labels_est.append(label_est)

    if num_records_classified > 0:
        f_measure, per_class, classes = compute_f_measure(labels_ref, labels_est)
        f_per_class = {str(c): float(f) for c, f in zip(classes, per_class)}
    else:
        f_measure, f_per_class = float('nan'), dict()

    result: dict[str, Any] = {
        'snr': mean_snr,
        'f_measure': float(f_measure),
        'snr_per_lead': snr_per_lead,
        'shift_per_lead': shift_per_lead,
        'f_per_class': f_per_class,
        'num_records': len(records),
        'num_records_digitized': num_records_digitized,
        'num_records_classified': num_records_classified,
    }
    if extra_scores:
        result.update(mean_extras)
    return result


def format_scores(scores: dict[str, Any], extra_scores: bool = False) -> str:
    """The score text: ``SNR: x.xxx`` and ``F-measure: x.xxx`` lines (plus the extra metrics)."""
    lines = [f"SNR: {scores['snr']:.3f}"]
    if extra_scores:
        lines += [f"SNR median: {scores['snr_median']:.3f}",
                  f"KS metric: {scores['ks_metric']:.3f}",
                  f"ASCI metric: {scores['asci_metric']:.3f}",
                  f"Weighted absolute difference metric: {scores['weighted_absolute_difference']:.3f}"]
    lines.append(f"F-measure: {scores['f_measure']:.3f}")
    return '\n'.join(lines) + '\n'


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Evaluate, print the scores and write the requested files."""
    scores = evaluate_model(args.folder_ref, args.folder_est, shift=not args.no_shift,
                            extra_scores=args.extra_scores)
    output_string = format_scores(scores, args.extra_scores)
    if args.score_file:
        save_text(args.score_file, output_string)
    if args.snr_file:
        rows = ['record\tlead\tsnr\tshift_samples\tshift_mV']
        for (record, lead), value in scores['snr_per_lead'].items():
            shift_hz, shift_vt = scores['shift_per_lead'][(record, lead)]
            rows.append(f'{record}\t{lead}\t{value:.6f}\t{shift_hz}\t{shift_vt:.6f}')
        save_text(args.snr_file, '\n'.join(rows) + '\n')
    if args.f_measure_file:
        rows = ['class\tf_measure'] + [f'{c}\t{f:.6f}' for c, f in scores['f_per_class'].items()]
        save_text(args.f_measure_file, '\n'.join(rows) + '\n')
    print(output_string, end='')
    return scores


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Entry point: parse ``argv`` (default ``sys.argv[1:]``) and run."""
    logging.basicConfig(level=logging.WARNING, format='%(levelname)s %(name)s: %(message)s')
    return run(get_parser().parse_args(sys.argv[1:] if argv is None else argv))


if __name__ == '__main__':
    main()
