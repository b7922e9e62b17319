// The CUDA backend table: device memory, copies, the one compute stream, scratch memory, and the ops of the
// other files in kernels/cuda.
//
// Stream: the backend creates one non-blocking stream and queues everything on it, in call order (kernels,
// cuBLASLt, memsets, device-to-device copies). Host-facing calls synchronize it: download (the host reads
// the data), upload (the host buffer may be reused as soon as the call returns), alloc and free.
#include "cuda_common.h"

#include <stdlib.h>
#include <string.h>

#include "attention.h"
#include "backend_cuda.h"
#include "device.h"

void *cuda_scratch(lcc_backend *be, int slot, size_t bytes) {
  cuda_impl *impl = cuda_of(be);
  if (bytes <= impl->scratch_bytes[slot] && impl->scratch[slot]) return impl->scratch[slot];
  if (impl->scratch[slot]) {
    CUDA_CHECK(cudaStreamSynchronize(impl->stream));   // queued work may still use the old buffer
    CUDA_CHECK(cudaFree(impl->scratch[slot]));
  }
  size_t grown = bytes < 256 ? 256 : bytes;
  cudaError_t err = cudaMalloc(&impl->scratch[slot], grown);
  if (err != cudaSuccess) {
    lcc_fatal("out of GPU memory allocating %zu bytes of scratch (slot %d): %s", grown, slot, cudaGetErrorString(err));
  }
  impl->scratch_bytes[slot] = grown;
  return impl->scratch[slot];
}

// ---- memory ----

static void *cuda_alloc(lcc_backend *be, size_t bytes) {
  cuda_impl *impl = cuda_of(be);
  void *p = NULL;
  size_t size = bytes ? bytes : 1;
  cudaError_t err = cudaMalloc(&p, size);
  if (err != cudaSuccess) {
    size_t free_b = 0, total_b = 0;
    cudaGetLastError();   // clear the error before the query
    cudaMemGetInfo(&free_b, &total_b);
    lcc_fatal("out of GPU memory allocating %zu bytes (%zu of %zu bytes free): %s", bytes, free_b, total_b,
              cudaGetErrorString(err));
  }
  CUDA_CHECK(cudaMemsetAsync(p, 0, size, impl->stream));
  CUDA_CHECK(cudaStreamSynchronize(impl->stream));   // zero before any other stream can see it
  return p;
}

static void cuda_free(lcc_backend *be, void *p) {
  if (!p) return;
  CUDA_CHECK(cudaStreamSynchronize(cuda_of(be)->stream));   // queued work may still use it
  CUDA_CHECK(cudaFree(p));
}

static void cuda_upload(lcc_backend *be, void *dst, const void *host_src, size_t bytes) {
  if (!bytes) return;
  cudaStream_t s = cuda_of(be)->stream;
  cuda_of(be)->uploads++;
  CUDA_CHECK(cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, s));
  CUDA_CHECK(cudaStreamSynchronize(s));
}

static void cuda_download(lcc_backend *be, void *host_dst, const void *src, size_t bytes) {
  if (!bytes) return;
  cudaStream_t s = cuda_of(be)->stream;
  CUDA_CHECK(cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, s));
  CUDA_CHECK(cudaStreamSynchronize(s));
}

static void cuda_zero(lcc_backend *be, void *p, size_t bytes) {
  if (bytes) CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, cuda_of(be)->stream));
}

static void cuda_copy(lcc_backend *be, void *dst, const void *src, size_t bytes) {
  if (bytes) CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, cuda_of(be)->stream));
}

static void cuda_sync(lcc_backend *be) { CUDA_CHECK(cudaStreamSynchronize(cuda_of(be)->stream)); }

// Zeroes the range only: the memory stays allocated. Giving whole pages back (the CPU backend's madvise)
// needs the virtual memory management API (cuMemCreate/cuMemMap per bucket): future work.
static void cuda_release(lcc_backend *be, void *p, size_t bytes) { cuda_zero(be, p, bytes); }

static void cuda_destroy(lcc_backend *be) {
  cuda_impl *impl = cuda_of(be);
  CUDA_CHECK(cudaStreamSynchronize(impl->stream));
  cuda_gemm_destroy(be);
  for (int i = 0; i < SCRATCH_COUNT; i++)
    if (impl->scratch[i]) CUDA_CHECK(cudaFree(impl->scratch[i]));
  CUBLAS_CHECK(cublasLtDestroy(impl->lt));
  CUDA_CHECK(cudaStreamDestroy(impl->stream));
  free(impl);
  free(be);
}

extern "C" cudaStream_t lcc_cuda_stream(lcc_backend *be) { return cuda_of(be)->stream; }

extern "C" lcc_backend *lcc_cuda_backend(int device) {
  char why[256] = "";
  int n = lcc_cuda_device_count(why, sizeof why);
  LCC_CHECK(n > 0, "CUDA backend: %s", why);
  LCC_CHECK(device >= 0 && device < n, "CUDA backend: device %d does not exist (%d device(s))", device, n);
  CUDA_CHECK(cudaSetDevice(device));

  cuda_impl *impl = (cuda_impl *)lcc_calloc(1, sizeof *impl);
  impl->device = device;
  CUDA_CHECK(cudaStreamCreateWithFlags(&impl->stream, cudaStreamNonBlocking));
  CUBLAS_CHECK(cublasLtCreate(&impl->lt));

  lcc_backend *be = (lcc_backend *)lcc_calloc(1, sizeof *be);
  be->name = "cuda";
  be->act_bytes = sizeof(bf16);
  be->impl = impl;
  cuda_gemm_init(be);

  be->destroy = cuda_destroy;
  be->alloc = cuda_alloc;
  be->free = cuda_free;
  be->upload = cuda_upload;
  be->download = cuda_download;
  be->zero = cuda_zero;
  be->copy = cuda_copy;
  be->sync = cuda_sync;
  be->release = cuda_release;
  be->to_act = cuda_to_act;
  be->from_act = cuda_from_act;
  be->linear_fwd = cuda_linear_fwd;
  be->linear_bwd = cuda_linear_bwd;
  be->rmsnorm_fwd = cuda_rmsnorm_fwd;
  be->rmsnorm_bwd = cuda_rmsnorm_bwd;
  be->layernorm_fwd = cuda_layernorm_fwd;
  be->layernorm_bwd = cuda_layernorm_bwd;
  be->add = cuda_add;
  be->swiglu_fwd = cuda_swiglu_fwd;
  be->swiglu_bwd = cuda_swiglu_bwd;
  be->quick_gelu_fwd = cuda_quick_gelu_fwd;
  be->quick_gelu_bwd = cuda_quick_gelu_bwd;
  be->gelu_fwd = cuda_gelu_fwd;
  be->gelu_bwd = cuda_gelu_bwd;
  be->rope_fwd = cuda_rope_fwd;
  be->rope_bwd = cuda_rope_bwd;
  be->copy_rows = cuda_copy_rows;
  be->embedding_fwd = cuda_embedding_fwd;
  be->embedding_bwd = cuda_embedding_bwd;
  be->scatter_rows_fwd = cuda_scatter_rows_fwd;
  be->scatter_rows_bwd = cuda_scatter_rows_bwd;
  be->lm_head_ce = cuda_lm_head_ce;
  be->adamw = cuda_adamw;
  be->sum_squares = cuda_sum_squares;
  be->scale = cuda_scale;
  be->add_f32 = cuda_add_f32;
  lcc_cuda_attention_install(be);   // attention_fwd, attention_bwd, attention_cached
  return be;
}
