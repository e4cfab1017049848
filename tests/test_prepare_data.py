"""Tests of the data preparation scripts: prepare_ptbxl_data, prepare_image_data, remove_hidden_data."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import wfdb

import helper_code
import prepare_image_data
import prepare_ptbxl_data
import remove_hidden_data

ROOT = Path(__file__).resolve().parents[1]
LEADS = ["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]


def write_record(
    folder: Path, name: str, num_samples: int = 250, fs: int = 100, seed: int = 0, comments: list[str] | None = None
) -> np.ndarray:
    """Write a 12-lead WFDB record (format 16, 1000 adu/mV); returns its signal (num_samples, 12) in mV."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    signal = np.round(rng.uniform(-2.0, 2.0, size=(num_samples, len(LEADS))), 3)
    wfdb.wrsamp(
        name,
        fs=fs,
        units=["mV"] * len(LEADS),
        sig_name=LEADS,
        p_signal=signal,
        fmt=["16"] * len(LEADS),
        adc_gain=[1000.0] * len(LEADS),
        baseline=[0] * len(LEADS),
        comments=comments or [],
        write_dir=str(folder),
    )
    return signal


# ----------------------------------------------------------------------------------------------------
# prepare_ptbxl_data
# ----------------------------------------------------------------------------------------------------

SCP_ROWS = [  # code, diagnostic, form, rhythm, diagnostic_class
    ("NORM", 1.0, "", "", "NORM"),
    ("IMI", 1.0, "", "", "MI"),
    ("ASMI", 1.0, "", "", "MI"),
    ("NDT", 1.0, 1.0, "", "STTC"),
    ("CLBBB", 1.0, "", "", "CD"),
    ("LVH", 1.0, "", "", "HYP"),
    ("PAC", "", 1.0, "", ""),
    ("PVC", "", 1.0, "", ""),
    ("SR", "", "", 1.0, ""),
    ("AFIB", "", "", 1.0, ""),
    ("AFLT", "", "", 1.0, ""),
    ("STACH", "", "", 1.0, ""),
    ("SVTAC", "", "", 1.0, ""),
    ("PSVT", "", "", 1.0, ""),
    ("SBRAD", "", "", 1.0, ""),
]

DATABASE_ROWS = {  # ecg_id: (scp_codes, age, sex, height, weight)
    1: ("{'NORM': 100.0, 'SR': 0.0}", "56.0", "1", "", "63.0"),
    2: ("{'AFIB': 100.0, 'NDT': 50.0}", "71.0", "0", "180.0", ""),
    3: ("{'NORM': 80.0, 'STACH': 0.0}", "", "", "", ""),
    4: ("{'IMI': 50.0, 'SBRAD': 0.0, 'PVC': 100.0}", "64.0", "0", "170.5", "80.0"),
    5: ("{'ASMI': 100.0, 'CLBBB': 100.0, 'LVH': 50.0, 'AFLT': 0.0, 'PAC': 100.0}", "80.0", "1", "", ""),
    6: ("{'SVTAC': 100.0}", "30.0", "1", "", ""),
    7: ("{'PSVT': 100.0, 'ASMI': 100.0}", "50.0", "0", "", ""),
}


@pytest.fixture()
def ptbxl_tree(tmp_path: Path) -> dict[str, Path]:
    """A tiny PTB-XL-like tree: records100/00000/0000k_lr for the DATABASE_ROWS + the two csv files."""
    records = tmp_path / "ptbxl" / "records100" / "00000"
    for ecg_id in DATABASE_ROWS:
        write_record(records, f"{ecg_id:05d}_lr", seed=ecg_id)
    statements = tmp_path / "ptbxl" / "scp_statements.csv"
    lines = [",description,diagnostic,form,rhythm,diagnostic_class,diagnostic_subclass"]
    lines += [f"{c},{c.lower()} statement,{d},{f},{r},{k},{k}" for c, d, f, r, k in SCP_ROWS]
    statements.write_text("\n".join(lines) + "\n")
    database = tmp_path / "ptbxl" / "ptbxl_database.csv"
    lines = ["ecg_id,patient_id,age,sex,height,weight,recording_date,scp_codes,strat_fold,filename_lr"]
    for ecg_id, (codes, age, sex, height, weight) in DATABASE_ROWS.items():
        lines.append(
            f'{ecg_id},{1000 + ecg_id}.0,{age},{sex},{height},{weight},'
            f'1984-11-{ecg_id:02d} 09:17:34,"{codes}",1,records100/00000/{ecg_id:05d}_lr'
        )
    database.write_text("\n".join(lines) + "\n")
    return {
        "input": tmp_path / "ptbxl" / "records100",
        "database": database,
        "statements": statements,
        "output": tmp_path / "out",
    }


