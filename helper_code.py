#!/usr/bin/env python
"""Helper functions for the PhysioNet / CinC Challenge 2024 (ECG image digitization and classification).

Our own implementation of the official ``helper_code.py`` API of ``physionetchallenges/python-example-2024``:
the same function names, signatures and return types, so that the organisers can swap in their file.
Deliberate, documented extensions (compatible with the official call sites):

* Header comment lines are matched with or without the space after ``#`` (``#Image:`` == ``# Image:``).
* ``get_labels_from_header`` falls back to an early-phase ``#Dx:`` line (``Normal``/``Abnormal``) when there
  is no ``# Labels:`` line; a ``#Dx:`` of SNOMED CT codes (Challenge 2021 headers) is never read as labels.
* ``load_signals`` returns ``(None, None)`` when the header is missing, names no signal file, or a signal
  file is missing; ``save_signals`` clips values that would overflow the storage format and keeps the
  existing header's comment lines.
* ``reorder_signal`` matches channel names case-insensitively and fills channels that are missing from
  the input with NaN (the official code leaves zeros or drops the channel).
* ``compute_snr`` returns 0 dB when the reference has finite samples but none overlap the estimate
  (the official code returns NaN there, which would silently drop missing outputs from the mean).

Conventions: signals are float arrays of shape ``(num_samples, num_channels)`` in physical units (mV);
NaN marks unknown samples.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

### Challenge variables
substring_labels = '# Labels:'
substring_images = '# Image:'
substring_dx = '# Dx:'

# Labels that the early-phase 2024 data used on '#Dx:' lines.
_EARLY_DX_LABELS = {'normal', 'abnormal'}


### Challenge data I/O functions

def find_records(folder: str, header_extension: str = '.hea') -> list[str]:
    """Find the records (header files) in ``folder`` and its subfolders.

    Returns sorted paths relative to ``folder`` without the header extension, e.g. ``['a/00001_lr']``.
    """
    records = set()
    for root, _directories, files in os.walk(folder):
        for file in files:
            if file.endswith(header_extension) and len(file) > len(header_extension):
                record = os.path.relpath(os.path.join(root, file), folder)[:-len(header_extension)]
                records.add(record)
    return sorted(records)


def load_header(record: str) -> str:
    """Load the header text of a record (``record`` with or without ``.hea``)."""
    return load_text(get_header_file(record))


def load_signals(record: str) -> tuple[np.ndarray | None, dict[str, Any] | None]:
    """Load the signals of a record with WFDB.

    Returns ``(signal, fields)`` where ``signal`` is a float array ``(num_samples, num_channels)`` in the
    header's physical units (mV) and ``fields`` is WFDB's dict (``fs``, ``sig_len``, ``n_sig``, ``units``,
    ``sig_name``, ``comments``, ...). Returns ``(None, None)`` when the header is missing, names no signal
    file, or any signal file is missing.
    """
    signal_files = get_signal_files(record)
    path = os.path.split(record)[0]
    if not signal_files:
        return None, None
    if not all(os.path.isfile(os.path.join(path, signal_file)) for signal_file in signal_files):
        logger.debug('Signal file(s) %s of record %s are missing.', signal_files, record)
        return None, None
    import wfdb

    record_path = record[:-4] if record.endswith('.hea') else record
    signal, fields = wfdb.rdsamp(record_path)
    return np.asarray(signal, dtype=np.float64), fields


def load_images(record: str) -> list:
    """Load the images named on the ``# Image:`` lines of a record's header as PIL images.

    Image paths are relative to the record's folder; files that do not exist are skipped (with a warning).
    Raises ``FileNotFoundError`` when the header has no ``# Image:`` line (as the official code raises).
    """
    from PIL import Image

    path = os.path.split(record)[0]
    images = list()
    for image_file in get_image_files(record):
        image_file_path = os.path.join(path, image_file)
        if os.path.isfile(image_file_path):
            image = Image.open(image_file_path)
            image.load()  # read the pixels now so that the file handle is released
            images.append(image)
        else:
            logger.warning('Image file %s of record %s is missing; skipped.', image_file_path, record)
    return images


def load_labels(record: str) -> list[str]:
    """Load the labels of a record (see ``get_labels_from_header``)."""
    return get_labels_from_header(load_header(record))


def save_header(record: str, header: str) -> None:
    """Write ``header`` to the record's header file."""
    save_text(get_header_file(record), header)


