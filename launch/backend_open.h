// The compute backend a program asks for by name (its --backend key).
#ifndef LCC_BACKEND_OPEN_H
#define LCC_BACKEND_OPEN_H

#include "backend.h"

// "cpu" (fp32, threads: OpenMP threads, 0 = its default), "cpu-bf16" (the same ops on bf16 act tensors) or
// "cuda" (bf16 on the GPU of this process's node-local rank, read from the launcher's environment: Open MPI,
// Slurm, MPICH, PMI; 0 without one). Returns NULL with lcc_error() for an unknown name, a build without CUDA,
// or a machine without a GPU.
lcc_backend *lcc_open_backend(const char *name, int threads);

#endif
