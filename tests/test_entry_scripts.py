"""Tests of train_model.py and run_model.py, run as subprocesses with a fake team_code module."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import wfdb

import helper_code
import run_model

ROOT = Path(__file__).resolve().parents[1]
LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
NUM_SAMPLES, FS = 200, 100

FAKE_TEAM_CODE = textwrap.dedent('''
    """Fake team_code for the entry-script tests."""
    import os
    import numpy as np
    from helper_code import find_records, get_num_samples, get_num_signals, load_header

    def train_models(data_folder, model_folder, verbose):
        os.makedirs(model_folder, exist_ok=True)
        with open(os.path.join(model_folder, "model.txt"), "w") as f:
            f.write(str(len(find_records(data_folder))))

    def load_models(model_folder, verbose):
        with open(os.path.join(model_folder, "model.txt")) as f:
            return int(f.read()), "classifier"

    def run_models(record, digitization_model, classification_model, verbose):
        name = os.path.basename(record)
        if name.startswith("bad"):
            raise RuntimeError("fake failure on " + name)
        header = load_header(record)
        n, c = get_num_samples(header), get_num_signals(header)
        t = np.arange(n) / 100.0
        signal = np.sin(2 * np.pi * np.arange(1, c + 1)[None, :] * t[:, None])  # mV
        signal[0, 0] = 100.0      # beyond format 16 at 1000/mV: must be clipped to 32.767
        signal[1, 0] = -1e9
        signal[2, 1] = np.nan     # unknown sample: stays NaN
        if name.startswith("nosig"):
            return None, ["NORM"]
        if name.startswith("transposed"):
            return signal.T.astype(np.float32), ("STTC",)
        return signal, ["NORM", "AFIB/AFL"]
''')


def expected_signal(num_channels: int = len(LEADS)) -> np.ndarray:
    t = np.arange(NUM_SAMPLES) / 100.0
    signal = np.sin(2 * np.pi * np.arange(1, num_channels + 1)[None, :] * t[:, None])
    signal[0, 0], signal[1, 0], signal[2, 1] = 32.767, -32.767, np.nan
    return signal


def write_hidden_record(folder: Path, name: str) -> None:
    """A record as the organisers give it: header only, hidden fields blanked, an `# Image:` line."""
    folder.mkdir(parents=True, exist_ok=True)
    signal = np.zeros((NUM_SAMPLES, len(LEADS)))
    wfdb.wrsamp(
        name,
        fs=FS,
        units=["mV"] * len(LEADS),
        sig_name=LEADS,
        p_signal=signal,
        fmt=["16"] * len(LEADS),
        adc_gain=[1000.0] * len(LEADS),
        baseline=[0] * len(LEADS),
        comments=["Age: 60", "Labels: CD", f"Image: {name}-0.png"],
        write_dir=str(folder),
    )
    (folder / f"{name}.dat").unlink()
    lines = (folder / f"{name}.hea").read_text().split("\n")
    out = [lines[0]]
    for line in lines[1:]:
        fields = line.split(" ")
        out.append(
            " ".join(fields[:5] + ["", "", ""] + fields[8:]) if len(fields) > 8 and not line.startswith("#") else line
        )
    (folder / f"{name}.hea").write_text("\n".join(out))


@pytest.fixture()
def workspace(tmp_path: Path) -> Path:
    """tmp_path/bin: copies of the entry scripts + the fake team_code; tmp_path/data: hidden records."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for script in ("train_model.py", "run_model.py"):
        shutil.copy2(ROOT / script, bin_dir / script)
    (bin_dir / "team_code.py").write_text(FAKE_TEAM_CODE)
    data = tmp_path / "data"
    write_hidden_record(data / "site1", "00001_lr")
    write_hidden_record(data / "site1" / "deep", "00002_lr")
    write_hidden_record(data, "bad_record")
    write_hidden_record(data / "site2", "nosig_record")
    write_hidden_record(data / "site2", "transposed_record")
    return tmp_path


