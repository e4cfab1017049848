"""Image files as pages: finding them in folders and reading every page (multi-page TIFF as several, one frame
at a time, through the one opener ``ecgdigitize.image_io.iter_pages``)."""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecgdigitize.image_io import ImageHeader, ImageRefused, iter_pages, read_image_header

__all__ = [
    "IMAGE_EXTENSIONS",
    "DEFAULT_EXCLUDES",
    "ImageJob",
    "ImageHeader",
    "ImageRefused",
    "find_images",
    "plan_jobs",
    "iter_pages",
    "load_pages",
    "read_image_header",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
# Renderer masks and this tool's own overlays are images too, but never ECG pages.
DEFAULT_EXCLUDES = ("*_leads.png", "*_classes.png", "*_overlay.png", "*_plot.png")


@dataclass
class ImageJob:
    """One input file and where its outputs go: ``out_dir / name`` (+ ``-p<k>`` per page of a multi-page file)."""

    path: str
    out_dir: str
    name: str


def find_images(
    inputs: list[str], excludes: tuple[str, ...] = DEFAULT_EXCLUDES, skip_under: str | None = None
) -> tuple[list[tuple[str, str]], list[str]]:
    """``([(file, relative directory for its outputs)], [missing inputs])``: files given directly (any extension;
    output directory ".") and image files under folders (recursive, sorted; output directory mirrors the
    folder). Files under ``skip_under`` (the output folder) and names matching ``excludes`` are left out."""
    found: list[tuple[str, str]] = []
    missing: list[str] = []
    skip = os.path.realpath(skip_under) if skip_under else None
    for item in inputs:
        if os.path.isfile(item):
            found.append((item, "."))
        elif os.path.isdir(item):
            for root, dirs, files in os.walk(item):
                dirs.sort()
                if skip and (os.path.realpath(root) + os.sep).startswith(skip + os.sep):
                    dirs[:] = []
                    continue
                for f in sorted(files):
                    if not f.lower().endswith(IMAGE_EXTENSIONS) or any(fnmatch.fnmatch(f, p) for p in excludes):
                        continue
                    found.append((os.path.join(root, f), os.path.relpath(root, item)))
        else:
            missing.append(item)
    return found, missing


def plan_jobs(files: list[tuple[str, str]], out_folder: str) -> list[ImageJob]:
    """Output names (WFDB-safe: letters, digits, ``_`` and ``-``) for the files; two files with the same stem in
    the same output directory (``a.png``, ``a.jpg``) get their extension appended."""
    jobs: list[ImageJob] = []
    used: set[tuple[str, str]] = set()
    for path, rel in files:
        stem, ext = os.path.splitext(os.path.basename(path))
        name = re.sub(r"[^-\w]", "_", stem) or "page"
        out_dir = os.path.normpath(os.path.join(out_folder, rel))
        if (out_dir, name) in used:
            name = f"{name}_{ext.lstrip('.').lower() or 'img'}"
            k = 2
            base = name
            while (out_dir, name) in used:
                name = f"{base}{k}"
                k += 1
        used.add((out_dir, name))
        jobs.append(ImageJob(path, out_dir, name))
    return jobs


def load_pages(path: str | Path) -> list[np.ndarray]:
    """Every page of an image file as (H, W, 3) uint8 RGB (all in memory: prefer :func:`iter_pages`, which
    decodes one frame at a time). Raises ``ImageRefused`` for unreadable or oversized files."""
    return list(iter_pages(path))
