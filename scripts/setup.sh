#!/usr/bin/env bash
# Create .venv (Python >= 3.11) and install deepgm with its development extras.
# torch is pinned to the CPU build 2.13.0 here (the package itself accepts torch>=2.2).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
if ! .venv/bin/python -c "import deepgm, torch, pytest, hypothesis, scipy, matplotlib, sklearn, safetensors, tqdm, torchdiffeq, mypy, gymnasium, cma, vizdoom, Box2D, pygame" 2>/dev/null; then
    .venv/bin/pip install -q --upgrade pip >/dev/null
    .venv/bin/pip install -q "torch==2.13.0"
    .venv/bin/pip install -q -e ".[dev]"
fi