def run_script(workspace: Path, script: str, *args: str) -> subprocess.CompletedProcess:
    """Run bin/<script>: the fake team_code (script folder) shadows the repository's; helper_code from the repo."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, str(workspace / "bin" / script), *args],
        capture_output=True,
        text=True,
        cwd=workspace,
        env=env,
        timeout=120,
    )


def train(workspace: Path) -> None:
    result = run_script(workspace, "train_model.py", "-d", "data", "-m", "model", "-v")
    assert result.returncode == 0, result.stderr
    assert (workspace / "model" / "model.txt").read_text() == "5"


def test_train_and_run_with_allowed_failures(workspace: Path) -> None:
    train(workspace)
    result = run_script(workspace, "run_model.py", "-d", "data", "-m", "model", "-o", "outputs", "-f", "-v")
    assert result.returncode == 0, result.stderr
    assert "bad_record" in result.stderr

    outputs = workspace / "outputs"
    assert sorted(helper_code.find_records(str(outputs))) == sorted(helper_code.find_records(str(workspace / "data")))

    for record in ("site1/00001_lr", "site1/deep/00002_lr"):
        output_record = str(outputs / record)
        assert helper_code.load_labels(output_record) == ["NORM", "AFIB/AFL"]
        header = helper_code.load_header(output_record)
        assert header.count("# Labels:") == 1  # the input's labels are not carried over
        assert helper_code.get_image_files(output_record) == [f"{Path(record).name}-0.png"]
        signal, fields = helper_code.load_signals(output_record)
        assert signal.shape == (NUM_SAMPLES, len(LEADS))
        assert fields["sig_name"] == LEADS and fields["fs"] == FS
        np.testing.assert_allclose(signal, expected_signal(), atol=1e-3)
        assert np.isnan(signal[2, 1]) and np.isnan(signal).sum() == 1

    bad = str(outputs / "bad_record")
    assert helper_code.load_labels(bad) == []
    assert helper_code.load_signals(bad) == (None, None)
    assert not (outputs / "bad_record.dat").exists()

    nosig = str(outputs / "site2" / "nosig_record")
    assert helper_code.load_labels(nosig) == ["NORM"]
    assert not (outputs / "site2" / "nosig_record.dat").exists()

    transposed = str(outputs / "site2" / "transposed_record")
    assert helper_code.load_labels(transposed) == ["STTC"]
    signal, _ = helper_code.load_signals(transposed)
    np.testing.assert_allclose(signal, expected_signal(), atol=1e-3)


def test_run_without_allow_failures_stops(workspace: Path) -> None:
    train(workspace)
    result = run_script(workspace, "run_model.py", "-d", "data", "-m", "model", "-o", "outputs")
    assert result.returncode != 0
    assert "fake failure on bad_record" in result.stderr


@pytest.mark.parametrize("script", ["train_model.py", "run_model.py"])
def test_empty_data_folder(workspace: Path, script: str) -> None:
    empty = workspace / "empty_data"
    (empty / "sub").mkdir(parents=True)
    (empty / "sub" / "notes.txt").write_text("no records here")
    args = ["-d", str(empty), "-m", "model"] + (["-o", "outputs"] if script == "run_model.py" else [])
    result = run_script(workspace, script, *args)
    assert result.returncode != 0
    assert str(empty) in result.stderr and "Traceback" not in result.stderr
    assert not (workspace / "outputs").exists()


def header_for(num_signals: int, num_samples: int, fmt: str = "16", gain: str = "1000.0(0)") -> str:
    lines = [f"r {num_signals} 100 {num_samples}"]
    lines += [f"r.dat {fmt} {gain}/mV 16 0 0 0 0 L{i}" for i in range(num_signals)]
    return "\n".join(lines) + "\n"


def test_conform_signal_shapes_and_ranges() -> None:
    header = header_for(3, 5)
    signal = np.array([[0.5, 40.0, np.nan], [-50.0, 1.0, 2.0], [np.inf, -np.inf, 0.0]])  # 3 samples x 3
    out = run_model.conform_signal(signal, header)
    assert out.shape == (5, 3) and out.dtype == np.float64
    np.testing.assert_array_equal(out[:3], [[0.5, 32.767, np.nan], [-32.767, 1.0, 2.0], [32.767, -32.767, 0.0]])
    assert np.isnan(out[3:]).all()  # padded to the header's number of samples
    np.testing.assert_array_equal(run_model.conform_signal(np.ones((3, 5)), header), np.ones((5, 3)))
    assert run_model.conform_signal(np.ones(9), header_for(1, 4)).shape == (4, 1)
    with pytest.raises(ValueError):
        run_model.conform_signal(np.ones((5, 4)), header)


def test_physical_range_for_formats() -> None:
    assert run_model.physical_range("16", 1000.0, 0) == pytest.approx((-32.767, 32.767))
    assert run_model.physical_range("212", 200.0, 0) == pytest.approx((-2047 / 200, 2047 / 200))
    assert run_model.physical_range("16", 1000.0, 1000) == pytest.approx((-33.767, 31.767))
    assert run_model.physical_range("16", 0.0, 0) == (-np.inf, np.inf)
    out = run_model.conform_signal(np.full((2, 1), 99.0), header_for(1, 2, fmt="212", gain="200.0(0)"))
    np.testing.assert_allclose(out, 2047 / 200)


def test_conform_labels() -> None:
    assert run_model.conform_labels("NORM, CD") == ["NORM", "CD"]
    assert run_model.conform_labels(np.array(["NORM", " "])) == ["NORM"]
    assert run_model.conform_labels([]) == []


def test_header_without_labels() -> None:
    header = "r 1 100 5\nr.dat 16 1000 16 0 0 0 0 I\n#Labels: A\n# Labels: B\n# Image: r-0.png\n"
    assert run_model.header_without_labels(header) == "r 1 100 5\nr.dat 16 1000 16 0 0 0 0 I\n# Image: r-0.png\n"
