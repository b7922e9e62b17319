#!/usr/bin/env bash
# The main job on the CPU backend: installs what is missing, builds, and trains the tiny model.
#   launch/demo.sh [--key=value ...]   (flags are passed to livecc-train)
set -euo pipefail
cd "$(dirname "$0")/.."
launch/setup.sh
CUDA_FLAG=ON
command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ] || CUDA_FLAG=OFF
cmake -S . -B build -DLCC_WITH_CUDA=$CUDA_FLAG >/dev/null
cmake --build build -j "$(nproc)" --target livecc-train
exec build/bin/livecc-train --config configs/run/demo.conf "$@"
