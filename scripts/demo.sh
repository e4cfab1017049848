#!/usr/bin/env bash
# The main job on the embedded default: synthesise a small data set, render it, train, run, score and
# draw an overlay of one digitized page. Installs what it needs. Output folder: demo_output/ (or $1).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
python -m ecgentry demo -o "${1:-demo_output}"
