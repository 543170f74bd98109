#!/usr/bin/env bash
# Run every gpu-marked test on a machine with an NVIDIA GPU and driver.
#
#   scripts/run_gpu_tests.sh            # all gpu tests
#   scripts/run_gpu_tests.sh -k kernel  # extra arguments go to pytest
#
# Sets up .venv like `make test`, adds the gpu extra if TensorRT, cuda.core or
# NVRTC is missing (TensorRT's wheels come from NVIDIA's package index), then runs `pytest -m gpu` with
# AVATAR_REQUIRE_GPU=1: a test that cannot reach a GPU fails instead of
# skipping, so a green run means the kernels really ran on the device.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=.venv/bin/python
if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
else
    echo "warning: nvidia-smi not found; is the NVIDIA driver installed?" >&2
fi

make --quiet .venv/.installed
if ! "$PY" -c "import tensorrt, cuda.core, cuda.pathfinder; cuda.pathfinder.load_nvidia_dynamic_lib('nvrtc')" 2>/dev/null; then
    "$PY" -m pip install --quiet -e '.[gpu]' 'nvidia-cuda-nvrtc>=13,<14'
fi

AVATAR_REQUIRE_GPU=1 exec "$PY" -m pytest -m gpu -q "$@"
