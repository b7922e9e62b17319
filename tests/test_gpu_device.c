// GPU presence probe: links the CUDA sources into a test binary. Skips (exit 77) where no GPU exists.
#include <stdio.h>

#include "cuda/device.h"

int main(void) {
  char why[256] = "";
  int n = lcc_cuda_device_count(why, sizeof why);
  if (n == 0) {
    printf("SKIP: %s (GPU tests run only on a machine with an NVIDIA GPU)\n", why);
    return 77;
  }
  printf("ok: %d CUDA device(s)\n", n);
  return 0;
}
