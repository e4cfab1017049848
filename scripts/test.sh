#!/usr/bin/env bash
# The test command: installs what it needs (a virtual environment from requirements*.txt), lints with ruff
# (configured in pyproject.toml), then runs pytest on two worker processes (pytest-xdist), one thread each.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh tests/test_helper_code.py -x`; `-n 0` runs in one
# process (pdb, print debugging); `-m "slow or not slow"` adds the slow end-to-end tests (CI does).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
ruff check .
# --dist loadscope: the tests of one module stay on one worker, so a module-scoped fixture is built once
python -m pytest -n 2 --dist loadscope "$@"
