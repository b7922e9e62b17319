#!/usr/bin/env bash
# One command for a GPU machine without MPI, HDF5 or FFmpeg (the lent device's image): builds the CUDA core
# (single rank), runs the GPU tests (every CUDA op against its CPU twin, attention both ways, NCCL on one
# rank, the whole model and a short training run against the CPU), then the training benchmark against HF
# transformers. Logs go to $OUT (the device tool's output folder) or runs/gpu.
#   launch/gpu_check.sh [benchmark steps, default 10; 0 skips the benchmark]
# OpenBLAS: the system's, else (or with LCC_DEBS=1) the Debian packages in .gpu-debs (launch/gpu_prepare.sh)
# unpacked into a private prefix. cuDNN and NCCL: next to the CUDA toolkit, else the nvidia-* Python packages beside PyTorch.
set -uo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-10}
OUT=${OUT:-runs/gpu}
BUILD=${BUILD:-build-gpu}
mkdir -p "$OUT"
start=$(date +%s)
stamp() { echo "== [$(( $(date +%s) - start )) s] $*"; }

stamp "machine" | tee "$OUT/machine.txt"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; nvcc --version | tail -1
  nproc; cmake --version | head -1; } 2>&1 | tee -a "$OUT/machine.txt"

flags=(-DCMAKE_BUILD_TYPE=Release -DLCC_WITH_MPI=OFF -DLCC_WITH_DATA=OFF -DCMAKE_CUDA_ARCHITECTURES=90)
command -v ninja >/dev/null && flags+=(-G Ninja)
if [ -n "${LCC_DEBS:-}" ] || [ ! -e /usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so ]; then
  ls .gpu-debs/*.deb >/dev/null 2>&1 || { echo "no OpenBLAS here and no .gpu-debs: run launch/gpu_prepare.sh and carry .gpu-debs"; exit 1; }
  PREFIX=/tmp/lcc-debs
  for f in .gpu-debs/*.deb; do dpkg -x "$f" "$PREFIX"; done
  LIB=$PREFIX/usr/lib/x86_64-linux-gnu
  flags+=(-DOPENBLAS_LIBRARY=$LIB/openblas-openmp/libopenblas.so
          -DOPENBLAS_INCLUDE_DIR=$PREFIX/usr/include/x86_64-linux-gnu/openblas-openmp)
  export LD_LIBRARY_PATH=$LIB:$LIB/openblas-openmp${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi
# cuDNN and NCCL from the Python wheels when the toolkit has none (CMake reads CUDNN_PATH and NCCL_PATH)
site=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' 2>/dev/null || true)
for lib in cudnn nccl; do
  [ -n "$site" ] && [ -d "$site/nvidia" ] || break
  header=$(find "$site/nvidia" -name "$lib.h" -path "*/include/*" 2>/dev/null | head -1)
  [ -n "$header" ] || continue
  dir=$(dirname "$(dirname "$header")")
  if [ $lib = cudnn ]; then export CUDNN_PATH=$dir; else export NCCL_PATH=$dir; fi
  export LD_LIBRARY_PATH=$dir/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
done
# the wheels ship only versioned libraries (libcudnn.so.9, libnccl.so.2); CMake finds those names directly

stamp "configure and build ($BUILD)"
cmake -S . -B "$BUILD" "${flags[@]}" > "$OUT/configure.log" 2>&1 || { tail -30 "$OUT/configure.log"; exit 1; }
grep -E "cuDNN|NCCL|OpenBLAS" "$OUT/configure.log"
cmake --build "$BUILD" -j "$(nproc)" > "$OUT/build.log" 2>&1 || { grep -E "error|Error" "$OUT/build.log" | head -30; exit 1; }
ldd "$BUILD/bin/livecc-train" | grep -E "cudnn|nccl|openblas|cublas|not found" | tee -a "$OUT/machine.txt"

stamp "GPU tests (ctest -L gpu)"
ctest --test-dir "$BUILD" -L gpu --output-on-failure --timeout 900 > "$OUT/gpu-tests.log" 2>&1
tests_rc=$?
grep -E "Test +#|tests passed|tests failed" "$OUT/gpu-tests.log"

if [ "$STEPS" -gt 0 ]; then
  stamp "training benchmark: livecc.c vs HF transformers, Qwen2-VL-2B shape, 8K and 24K tokens"
  BUILD=$BUILD bench/gpu_train_bench.sh "$STEPS" 2>&1 | tee "$OUT/bench.log"
fi
stamp "done (GPU tests exit code $tests_rc; logs in $OUT)"
exit $tests_rc
