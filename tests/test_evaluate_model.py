"""Parity tests for evaluate_model.py against an independent, straightforward numpy implementation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import wfdb
from reference_scoring import gaussian_smooth, snr_reference

import evaluate_model as em

ROOT = Path(__file__).resolve().parents[1]
FS = 100
N = 300
LEADS = ['I', 'II', 'aVR']
QUANT_LEVELS = 256


# ----------------------------------------------------------------------------------------------------------
# Data set generation


def base_signal(length: int, num_leads: int, seed: int) -> np.ndarray:
    """ECG-like signals (mV), shape (length, num_leads): spiky beats, T waves, baseline wander."""
    rng = np.random.default_rng(seed)
    t = np.arange(length) / FS
    signal = np.zeros((length, num_leads))
    for j in range(num_leads):
        for beat in np.arange(rng.uniform(0, 0.4), t[-1] + 1, rng.uniform(0.6, 0.9)):
            signal[:, j] += rng.uniform(0.6, 1.4) * np.exp(-0.5 * ((t - beat) / 0.02) ** 2)
            signal[:, j] -= rng.uniform(0.1, 0.3) * np.exp(-0.5 * ((t - beat - 0.04) / 0.015) ** 2)
            signal[:, j] += rng.uniform(0.1, 0.3) * np.exp(-0.5 * ((t - beat - 0.25) / 0.05) ** 2)
        signal[:, j] += 0.08 * np.sin(2 * np.pi * rng.uniform(0.1, 0.4) * t + rng.uniform(0, 6))
    return signal


def write(folder: Path, name: str, signal: np.ndarray | None, leads: list[str], labels: list[str] | None) -> None:
    """Write a record: WFDB signal (format 16, 1000/mV) or, with ``signal=None``, a header only."""
    comments: list[str] = []
    if labels is not None:
        comments.append('Labels: ' + ', '.join(labels))
    if signal is not None:
        wfdb.wrsamp(
            name,
            fs=FS,
            units=['mV'] * len(leads),
            sig_name=leads,
            p_signal=signal,
            fmt=['16'] * len(leads),
            adc_gain=[1000.0] * len(leads),
            baseline=[0] * len(leads),
            comments=comments,
            write_dir=str(folder),
        )
    else:
        text = f'{name} {len(leads)} {FS} {N}\n' + ''.join(f'# {c}\n' for c in comments)
        (folder / f'{name}.hea').write_text(text)


def shifted(base: np.ndarray, shift: int, length: int = N) -> np.ndarray:
    """Estimate that lags the reference ``base[100:100+N]`` by ``shift`` samples: est[t] = ref[t - shift]."""
    return base[100 - shift : 100 - shift + length].copy()


@pytest.fixture(scope='module')
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Reference folder and output folder covering the scoring edge cases."""
    root = tmp_path_factory.mktemp('eval')
    ref_dir, out_dir = root / 'ref', root / 'out'
    (ref_dir / 'sub').mkdir(parents=True)
    (out_dir / 'sub').mkdir(parents=True)
    rng = np.random.default_rng(123)

    def noise(shape: tuple[int, ...]) -> np.ndarray:
        return rng.normal(scale=0.03, size=shape)

    cases = {
        # name: (estimate builder, reference labels, output labels)
        'r01': (lambda b: shifted(b, 0) + noise((N, 3)), ['NORM'], ['NORM']),
        'r02': (lambda b: shifted(b, 30) + noise((N, 3)), ['CD', 'STTC'], ['CD']),
        'r03': (lambda b: shifted(b, -50) + noise((N, 3)), ['NORM'], None),
        'r04': (lambda b: shifted(b, 10) + 0.4 + noise((N, 3)), ['AFIB/AFL'], ['AFIB/AFL', 'PVC']),
        'r05': (None, None, ['NORM']),  # NaN gaps, no reference labels
        'r06': (lambda b: shifted(b, -20, 240) + noise((240, 3)), ['STTC'], ['NORM']),  # shorter estimate
        'r07': (lambda b: shifted(b, 5, 360) + noise((360, 3)), None, None),  # longer estimate
        'r08': ('missing', None, None),  # no output record
        'r09': (None, None, None),  # all-NaN lead
        'r10': (None, None, None),  # wrong lead order and case
        'r11': (lambda b: shifted(b, 80) + noise((N, 3)), None, None),  # beyond 0.5 s
        'r13': (None, None, None),  # one lead only, plus an unknown lead
        'r14': (lambda b: shifted(b, 0) - 1.5 + noise((N, 3)), None, None),  # more than 1 mV off
        'sub/r15': (lambda b: shifted(b, -7) - 0.2 + noise((N, 3)), None, None),
    }
    for k, (name, (builder, ref_labels, out_labels)) in enumerate(cases.items()):
        base = base_signal(N + 200, 3, seed=k)
        reference = base[100 : 100 + N]
        folder_name = Path(name)
        write(ref_dir / folder_name.parent, folder_name.name, reference, LEADS, ref_labels)
        leads_est = LEADS
        if name == 'r05':
            estimate = shifted(base, 0) + noise((N, 3))
            estimate[100:140, :] = np.nan
            estimate[:20, 2] = np.nan
        elif name == 'r09':
            estimate = shifted(base, 12) + noise((N, 3))
            estimate[:, 1] = np.nan
        elif name == 'r10':
            estimate = (shifted(base, -3) + noise((N, 3)))[:, [2, 0, 1]]
            leads_est = ['AVR', 'i', 'II']
        elif name == 'r13':
            estimate = np.stack([shifted(base, 0)[:, 0], np.zeros(N)], axis=1) + noise((N, 2))
            leads_est = ['i', 'V1']
        elif builder == 'missing':
            continue
        else:
            estimate = builder(base)
        write(out_dir / folder_name.parent, folder_name.name, estimate, leads_est, out_labels)
    # A reference without a signal (labels only) and no output at all.
    write(ref_dir, 'r12', None, LEADS, ['CD'])
    return ref_dir, out_dir


