#include <stdlib.h>
#include <string.h>

#include "backend_open.h"
#include "util.h"

#ifdef LCC_HAVE_CUDA
#include "cuda/backend_cuda.h"
#include "cuda/device.h"
#endif

// This process's rank on its node, from the launcher's environment (the device it uses, before MPI starts).
static int local_rank(void) {
  const char *vars[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID", "PMI_LOCAL_RANK"};
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
    if (getenv(vars[i])) return atoi(getenv(vars[i]));
  return 0;
}

lcc_backend *lcc_open_backend(const char *name, int threads) {
  if (!strcmp(name, "cpu")) return lcc_cpu_backend(threads);
  if (!strcmp(name, "cpu-bf16")) return lcc_cpu_bf16_backend(threads);
  if (strcmp(name, "cuda")) {
    lcc_error("backend must be cpu, cpu-bf16 or cuda, got '%s'", name);
    return NULL;
  }
#ifdef LCC_HAVE_CUDA
  char why[256] = "";
  const int n = lcc_cuda_device_count(why, sizeof why);
  if (n == 0) {
    lcc_error("backend cuda: %s", why);
    return NULL;
  }
  return lcc_cuda_backend(local_rank() % n);
#else
  lcc_error("backend cuda: this build has no CUDA backend (configure with -DLCC_WITH_CUDA=ON)");
  return NULL;
#endif
}