def run_ptbxl(tree: dict[str, Path], *extra: str) -> None:
    args = prepare_ptbxl_data.get_parser().parse_args(
        [
            "-i",
            str(tree["input"]),
            "-pd",
            str(tree["database"]),
            "-pm",
            str(tree["statements"]),
            "-o",
            str(tree["output"]),
            *extra,
        ]
    )
    prepare_ptbxl_data.run(args)


def output_record(tree: dict[str, Path], ecg_id: int) -> str:
    return str(tree["output"] / "00000" / f"{ecg_id:05d}_lr")


def test_ptbxl_labels_without_12sl(ptbxl_tree: dict[str, Path]) -> None:
    run_ptbxl(ptbxl_tree)
    expected = {
        1: ["NORM"],
        2: ["STTC", "AFIB/AFL"],
        3: ["NORM", "TACHY"],
        4: ["Old MI", "PVC", "BRADY"],
        5: ["Old MI", "CD", "HYP", "PAC", "AFIB/AFL"],
        6: ["TACHY"],
        7: ["Old MI", "TACHY"],
    }
    for ecg_id, labels in expected.items():
        assert helper_code.load_labels(output_record(ptbxl_tree, ecg_id)) == labels, ecg_id


def test_ptbxl_header_demographics_and_signal(ptbxl_tree: dict[str, Path]) -> None:
    run_ptbxl(ptbxl_tree)
    header = helper_code.load_header(output_record(ptbxl_tree, 1))
    lines = header.split("\n")
    assert lines[0] == "00001_lr 12 100 250 09:17:34 01/11/1984"
    assert "# Age: 56" in lines and "# Sex: Female" in lines
    assert "# Height: Unknown" in lines and "# Weight: 63" in lines
    header3 = helper_code.load_header(output_record(ptbxl_tree, 3))
    for field in ("Age", "Sex", "Height", "Weight"):
        assert f"# {field}: Unknown" in header3.split("\n")
    header4 = helper_code.load_header(output_record(ptbxl_tree, 4))
    assert "# Height: 170.5" in header4.split("\n") and "# Sex: Male" in header4.split("\n")
    assert helper_code.get_num_signals(header) == 12
    assert helper_code.get_signal_names(header) == LEADS
    # The signal is copied unchanged and still readable through the rewritten header.
    original = wfdb.rdsamp(str(ptbxl_tree["input"] / "00000" / "00001_lr"))[0]
    copied, fields = helper_code.load_signals(output_record(ptbxl_tree, 1))
    np.testing.assert_array_equal(copied, original)
    assert fields["base_time"] is not None


def test_ptbxl_acute_mi_with_12sl(ptbxl_tree: dict[str, Path], tmp_path: Path) -> None:
    sl_database = tmp_path / "12sl_statements.csv"
    sl_database.write_text('ecg_id,statements\n4,"[\'SR\', \'STEMI\']"\n5,"[\'NSR\', \'ABQRS\']"\n7,"[\'SERYR1\']"\n')
    sl_mapping = tmp_path / "12slv23ToSNOMED.csv"
    sl_mapping.write_text(
        '\ufeffStatementNumber,Acronym,FullText\n19,SRTH,Sinus rhythm\n'
        '821,STEMI,"** ** ACUTE MI / STEMI ** **"\n902,SERYR1,"ST elevation\nrecent"\n'
        '22,NSR,Normal sinus rhythm\n'
    )
    run_ptbxl(ptbxl_tree, "-sd", str(sl_database), "-sm", str(sl_mapping))
    assert helper_code.load_labels(output_record(ptbxl_tree, 4)) == ["Acute MI", "PVC", "BRADY"]
    assert helper_code.load_labels(output_record(ptbxl_tree, 5)) == ["Old MI", "CD", "HYP", "PAC", "AFIB/AFL"]
    assert helper_code.load_labels(output_record(ptbxl_tree, 7)) == ["Acute MI", "TACHY"]
    assert helper_code.load_labels(output_record(ptbxl_tree, 1)) == ["NORM"]


