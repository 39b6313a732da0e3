#!/usr/bin/env bash
# Set up the environment (scripts/setup.sh) and run the main job: train the default model, a VAE, on
# scikit-learn's bundled 8x8 digits (no download), writing runs/quickstart/ (metrics.json, the figures;
# --overwrite: a second run replaces the first).
# examples/vae_quickstart.py is the same kind of model written with the library directly.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
.venv/bin/deepgm train vae --dataset digits --epochs 100 --out runs/quickstart --overwrite --eval-k 1000 "$@"