def save_signals(record: str, signal: np.ndarray, comments: Sequence[str] = list()) -> None:
    """Write ``signal`` (``(num_samples, num_channels)``, mV) as the WFDB signal file of ``record``.

    The sampling frequency, formats, ADC gains, baselines, units and channel names come from the existing
    header file ``record.hea``, which is rewritten (pointing to ``<name>.dat``); its ``#`` comment lines are
    kept, followed by ``comments`` (leading ``#`` optional). Values outside the range the format can store
    are clipped so that writing never fails; NaN (and +-inf) is written as the format's NaN value.
    """
    import wfdb

    header = load_header(record)
    path, record_name = os.path.split(record)
    if record_name.endswith('.hea'):
        record_name = record_name[:-4]
    sampling_frequency = get_sampling_frequency(header)
    signal_formats = get_signal_formats(header)
    adc_gains = get_adc_gains(header)
    baselines = get_baselines(header)
    signal_units = get_signal_units(header)
    signal_names = get_signal_names(header)
    num_signals = get_num_signals(header)

    signal = np.array(signal, dtype=np.float64)
    if signal.ndim == 1:
        signal = signal[:, np.newaxis]
    if signal.ndim != 2 or signal.shape[1] != num_signals:
        raise ValueError(f'Signal of shape {signal.shape} does not match the {num_signals} channels in the header '
                         f'of record {record}; expected (num_samples, {num_signals}).')
    if signal.shape[0] == 0:
        raise ValueError(f'Signal for record {record} has no samples.')

    # Clip finite values to the range the storage format can represent; non-finite values become NaN.
    signal[~np.isfinite(signal)] = np.nan
    for j in range(num_signals):
        lo, hi = _format_limits(signal_formats[j])
        gain = adc_gains[j] if adc_gains[j] != 0 else 1.0
        p_lo, p_hi = sorted(((lo - baselines[j]) / gain, (hi - baselines[j]) / gain))
        signal[:, j] = np.clip(signal[:, j], p_lo, p_hi)

    if not comments:
        comments = [line for line in header.split('\n') if line.startswith('#')]
    all_comments = [_strip_comment(c) for c in comments]

    wfdb.wrsamp(record_name, fs=sampling_frequency, units=signal_units, sig_name=signal_names,
                p_signal=signal, fmt=signal_formats, adc_gain=adc_gains, baseline=baselines,
                comments=all_comments, write_dir=path if path else '.')


def save_labels(record: str, labels: Iterable[str]) -> str:
    """Write a ``# Labels:`` line with ``labels`` to the record's header, replacing any existing one.

    Returns the new header text.
    """
    header_file = get_header_file(record)
    header = load_text(header_file)
    lines = [line for line in header.split('\n') if _match_variable(line, substring_labels) is None]
    while lines and lines[-1] == '':
        lines.pop()
    lines.append(substring_labels + ' ' + ', '.join(str(label) for label in labels))
    header = '\n'.join(lines) + '\n'
    save_text(header_file, header)
    return header


### Helper Challenge functions

def load_text(filename: str) -> str:
    """Load a text file as a string."""
    with open(filename, 'r') as f:
        return f.read()


def save_text(filename: str, string: str) -> None:
    """Save a string as a text file."""
    with open(filename, 'w') as f:
        f.write(string)


def _strip_comment(comment: str) -> str:
    """Remove the leading ``#`` characters and surrounding spaces of a header comment."""
    return str(comment).strip().lstrip('#').strip()


def _match_variable(line: str, variable_name: str) -> str | None:
    """Return the rest of ``line`` after ``variable_name``, or None when the line does not start with it.

    A ``variable_name`` starting with ``#`` matches comment lines with or without spaces after the ``#``
    (``# Image:`` matches ``#Image:`` and ``# Image:``).
    """
    line = line.rstrip('\r')
    if variable_name.startswith('#'):
        if not line.startswith('#'):
            return None
        key = variable_name.lstrip('#').strip()
        body = line.lstrip('#').lstrip()
        if body.startswith(key):
            return body[len(key):]
        return None
    if line.startswith(variable_name):
        return line[len(variable_name):]
    return None


