#!/usr/bin/env bash
# Run on a Debian 12 development machine before a session on a GPU machine whose image lacks OpenBLAS (the
# lent device's): downloads the OpenBLAS runtime and headers (the CPU twin every GPU test compares against)
# into .gpu-debs/ (git-ignored), to be carried along (device run: carry [".gpu-debs"]) and unpacked into a
# private prefix by launch/gpu_check.sh. About 12 MB.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .gpu-debs
cd .gpu-debs
# apt's sandbox user cannot write into a root-owned folder: download as root, quietly
apt-get download -o APT::Sandbox::User=root libopenblas0-openmp libopenblas-openmp-dev libgfortran5
ls -l *.deb
