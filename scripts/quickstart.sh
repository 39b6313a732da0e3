#!/usr/bin/env bash
# Set up the environment (scripts/setup.sh) and run the main job: train the seed's VAE on the
# bundled 8x8 digits, writing runs/quickstart/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
.venv/bin/python examples/vae_quickstart.py