def get_variable(string: str, variable_name: str) -> tuple[str, bool]:
    """Get the value of the last line starting with ``variable_name``: ``(value, has_variable)``."""
    variable = ''
    has_variable = False
    for line in string.split('\n'):
        rest = _match_variable(line, variable_name)
        if rest is not None:
            variable = rest.strip()
            has_variable = True
    return variable, has_variable


def get_variables(string: str, variable_name: str, sep: str = ',') -> tuple[list[str], bool]:
    """Get the ``sep``-separated values of all lines starting with ``variable_name``: ``(values, has)``."""
    variables = list()
    has_variable = False
    for line in string.split('\n'):
        rest = _match_variable(line, variable_name)
        if rest is not None:
            variables += [variable.strip() for variable in rest.strip().split(sep)]
            has_variable = True
    return variables, has_variable


def get_signal_files_from_header(string: str) -> list[str]:
    """Get the unique signal file names from the signal specification lines of a header."""
    signal_files = list()
    lines = [line for line in string.split('\n') if line.strip() and not line.lstrip().startswith('#')]
    if not lines:
        return signal_files
    fields = lines[0].split()
    if len(fields) < 2 or not is_integer(fields[1].split('/')[0]):
        return signal_files
    num_channels = int(float(fields[1].split('/')[0]))
    for line in lines[1:num_channels + 1]:
        signal_file = line.split()[0].strip()
        if signal_file not in signal_files:
            signal_files.append(signal_file)
    return signal_files


def get_image_files_from_header(string: str) -> list[str]:
    """Get the image file names from the ``# Image:`` lines (several lines and comma lists allowed).

    Raises ``FileNotFoundError`` when the header has no ``# Image:`` line.
    """
    images, has_image = get_variables(string, substring_images)
    if not has_image:
        raise FileNotFoundError('No images available: did you forget to generate or include the images?')
    return [image for image in images if image]


def get_labels_from_header(string: str) -> list[str]:
    """Get the labels from the ``# Labels:`` line(s) of a header (empty entries dropped).

    Without a Labels line, an early-phase ``#Dx:`` line (e.g. ``Normal``/``Abnormal``) is used; a ``#Dx:``
    line of SNOMED CT codes (all integers) is not a label line. Raises ``ValueError`` when no labels are
    available (as for held-out data).
    """
    labels, has_labels = get_variables(string, substring_labels)
    if not has_labels:
        dxs, has_dx = get_variables(string, substring_dx)
        dxs = [dx for dx in dxs if dx]
        if has_dx and dxs and not all(is_integer(dx) for dx in dxs):
            labels, has_labels = dxs, True
    if not has_labels:
        raise ValueError('No labels available: are you trying to load the labels from the held-out data, or did '
                         'you forget to prepare the data to include the labels?')
    return [label for label in labels if label]


def get_header_file(record: str) -> str:
    """Get the header file name of a record (``record`` + ``.hea`` unless already there)."""
    if not record.endswith('.hea'):
        return record + '.hea'
    return record


def get_signal_files(record: str) -> list[str]:
    """Get the signal file names of a record; an empty list when its header file is missing."""
    header_file = get_header_file(record)
    if not os.path.isfile(header_file):
        return list()
    return get_signal_files_from_header(load_text(header_file))


def get_image_files(record: str) -> list[str]:
    """Get the image file names of a record (relative to the record's folder)."""
    return get_image_files_from_header(load_text(get_header_file(record)))


### WFDB functions

def _record_line_fields(string: str) -> list[str]:
    """Fields of the record line (the first non-comment line) of a header."""
    for line in string.split('\n'):
        if line.strip() and not line.lstrip().startswith('#'):
            return line.split()
    return []


def _signal_lines(string: str) -> list[list[str]]:
    """Fields of the signal specification lines of a header.

    Fields are split on single spaces, as the official code does, so that blanked fields (e.g. hidden
    checksums, ``'file 16 1000/mV 16 0    I'``) keep their positions; lines with fewer than 9 such fields
    (other whitespace) are split on any whitespace.
    """
    lines = [line.rstrip('\r') for line in string.split('\n')
             if line.strip() and not line.lstrip().startswith('#')]
    num_signals = get_num_signals(string) or 0
    fields_list = list()
    for line in lines[1:num_signals + 1]:
        fields = line.strip().split(' ')
        fields_list.append(fields if len(fields) >= 9 else line.split())
    return fields_list