# ----------------------------------------------------------------------------------------------------------
# Independent reference implementation


def quantize(x: np.ndarray, lo: float, hi: float, length: int) -> np.ndarray:
    """Binary picture (QUANT_LEVELS x length) of a signal."""
    picture = np.zeros((QUANT_LEVELS, length))
    t = np.flatnonzero(np.isfinite(x))
    levels = np.round((QUANT_LEVELS - 1) * (x[t] - lo) / (hi - lo) + 1).astype(int) - 1
    picture[np.clip(levels, 0, QUANT_LEVELS - 1), t] = 1.0
    return picture


def best_shift(x_ref: np.ndarray, x_est: np.ndarray) -> tuple[int, float]:
    """Lag (dh samples, dv mV) maximising sum a[r, t] * b[r + dv, t + dh] of the smoothed pictures."""
    both = np.concatenate([x_ref[np.isfinite(x_ref)], x_est[np.isfinite(x_est)]])
    lo, hi = both.min(), both.max()
    length = max(len(x_ref), len(x_est))
    a = gaussian_smooth(quantize(x_ref, lo, hi, length))
    b = gaussian_smooth(quantize(x_est, lo, hi, length))
    shape = (2 * QUANT_LEVELS, 2 * length)
    scores = np.fft.irfft2(np.conj(np.fft.rfft2(a, shape)) * np.fft.rfft2(b, shape), shape)
    dvs = np.arange(-(QUANT_LEVELS - 1), QUANT_LEVELS)
    dhs = np.arange(-(length - 1), length)
    window = scores[np.ix_(dvs % shape[0], dhs % shape[1])]
    i, j = np.unravel_index(np.argmax(window), window.shape)
    return int(dhs[j]), dvs[i] * (hi - lo) / (QUANT_LEVELS - 1)


