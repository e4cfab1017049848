#!/usr/bin/env bash
# The test command: installs what it needs (a virtual environment from requirements*.txt), lints with ruff and
# checks the formatting (both configured in pyproject.toml), then runs pytest, one thread per process.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh tests/test_helper_code.py -x`; `-m "slow or not slow"`
# adds the slow end-to-end tests (CI does). TEST_WORKERS=2 runs pytest on two worker processes (pytest-xdist); on a
# two-core machine whose cores other jobs share, that was slower than one process, hence not the default.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
ruff check .
ruff format --check .
if [ "${TEST_WORKERS:-0}" != 0 ]; then
  # --dist loadscope: the tests of one module stay on one worker, so a module-scoped fixture is built once
  set -- -n "$TEST_WORKERS" --dist loadscope "$@"
fi
python -m pytest "$@"
