#!/usr/bin/env bash
# Set up the environment (scripts/setup.sh) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -z "${DEEPGM_DATA:-}" ] && [ -d ../shared/data ]; then
    export DEEPGM_DATA="$(cd ../shared/data && pwd)"
fi
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
.venv/bin/python -m pytest "$@"