def get_record_name(string: str) -> str:
    """Get the record name from a header."""
    fields = _record_line_fields(string)
    return fields[0].split('/')[0].strip() if fields else ''


def get_num_signals(string: str) -> int | None:
    """Get the number of signals (channels) from a header."""
    fields = _record_line_fields(string)
    if len(fields) > 1:
        value = fields[1].split('/')[0]
        if is_integer(value):
            return int(float(value))
    return None


def get_sampling_frequency(string: str) -> float | None:
    """Get the sampling frequency (Hz) from a header."""
    fields = _record_line_fields(string)
    if len(fields) > 2:
        value = fields[2].split('/')[0].split('(')[0]
        if is_number(value):
            return float(value)
    return None


def get_num_samples(string: str) -> int | None:
    """Get the number of samples per signal from a header."""
    fields = _record_line_fields(string)
    if len(fields) > 3 and is_integer(fields[3]):
        return int(float(fields[3]))
    return None


def get_signal_formats(string: str) -> list[str]:
    """Get the storage formats (e.g. ``'16'``; samples-per-frame, skew and byte offset removed)."""
    values = list()
    for fields in _signal_lines(string):
        field = fields[1] if len(fields) > 1 else '16'
        field = field.split('x')[0].split(':')[0].split('+')[0]
        values.append(field)
    return values


def get_adc_gains(string: str) -> list[float]:
    """Get the ADC gains (digital units per physical unit, e.g. 1000 per mV; 200 when absent)."""
    values = list()
    for fields in _signal_lines(string):
        field = fields[2] if len(fields) > 2 else '200'
        field = field.split('/')[0].split('(')[0]
        value = float(field) if is_number(field) else 200.0
        values.append(value if value != 0 else 200.0)
    return values


def get_baselines(string: str) -> list[int]:
    """Get the baselines (digital value of 0 physical units); the ADC zero when not given."""
    values = list()
    adc_zeros = get_adc_zeros(string)
    for i, fields in enumerate(_signal_lines(string)):
        field = fields[2] if len(fields) > 2 else ''
        field = field.split('/')[0]
        if '(' in field and ')' in field:
            values.append(int(float(field.split('(')[1].split(')')[0])))
        else:
            values.append(adc_zeros[i])
    return values


def get_signal_units(string: str) -> list[str]:
    """Get the physical units of the signals (``'mV'`` when absent)."""
    values = list()
    for fields in _signal_lines(string):
        field = fields[2] if len(fields) > 2 else ''
        values.append(field.split('/', 1)[1] if '/' in field else 'mV')
    return values


def _int_field(string: str, index: int, default: int) -> list[int]:
    """Integer field ``index`` of every signal line (``default`` when absent)."""
    values = list()
    for fields in _signal_lines(string):
        values.append(int(float(fields[index])) if len(fields) > index and is_number(fields[index]) else default)
    return values


def get_adc_resolutions(string: str) -> list[int]:
    """Get the ADC resolutions (bits)."""
    return _int_field(string, 3, 0)


def get_adc_zeros(string: str) -> list[int]:
    """Get the ADC zeros."""
    return _int_field(string, 4, 0)


def get_initial_values(string: str) -> list[int]:
    """Get the initial (digital) values of the signals."""
    return _int_field(string, 5, 0)


def get_checksums(string: str) -> list[int]:
    """Get the checksums of the signals."""
    return _int_field(string, 6, 0)


def get_block_sizes(string: str) -> list[int]:
    """Get the block sizes of the signals."""
    return _int_field(string, 7, 0)


def get_signal_names(string: str) -> list[str]:
    """Get the signal (channel) names; a description with spaces is kept whole."""
    return [' '.join(fields[8:]) if len(fields) > 8 else '' for fields in _signal_lines(string)]


def _format_limits(signal_format: str) -> tuple[int, int]:
    """Smallest and largest digital value a WFDB format can store (its NaN value excluded)."""
    try:
        from wfdb.io import _signal
        lo, hi = _signal._digi_bounds([signal_format])[0]
        nan_value = _signal._digi_nan([signal_format])[0]
    except Exception:  # unknown format or a changed wfdb internal API: assume 16 bits
        lo, hi, nan_value = -32768, 32767, -32768
    if nan_value is not None and nan_value == lo:
        lo += 1
    elif nan_value is not None and nan_value == hi:
        hi -= 1
    return int(lo), int(hi)


