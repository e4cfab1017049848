"""The one guard for file names that come from data: a name read from a header (``# Image:`` lines, signal file
names) or from a record list must resolve, symlinks included, to a path inside the record's folder.

Reading, copying, writing and deleting all go through :func:`inside`: an absolute name, a name whose ``..``
components leave the folder, or a symlink that points out of it is refused (None, with a warning naming the
record), so no script reads, writes or deletes outside the folders it was given. The folder itself may be a
symlink: both sides are compared after resolving.

Only the standard library is used, so the entry scripts at the repository root import it cleanly.
"""

from __future__ import annotations

import logging
import os
from typing import NamedTuple

logger = logging.getLogger(__name__)


class OutsideFolder(ValueError):
    """A file name from the data resolves outside the folder it must stay in."""


def resolve_inside(folder: str | os.PathLike, name: str | os.PathLike) -> str | None:
    """The resolved absolute path of ``name`` relative to ``folder`` when it lies strictly inside the resolved
    ``folder``; None for an empty or absolute name, a name that leaves the folder through ``..``, a symlink
    (anywhere on the way) that points out of it, or a name the operating system cannot take (NUL byte)."""
    name = os.fspath(name)
    if not name or os.path.isabs(name) or (os.path.splitdrive(name)[0]):
        return None
    try:
        root = os.path.realpath(os.fspath(folder))
        path = os.path.realpath(os.path.join(root, name))
    except (ValueError, OSError):
        return None
    try:
        if os.path.commonpath([root, path]) != root or path == root:
            return None
    except ValueError:  # different drives
        return None
    return path


def inside(folder: str | os.PathLike, name: str | os.PathLike, record: str, what: str = "file") -> str | None:
    """:func:`resolve_inside`, logging a warning that names ``record`` and ``what`` the file is when refused."""
    path = resolve_inside(folder, name)
    if path is None:
        logger.warning(
            "record %s: %s %r is outside the record's folder %s; skipped",
            record,
            what,
            os.fspath(name),
            os.fspath(folder),
        )
    return path


def require_inside(folder: str | os.PathLike, name: str | os.PathLike, record: str, what: str = "file") -> str:
    """:func:`resolve_inside` or :class:`OutsideFolder` (naming the record) when refused."""
    path = resolve_inside(folder, name)
    if path is None:
        raise OutsideFolder(
            f"record {record}: {what} {os.fspath(name)!r} is outside the record's folder {os.fspath(folder)}"
        )
    return path


def same_folder(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two folder paths name the same folder (after resolving symlinks, ``.`` and ``..``)."""
    return os.path.realpath(os.fspath(a)) == os.path.realpath(os.fspath(b))


def copy_inside(
    src_folder: str | os.PathLike, dst_folder: str | os.PathLike, name: str, record: str, what: str = "file"
) -> str:
    """Copy ``src_folder/name`` to ``dst_folder/name`` when both resolve inside their folders. Returns
    ``"copied"``, ``"same"`` (source and destination are one file), ``"missing"`` (no such source file) or
    ``"refused"`` (outside a folder; warned)."""
    import shutil

    src = inside(src_folder, name, record, what)
    dst = inside(dst_folder, name, record, f"{what} (output)") if src is not None else None
    if src is None or dst is None:
        return "refused"
    if not os.path.isfile(src):
        return "missing"
    if src == dst:
        return "same"
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    shutil.copy2(src, dst)
    return "copied"


def remove_inside(folder: str | os.PathLike, name: str, record: str, what: str = "file") -> bool:
    """Delete ``folder/name`` (the link itself when it is a symlink) when it resolves inside ``folder``; a header
    (``.hea``) is never deleted. Returns whether a file was deleted."""
    if inside(folder, name, record, what) is None:
        return False
    path = os.path.join(os.fspath(folder), name)
    if path.lower().endswith(".hea"):
        logger.warning("record %s: %s %r is a header; not deleted", record, what, name)
        return False
    if not (os.path.isfile(path) or os.path.islink(path)):
        return False
    os.remove(path)
    return True


def output_file(folder: str | os.PathLike, name: str, record: str, what: str = "output") -> str | None:
    """The path to write ``folder/name`` to, when it resolves inside ``folder`` (a symlink already there that
    points out of it is refused, warned); its directory is created."""
    path = inside(folder, name, record, what)
    if path is not None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
    return path


def subfolder_inside(root: str | os.PathLike, relative: str, record: str) -> str | None:
    """The resolved folder ``root/relative`` (``relative`` "" or "." is ``root`` itself) when it lies inside the
    resolved ``root``; None (warned, naming ``record``) when a symlink on the way points out of it."""
    if relative in ("", "."):
        return os.path.realpath(os.fspath(root))
    return inside(root, relative, record, "folder")


class RecordPaths(NamedTuple):
    """Where one record of a data-preparation script is read from and written to (resolved, guarded)."""

    name: str  # the record's name without folder
    input_dir: str
    output_dir: str
    input_header: str
    output_header: str


def record_paths(input_root: str | os.PathLike, output_root: str | os.PathLike, record: str) -> RecordPaths | None:
    """The record's input and output folders (``record``'s relative folder under each root) and header files, each
    guarded as :func:`subfolder_inside`, :func:`inside` and :func:`output_file` guard them; None (warned) when any
    of them would leave its root."""
    relative_path, name = os.path.split(record)
    input_dir = subfolder_inside(input_root, relative_path, record)
    output_dir = subfolder_inside(output_root, relative_path, record)
    if input_dir is None or output_dir is None:
        return None
    input_header = inside(input_dir, name + ".hea", record, "header")
    output_header = output_file(output_dir, name + ".hea", record, "header (output)")
    if input_header is None or output_header is None:
        return None
    return RecordPaths(name, input_dir, output_dir, input_header, output_header)
