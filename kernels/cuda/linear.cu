// GEMMs on cuBLASLt (bf16 inputs, fp32 accumulation: CUBLAS_COMPUTE_32F) and the linear layers on them.
//
// Row-major through column-major: cuBLASLt is column-major, and a row-major [r, c] matrix is the same memory
// as a column-major [c, r] one. So the row-major product D[M,N] = op(A) op(B) is computed as the
// column-major D^T[N,M] = op(B)^T op(A)^T: cuBLASLt's "A" is our B, its "B" is our A, m = N, n = M, and
// each operand keeps its own transpose flag.
//
// Plans (operation descriptor, layouts, the heuristic's algorithm) are cached per shape, transposes, output
// type, bias and pointer alignment, in a small table with round-robin replacement (shapes that change every
// call, like the LM head's last chunk, replace old entries instead of growing the table). One algorithm per
// key: the same shapes always run the same kernels, so results are bit-identical run to run.
#include "cuda_common.h"

#include <string.h>

#define LT_WORKSPACE_BYTES ((size_t)32 << 20)   // cuBLASLt's split-K / stream-K workspace (32 MiB, Hopper's advice)
#define GEMM_PLANS 128

enum { K_TA, K_TB, K_M, K_N, K_K, K_LDA, K_LDB, K_LDD, K_DF32, K_BIAS, K_AL_A, K_AL_B, K_AL_D, KEY_LEN };

typedef struct {
  int used;
  int key[KEY_LEN];
  cublasLtMatmulDesc_t op;
  cublasLtMatrixLayout_t lt_a, lt_b, lt_d;   // cuBLASLt's A (our B), B (our A), C = D
  cublasLtMatmulAlgo_t algo;
} gemm_plan;

struct cuda_gemm_cache {
  void *workspace;   // [LT_WORKSPACE_BYTES]
  gemm_plan plans[GEMM_PLANS];
  int next;          // the slot the next new plan takes
};

void cuda_gemm_init(lcc_backend *be) {
  cuda_impl *impl = cuda_of(be);
  impl->gemm = (struct cuda_gemm_cache *)lcc_calloc(1, sizeof *impl->gemm);
  CUDA_CHECK(cudaMalloc(&impl->gemm->workspace, LT_WORKSPACE_BYTES));
}

static void plan_release(gemm_plan *p) {
  if (!p->used) return;
  CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(p->lt_a));
  CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(p->lt_b));
  CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(p->lt_d));
  CUBLAS_CHECK(cublasLtMatmulDescDestroy(p->op));
  p->used = 0;
}

void cuda_gemm_destroy(lcc_backend *be) {
  struct cuda_gemm_cache *g = cuda_of(be)->gemm;
  if (!g) return;
  for (int i = 0; i < GEMM_PLANS; i++) plan_release(&g->plans[i]);
  CUDA_CHECK(cudaFree(g->workspace));
  free(g);
  cuda_of(be)->gemm = NULL;
}

// Largest power of two dividing the address, capped at 16 (what Hopper's TMA needs; cuBLASLt assumes 256
// unless told): keeps the plan keys few when the packed weights sit at varying offsets.
static int alignment(const void *p) {
  uintptr_t a = (uintptr_t)p;
  int al = 16;
  while (al > 1 && a % (uintptr_t)al) al >>= 1;
  return al;
}

static void set_desc(cublasLtMatmulDesc_t op, cublasLtMatmulDescAttributes_t attr, const void *v, size_t bytes) {
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op, attr, v, bytes));
}

static void set_pref(cublasLtMatmulPreference_t pref, cublasLtMatmulPreferenceAttributes_t attr, uint32_t v) {
  CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, attr, &v, sizeof v));
}

// Builds the plan for key (see the enum); bias: this call's (16-byte aligned) bias vector or NULL.
static void plan_build(lcc_backend *be, gemm_plan *p, const int *key, const void *bias) {
  cuda_impl *impl = cuda_of(be);
  const int M = key[K_M], N = key[K_N], K = key[K_K];
  cublasOperation_t op_a = key[K_TB] ? CUBLAS_OP_T : CUBLAS_OP_N;   // cuBLASLt's A is our B
  cublasOperation_t op_b = key[K_TA] ? CUBLAS_OP_T : CUBLAS_OP_N;   // cuBLASLt's B is our A
  CUBLAS_CHECK(cublasLtMatmulDescCreate(&p->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  set_desc(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &op_a, sizeof op_a);
  set_desc(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &op_b, sizeof op_b);
  cublasLtEpilogue_t epi = key[K_BIAS] ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
  set_desc(p->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi);
  if (key[K_BIAS]) {
    int32_t bias_type = CUDA_R_16BF;
    set_desc(p->op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type, sizeof bias_type);
    // The heuristic reads the bias pointer's alignment from its value (it never dereferences it): show it an
    // address aligned to exactly 16 bytes, all that later calls with this plan guarantee.
    const void *bias16 = (const void *)((uintptr_t)bias | 16);
    set_desc(p->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias16, sizeof bias16);
  }
  // Column-major layouts (rows, cols, ld) of the stored matrices.
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->lt_a, CUDA_R_16BF, op_a == CUBLAS_OP_N ? N : K,
                                          op_a == CUBLAS_OP_N ? K : N, key[K_LDB]));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->lt_b, CUDA_R_16BF, op_b == CUBLAS_OP_N ? K : M,
                                          op_b == CUBLAS_OP_N ? M : K, key[K_LDA]));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->lt_d, key[K_DF32] ? CUDA_R_32F : CUDA_R_16BF, N, M, key[K_LDD]));

  cublasLtMatmulPreference_t pref;
  CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  uint64_t ws = LT_WORKSPACE_BYTES;
  CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
  set_pref(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, (uint32_t)key[K_AL_B]);
  set_pref(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, (uint32_t)key[K_AL_A]);
  set_pref(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, (uint32_t)key[K_AL_D]);
  set_pref(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, (uint32_t)key[K_AL_D]);
  // A bf16 output never sums split-K parts in bf16 (the in-place and output-type schemes would).
  if (!key[K_DF32])
    set_pref(pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK,
             CUBLASLT_REDUCTION_SCHEME_NONE | CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE);
  cublasLtMatmulHeuristicResult_t result;
  int n_results = 0;
  cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(impl->lt, p->op, p->lt_a, p->lt_b, p->lt_d, p->lt_d, pref, 1,
                                                     &result, &n_results);
  CUBLAS_CHECK(cublasLtMatmulPreferenceDestroy(pref));
  if (st != CUBLAS_STATUS_SUCCESS || n_results == 0) {
    lcc_fatal("cuBLASLt has no algorithm for the row-major GEMM M=%d N=%d K=%d trans_a=%d trans_b=%d lda=%d ldb=%d "
              "ldd=%d out=%s bias=%d alignments A=%d B=%d D=%d: %s",
              M, N, K, key[K_TA], key[K_TB], key[K_LDA], key[K_LDB], key[K_LDD], key[K_DF32] ? "fp32" : "bf16",
              key[K_BIAS], key[K_AL_A], key[K_AL_B], key[K_AL_D], cublasLtGetStatusString(st));
  }
  p->algo = result.algo;
  memcpy(p->key, key, sizeof p->key);
  p->used = 1;
}