def reference_scores(ref_dir: Path, out_dir: Path, shift: bool) -> tuple[dict, float]:
    """Per record-lead SNRs and their mean, computed independently of helper_code."""
    per_lead = {}
    for header in sorted(ref_dir.rglob('*.hea')):
        record = str(header.relative_to(ref_dir))[:-4]
        lines = [line for line in header.read_text().split('\n') if line and not line.startswith('#')]
        if len(lines) < 2 or not (ref_dir / Path(record).parent / lines[1].split()[0]).exists():
            continue
        ref, ref_fields = wfdb.rdsamp(str(ref_dir / record))
        if (out_dir / (record + '.hea')).exists():
            est, est_fields = wfdb.rdsamp(str(out_dir / record))
            by_name = {name.casefold(): est[:, k] for k, name in enumerate(est_fields['sig_name'])}
        else:
            by_name = {}
        for j, lead in enumerate(ref_fields['sig_name']):
            x_ref = ref[:, j]
            x_est = by_name.get(lead.casefold(), np.full(len(x_ref), np.nan))
            if shift and np.isfinite(x_est).any():
                dh, dv = best_shift(x_ref, x_est)
                if abs(dh) <= round(0.5 * FS) and abs(dv) <= 1.0:
                    pad = np.full(abs(dh), np.nan)
                    x_est = np.concatenate([x_est[dh:], pad]) if dh >= 0 else np.concatenate([pad, x_est])
                    x_est = x_est - dv
            per_lead[(record, lead)] = snr_reference(x_ref, x_est)
    values = np.array(list(per_lead.values()))
    return per_lead, float(np.nanmean(values))


# ----------------------------------------------------------------------------------------------------------
# Tests


@pytest.mark.parametrize('shift', [True, False])
def test_snr_parity_with_independent_implementation(dataset: tuple[Path, Path], shift: bool) -> None:
    ref_dir, out_dir = dataset
    scores = em.evaluate_model(str(ref_dir), str(out_dir), shift=shift)
    expected_per_lead, expected_mean = reference_scores(ref_dir, out_dir, shift)
    assert set(scores['snr_per_lead']) == set(expected_per_lead)
    assert len(expected_per_lead) == 14 * 3  # r12 (no reference signal) skipped
    for key, expected in expected_per_lead.items():
        assert scores['snr_per_lead'][key] == pytest.approx(expected, rel=1e-9, abs=1e-9), key
    assert scores['snr'] == pytest.approx(expected_mean, rel=1e-9)
    assert scores['num_records'] == 15 and scores['num_records_digitized'] == 13


def test_shifts_found_and_limits_applied(dataset: tuple[Path, Path]) -> None:
    ref_dir, out_dir = dataset
    scores = em.evaluate_model(str(ref_dir), str(out_dir))
    shifts = scores['shift_per_lead']
    snr = scores['snr_per_lead']
    assert shifts[('r02', 'I')][0] == 30 and shifts[('r03', 'II')][0] == -50  # both signs, up to 0.5 s
    assert shifts[('r04', 'aVR')][0] == 10 and abs(shifts[('r04', 'aVR')][1] - 0.4) < 0.02
    assert shifts[('r11', 'I')] == (0, 0.0)  # 0.8 s is beyond the limit: not shifted
    assert shifts[('r14', 'I')] == (0, 0.0)  # 1.5 mV is beyond the limit: not shifted
    assert all(snr[('r08', lead)] == 0.0 for lead in LEADS)  # missing output record
    assert snr[('r09', 'II')] == 0.0 and snr[('r09', 'I')] > 10  # all-NaN lead
    assert snr[('r13', 'II')] == 0.0 and snr[('r13', 'I')] > 10  # missing leads
    assert snr[('r10', 'aVR')] > 10  # wrong order and case matched by name
    # Negative shift keeps the beginning of the (shorter) estimate: 240 samples shifted by 20 cover 240.
    r06 = snr[('r06', 'I')]
    ref, _ = wfdb.rdsamp(str(ref_dir / 'r06'))
    est, _ = wfdb.rdsamp(str(out_dir / 'r06'))
    dv = shifts[('r06', 'I')][1]
    aligned = np.concatenate([np.full(20, np.nan), est[:, 0] - dv])
    assert r06 == pytest.approx(snr_reference(ref[:, 0], aligned), rel=1e-9)
    assert 240 / 300 * 10 < r06 < 240 / 300 * 40
    # Without shifting, shifted estimates score far lower.
    unshifted = em.evaluate_model(str(ref_dir), str(out_dir), shift=False)['snr_per_lead']
    assert unshifted[('r02', 'I')] < snr[('r02', 'I')] - 10