def test_ptbxl_in_place_replaces_old_lines(ptbxl_tree: dict[str, Path]) -> None:
    ptbxl_tree["output"] = ptbxl_tree["input"]
    run_ptbxl(ptbxl_tree)
    run_ptbxl(ptbxl_tree)  # twice: the demographics/labels must not be duplicated
    header = helper_code.load_header(output_record(ptbxl_tree, 2))
    assert header.count("# Labels:") == 1 and header.count("# Age:") == 1
    assert header.split("\n")[0].count(":") == 2  # one time stamp on the record line


def test_ptbxl_cli_requires_both_12sl_files(ptbxl_tree: dict[str, Path], tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "prepare_ptbxl_data.py"),
            "-i",
            str(ptbxl_tree["input"]),
            "-pd",
            str(ptbxl_tree["database"]),
            "-pm",
            str(ptbxl_tree["statements"]),
            "-sd",
            str(tmp_path / "12sl.csv"),
            "-o",
            str(ptbxl_tree["output"]),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode != 0 and "-sm" in result.stderr


def test_compute_labels_order_and_negative_likelihood() -> None:
    labels = prepare_ptbxl_data.compute_labels(
        {"SBRAD": 0.0, "AFIB": -1.0, "PVC": 100.0}, ["HYP", "NORM"], ["X"], {"STEMI"}
    )
    assert labels == ["NORM", "HYP", "PVC", "BRADY"]
    assert prepare_ptbxl_data.parse_statement_list("SR, STEMI") == ["SR", "STEMI"]
    assert prepare_ptbxl_data.format_number(float("nan")) == "Unknown"
    assert prepare_ptbxl_data.format_sex(float("nan")) == "Unknown"


def test_ptbxl_on_real_records(shared_data: Path, tmp_path: Path) -> None:
    ptbxl = shared_data / "ptbxl"
    source = ptbxl / "records100" / "00000"
    if not source.is_dir():
        pytest.skip("records100 of the shared PTB-XL subset are absent")
    input_folder = tmp_path / "in" / "00000"
    input_folder.mkdir(parents=True)
    ids = [1, 2, 45, 50, 103, 282]
    for ecg_id in ids:
        for ext in (".hea", ".dat"):
            shutil.copy2(source / f"{ecg_id:05d}_lr{ext}", input_folder)
    args = prepare_ptbxl_data.get_parser().parse_args(
        [
            "-i",
            str(tmp_path / "in"),
            "-pd",
            str(ptbxl / "ptbxl_database.csv"),
            "-pm",
            str(ptbxl / "scp_statements.csv"),
            "-o",
            str(tmp_path / "out"),
        ]
    )
    assert prepare_ptbxl_data.run(args) == len(ids)
    expected = {
        1: ["NORM"],
        2: ["NORM", "BRADY"],
        45: ["CD", "HYP"],
        50: ["Old MI", "CD"],
        103: ["Old MI", "CD", "TACHY"],
        282: ["Old MI", "STTC", "CD", "HYP", "PVC", "AFIB/AFL"],
    }
    for ecg_id, labels in expected.items():
        record = str(tmp_path / "out" / "00000" / f"{ecg_id:05d}_lr")
        assert helper_code.load_labels(record) == labels, ecg_id
        signal, fields = helper_code.load_signals(record)
        assert signal.shape == (1000, 12) and fields["fs"] == 100
    header = helper_code.load_header(str(tmp_path / "out" / "00000" / "00282_lr"))
    assert "# Height: 175" in header.split("\n") and "# Weight: Unknown" in header.split("\n")
    assert "# Sex: Male" in header.split("\n") and "# Age: 91" in header.split("\n")


# ----------------------------------------------------------------------------------------------------
# prepare_image_data
# ----------------------------------------------------------------------------------------------------


def touch_images(folder: Path, names: list[str]) -> None:
    for name in names:
        (folder / name).write_bytes(b"\x89PNG fake " + name.encode())


