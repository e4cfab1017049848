#!/usr/bin/env bash
# Creates (once) and activates the project's virtual environment. Sourced by demo.sh and test.sh.
# VENV overrides its location; pip's own cache (~/.cache/pip) lives outside the clone.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
stamp="$VENV/.requirements.sha"
want="$(cat "$ROOT/requirements.txt" "$ROOT/requirements-dev.txt" | sha256sum | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[env] installing into $VENV" >&2
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip >&2
  # torch first: on the CI machine 'torch==2.13.0' is a local CPU build.
  "$VENV/bin/python" -m pip install -q "$(grep -E '^torch==' "$ROOT/requirements.txt")" >&2
  "$VENV/bin/python" -m pip install -q -r "$ROOT/requirements-dev.txt" >&2
  echo "$want" > "$stamp"
fi
export PATH="$VENV/bin:$PATH"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
cd "$ROOT"
