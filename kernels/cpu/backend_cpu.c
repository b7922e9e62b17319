// The CPU backend table: host memory, fp32 activations (act = float, so casts are copies), OpenMP threads
// for the row loops and the GEMM tiles, single-threaded OpenBLAS (its OpenMP build) inside them.
#include "cpu.h"
#include "util.h"

#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

// 64-byte alignment: one cache line, and whole AVX-512 vectors for OpenBLAS and the compiler.
static void *cpu_alloc(lcc_backend *be, size_t bytes) {
  size_t padded = (bytes + 63) / 64 * 64;
  void *p = aligned_alloc(64, padded ? padded : 64);
  LCC_CHECK(p, "out of memory allocating %zu bytes", bytes);
  memset(p, 0, padded);
  return p;
}

static void cpu_free(lcc_backend *be, void *p) { free(p); }

static void cpu_memcpy(lcc_backend *be, void *dst, const void *src, size_t bytes) {
  if (bytes) memcpy(dst, src, bytes);
}

static void cpu_zero(lcc_backend *be, void *p, size_t bytes) {
  if (bytes) memset(p, 0, bytes);
}

static void cpu_sync(lcc_backend *be) {}

// The whole pages inside the range go back to the kernel (anonymous private memory reads as zero when next
// touched); the partial pages at either end are zeroed in place.
static void cpu_release(lcc_backend *be, void *p, size_t bytes) {
  const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), a = (uintptr_t)p, b = a + bytes;
  const uintptr_t a_up = (a + page - 1) / page * page, b_down = b / page * page;
  if (a_up >= b_down) {
    cpu_zero(be, p, bytes);
    return;
  }
  cpu_zero(be, p, a_up - a);
  cpu_zero(be, (void *)b_down, b - b_down);
  LCC_CHECK(madvise((void *)a_up, b_down - a_up, MADV_DONTNEED) == 0, "madvise(MADV_DONTNEED) failed");
}

static void cpu_to_act(lcc_backend *be, void *out, const float *inp, size_t n) {
  cpu_memcpy(be, out, inp, n * sizeof(float));
}

static void cpu_from_act(lcc_backend *be, float *out, const void *inp, size_t n) {
  cpu_memcpy(be, out, inp, n * sizeof(float));
}

static void cpu_destroy(lcc_backend *be) { free(be); }

lcc_backend *lcc_cpu_backend(int n_threads) {
  if (n_threads > 0) omp_set_num_threads(n_threads);   // OpenBLAS never threads on its own here (cpu_gemm)
  lcc_backend *be = lcc_calloc(1, sizeof *be);
  be->name = "cpu";
  be->act_bytes = sizeof(float);
  be->destroy = cpu_destroy;
  be->alloc = cpu_alloc;
  be->free = cpu_free;
  be->upload = cpu_memcpy;
  be->download = cpu_memcpy;
  be->zero = cpu_zero;
  be->copy = cpu_memcpy;
  be->sync = cpu_sync;
  be->release = cpu_release;
  be->copy_rows = cpu_copy_rows;
  be->attention_cached = cpu_attention_cached;
  be->to_act = cpu_to_act;
  be->from_act = cpu_from_act;
  be->linear_fwd = cpu_linear_fwd;
  be->linear_bwd = cpu_linear_bwd;
  be->rmsnorm_fwd = cpu_rmsnorm_fwd;
  be->rmsnorm_bwd = cpu_rmsnorm_bwd;
  be->layernorm_fwd = cpu_layernorm_fwd;
  be->layernorm_bwd = cpu_layernorm_bwd;
  be->add = cpu_add;
  be->swiglu_fwd = cpu_swiglu_fwd;
  be->swiglu_bwd = cpu_swiglu_bwd;
  be->quick_gelu_fwd = cpu_quick_gelu_fwd;
  be->quick_gelu_bwd = cpu_quick_gelu_bwd;
  be->gelu_fwd = cpu_gelu_fwd;
  be->gelu_bwd = cpu_gelu_bwd;
  be->rope_fwd = cpu_rope_fwd;
  be->rope_bwd = cpu_rope_bwd;
  be->attention_fwd = cpu_attention_fwd;
  be->attention_bwd = cpu_attention_bwd;
  be->embedding_fwd = cpu_embedding_fwd;
  be->embedding_bwd = cpu_embedding_bwd;
  be->scatter_rows_fwd = cpu_scatter_rows_fwd;
  be->scatter_rows_bwd = cpu_scatter_rows_bwd;
  be->lm_head_ce = cpu_lm_head_ce;
  be->adamw = cpu_adamw;
  be->sum_squares = cpu_sum_squares;
  be->scale = cpu_scale;
  be->add_f32 = cpu_add_f32;
  return be;
}