def test_prepare_image_data_lists_only_record_images(tmp_path: Path) -> None:
    folder = tmp_path / "in" / "sub"
    write_record(folder, "rec")
    write_record(folder, "rec2", seed=1)
    write_record(tmp_path / "in", "lonely", seed=2)
    images = ["rec-0.png", "rec-1.jpg", "rec-2.JPEG", "rec-10.png"]
    others = [
        "rec-0_leads.png",
        "rec-0_classes.png",
        "rec-0.json",
        "rec-x.png",
        "rec-3.txt",
        "rec2-0.jpg",
        "prefix_rec-0.png",
        "rec-1-0.png",
    ]
    touch_images(folder, images + others)
    args = prepare_image_data.get_parser().parse_args(["-i", str(tmp_path / "in"), "-o", str(tmp_path / "out")])
    assert prepare_image_data.run(args) == 2

    record = str(tmp_path / "out" / "sub" / "rec")
    assert helper_code.get_image_files(record) == ["rec-0.png", "rec-1.jpg", "rec-2.JPEG", "rec-10.png"]
    assert helper_code.get_image_files(str(tmp_path / "out" / "sub" / "rec2")) == ["rec2-0.jpg"]
    assert "# Image:" not in helper_code.load_header(str(tmp_path / "out" / "lonely"))
    copied = sorted(p.name for p in (tmp_path / "out" / "sub").iterdir())
    assert copied == sorted(["rec.hea", "rec.dat", "rec2.hea", "rec2.dat", "rec2-0.jpg"] + images)
    signal, _ = helper_code.load_signals(record)
    assert signal.shape == (250, 12)


def test_prepare_image_data_in_place_replaces_image_line(tmp_path: Path) -> None:
    write_record(tmp_path, "r", comments=["Image: old-0.png", "Age: 50"])
    touch_images(tmp_path, ["r-0.jpg", "r-1.png"])
    args = prepare_image_data.get_parser().parse_args(["-i", str(tmp_path), "-o", str(tmp_path)])
    prepare_image_data.run(args)
    prepare_image_data.run(args)
    header = helper_code.load_header(str(tmp_path / "r"))
    assert header.count("Image:") == 1 and "# Age: 50" in header
    assert helper_code.get_image_files(str(tmp_path / "r")) == ["r-0.jpg", "r-1.png"]


# ----------------------------------------------------------------------------------------------------
# remove_hidden_data
# ----------------------------------------------------------------------------------------------------


