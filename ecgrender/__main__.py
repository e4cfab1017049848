"""Command line: ``python -m ecgrender {render,synth} ...`` (the demo, which drives the whole entry, is
``python -m ecgentry demo``)."""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "render": ("ecgrender.render_cli", "render WFDB records as paper-ECG images with sidecars and masks"),
    "synth": ("ecgrender.synth", "synthesise labelled 12-lead WFDB records"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print("usage: python -m ecgrender {%s} [options]\n" % ",".join(COMMANDS))
        for name, (_, text) in COMMANDS.items():
            print(f"  {name:8s} {text}")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    module = importlib.import_module(COMMANDS[argv[0]][0])
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
