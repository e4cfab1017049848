#!/usr/bin/env bash
# The test command: installs what it needs (a virtual environment from requirements*.txt), then runs pytest.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh tests/test_helper_code.py -x`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
python -m pytest "$@"