@pytest.fixture()
def prepared_tree(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """One prepared record a/b/00001_lr with demographics, labels, an image line and the image."""
    folder = tmp_path / "in" / "a" / "b"
    signal = write_record(
        folder,
        "00001_lr",
        comments=[
            "Age: 56",
            "Sex: Female",
            "Height: Unknown",
            "Weight: 63",
            "Labels: NORM, BRADY",
            "Image: 00001_lr-0.png, 00001_lr-1.png",
        ],
    )
    touch_images(folder, ["00001_lr-0.png", "00001_lr-1.png"])
    header = (folder / "00001_lr.hea").read_text()
    (folder / "00001_lr.hea").write_text(
        header.replace("00001_lr 12 100 250", "00001_lr 12 100 250 09:17:34 09/11/1984")
    )
    return tmp_path, signal


def run_remove(tmp_path: Path, output: Path, *flags: str) -> None:
    args = remove_hidden_data.get_parser().parse_args(["-i", str(tmp_path / "in"), "-o", str(output), *flags])
    remove_hidden_data.run(args)


def test_remove_hidden_data_default(prepared_tree: tuple[Path, np.ndarray]) -> None:
    tmp_path, _ = prepared_tree
    run_remove(tmp_path, tmp_path / "out")
    record = str(tmp_path / "out" / "a" / "b" / "00001_lr")
    header = helper_code.load_header(record)
    assert header.split("\n")[0] == "00001_lr 12 100 250"
    assert helper_code.get_num_signals(header) == 12
    assert helper_code.get_num_samples(header) == 250
    assert helper_code.get_sampling_frequency(header) == 100
    assert helper_code.get_signal_names(header) == LEADS
    assert helper_code.get_adc_gains(header) == [1000.0] * 12
    assert helper_code.get_signal_files(record) == ["00001_lr.dat"]
    signal_line = header.split("\n")[1].split(" ")
    assert signal_line[5:8] == ["", "", ""]  # initial value, checksum, block size hidden
    assert "#" not in header
    with pytest.raises(Exception):
        helper_code.load_labels(record)
    with pytest.raises(Exception):
        helper_code.get_image_files(record)
    assert sorted(p.name for p in (tmp_path / "out" / "a" / "b").iterdir()) == ["00001_lr.hea"]
    assert helper_code.load_signals(record) == (None, None)


def test_remove_hidden_data_with_flags(prepared_tree: tuple[Path, np.ndarray]) -> None:
    tmp_path, signal = prepared_tree
    run_remove(tmp_path, tmp_path / "out", "-w", "-l", "-m")
    record = str(tmp_path / "out" / "a" / "b" / "00001_lr")
    header = helper_code.load_header(record)
    assert helper_code.load_labels(record) == ["NORM", "BRADY"]
    assert helper_code.get_image_files(record) == ["00001_lr-0.png", "00001_lr-1.png"]
    assert "Age" not in header and "Sex" not in header
    loaded, _ = helper_code.load_signals(record)
    np.testing.assert_allclose(loaded, signal, atol=1e-9)
    assert sorted(p.name for p in (tmp_path / "out" / "a" / "b").iterdir()) == [
        "00001_lr-0.png",
        "00001_lr-1.png",
        "00001_lr.dat",
        "00001_lr.hea",
    ]


def test_remove_hidden_data_single_flags(prepared_tree: tuple[Path, np.ndarray]) -> None:
    tmp_path, _ = prepared_tree
    run_remove(tmp_path, tmp_path / "labels_only", "-l")
    record = str(tmp_path / "labels_only" / "a" / "b" / "00001_lr")
    assert helper_code.load_labels(record) == ["NORM", "BRADY"]
    assert "Image" not in helper_code.load_header(record)
    assert sorted(p.name for p in (tmp_path / "labels_only" / "a" / "b").iterdir()) == ["00001_lr.hea"]
    run_remove(tmp_path, tmp_path / "images_only", "-m")
    record = str(tmp_path / "images_only" / "a" / "b" / "00001_lr")
    assert helper_code.get_image_files(record) == ["00001_lr-0.png", "00001_lr-1.png"]
    with pytest.raises(Exception):
        helper_code.load_labels(record)
    assert not (tmp_path / "images_only" / "a" / "b" / "00001_lr.dat").exists()


def test_remove_hidden_data_in_place_deletes_signal(prepared_tree: tuple[Path, np.ndarray]) -> None:
    tmp_path, _ = prepared_tree
    run_remove(tmp_path, tmp_path / "in")
    folder = tmp_path / "in" / "a" / "b"
    assert not (folder / "00001_lr.dat").exists()
    assert "Labels" not in (folder / "00001_lr.hea").read_text()


def test_remove_hidden_data_cli_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "remove_hidden_data.py"),
            "-i",
            str(tmp_path / "empty"),
            "-o",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode != 0 and str(tmp_path / "empty") in result.stderr


# ----------------------------------------------------------------------------------------------------
# Files named in headers never leave the data folders (ecgentry.safe_paths)
# ----------------------------------------------------------------------------------------------------