static gemm_plan *plan_get(lcc_backend *be, const int *key, const void *bias) {
  struct cuda_gemm_cache *g = cuda_of(be)->gemm;
  for (int i = 0; i < GEMM_PLANS; i++)
    if (g->plans[i].used && memcmp(g->plans[i].key, key, sizeof g->plans[i].key) == 0) return &g->plans[i];
  gemm_plan *p = &g->plans[g->next];
  g->next = (g->next + 1) % GEMM_PLANS;
  plan_release(p);
  plan_build(be, p, key, bias);
  return p;
}

void cuda_gemm(lcc_backend *be, int trans_a, int trans_b, int M, int N, int K, const bf16 *A, int lda,
               const bf16 *B, int ldb, const bf16 *bias, float beta, void *D, int d_f32, int ldd) {
  if (M == 0 || N == 0) return;
  LCC_CHECK(M > 0 && N > 0 && K > 0, "cuda_gemm: bad shape M=%d N=%d K=%d", M, N, K);
  LCC_CHECK(lda >= (trans_a ? M : K) && ldb >= (trans_b ? K : N) && ldd >= N,
            "cuda_gemm: leading dimensions lda=%d ldb=%d ldd=%d too small for M=%d N=%d K=%d", lda, ldb, ldd, M, N, K);
  cuda_impl *impl = cuda_of(be);
  if (bias && !cuda_aligned(bias, 16)) {   // the bias epilogue needs a 16-byte aligned vector (plans assume it)
    bf16 *copy = (bf16 *)cuda_scratch(be, SCRATCH_BIAS, (size_t)N * sizeof(bf16));
    CUDA_CHECK(cudaMemcpyAsync(copy, bias, (size_t)N * sizeof(bf16), cudaMemcpyDeviceToDevice, impl->stream));
    bias = copy;
  }
  int key[KEY_LEN] = {0};
  key[K_TA] = trans_a, key[K_TB] = trans_b, key[K_M] = M, key[K_N] = N, key[K_K] = K;
  key[K_LDA] = lda, key[K_LDB] = ldb, key[K_LDD] = ldd, key[K_DF32] = d_f32, key[K_BIAS] = bias != NULL;
  key[K_AL_A] = alignment(A), key[K_AL_B] = alignment(B), key[K_AL_D] = alignment(D);
  gemm_plan *p = plan_get(be, key, bias);
  if (bias) set_desc(p->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias);
  const float alpha = 1.0f;
  CUBLAS_CHECK(cublasLtMatmul(impl->lt, p->op, &alpha, B, p->lt_a, A, p->lt_b, &beta, D, p->lt_d, D, p->lt_d, &p->algo,
                              impl->gemm->workspace, LT_WORKSPACE_BYTES, impl->stream));
}

void cuda_linear_fwd(lcc_backend *be, void *out, const void *inp, const void *w, const void *bias, int N, int C,
                     int OC) {
  // out [N, OC] = inp [N, C] @ w [OC, C]^T + bias [OC]
  cuda_gemm(be, 0, 1, N, OC, C, (const bf16 *)inp, C, (const bf16 *)w, C, (const bf16 *)bias, 0.0f, out, 0, OC);
}

void cuda_linear_bwd(lcc_backend *be, void *dinp, float *dw, float *dbias, const void *dout, const void *inp,
                     const void *w, int N, int C, int OC) {
  // dout [N, OC], inp [N, C], w [OC, C]
  if (N == 0) return;
  if (dinp)   // dinp [N, C] = dout @ w (overwrite, bf16)
    cuda_gemm(be, 0, 0, N, C, OC, (const bf16 *)dout, OC, (const bf16 *)w, C, NULL, 0.0f, dinp, 0, C);
  if (dw)     // dw [OC, C] += dout^T @ inp (fp32, beta = 1)
    cuda_gemm(be, 1, 0, OC, C, N, (const bf16 *)dout, OC, (const bf16 *)inp, C, NULL, 1.0f, dw, 1, C);
  if (dbias)  // dbias [OC] += column sums of dout
    cuda_colsum(be, COLSUM_PLAIN, dbias, NULL, (const bf16 *)dout, NULL, NULL, NULL, N, OC);
}
