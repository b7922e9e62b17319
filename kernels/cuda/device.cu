// CUDA device discovery. Built on every machine (nvcc needs no GPU); on a machine without a GPU or driver
// it reports zero devices instead of failing.
#include <cuda_runtime.h>
#include <stdio.h>

#include "device.h"

int lcc_cuda_device_count(char *why, size_t why_len) {
  int n = 0;
  cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    if (why) snprintf(why, why_len, "no usable CUDA device: %s", cudaGetErrorString(err));
    return 0;
  }
  if (n == 0 && why) snprintf(why, why_len, "no CUDA device found");
  return n;
}
