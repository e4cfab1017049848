"""Tests for helper_code: header parsing and writing, WFDB I/O, labels, images and scoring primitives."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import wfdb
from PIL import Image
from reference_scoring import gaussian_smooth, snr_reference

import helper_code as hc

LEADS = ['I', 'II', 'III', 'aVR', 'aVL', 'aVF', 'V1', 'V2', 'V3', 'V4', 'V5', 'V6']


def make_header(
    name: str = 'rec',
    fs: float = 500,
    num_samples: int = 5000,
    leads: list[str] = LEADS,
    signal_file: str | None = None,
    fmt: str = '16',
    gain: str = '1000(0)/mV',
    comments: list[str] = (),
) -> str:
    """A WFDB header text written by hand."""
    signal_file = signal_file or f'{name}.dat'
    lines = [f'{name} {len(leads)} {fs:g} {num_samples}']
    lines += [f'{signal_file} {fmt} {gain} 16 0 {10 * i} {i} 0 {lead}' for i, lead in enumerate(leads)]
    lines += list(comments)
    return '\n'.join(lines) + '\n'


def write_record(
    folder: Path, name: str, signal: np.ndarray, fs: float, leads: list[str], comments: list[str] = ()
) -> str:
    """Write a WFDB record (format 16, 1000/mV) with wfdb itself; returns the record path."""
    wfdb.wrsamp(
        name,
        fs=fs,
        units=['mV'] * len(leads),
        sig_name=leads,
        p_signal=signal,
        fmt=['16'] * len(leads),
        adc_gain=[1000.0] * len(leads),
        baseline=[0] * len(leads),
        comments=list(comments),
        write_dir=str(folder),
    )
    return str(folder / name)


def ecg_like(num_samples: int, num_leads: int, fs: float, seed: int) -> np.ndarray:
    """Smooth random ECG-like signals (mV), shape (num_samples, num_leads)."""
    rng = np.random.default_rng(seed)
    t = np.arange(num_samples) / fs
    signal = np.zeros((num_samples, num_leads))
    for j in range(num_leads):
        for beat in np.arange(rng.uniform(0, 0.5), t[-1] + 1, rng.uniform(0.6, 1.0)):
            signal[:, j] += rng.uniform(0.5, 1.5) * np.exp(-0.5 * ((t - beat) / 0.02) ** 2)
            signal[:, j] += rng.uniform(0.1, 0.3) * np.exp(-0.5 * ((t - beat - 0.25) / 0.05) ** 2)
        signal[:, j] += 0.1 * np.sin(2 * np.pi * rng.uniform(0.1, 0.5) * t + rng.uniform(0, 6))
    return signal


# ----------------------------------------------------------------------------------------------------------
# Header parsing


@pytest.mark.parametrize('fs', [100, 250, 500, 1000])
def test_header_getters_at_common_sampling_frequencies(fs: int) -> None:
    header = make_header(fs=fs, num_samples=10 * fs, comments=['#Age: 61', '# Labels: NORM'])
    assert hc.get_record_name(header) == 'rec'
    assert hc.get_num_signals(header) == 12
    assert hc.get_sampling_frequency(header) == float(fs)
    assert hc.get_num_samples(header) == 10 * fs
    assert hc.get_signal_names(header) == LEADS
    assert hc.get_signal_formats(header) == ['16'] * 12
    assert hc.get_adc_gains(header) == [1000.0] * 12
    assert hc.get_baselines(header) == [0] * 12
    assert hc.get_signal_units(header) == ['mV'] * 12
    assert hc.get_adc_resolutions(header) == [16] * 12
    assert hc.get_initial_values(header) == [10 * i for i in range(12)]
    assert hc.get_checksums(header) == list(range(12))
    assert hc.get_signal_files_from_header(header) == ['rec.dat']


def test_header_getters_mat_offset_and_missing_baseline() -> None:
    header = make_header(name='JS1', signal_file='JS1.mat', fmt='16+24', gain='500/uV', leads=['I', 'aVR', 'v1'])
    header = header.replace('16 0 0 0 0 I', '16 7 0 0 0 I')  # ADC zero 7 is the baseline when none is given
    assert hc.get_signal_formats(header) == ['16', '16', '16']
    assert hc.get_adc_gains(header) == [500.0] * 3
    assert hc.get_baselines(header) == [7, 0, 0]
    assert hc.get_signal_units(header) == ['uV'] * 3
    assert hc.get_signal_names(header) == ['I', 'aVR', 'v1']
    assert hc.get_signal_files_from_header(header) == ['JS1.mat']
    assert hc.get_signal_formats(make_header(fmt='16x2:3+512', leads=['I'])) == ['16']


def test_header_with_blanked_fields_and_spaced_description() -> None:
    header = 'r 2 500 5000\nr.dat 16 1000/mV 16 0    I\nr.dat 16 200(5)/mV 16 0 3 4 0 ECG lead II\n'
    assert hc.get_signal_names(header) == ['I', 'ECG lead II']
    assert hc.get_initial_values(header) == [0, 3]
    assert hc.get_adc_gains(header) == [1000.0, 200.0]
    assert hc.get_baselines(header) == [0, 5]
    assert hc.get_signal_files_from_header(header) == ['r.dat']


def test_image_lines_with_and_without_space_and_several_images() -> None:
    header = make_header(comments=['#Image: a-0.png, a-1.png', '# Image: b.png', '#  Image:c.jpg'])
    assert hc.get_image_files_from_header(header) == ['a-0.png', 'a-1.png', 'b.png', 'c.jpg']
    assert hc.get_variables(header, '# Image:') == (['a-0.png', 'a-1.png', 'b.png', 'c.jpg'], True)
    assert hc.get_variable(header, '#Image:') == ('c.jpg', True)
    assert hc.get_variable(header, '# Labels:') == ('', False)
    with pytest.raises(FileNotFoundError):
        hc.get_image_files_from_header(make_header())


def test_labels_from_labels_line_and_early_dx_line() -> None:
    assert hc.get_labels_from_header(make_header(comments=['# Labels: NORM, Acute MI'])) == ['NORM', 'Acute MI']
    assert hc.get_labels_from_header(make_header(comments=['#Labels:STTC'])) == ['STTC']
    assert hc.get_labels_from_header(make_header(comments=['# Labels:'])) == []
    # Early-phase 2024 data: '#Dx: Normal|Abnormal' and no Labels line.
    assert hc.get_labels_from_header(make_header(comments=['#Dx: Abnormal'])) == ['Abnormal']
    # Challenge 2021 header: SNOMED codes on '#Dx:' are not labels; the Labels line wins.
    header = make_header(comments=['#Dx: 164889003,59118001', '# Labels: AFIB/AFL, CD'])
    assert hc.get_labels_from_header(header) == ['AFIB/AFL', 'CD']
    with pytest.raises(ValueError):
        hc.get_labels_from_header(make_header(comments=['#Dx: 164889003,59118001']))
    with pytest.raises(ValueError):
        hc.get_labels_from_header(make_header())


def test_find_records_recursive_sorted_relative(tmp_path: Path) -> None:
    for rel in ['b/2.hea', 'a/1.hea', 'a/1.dat', 'c.hea', 'x.txt', 'a/sub/3.hea']:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text('x 0\n')
    assert hc.find_records(str(tmp_path)) == sorted(['a/1', 'a/sub/3', 'b/2', 'c'])
    (tmp_path / 'd.header').write_text('x 0\n')
    assert hc.find_records(str(tmp_path), header_extension='.header') == ['d']


def test_header_file_and_text_round_trip(tmp_path: Path) -> None:
    record = str(tmp_path / 'r')
    header = make_header(name='r', comments=['#Image: r-0.png'])
    hc.save_header(record, header)
    assert hc.get_header_file(record) == record + '.hea'
    assert hc.get_header_file(record + '.hea') == record + '.hea'
    assert hc.load_header(record) == header
    assert hc.get_image_files(record) == ['r-0.png']


# ----------------------------------------------------------------------------------------------------------
# Signals


@pytest.mark.parametrize('fs', [100, 250, 500, 1000])
def test_signal_round_trip_through_save_signals(tmp_path: Path, fs: int) -> None:
    leads = ['I', 'II', 'aVR', 'V1']
    reference = ecg_like(2 * fs, len(leads), fs, seed=fs)
    record = write_record(
        tmp_path,
        'rec',
        np.zeros_like(reference),
        fs,
        leads,
        comments=['Age: 50', 'Image: rec-0.png, rec-1.png', 'Labels: NORM'],
    )
    # As the official run_model.py does: the header's comment lines are passed back as ``comments``.
    comments = [line for line in hc.load_header(record).split('\n') if line.startswith('#')] + ['#Extra: 1']
    hc.save_signals(record, reference, comments=comments)
    signal, fields = hc.load_signals(record)
    assert signal.shape == (2 * fs, 4) and signal.dtype == np.float64
    np.testing.assert_allclose(signal, reference, atol=0.0005 + 1e-9)
    assert fields['fs'] == fs and fields['sig_name'] == leads
    header = hc.load_header(record)
    assert hc.get_sampling_frequency(header) == fs
    assert hc.get_image_files(record) == ['rec-0.png', 'rec-1.png']
    assert hc.load_labels(record) == ['NORM']
    assert hc.get_variable(header, '#Age:') == ('50', True)
    assert hc.get_variable(header, '# Extra:') == ('1', True)
    assert header.count('Image:') == 1 and header.count('Labels:') == 1


def test_save_signals_clips_overflow_and_writes_nan(tmp_path: Path) -> None:
    leads = ['I', 'aVR']
    record = write_record(tmp_path, 'clip', np.zeros((5, 2)), 500, leads)
    signal = np.array([[40.0, 0.5], [-50.0, np.nan], [np.inf, 1.25], [0.001, -32.767], [np.nan, np.nan]])
    hc.save_signals(record, signal)
    loaded, _ = hc.load_signals(record)
    expected = np.array([[32.767, 0.5], [-32.767, np.nan], [np.nan, 1.25], [0.001, -32.767], [np.nan, np.nan]])
    np.testing.assert_allclose(loaded, expected, atol=1e-9)
    with pytest.raises(ValueError):
        hc.save_signals(record, np.zeros((5, 3)))


def test_save_signals_keeps_header_comments(tmp_path: Path) -> None:
    record = write_record(tmp_path, 'c', np.zeros((10, 1)), 100, ['II'])
    with open(record + '.hea', 'a') as f:
        f.write('#Image: c-0.png\n# Labels: CD\n')
    hc.save_signals(record, np.ones((10, 1)))
    assert hc.get_image_files(record) == ['c-0.png']
    assert hc.load_labels(record) == ['CD']
    np.testing.assert_allclose(hc.load_signals(record)[0], np.ones((10, 1)))


def write_mat_v4_record(folder: Path, name: str, digital: np.ndarray, fs: int, leads: list[str]) -> str:
    """Write a Challenge-2021-style record: a MAT v4 file ('val', int16) read as format 16+24."""
    num_samples, num_leads = digital.shape
    header = struct.pack('<5i', 30, num_leads, num_samples, 0, 4) + b'val\x00'  # 24 bytes
    assert len(header) == 24
    with open(folder / f'{name}.mat', 'wb') as f:
        f.write(header)
        f.write(np.ascontiguousarray(digital, dtype='<i2').tobytes())  # column-major (leads x samples)
    lines = [f'{name} {num_leads} {fs} {num_samples}']
    lines += [f'{name}.mat 16+24 1000/mV 16 0 {digital[0, j]} 0 0 {lead}' for j, lead in enumerate(leads)]
    lines += ['#Dx: 426783006', '# Labels: NORM', '#Image: ' + name + '-0.png']
    (folder / f'{name}.hea').write_text('\n'.join(lines) + '\n')
    return str(folder / name)


def test_mat_signal_file_with_byte_offset_written_by_hand(tmp_path: Path) -> None:
    leads = ['I', 'II', 'aVR', 'AVL']
    digital = np.round(ecg_like(1000, 4, 500, seed=3) * 1000).astype(np.int16)
    record = write_mat_v4_record(tmp_path, 'JSX', digital, 500, leads)
    header = hc.load_header(record)
    assert hc.get_signal_formats(header) == ['16'] * 4
    assert hc.get_signal_files(record) == ['JSX.mat']
    signal, fields = hc.load_signals(record)
    np.testing.assert_allclose(signal, digital / 1000.0, atol=1e-12)
    assert fields['sig_name'] == leads
    assert hc.load_labels(record) == ['NORM']


def test_mat_signal_file_written_by_wfdb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from wfdb.io.convert.matlab import wfdb_to_mat

    reference = ecg_like(250, 3, 250, seed=4)
    write_record(tmp_path, 'src', reference, 250, ['I', 'avr', 'V6'])
    monkeypatch.chdir(tmp_path)
    wfdb_to_mat('src')  # writes srcm.mat and srcm.hea (format 16x1+<offset>)
    header = hc.load_header(str(tmp_path / 'srcm'))
    assert '+' in header.split('\n')[1].split()[1]
    signal, fields = hc.load_signals(str(tmp_path / 'srcm'))
    np.testing.assert_allclose(signal, reference, atol=0.0005 + 1e-9)
    assert fields['sig_name'] == ['I', 'avr', 'V6']


def test_shared_js00001_mat_record(shared_data: Path) -> None:
    record = str(shared_data / 'js00001' / 'JS00001')
    header = hc.load_header(record)
    assert hc.get_signal_formats(header) == ['16'] * 12
    assert hc.get_signal_names(header) == LEADS
    assert hc.get_sampling_frequency(header) == 500.0
    assert hc.load_labels(record) == ['AFIB/AFL', 'CD', 'STTC']
    signal, fields = hc.load_signals(record)
    assert signal.shape == (5000, 12)
    np.testing.assert_allclose(
        signal[0], [-0.254, 0.264, 0.517, -0.005, -0.386, 0.39, -0.098, -0.312, -0.098, 0.81, 0.81, 0.527], atol=1e-9
    )
    images = hc.load_images(record)
    assert len(images) == 1 and images[0].size == (2200, 1700)


def test_load_signals_none_cases(tmp_path: Path) -> None:
    # Header names no signal file.
    (tmp_path / 'nosig.hea').write_text('nosig 2 500 5000\n# Labels: NORM\n')
    assert hc.load_signals(str(tmp_path / 'nosig')) == (None, None)
    # Signal file named but missing.
    (tmp_path / 'gone.hea').write_text(make_header(name='gone', leads=['I']))
    assert hc.load_signals(str(tmp_path / 'gone')) == (None, None)
    # No header at all.
    assert hc.load_signals(str(tmp_path / 'absent')) == (None, None)
    assert hc.get_signal_files(str(tmp_path / 'absent')) == []


def test_load_images_skips_missing_files(tmp_path: Path) -> None:
    Image.new('RGB', (20, 10), 'white').save(tmp_path / 'r-0.png')
    (tmp_path / 'sub').mkdir()
    Image.new('RGB', (8, 6), 'red').save(tmp_path / 'sub' / 'r-2.png')
    header = make_header(name='r', leads=['I'], comments=['#Image: r-0.png, r-1.png', '# Image: sub/r-2.png'])
    (tmp_path / 'r.hea').write_text(header)
    images = hc.load_images(str(tmp_path / 'r'))
    assert [image.size for image in images] == [(20, 10), (8, 6)]
    (tmp_path / 'noimg.hea').write_text(make_header(name='noimg', leads=['I']))
    with pytest.raises(FileNotFoundError):
        hc.load_images(str(tmp_path / 'noimg'))


def test_save_labels_appends_then_replaces(tmp_path: Path) -> None:
    record = str(tmp_path / 'l')
    hc.save_header(record, make_header(name='l', leads=['I'], comments=['#Dx: 164889003', '#Labels: OLD']))
    hc.save_labels(record, ['NORM', 'PAC'])
    header = hc.load_header(record)
    assert hc.load_labels(record) == ['NORM', 'PAC']
    assert header.count('Labels:') == 1 and header.endswith('# Labels: NORM, PAC\n')
    assert '#Dx: 164889003' in header
    hc.save_labels(record, [])
    assert hc.load_labels(record) == []


# ----------------------------------------------------------------------------------------------------------
# Signal helpers


def test_reorder_signal_case_insensitive_missing_nan() -> None:
    signal = np.arange(12, dtype=float).reshape(4, 3)
    out = hc.reorder_signal(signal, ['avr', 'I', 'II'], ['I', 'II', 'aVR', 'V1'])
    np.testing.assert_array_equal(out[:, :3], signal[:, [1, 2, 0]])
    assert np.all(np.isnan(out[:, 3]))
    assert hc.reorder_signal(signal, ['a', 'b', 'c'], ['a', 'b', 'c']) is signal
    out_int = hc.reorder_signal(np.ones((2, 1), dtype=np.int16), ['I'], ['II'])
    assert out_int.dtype == np.float64 and np.all(np.isnan(out_int))
    with pytest.raises(ValueError):
        hc.reorder_signal(signal, ['I', 'i', 'II'], ['I'])


def test_trim_normalize_and_number_helpers() -> None:
    signal = np.ones((3, 2))
    assert hc.trim_signal(signal, 5).shape == (5, 2) and hc.trim_signal(signal, 5)[4, 0] == 0
    assert np.isnan(hc.trim_signal(signal, 4, fill_value=np.nan)[3, 1])
    assert hc.trim_signal(signal, 2).shape == (2, 2)
    assert hc.normalize_names(['I', 'aVR', 'V1'], ['AVR', 'v1', 'X']) == ['aVR', 'V1']
    assert hc.is_number('1e3') and not hc.is_number('a') and not hc.is_number(None)
    assert hc.is_integer('4.0') and not hc.is_integer('4.5')
    assert hc.is_finite_number('2') and not hc.is_finite_number('inf')
    assert hc.is_nan('nan') and not hc.is_nan('x')
    assert hc.cast_int_float_unknown('3') == 3 and hc.cast_int_float_unknown('2.5') == 2.5
    assert hc.cast_int_float_unknown('nan') == 'Unknown'
    with pytest.raises(NotImplementedError):
        hc.cast_int_float_unknown('abc')
    one_hot = hc.compute_one_hot_encoding([['A'], ['B', 'A'], []], ['A', 'B'])
    np.testing.assert_array_equal(one_hot, [[1, 0], [1, 1], [0, 0]])


# ----------------------------------------------------------------------------------------------------------
# Scoring primitives against straightforward implementations


def test_compute_snr_matches_straightforward_implementation() -> None:
    rng = np.random.default_rng(0)
    for case in range(40):
        n_ref = int(rng.integers(50, 200))
        n_est = n_ref + int(rng.integers(-30, 30))
        x_ref = rng.normal(size=n_ref)
        x_est = np.resize(x_ref, n_est) + rng.normal(scale=rng.uniform(0.05, 1.0), size=n_est)
        if case % 3 == 0:
            x_est[rng.integers(0, n_est, 20)] = np.nan
        if case % 4 == 0:
            x_ref[rng.integers(0, n_ref, 10)] = np.nan
        snr, p_signal, p_noise = hc.compute_snr(x_ref, x_est)
        assert snr == pytest.approx(snr_reference(x_ref, x_est), rel=1e-12, abs=1e-12)
        assert p_signal > 0 and p_noise > 0
    x = np.array([1.0, -2.0, 3.0])
    assert hc.compute_snr(x, x)[0] == float('inf')
    assert hc.compute_snr(x, np.full(3, np.nan))[0] == 0.0
    assert np.isnan(hc.compute_snr(np.full(3, np.nan), x)[0])
    # Half covered: 10 log10(P/N) * 0.5.
    snr = hc.compute_snr([1.0, 1.0, 1.0, 1.0], [0.5, 0.5, np.nan, np.nan])[0]
    assert snr == pytest.approx(10 * np.log10(1 / 0.25) * 0.5)
    # Without keep_nans, NaN estimates count as 0 mV: noise power (0.25 + 0.25 + 1 + 1) / 4.
    assert hc.compute_snr([1.0, 1.0, 1.0, 1.0], [0.5, 0.5, np.nan, np.nan], keep_nans=False)[0] == pytest.approx(
        10 * np.log10(1 / 0.625)
    )


def quantize(x: np.ndarray, q: int, lo: float, hi: float, length: int) -> np.ndarray:
    """Binary picture (q levels x length samples) of a signal, straightforward loop."""
    picture = np.zeros((q, length))
    for t, value in enumerate(x):
        if np.isfinite(value):
            level = int(np.round((q - 1) * (value - lo) / (hi - lo) + 1)) - 1
            picture[min(max(level, 0), q - 1), t] = 1.0
    return picture


def brute_force_align(x_ref: np.ndarray, x_est: np.ndarray, q: int) -> tuple[int, float]:
    """Best (horizontal samples, vertical mV) shift by trying every lag of the smoothed pictures."""
    both = np.concatenate([x_ref[np.isfinite(x_ref)], x_est[np.isfinite(x_est)]])
    lo, hi = both.min(), both.max()
    length = max(len(x_ref), len(x_est))
    a = gaussian_smooth(quantize(x_ref, q, lo, hi, length))
    b = gaussian_smooth(quantize(x_est, q, lo, hi, length))
    best, best_lag = -np.inf, (0, 0)
    for dv in range(-(q - 1), q):
        for dh in range(-(length - 1), length):
            # score = sum over (r, t) of a[r, t] * b[r + dv, t + dh]
            ra, rb = max(0, -dv), max(0, dv)
            ta, tb = max(0, -dh), max(0, dh)
            nr, nt = q - abs(dv), length - abs(dh)
            score = np.sum(a[ra : ra + nr, ta : ta + nt] * b[rb : rb + nr, tb : tb + nt])
            if score > best + 1e-9:
                best, best_lag = score, (dv, dh)
    dv, dh = best_lag
    return dh, dv * (hi - lo) / (q - 1)


@pytest.mark.parametrize('seed', range(6))
def test_align_signals_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    fs = 20
    x_ref = ecg_like(40, 1, fs, seed)[:, 0] + rng.normal(scale=0.02, size=40)
    shift_hz = int(rng.integers(-8, 9))
    offset = rng.uniform(-0.3, 0.3)
    n_est = 40 + int(rng.integers(-6, 7))
    x_est = np.full(n_est, np.nan)
    source = np.arange(n_est) - shift_hz  # x_est[t] = x_ref[t - shift] + offset
    valid = (source >= 0) & (source < 40)
    x_est[valid] = x_ref[source[valid]] + offset + rng.normal(scale=0.02, size=valid.sum())
    if seed % 2:
        x_est[rng.integers(0, n_est, 4)] = np.nan
    q = 24
    shifted, hz, vt = hc.align_signals(x_ref, x_est, num_quant_levels=q)
    expected_hz, expected_vt = brute_force_align(x_ref, x_est, q)
    assert hz == expected_hz
    assert vt == pytest.approx(expected_vt, abs=1e-12)
    if hz >= 0:
        expected = np.concatenate([x_est[hz:], np.full(min(hz, n_est), np.nan)]) - vt
    else:
        expected = np.concatenate([np.full(-hz, np.nan), x_est]) - vt
    np.testing.assert_array_equal(shifted, expected)


def test_align_signals_recovers_known_shifts_both_signs() -> None:
    fs = 100
    x_ref = ecg_like(500, 1, fs, seed=11)[:, 0]
    for shift_hz in (-50, -13, 0, 7, 50):
        for offset in (-0.4, 0.0, 0.25):
            x_est = np.roll(x_ref, shift_hz) + offset
            shifted, hz, vt = hc.align_signals(x_ref, x_est)
            assert hz == shift_hz
            assert vt == pytest.approx(offset, abs=(x_ref.max() - x_ref.min() + 1) / 255)
            if shift_hz < 0:  # NaN in front, the beginning of the estimate kept
                assert np.all(np.isnan(shifted[:-shift_hz])) and len(shifted) == 500 - shift_hz
                np.testing.assert_allclose(shifted[-shift_hz:], x_est - vt)
    # Degenerate inputs are returned unchanged.
    same, hz, vt = hc.align_signals(x_ref, np.full(500, np.nan))
    assert hz == 0 and vt == 0.0 and np.all(np.isnan(same))
    constant, hz, vt = hc.align_signals(np.ones(50), np.ones(50))
    assert hz == 0 and vt == 0.0


def test_compute_f_measure_hand_computed() -> None:
    # Two records: A has TP 1 and FN 1 -> 2/3; B has TP 1 -> 1.
    f, per_class, classes = hc.compute_f_measure([['A'], ['A', 'B']], [['A'], ['B']])
    assert classes == ['A', 'B']
    np.testing.assert_allclose(per_class, [2 / 3, 1.0])
    assert f == pytest.approx(5 / 6)
    # A class never predicted scores 0: A TP 1 FP 1 -> 2/3, B FN 1 -> 0.
    f, per_class, _ = hc.compute_f_measure([['A'], ['B']], [['A'], ['A']])
    np.testing.assert_allclose(per_class, [2 / 3, 0.0])
    assert f == pytest.approx(1 / 3)
    # A class only predicted (C) is ignored; unlabelled references are skipped.
    f, per_class, classes = hc.compute_f_measure([['A'], [], ['B']], [['A', 'C'], ['A'], ['C']])
    assert classes == ['A', 'B']
    np.testing.assert_allclose(per_class, [1.0, 0.0])
    assert f == pytest.approx(0.5)
    assert np.isnan(hc.compute_f_measure([[]], [['A']])[0])


def test_extra_metrics_basic_values() -> None:
    x = np.sin(np.linspace(0, 6, 200))
    assert hc.compute_ks_metric(x, x) == pytest.approx(1.0)
    assert hc.compute_asci_metric(x, x) == pytest.approx(1.0)
    assert hc.compute_asci_metric(x, x + 10) == pytest.approx(-1.0)
    assert hc.compute_weighted_absolute_difference(x, x, 100) == pytest.approx(0.0)
    assert hc.compute_weighted_absolute_difference(x + 2, x + 2.5, 100) == pytest.approx(0.5)
    assert np.isnan(hc.compute_ks_metric(x, np.full(200, np.nan)))
    with pytest.raises(ValueError):
        hc.compute_asci_metric(x, x, beta=0)
