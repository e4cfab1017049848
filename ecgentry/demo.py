"""The embedded default job: ``python -m ecgentry demo -o OUT`` (``bash scripts/demo.sh``).

Synthesises a small labelled data set, renders it as paper-ECG pages, trains the entry with the official
``train_model.py``, hides the test signals and labels with ``remove_hidden_data.py``, runs ``run_model.py``,
scores with ``evaluate_model.py`` and draws an overlay of one digitized page. Minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Small enough for 2 CPU cores in a few minutes; the full defaults live in ecgentry.config.TrainConfig.
DEMO_TRAIN_CONFIG = {
    "backbone": {"image_height": 256, "image_width": 384},
    "epochs": 4,
    "batch_size": 8,
    "lr": 2e-3,
    "pages_per_record": 1,
    "trace_source_pages": 3,
}


def _run(cmd: list[str], env: dict[str, str], log: Path) -> str:
    """Run one project command, echo it, keep its output in ``log``; raise on failure."""
    print("$", " ".join(str(c) for c in cmd), flush=True)
    t0 = time.time()
    proc = subprocess.run([str(c) for c in cmd], env=env, cwd=ROOT, capture_output=True, text=True)
    with open(log, "a", encoding="utf-8") as f:
        f.write(f"$ {' '.join(map(str, cmd))}\n{proc.stdout}\n{proc.stderr}\n")
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(map(str, cmd))}")
    print(f"  ({time.time() - t0:.1f} s)", flush=True)
    return proc.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ecgentry demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-o", "--output", default="demo_output", help="output folder (default demo_output)")
    parser.add_argument("--train-records", type=int, default=48)
    parser.add_argument("--test-records", type=int, default=8)
    parser.add_argument("--preset", default="clean", help="distortion preset of the rendered pages")
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args(argv)

    out = Path(args.output).resolve()
    out.mkdir(parents=True, exist_ok=True)
    log = out / "demo.log"
    log.write_text("")
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("ECG_TRAIN_CONFIG", json.dumps(DEMO_TRAIN_CONFIG))
    py = sys.executable

    n_train, n_test = args.train_records, args.test_records
    _run([py, "-m", "ecgrender", "synth", "-o", out / "signals_train", "-n", n_train, "--seed", args.seed], env, log)
    _run([py, "-m", "ecgrender", "synth", "-o", out / "signals_test", "-n", n_test, "--seed", args.seed + 1], env, log)
    for split, seed in (("train", args.seed), ("test", args.seed + 1)):
        _run(
            [
                py,
                "-m",
                "ecgrender",
                "render",
                "-i",
                out / f"signals_{split}",
                "-o",
                out / split,
                "--preset",
                args.preset,
                "--seed",
                seed,
                "--layout",
                "3x4+1",
                "--dpi",
                "200",
                "--mask-unplotted",
            ],
            env,
            log,
        )
    _run([py, "train_model.py", "-d", out / "train", "-m", out / "model", "-v"], env, log)
    _run([py, "remove_hidden_data.py", "-i", out / "test", "-o", out / "test_hidden", "-m"], env, log)
    _run([py, "run_model.py", "-d", out / "test_hidden", "-m", out / "model", "-o", out / "outputs", "-v"], env, log)
    scores = _run(
        [py, "evaluate_model.py", "-d", out / "test", "-o", out / "outputs", "-s", out / "scores.txt"], env, log
    )
    print(scores.strip())

    overlay = write_overlay(out / "test", out / "overlay.png")
    print(f"overlay of one digitized page: {overlay}")
    print(f"everything is in {out} (log: {log})")
    return 0


def write_overlay(test_folder: Path, target: Path) -> Path:
    """Digitize the first test page with the classical trace map and save the overlay picture."""
    from PIL import Image

    from ecgdigitize.image_io import load_image
    from ecgdigitize.overlay import draw_overlay
    from ecgdigitize.pipeline import digitize_page

    page = sorted(p for p in test_folder.rglob("*-0.png"))[0]
    image = load_image(page)
    result = digitize_page(image, None, debug=True)
    Image.fromarray(draw_overlay(image, result)).save(target)
    return target


if __name__ == "__main__":
    sys.exit(main())
