"""Download pre-trained backbone weights into a local folder (run at Docker build time, never at run time).

``python -m models.fetch_weights facebook/convnextv2-atto-1k-224 -o /challenge/pretrained``

Each model lands in ``<out>/<name with '/' replaced by '--'>``, the layout that ``models.backbone``
searches through ``ECG_BACKBONE_DIR``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def local_folder_name(name: str) -> str:
    """The sub-folder name used for a hub model id (``org/model`` -> ``org--model``)."""
    return name.replace("/", "--")


def fetch(name: str, out_dir: str | Path) -> Path:
    """Download the hub repository ``name`` (config, processor and weights) into ``out_dir``; returns its folder."""
    from huggingface_hub import snapshot_download

    target = Path(out_dir) / local_folder_name(name)
    target.mkdir(parents=True, exist_ok=True)
    snapshot_download(
        repo_id=name,
        local_dir=str(target),
        allow_patterns=["*.json", "*.safetensors", "*.txt"],
    )
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="+", help="Hugging Face hub model ids")
    parser.add_argument("-o", "--out", required=True, help="folder to hold one sub-folder per model")
    args = parser.parse_args(argv)
    for name in args.names:
        print(f"{name} -> {fetch(name, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