### Evaluation functions

def compute_one_vs_rest_confusion_matrix(labels: np.ndarray, outputs: np.ndarray,
                                         classes: Sequence[str]) -> np.ndarray:
    """One-vs-rest confusion matrices ``(num_classes, 2, 2)``: ``[[TP, FP], [FN, TN]]`` per class.

    ``labels`` and ``outputs`` are one-hot arrays ``(num_instances, num_classes)``.
    """
    labels = np.asarray(labels, dtype=bool)
    outputs = np.asarray(outputs, dtype=bool)
    assert np.shape(labels) == np.shape(outputs)
    A = np.zeros((len(classes), 2, 2))
    A[:, 0, 0] = np.sum(labels & outputs, axis=0)
    A[:, 0, 1] = np.sum(~labels & outputs, axis=0)
    A[:, 1, 0] = np.sum(labels & ~outputs, axis=0)
    A[:, 1, 1] = np.sum(~labels & ~outputs, axis=0)
    return A


def compute_f_measure(labels: Sequence[Sequence[str]],
                      outputs: Sequence[Sequence[str]]) -> tuple[float, np.ndarray, list[str]]:
    """Macro F-measure of multi-label outputs: ``(macro_f, per_class_f, classes)``.

    ``labels`` and ``outputs`` are lists (one per record) of label lists. The classes are those present in
    the reference labels, sorted; records with no reference label are skipped; output classes absent from
    the references are ignored. ``per_class_f[k] = 2TP / (2TP + FP + FN)``.
    """
    if len(labels) != len(outputs):
        raise ValueError(f'{len(labels)} reference label lists but {len(outputs)} output label lists.')
    pairs = [([str(x).strip() for x in ref if str(x).strip()], [str(x).strip() for x in out if str(x).strip()])
             for ref, out in zip(labels, outputs)]
    pairs = [(ref, out) for ref, out in pairs if ref]
    if not pairs:
        return float('nan'), np.zeros(0), list()
    classes = sorted(set.union(*(set(ref) for ref, _ in pairs)))
    labels_one_hot = compute_one_hot_encoding([ref for ref, _ in pairs], classes)
    outputs_one_hot = compute_one_hot_encoding([out for _, out in pairs], classes)
    A = compute_one_vs_rest_confusion_matrix(labels_one_hot, outputs_one_hot, classes)

    per_class_f_measure = np.zeros(len(classes))
    for k in range(len(classes)):
        tp, fp, fn = A[k, 0, 0], A[k, 0, 1], A[k, 1, 0]
        denominator = 2 * tp + fp + fn
        per_class_f_measure[k] = 2 * tp / denominator if denominator > 0 else float('nan')

    if np.any(np.isfinite(per_class_f_measure)):
        macro_f_measure = float(np.nanmean(per_class_f_measure))
    else:
        macro_f_measure = float('nan')
    return macro_f_measure, per_class_f_measure, classes


def normalize_names(names_ref: Sequence[str], names_est: Sequence[str]) -> list[str]:
    """Spell the names in ``names_est`` as in ``names_ref`` (case-insensitive); unmatched names dropped."""
    tmp = list()
    for a in names_est:
        for b in names_ref:
            if str(a).strip().casefold() == str(b).strip().casefold():
                tmp.append(b)
                break
    return tmp


def reorder_signal(input_signal: np.ndarray, input_channels: Sequence[str],
                   output_channels: Sequence[str]) -> np.ndarray:
    """Reorder the columns of ``input_signal`` ``(num_samples, len(input_channels))`` to ``output_channels``.

    Channel names match case-insensitively; output channels absent from the input are all-NaN. Returns a
    float array ``(num_samples, len(output_channels))`` (the input itself when the names are identical).
    """
    input_channels = list(input_channels)
    output_channels = list(output_channels)
    keys_in = [str(c).strip().casefold() for c in input_channels]
    keys_out = [str(c).strip().casefold() for c in output_channels]
    if len(set(keys_in)) != len(keys_in) or len(set(keys_out)) != len(keys_out):
        raise ValueError(f'Repeated channel names are not allowed: {input_channels} -> {output_channels}.')

    input_signal = np.asarray(input_signal)
    if input_signal.ndim != 2 or input_signal.shape[1] != len(input_channels):
        raise ValueError(f'Signal of shape {input_signal.shape} does not match {len(input_channels)} channels.')
    if input_channels == output_channels:
        return input_signal

    data_type = input_signal.dtype if np.issubdtype(input_signal.dtype, np.floating) else np.float64
    output_signal = np.full((input_signal.shape[0], len(output_channels)), np.nan, dtype=data_type)
    for i, key in enumerate(keys_out):
        if key in keys_in:
            output_signal[:, i] = input_signal[:, keys_in.index(key)]
    return output_signal


