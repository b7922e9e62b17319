#!/usr/bin/env bash
# Installs the Debian 12 packages livecc.c needs when any is missing (as root), and checks the CUDA toolkit.
# Safe to run again: with everything present it only checks (about a second).
set -euo pipefail

PACKAGES=(
  cmake make gcc g++ pkg-config
  libopenblas-openmp-dev            # BLAS, OpenMP build: single-threaded inside our own parallel regions
  openmpi-bin libopenmpi-dev        # MPI ranks
  libhdf5-dev hdf5-tools            # dataset shards
  libavformat-dev libavcodec-dev libswscale-dev libavutil-dev ffmpeg   # video decoding
  slurm-wlm munge                   # Slurm launch and its tests
  gnuplot-nox                       # loss plots
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${#missing[@]} missing packages: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: error: not root; run: sudo apt-get install --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# CUDA: the build compiles the CUDA backend when nvcc is present (no GPU needed to compile).
NVCC=$(command -v nvcc || true)
[ -z "$NVCC" ] && [ -x /usr/local/cuda/bin/nvcc ] && NVCC=/usr/local/cuda/bin/nvcc
if [ -n "$NVCC" ]; then
  echo "setup: CUDA toolkit: $("$NVCC" --version | grep -o 'release [0-9.]*')"
else
  echo "setup: no CUDA toolkit found: configure with -DLCC_WITH_CUDA=OFF (the CPU backend needs none)"
fi
echo "setup: ok"
