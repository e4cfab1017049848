"""The path guard (``ecgentry.safe_paths``) and record reading through it: names from headers never leave the
record's folder (``../``, absolute paths, symlinks pointing out, ``..`` inside a name)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from ecgentry.records import RecordInfo, load_standard_signal, read_header, record_image_files, scan_records
from ecgentry.safe_paths import OutsideFolder, copy_inside, remove_inside, require_inside, resolve_inside

LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]


@pytest.fixture()
def tree(tmp_path: Path) -> dict[str, Path]:
    """``data/`` (a record folder with ``sub/``) next to ``outside/`` holding a file and an image."""
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    Image.new("RGB", (40, 30), "white").save(outside / "page.png")
    (data / "ok.png").write_bytes((outside / "page.png").read_bytes())
    (data / "sub" / "deep.png").write_bytes((outside / "page.png").read_bytes())
    os.symlink(outside / "page.png", data / "link_out.png")
    os.symlink(data / "ok.png", data / "link_in.png")
    os.symlink(outside, data / "dir_out")
    return {"data": data, "outside": outside}


@pytest.mark.parametrize(
    "name",
    [
        "../outside/secret.txt",
        "sub/../../outside/secret.txt",
        "..",
        ".",
        "",
        "link_out.png",
        "dir_out/secret.txt",
        "dir_out",
        "a\0b",
    ],
)
def test_names_leaving_the_folder_are_refused(tree, name):
    assert resolve_inside(tree["data"], name) is None
    with pytest.raises(OutsideFolder, match="rec"):
        require_inside(tree["data"], name, "rec")


def test_absolute_names_are_refused(tree):
    assert resolve_inside(tree["data"], str(tree["outside"] / "secret.txt")) is None
    assert resolve_inside(tree["data"], str(tree["data"] / "ok.png")) is None  # absolute even when inside
    assert resolve_inside(tree["data"], "/etc/hostname") is None


@pytest.mark.parametrize("name", ["ok.png", "sub/deep.png", "sub/../ok.png", "link_in.png", "a..b.png"])
def test_names_inside_are_kept(tree, name):
    path = resolve_inside(tree["data"], name)
    assert path is not None and path.startswith(os.path.realpath(tree["data"]) + os.sep)


def test_folder_given_through_a_symlink(tree, tmp_path):
    os.symlink(tree["data"], tmp_path / "alias")
    assert resolve_inside(tmp_path / "alias", "ok.png") == os.path.realpath(tree["data"] / "ok.png")
    assert resolve_inside(tmp_path / "alias", "../outside/secret.txt") is None


def test_copy_and_remove_stay_inside(tree, tmp_path):
    out = tmp_path / "out"
    assert copy_inside(tree["data"], out, "ok.png", "rec") == "copied" and (out / "ok.png").is_file()
    assert copy_inside(tree["data"], out, "../outside/secret.txt", "rec") == "refused"
    assert copy_inside(tree["data"], out, "link_out.png", "rec") == "refused"
    assert copy_inside(tree["data"], out, "nothing.png", "rec") == "missing"
    os.symlink(tree["outside"] / "secret.txt", out / "trap.png")  # a destination pointing out is not written through
    (tree["data"] / "trap.png").write_text("x")
    assert copy_inside(tree["data"], out, "trap.png", "rec") == "refused"
    assert (tree["outside"] / "secret.txt").read_text() == "secret"
    assert not remove_inside(tree["data"], "../outside/secret.txt", "rec")
    assert not remove_inside(tree["data"], "link_out.png", "rec")
    assert (tree["outside"] / "secret.txt").exists() and (tree["outside"] / "page.png").exists()
    assert remove_inside(tree["data"], "link_in.png", "rec")  # the link goes, its target stays
    assert not (tree["data"] / "link_in.png").exists() and (tree["data"] / "ok.png").exists()


def _write_header(folder: Path, name: str, images: list[str], signal_file: str | None = None) -> str:
    lines = [f"{name} 12 500 5000"]
    lines += [f"{signal_file or name + '.dat'} 16 1000/mV 16 0 0 0 0 {lead}" for lead in LEADS]
    lines += ["# Labels: NORM", "# Image: " + ", ".join(images)]
    (folder / f"{name}.hea").write_text("\n".join(lines) + "\n")
    return str(folder / name)


def test_record_images_from_a_hostile_header(tree, caplog):
    names = [
        "ok.png",
        "../outside/page.png",
        str(tree["outside"] / "page.png"),
        "/etc/hostname",
        "../../../../etc/passwd",
        "link_out.png",
        "dir_out/page.png",
        "sub/../../outside/page.png",
        "sub/deep.png",
    ]
    record = _write_header(tree["data"], "rec", names)
    with caplog.at_level("WARNING"):
        files = record_image_files(record, read_header(record))
    assert [os.path.basename(f) for f in files] == ["ok.png", "deep.png"]
    assert sum("record " + record in m and "outside the record's folder" in m for m in caplog.messages) == 7


def test_signal_files_outside_are_not_read(tree, caplog):
    record = _write_header(tree["data"], "rec", ["ok.png"], signal_file="../outside/secret.txt")
    info = RecordInfo(record, 500.0, 5000, LEADS, ["NORM"], [], True)
    with caplog.at_level("WARNING"):
        assert load_standard_signal(info) is None
    assert any("signal file" in m and "outside" in m for m in caplog.messages)
    infos, skipped = scan_records(str(tree["data"]))
    assert len(infos) == 1 and not infos[0].has_signal and infos[0].image_files  # the image is still used


def test_header_symlink_pointing_out_is_skipped(tree):
    _write_header(tree["outside"], "foreign", ["page.png"])
    os.symlink(tree["outside"] / "foreign.hea", tree["data"] / "foreign.hea")
    with pytest.raises(OutsideFolder):
        read_header(str(tree["data"] / "foreign"))
    infos, skipped = scan_records(str(tree["data"]))
    assert not infos and "outside" in dict(skipped)["foreign"]