def trim_signal(input_signal: np.ndarray, num_samples_trimmed: int, fill_value: float = 0.0) -> np.ndarray:
    """Truncate or pad ``input_signal`` ``(num_samples, num_channels)`` to ``num_samples_trimmed`` rows.

    Padding uses ``fill_value`` (0, as the official code; pass ``np.nan`` to mark the samples unknown).
    """
    input_signal = np.asarray(input_signal)
    num_samples, num_channels = np.shape(input_signal)
    if num_samples == num_samples_trimmed:
        return input_signal
    if num_samples > num_samples_trimmed:
        return input_signal[:num_samples_trimmed, :]
    data_type = input_signal.dtype
    if not np.isfinite(fill_value) and not np.issubdtype(data_type, np.floating):
        data_type = np.float64
    output_signal = np.full((num_samples_trimmed, num_channels), fill_value, dtype=data_type)
    output_signal[:num_samples, :] = input_signal
    return output_signal


def convert_signal(x: np.ndarray, num_quant_levels: int, min_amp: float, max_amp: float,
                   max_t: int) -> np.ndarray:
    """Draw a 1-D signal as a binary picture ``(num_quant_levels, max_t)``.

    Row ``k`` is amplitude level ``k`` (``min_amp`` -> row 0, ``max_amp`` -> last row), column ``t`` is sample
    ``t``; non-finite samples leave their column empty.
    """
    x = np.asarray(x, dtype=np.float64)
    idx = np.isfinite(x)
    t = np.flatnonzero(idx)
    span = max_amp - min_amp
    if span > 0:
        # Same arithmetic as the official code (1-based levels, round half to even) so ties agree.
        levels = np.round((num_quant_levels - 1) * (x[idx] - min_amp) / span + 1).astype(int) - 1
    else:
        levels = np.zeros(t.size, dtype=int)
    levels = np.clip(levels, 0, num_quant_levels - 1)
    A = np.zeros((num_quant_levels, max_t))
    A[levels, t] = 1.0
    return A


def fft_correlate(A_ref: np.ndarray, A_est: np.ndarray) -> np.ndarray:
    """Full 2-D cross-correlation of two pictures (via FFT convolution with the flipped estimate)."""
    from scipy.signal import fftconvolve

    return fftconvolve(A_ref, A_est[::-1, ::-1], mode='full')