def test_f_measure_hand_computed(dataset: tuple[Path, Path]) -> None:
    ref_dir, out_dir = dataset
    scores = em.evaluate_model(str(ref_dir), str(out_dir))
    # NORM: TP r01, FN r03, FP r06 -> 0.5; CD: TP r02, FN r12 -> 2/3; STTC: FN r02, r06 -> 0; AFIB/AFL: 1.
    # PVC (only predicted) is ignored and r05 (no reference labels) is skipped.
    assert scores['f_per_class'] == pytest.approx({'AFIB/AFL': 1.0, 'CD': 2 / 3, 'NORM': 0.5, 'STTC': 0.0})
    assert scores['f_measure'] == pytest.approx((1.0 + 2 / 3 + 0.5 + 0.0) / 4)
    assert scores['num_records_classified'] == 4


def test_empty_outputs_and_folders(tmp_path: Path, dataset: tuple[Path, Path]) -> None:
    ref_dir, _ = dataset
    (tmp_path / 'none').mkdir()
    scores = em.evaluate_model(str(ref_dir), str(tmp_path / 'none'))
    assert np.isnan(scores['snr']) and np.isnan(scores['f_measure'])
    with pytest.raises(FileNotFoundError):
        em.evaluate_model(str(tmp_path / 'none'), str(tmp_path / 'none'))


def test_script_prints_exact_format_and_writes_files(tmp_path: Path, dataset: tuple[Path, Path]) -> None:
    ref_dir, out_dir = dataset
    scores = em.evaluate_model(str(ref_dir), str(out_dir))
    score_file, snr_file, f_file = tmp_path / 'scores.csv', tmp_path / 'snr.tsv', tmp_path / 'f.tsv'
    result = subprocess.run(
        [
            sys.executable,
            'evaluate_model.py',
            '-d',
            str(ref_dir),
            '-o',
            str(out_dir),
            '-s',
            str(score_file),
            '-ta',
            str(snr_file),
            '-tb',
            str(f_file),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, 'PYTHONPATH': str(ROOT)},
    )
    assert result.returncode == 0, result.stderr
    expected = f"SNR: {scores['snr']:.3f}\nF-measure: {scores['f_measure']:.3f}\n"
    assert result.stdout == expected
    assert score_file.read_text() == expected
    rows = snr_file.read_text().strip().split('\n')
    assert rows[0].split('\t')[:3] == ['record', 'lead', 'snr'] and len(rows) == 1 + 14 * 3
    assert 'sub/r15\taVR\t' in snr_file.read_text()
    assert f_file.read_text().split('\n')[:2] == ['class\tf_measure', 'AFIB/AFL\t1.000000']


def test_main_extra_scores_and_no_shift(dataset: tuple[Path, Path], capsys: pytest.CaptureFixture) -> None:
    ref_dir, out_dir = dataset
    em.main(['-d', str(ref_dir), '-o', str(out_dir), '-x'])
    lines = capsys.readouterr().out.strip().split('\n')
    assert [line.split(':')[0] for line in lines] == [
        'SNR',
        'SNR median',
        'KS metric',
        'ASCI metric',
        'Weighted absolute difference metric',
        'F-measure',
    ]
    assert all(len(line.split(': ')[1].split('.')[-1]) == 3 for line in lines)
    scores = em.main(['-d', str(ref_dir), '-o', str(out_dir), '-n'])
    assert capsys.readouterr().out.startswith(f"SNR: {scores['snr']:.3f}\n")
    assert all(shift == (0, 0.0) for shift in scores['shift_per_lead'].values())