def checksums_outside(parent: Path, data: Path) -> dict[str, str]:
    """``relative path -> sha256`` (``link -> target`` for symlinks) of everything under ``parent`` outside ``data``."""
    import hashlib

    listing: dict[str, str] = {}
    for root, dirs, files in __import__("os").walk(parent):
        if Path(root) == data or data in Path(root).parents:
            dirs[:] = []
            continue
        for name in dirs + files:
            path = Path(root) / name
            rel = str(path.relative_to(parent))
            if path.is_symlink():
                listing[rel] = "-> " + str(path.readlink())
            elif path.is_file():
                listing[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return listing


@pytest.fixture()
def hostile_tree(tmp_path: Path) -> dict[str, Path]:
    """``data/`` whose header names files outside it (``../victim/keep.dat``, an absolute path, ``..`` inside a
    name, a symlinked image pointing out) next to ``victim/`` that must never change."""
    import os

    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.dat").write_bytes(b"precious")
    (victim / "keep.png").write_bytes(b"\x89PNG precious")
    (victim / "00002_lr.hea").write_text("00002_lr 12 100 250\n")
    data = tmp_path / "data"
    write_record(
        data,
        "00001_lr",
        comments=[
            "Labels: NORM",
            "Image: 00001_lr-0.png, ../victim/keep.png, "
            f"{victim / 'keep.png'}, sub/../../victim/keep.png, 00001_lr-1.png",
        ],
    )
    header = (data / "00001_lr.hea").read_text()
    (data / "00001_lr.hea").write_text(
        header.replace("00001_lr.dat", "../victim/keep.dat", 6).replace("00001_lr.dat", str(victim / "keep.dat"), 3)
    )
    touch_images(data, ["00001_lr-0.png"])
    os.symlink(victim / "keep.png", data / "00001_lr-1.png")
    os.symlink(victim / "00002_lr.hea", data / "00002_lr.hea")  # a header pointing out
    return {"data": data, "victim": victim, "parent": tmp_path}


SCRIPT_FLAGS = {
    "remove_hidden_data.py": [[], ["-w", "-l", "-m"], ["-m"]],
    "prepare_image_data.py": [[]],
}


@pytest.mark.parametrize("script,flags", [(s, f) for s, fl in SCRIPT_FLAGS.items() for f in fl])
@pytest.mark.parametrize("in_place", [True, False])
def test_scripts_never_touch_files_outside(hostile_tree, script, flags, in_place, caplog):
    data, parent = hostile_tree["data"], hostile_tree["parent"]
    out = data if in_place else parent / "out"
    before = checksums_outside(parent, out if not in_place else data)
    module = {"remove_hidden_data.py": remove_hidden_data, "prepare_image_data.py": prepare_image_data}[script]
    args = module.get_parser().parse_args(["-i", str(data), "-o", str(out), *flags])
    with caplog.at_level("WARNING"):
        module.run(args)
    after = checksums_outside(parent, out if not in_place else data)
    if not in_place:  # the input folder is outside the output folder: it must not change either
        assert after == before
    assert {k: v for k, v in after.items() if not k.startswith("data")} == {
        k: v for k, v in before.items() if not k.startswith("data")
    }
    assert (hostile_tree["victim"] / "keep.dat").read_bytes() == b"precious"
    assert any("outside the record's folder" in m for m in caplog.messages)
    assert (out / "00001_lr.hea").is_file()
    assert not (out / "00002_lr.hea").exists() or (out / "00002_lr.hea").is_symlink()
    if not in_place:
        assert {p.name for p in out.iterdir()} <= {"00001_lr-0.png", "00001_lr.hea", "00001_lr.dat"}


def test_remove_hidden_data_cli_in_place_keeps_outside_file(hostile_tree):
    data, parent = hostile_tree["data"], hostile_tree["parent"]
    before = checksums_outside(parent, data)
    result = subprocess.run(
        [sys.executable, str(ROOT / "remove_hidden_data.py"), "-i", str(data), "-o", str(data)],
        capture_output=True,
        text=True,
        cwd=parent,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert checksums_outside(parent, data) == before
    assert "00001_lr" in result.stderr and "outside the record's folder" in result.stderr


@pytest.mark.parametrize("in_place", [True, False])
def test_ptbxl_never_touches_files_outside(ptbxl_tree, in_place, caplog):
    import os

    records = ptbxl_tree["input"] / "00000"
    parent = ptbxl_tree["input"].parent.parent
    victim = parent / "victim"
    victim.mkdir()
    (victim / "keep.dat").write_bytes(b"precious")
    header = (records / "00001_lr.hea").read_text()
    (records / "00001_lr.hea").write_text(header.replace("00001_lr.dat", "../../../victim/keep.dat"))
    (records / "00002_lr.hea").unlink()
    os.symlink(victim / "keep.dat", records / "00002_lr.hea")
    if in_place:
        ptbxl_tree = {**ptbxl_tree, "output": ptbxl_tree["input"]}
    data = ptbxl_tree["input"]
    before = checksums_outside(parent, data)
    with caplog.at_level("WARNING"):
        run_ptbxl(ptbxl_tree)
    after = checksums_outside(parent, data)
    assert {k: v for k, v in after.items() if not k.startswith("out")} == before
    assert (victim / "keep.dat").read_bytes() == b"precious"
    assert any("outside the record's folder" in m for m in caplog.messages)
    if not in_place:
        out = ptbxl_tree["output"] / "00000"
        assert (out / "00001_lr.hea").is_file() and not (out / "keep.dat").exists()
        assert not (out / "00002_lr.hea").exists() and (out / "00003_lr.dat").is_file()