def align_signals(x_ref: np.ndarray, x_est: np.ndarray, num_quant_levels: int = 2**8, smooth: bool = True,
                  sigma: float = 0.5) -> tuple[np.ndarray, int, float]:
    """Shift an estimated 1-D signal (mV) to best match a reference, as the official scorer does.

    Both signals are drawn as ``num_quant_levels``-level binary pictures over their common amplitude range,
    optionally Gaussian-smoothed (``sigma`` in pixels), and the peak of their 2-D cross-correlation gives
    the horizontal offset ``offset_hz`` (samples; positive: the estimate lags the reference) and the
    vertical offset ``offset_vt`` (mV; positive: the estimate is too high).

    Returns ``(x_est_shifted, offset_hz, offset_vt)``: for ``offset_hz >= 0`` the first ``offset_hz`` samples
    are dropped and NaN is appended (same length); for ``offset_hz < 0`` NaN is prepended and the whole
    estimate kept (length ``len(x_est) - offset_hz``); ``offset_vt`` is subtracted. When either signal has no
    finite sample, the estimate is returned unchanged with zero offsets.
    """
    from scipy.ndimage import gaussian_filter

    x_ref = np.asarray(x_ref, dtype=np.float64).ravel()
    x_est = np.asarray(x_est, dtype=np.float64).ravel()
    finite_ref = x_ref[np.isfinite(x_ref)]
    finite_est = x_est[np.isfinite(x_est)]
    if finite_ref.size == 0 or finite_est.size == 0:
        return x_est.copy(), 0, 0.0

    min_amp = float(min(finite_ref.min(), finite_est.min()))
    max_amp = float(max(finite_ref.max(), finite_est.max()))
    max_t = max(x_ref.size, x_est.size)

    A_ref = convert_signal(x_ref, num_quant_levels, min_amp, max_amp, max_t)
    A_est = convert_signal(x_est, num_quant_levels, min_amp, max_amp, max_t)
    if smooth:
        A_ref = gaussian_filter(A_ref, sigma)
        A_est = gaussian_filter(A_est, sigma)

    A_cross = fft_correlate(A_ref, A_est)
    idx_cross = np.unravel_index(np.argmax(A_cross), A_cross.shape)
    # The auto-correlation of a non-zero, non-negative picture peaks strictly at zero lag, i.e. at the
    # centre (num_quant_levels - 1, max_t - 1) of the full correlation; no need to compute it.
    offset_hz = int((max_t - 1) - idx_cross[1])
    offset_levels = int((num_quant_levels - 1) - idx_cross[0])
    offset_vt = offset_levels / (num_quant_levels - 1) * (max_amp - min_amp) if num_quant_levels > 1 else 0.0

    if offset_hz < 0:
        x_est_shifted = np.concatenate((np.full(-offset_hz, np.nan), x_est))
    else:
        x_est_shifted = np.concatenate((x_est[offset_hz:], np.full(min(offset_hz, x_est.size), np.nan)))
    x_est_shifted = x_est_shifted - offset_vt
    return x_est_shifted, offset_hz, float(offset_vt)


