#!/usr/bin/env bash
# Set up monde on a fresh machine: a virtual environment in .venv with the project and its
# test tools. Safe to run again (it only installs what is missing).
#
# PyTorch: a plain `pip install torch` on a machine without a GPU can pull a multi-GB CUDA
# build. We install the CPU build first when one is reachable (a local wheel, or PyTorch's
# CPU index), and fall back to whatever `torch>=2.4` resolves to otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  cpu_wheel=$(ls /opt/wheels/torch-*+cpu-cp3*.whl 2>/dev/null | head -n 1 || true)
  if [ -n "$cpu_wheel" ]; then
    .venv/bin/pip install --quiet "$cpu_wheel"
  elif [ -z "${CUDA_VISIBLE_DEVICES:-}" ] && ! command -v nvidia-smi >/dev/null; then
    .venv/bin/pip install --quiet "torch>=2.4" --index-url https://download.pytorch.org/whl/cpu \
      || .venv/bin/pip install --quiet "torch>=2.4"
  fi
fi
# --prefer-binary: take a package's newest *wheel* over a newer source release that would
# need a C compiler (tep-studio 0.2.0 ships only source; 0.1.1 has a manylinux wheel).
.venv/bin/pip install --quiet --prefer-binary -e ".[dev]"
.venv/bin/python -c "import monde, torch; print(f'monde {monde.__version__} ready (torch {torch.__version__})')"