def _pad_and_select(x_ref: np.ndarray, x_est: np.ndarray,
                    keep_nans: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pad the shorter signal with NaN; return ``(ref, est, idx_used, idx_ref_finite)`` (selected samples)."""
    x_ref = np.array(x_ref, dtype=np.float64).ravel()
    x_est = np.array(x_est, dtype=np.float64).ravel()
    n = max(x_ref.size, x_est.size)
    x_ref = np.concatenate((x_ref, np.full(n - x_ref.size, np.nan)))
    x_est = np.concatenate((x_est, np.full(n - x_est.size, np.nan)))
    idx_ref = np.isfinite(x_ref)
    idx_est = np.isfinite(x_est)
    if keep_nans:
        idx = idx_ref & idx_est
    else:
        x_est[~idx_est] = 0.0
        idx = idx_ref
    return x_ref[idx], x_est[idx], idx, idx_ref


def compute_snr(x_ref: np.ndarray, x_est: np.ndarray, keep_nans: bool = True, signal_median: bool = False,
                noise_median: bool = False) -> tuple[float, float, float]:
    """Signal-to-noise ratio (dB) of an estimated 1-D signal against a reference (both mV).

    The shorter signal is padded with NaN. With ``keep_nans`` (default) only samples finite in both count,
    and the SNR is multiplied by the fraction of finite reference samples that the estimate covers;
    otherwise non-finite estimate samples count as 0 mV. Powers are means (or medians) of squares.

    Returns ``(snr, p_signal, p_noise)``. ``snr`` is ``inf`` for a perfect match, 0 when the reference has
    finite samples but none is covered by the estimate, and NaN when the reference has no finite sample or
    zero power.
    """
    ref, est, idx, idx_ref = _pad_and_select(x_ref, x_est, keep_nans)
    if not np.any(idx_ref):
        return float('nan'), float('nan'), float('nan')
    if ref.size == 0:
        finite_ref = np.array(x_ref, dtype=np.float64).ravel()
        finite_ref = finite_ref[np.isfinite(finite_ref)]
        return 0.0, float(np.mean(finite_ref**2)), float('nan')

    noise = ref - est
    p_signal = float(np.median(ref**2) if signal_median else np.mean(ref**2))
    p_noise = float(np.median(noise**2) if noise_median else np.mean(noise**2))

    if p_signal > 0 and p_noise > 0:
        snr = 10 * np.log10(p_signal / p_noise)
    elif p_noise == 0:
        snr = float('inf')
    else:
        snr = float('nan')

    if keep_nans:
        snr *= np.sum(idx) / np.sum(idx_ref)
    return float(snr), p_signal, p_noise


def compute_ks_metric(x_ref: np.ndarray, x_est: np.ndarray, keep_nans: bool = True) -> float:
    """Goodness of fit 1 - max |CDF_ref - CDF_est| of the cumulative absolute amplitudes (NaN if no overlap)."""
    ref, est, _, _ = _pad_and_select(x_ref, x_est, keep_nans)
    if ref.size == 0:
        return float('nan')
    ref_cdf = np.cumsum(np.abs(ref))
    est_cdf = np.cumsum(np.abs(est))
    if ref_cdf[-1] > 0:
        ref_cdf = ref_cdf / ref_cdf[-1]
    if est_cdf[-1] > 0:
        est_cdf = est_cdf / est_cdf[-1]
    return float(1.0 - np.max(np.abs(ref_cdf - est_cdf)))


def compute_asci_metric(x_ref: np.ndarray, x_est: np.ndarray, beta: float = 0.05, keep_nans: bool = True) -> float:
    """Adaptive signed correlation index: mean of +1 (|error| <= beta * std(ref)) / -1 (NaN if no overlap)."""
    if beta <= 0 or beta > 1:
        raise ValueError('The beta value should be greater than 0 and less than or equal to 1.')
    ref, est, _, _ = _pad_and_select(x_ref, x_est, keep_nans)
    if ref.size == 0:
        return float('nan')
    threshold = beta * np.std(ref)
    noise = np.abs(ref - est)
    return float(np.mean(np.where(noise <= threshold, 1.0, -1.0)))


def compute_weighted_absolute_difference(x_ref: np.ndarray, x_est: np.ndarray, sampling_frequency: float,
                                         keep_nans: bool = True) -> float:
    """Mean absolute error (mV) weighted by 1 - 0.5 * (0.1 s moving average of the reference) / its maximum.

    NaN when nothing overlaps or the weights cannot be computed.
    """
    from scipy.signal import filtfilt

    ref, est, _, _ = _pad_and_select(x_ref, x_est, keep_nans)
    m = max(int(round(0.1 * sampling_frequency)), 1)
    if ref.size == 0:
        return float('nan')
    try:
        w = filtfilt(np.ones(m), m, ref, method='gust')
    except ValueError:
        return float('nan')
    w_max = np.max(w)
    if w_max == 0 or not np.isfinite(w_max):
        return float('nan')
    w = 1 - 0.5 / w_max * w
    n = np.sum(w)
    if n == 0:
        return float('nan')
    return float(np.sum(np.abs(ref - est) * w) / n)


### Other helper functions

def is_number(x: Any) -> bool:
    """Whether ``x`` is or represents a number (``float(x)`` works)."""
    try:
        float(x)
        return True
    except (ValueError, TypeError):
        return False


def is_integer(x: Any) -> bool:
    """Whether ``x`` is or represents an integer."""
    if is_number(x):
        return float(x).is_integer()
    return False


def is_finite_number(x: Any) -> bool:
    """Whether ``x`` is or represents a finite number."""
    if is_number(x):
        return bool(np.isfinite(float(x)))
    return False


def is_nan(x: Any) -> bool:
    """Whether ``x`` is or represents NaN."""
    if is_number(x):
        return bool(np.isnan(float(x)))
    return False


def cast_int_float_unknown(x: Any) -> int | float | str:
    """Cast to int if integral, float if finite, ``'Unknown'`` if a non-finite number; else raise."""
    if is_integer(x):
        return int(float(x))
    if is_finite_number(x):
        return float(x)
    if is_number(x):
        return 'Unknown'
    raise NotImplementedError(f'Unable to cast {x}.')


def compute_one_hot_encoding(data: Sequence[Iterable[Any]], classes: Sequence[Any]) -> np.ndarray:
    """One-hot (multi-hot) boolean array ``(len(data), len(classes))``; NaN matches NaN."""
    one_hot_encoding = np.zeros((len(data), len(classes)), dtype=np.bool_)
    for i, x in enumerate(data):
        for y in x:
            for j, z in enumerate(classes):
                if (y == z) or (is_nan(y) and is_nan(z)):
                    one_hot_encoding[i, j] = 1
    return one_hot_encoding
