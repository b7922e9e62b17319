// The CUDA backend against the CPU backend, op by op, on the same random inputs (except attention, which
// has its own tests). Every input is rounded to bf16 on the host first, so both backends see identical
// values: the CPU's fp32 results are then the reference, and the differences come only from the GPU's bf16
// outputs and its summation order. Tolerances, per check:
//   - copies, gathers, scatters, casts, the residual add, scale and add_f32: exact;
//   - elementwise activations and RoPE: per element |gpu - cpu| <= 4e-3 |cpu| + 1e-5 (one bf16 rounding,
//     at most 2^-8 relative, plus fp32 differences);
//   - bf16 outputs of GEMMs and norms: relative L2 <= 1e-2 (2e-2 for the LM head's bf16 dlogits products);
//   - fp32 outputs: GEMM weight gradients 1e-3, norm statistics 1e-5 per element, column sums 1e-4,
//     embedding gradients 1e-5 (relative L2), losses 1e-3 absolute, AdamW 1e-6 per element (it matches the
//     CPU's IEEE operation order), sum of squares 1e-12 relative;
//   - determinism: every reduction run twice from the same state gives bit-identical results.
// Offset variants start buffers 1 element past an aligned address (and use odd sizes) to run the scalar
// paths next to the vectorized ones. One line per check; exit 1 on any failure, 77 without a GPU.
#include "backend.h"
#include "cuda/backend_cuda.h"
#include "cuda/device.h"
#include "half.h"
#include "testlib.h"
#include "util.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static lcc_backend *cpu, *gpu;

// ---------------------------------------------------------------------------------------------------------
// bf16 rounding, tracked buffers (random inputs: testlib)


// x rounded to the nearest bf16 (ties to even), as __float2bfloat16_rn.
static float bf16_round(float x) { return lcc_bf16_to_f32(lcc_f32_to_bf16(x)); }

#define MAX_TRACKED 4096
static void *host_bufs[MAX_TRACKED], *dev_bufs[MAX_TRACKED];
static int n_host, n_dev;

static void *hmalloc(size_t bytes) {
  LCC_CHECK(n_host < MAX_TRACKED, "test: too many host buffers");
  return host_bufs[n_host++] = lcc_malloc(bytes);
}

static void *dev_alloc(size_t bytes) {   // 64 spare bytes: room for an offset start
  LCC_CHECK(n_dev < MAX_TRACKED, "test: too many device buffers");
  return dev_bufs[n_dev++] = gpu->alloc(gpu, bytes + 64);
}

static void free_all(void) {
  for (int i = 0; i < n_host; i++) free(host_bufs[i]);
  for (int i = 0; i < n_dev; i++) gpu->free(gpu, dev_bufs[i]);
  n_host = n_dev = 0;
}

static float *randn_bf16(size_t n, float scale) {   // [n] ~ N(0, scale^2), exactly representable in bf16
  float *x = hmalloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++) x[i] = bf16_round(scale * test_rand_normal());
  return x;
}

static float *randn_f32(size_t n, float scale) {
  float *x = hmalloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++) x[i] = scale * test_rand_normal();
  return x;
}

static float *copy_of(const float *x, size_t n) { return memcpy(hmalloc(n * sizeof(float)), x, n * sizeof(float)); }

static float *diff_of(const float *a, const float *b, size_t n) {   // a - b
  float *d = hmalloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++) d[i] = a[i] - b[i];
  return d;
}

// GPU copies of host data; `off` elements past a 256-byte aligned start.
static void *dev_act(const float *h, size_t n, int off) {
  float *stage = dev_alloc(n * sizeof(float));
  gpu->upload(gpu, stage, h, n * sizeof(float));
  char *a = (char *)dev_alloc(n * 2) + (size_t)off * 2;
  gpu->to_act(gpu, a, stage, n);
  return a;
}

static float *dev_f32(const float *h, size_t n, int off) {
  float *d = (float *)dev_alloc(n * sizeof(float)) + off;
  gpu->upload(gpu, d, h, n * sizeof(float));
  return d;
}

static int32_t *dev_i32(const int32_t *h, size_t n) {
  int32_t *d = dev_alloc(n * sizeof(int32_t));
  gpu->upload(gpu, d, h, n * sizeof(int32_t));
  return d;
}

static float *host_act(const void *d, size_t n) {   // fp32 host copy of n act elements
  float *stage = dev_alloc(n * sizeof(float));
  gpu->from_act(gpu, stage, d, n);
  float *h = hmalloc(n * sizeof(float));
  gpu->download(gpu, h, stage, n * sizeof(float));
  return h;
}

static float *host_f32(const float *d, size_t n) {
  float *h = hmalloc(n * sizeof(float));
  gpu->download(gpu, h, d, n * sizeof(float));
  return h;
}

// ---------------------------------------------------------------------------------------------------------
// checks

// ||a - ref|| / ||ref||.
static void check_rel_l2(const char *name, const float *a, const float *ref, size_t n, double tol) {
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < n; i++) {
    num += ((double)a[i] - ref[i]) * ((double)a[i] - ref[i]);
    den += (double)ref[i] * ref[i];
  }
  check_tol(name, den > 0.0 ? sqrt(num / den) : sqrt(num), tol);
}

// Worst |a - ref| / (rel |ref| + abs) over the elements: passes at <= 1.
static void check_elems(const char *name, const float *a, const float *ref, size_t n, double rel, double abs_tol) {
  double worst = 0.0;
  for (size_t i = 0; i < n; i++) {
    double e = fabs((double)a[i] - ref[i]) / (rel * fabs(ref[i]) + abs_tol);
    if (!(e <= worst)) worst = e;   // keeps NaN
  }
  check_tol(name, worst, 1.0);
}

// Number of elements that differ.
static void check_exact(const char *name, const float *a, const float *ref, size_t n) {
  size_t bad = 0;
  for (size_t i = 0; i < n; i++) bad += !(a[i] == ref[i]);
  check_tol(name, (double)bad, 0.0);
}

static void check_same_bits(const char *name, const void *a, const void *b, size_t bytes) {
  check(memcmp(a, b, bytes) == 0, name);
}

static float *rounded(const float *x, size_t n) {   // the bf16 values of x
  float *r = hmalloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++) r[i] = bf16_round(x[i]);
  return r;
}

// ---------------------------------------------------------------------------------------------------------
// memory, casts, row copies

static void test_memory(void) {
  const size_t n = 1000;
  float *h = randn_f32(n, 1.0f);
  float *d = dev_alloc(n * sizeof(float));
  check_exact("alloc: zero-filled", host_f32(d, n), memset(hmalloc(n * sizeof(float)), 0, n * sizeof(float)), n);
  gpu->upload(gpu, d, h, n * sizeof(float));
  check_exact("upload/download: round trip", host_f32(d, n), h, n);
  float *e = dev_alloc(n * sizeof(float));
  gpu->copy(gpu, e, d, n * sizeof(float));
  check_exact("copy", host_f32(e, n), h, n);
  float *ref = copy_of(h, n);
  memset(ref + 100, 0, 300 * sizeof(float));
  gpu->zero(gpu, e + 100, 300 * sizeof(float));
  check_exact("zero: the range only", host_f32(e, n), ref, n);
  memset(ref + 500, 0, 333 * sizeof(float));
  gpu->release(gpu, e + 500, 333 * sizeof(float));
  check_exact("release: zeroes the range only", host_f32(e, n), ref, n);
  LCC_CHECK(lcc_cuda_stream(gpu) != NULL, "the backend's stream is the legacy default stream");
  free_all();
}

static void test_casts(void) {
  const size_t n = 1003;   // not a multiple of 8: a short last group
  float *x = randn_f32(n, 3.0f);
  x[0] = 1.00390625f;      // halfway between two bf16 values: ties to even (down)
  x[1] = 1.01171875f;      // halfway: ties to even (up)
  x[2] = -0.0f;
  x[3] = 1e-40f;           // fp32 subnormal
  x[4] = 3.4e38f;          // rounds past the largest bf16: +inf
  x[5] = 65504.0f;
  for (int off = 0; off <= 1; off++) {
    void *a = dev_act(x, n, off);
    char name[64];
    snprintf(name, sizeof name, "to_act/from_act: bf16 rounding (offset %d)", off);
    check_exact(name, host_act(a, n), rounded(x, n), n);
  }
  free_all();
}

static void test_copy_rows(void) {
  const int rows = 9, ld_src = 40, ld_dst = 24, cols = 17;
  float *src = randn_bf16((size_t)rows * ld_src, 1.0f), *dst0 = randn_bf16((size_t)rows * ld_dst, 1.0f);
  void *s = dev_act(src, (size_t)rows * ld_src, 0), *d = dev_act(dst0, (size_t)rows * ld_dst, 1);
  gpu->copy_rows(gpu, d, ld_dst, (char *)s + 3 * 2, ld_src, rows, cols);   // source columns 3 .. 19
  float *ref = copy_of(dst0, (size_t)rows * ld_dst);
  for (int r = 0; r < rows; r++) memcpy(ref + r * ld_dst, src + r * ld_src + 3, cols * sizeof(float));
  const size_t n = (size_t)rows * ld_dst;
  check_exact("copy_rows: strided block, rest untouched", host_act(d, n), ref, n);
  free_all();
}

// ---------------------------------------------------------------------------------------------------------
// linear

static void test_linear_case(int N, int C, int OC, int with_bias, int off, int check_determinism) {
  char name[96];
  float *x = randn_bf16((size_t)N * C, 1.0f), *w = randn_bf16((size_t)OC * C, 0.2f);
  float *b = with_bias ? randn_bf16(OC, 0.5f) : NULL;
  float *dout = randn_bf16((size_t)N * OC, 1.0f);
  float *dw0 = randn_f32((size_t)OC * C, 1.0f), *db0 = randn_f32(OC, 1.0f);
  // CPU reference
  float *out_c = hmalloc((size_t)N * OC * sizeof(float)), *dinp_c = hmalloc((size_t)N * C * sizeof(float));
  float *dw_c = copy_of(dw0, (size_t)OC * C), *db_c = copy_of(db0, OC);
  cpu->linear_fwd(cpu, out_c, x, w, b, N, C, OC);
  cpu->linear_bwd(cpu, dinp_c, dw_c, with_bias ? db_c : NULL, dout, x, w, N, C, OC);
  // GPU
  void *gx = dev_act(x, (size_t)N * C, off), *gw = dev_act(w, (size_t)OC * C, off);
  void *gb = with_bias ? dev_act(b, OC, off) : NULL, *gdout = dev_act(dout, (size_t)N * OC, off);
  void *gout = dev_act(dout, (size_t)N * OC, off), *gdinp = dev_act(x, (size_t)N * C, off);   // overwritten
  float *gdw = dev_f32(dw0, (size_t)OC * C, off), *gdb = dev_f32(db0, OC, off);
  gpu->linear_fwd(gpu, gout, gx, gw, gb, N, C, OC);
  gpu->linear_bwd(gpu, gdinp, gdw, with_bias ? gdb : NULL, gdout, gx, gw, N, C, OC);
  snprintf(name, sizeof name, "linear_fwd N=%d C=%d OC=%d bias=%d off=%d", N, C, OC, with_bias, off);
  check_rel_l2(name, host_act(gout, (size_t)N * OC), out_c, (size_t)N * OC, 1e-2);
  snprintf(name, sizeof name, "linear_bwd dinp N=%d C=%d OC=%d off=%d", N, C, OC, off);
  check_rel_l2(name, host_act(gdinp, (size_t)N * C), dinp_c, (size_t)N * C, 1e-2);
  float *gdw_h = host_f32(gdw, (size_t)OC * C);
  snprintf(name, sizeof name, "linear_bwd dw (+=) N=%d C=%d OC=%d off=%d", N, C, OC, off);
  check_rel_l2(name, diff_of(gdw_h, dw0, (size_t)OC * C), diff_of(dw_c, dw0, (size_t)OC * C), (size_t)OC * C, 1e-3);
  if (with_bias) {
    snprintf(name, sizeof name, "linear_bwd dbias (+=) N=%d OC=%d off=%d", N, OC, off);
    check_rel_l2(name, diff_of(host_f32(gdb, OC), db0, OC), diff_of(db_c, db0, OC), OC, 1e-4);
  }
  if (check_determinism) {   // the same accumulation again from the same start: bit-identical
    float *gdw2 = dev_f32(dw0, (size_t)OC * C, off), *gdb2 = dev_f32(db0, OC, off);
    gpu->linear_bwd(gpu, NULL, gdw2, gdb2, gdout, gx, gw, N, C, OC);
    snprintf(name, sizeof name, "determinism: linear_bwd dw N=%d C=%d OC=%d", N, C, OC);
    check_same_bits(name, host_f32(gdw2, (size_t)OC * C), gdw_h, (size_t)OC * C * sizeof(float));
    if (with_bias) {
      snprintf(name, sizeof name, "determinism: linear_bwd dbias N=%d OC=%d", N, OC);
      check_same_bits(name, host_f32(gdb2, OC), host_f32(gdb, OC), OC * sizeof(float));
    }
  }
  free_all();
}

static void test_linear(void) {
  test_linear_case(64, 128, 96, 1, 0, 1);
  test_linear_case(37, 72, 40, 1, 0, 0);
  test_linear_case(300, 256, 512, 0, 0, 1);    // dw over 300 rows (split-K territory)
  test_linear_case(1000, 96, 160, 1, 0, 1);    // bias rows over several column-sum chunks
}

// ---------------------------------------------------------------------------------------------------------
// norms

static void test_rmsnorm_case(int N, int C, int off) {
  char name[96];
  const size_t NC = (size_t)N * C;
  const float eps = 1e-6f;
  float *x = randn_bf16(NC, 1.0f), *w = randn_bf16(C, 1.0f), *dout = randn_bf16(NC, 1.0f);
  float *dinp0 = randn_bf16(NC, 0.5f), *dw0 = randn_f32(C, 1.0f);
  float *out_c = hmalloc(NC * sizeof(float)), *rstd_c = hmalloc(N * sizeof(float));
  float *dinp_c = copy_of(dinp0, NC), *dw_c = copy_of(dw0, C);
  cpu->rmsnorm_fwd(cpu, out_c, rstd_c, x, w, N, C, eps);
  cpu->rmsnorm_bwd(cpu, dinp_c, dw_c, dout, x, w, rstd_c, N, C);

  void *gx = dev_act(x, NC, off), *gw = dev_act(w, C, off), *gdout = dev_act(dout, NC, off);
  void *gout = dev_act(dout, NC, off), *gdinp = dev_act(dinp0, NC, off);
  float *grstd = dev_f32(rstd_c, N, 0), *grstd_c = dev_f32(rstd_c, N, 0), *gdw = dev_f32(dw0, C, off);
  gpu->rmsnorm_fwd(gpu, gout, grstd, gx, gw, N, C, eps);
  snprintf(name, sizeof name, "rmsnorm_fwd out N=%d C=%d off=%d", N, C, off);
  check_rel_l2(name, host_act(gout, NC), out_c, NC, 1e-2);
  snprintf(name, sizeof name, "rmsnorm_fwd rstd N=%d C=%d off=%d", N, C, off);
  check_elems(name, host_f32(grstd, N), rstd_c, N, 1e-5, 0.0);
  gpu->rmsnorm_bwd(gpu, gdinp, gdw, gdout, gx, gw, grstd_c, N, C);   // the CPU's rstd: identical inputs
  float *gdinp_h = host_act(gdinp, NC);
  snprintf(name, sizeof name, "rmsnorm_bwd dinp (+=) N=%d C=%d off=%d", N, C, off);
  check_rel_l2(name, gdinp_h, dinp_c, NC, 1e-2);
  snprintf(name, sizeof name, "rmsnorm_bwd dinp increment N=%d C=%d off=%d", N, C, off);
  check_rel_l2(name, diff_of(gdinp_h, dinp0, NC), diff_of(dinp_c, dinp0, NC), NC, 3e-2);
  float *gdw_h = host_f32(gdw, C);
  snprintf(name, sizeof name, "rmsnorm_bwd dw (+=) N=%d C=%d off=%d", N, C, off);
  check_rel_l2(name, diff_of(gdw_h, dw0, C), diff_of(dw_c, dw0, C), C, 1e-2);   // GPU: dout * bf16(x * rstd)
  // determinism, and the frozen-weight call (dw NULL) changes only dinp
  float *gdw2 = dev_f32(dw0, C, off);
  void *gdinp2 = dev_act(dinp0, NC, off), *gdinp3 = dev_act(dinp0, NC, off);
  gpu->rmsnorm_bwd(gpu, gdinp2, gdw2, gdout, gx, gw, grstd_c, N, C);
  gpu->rmsnorm_bwd(gpu, gdinp3, NULL, gdout, gx, gw, grstd_c, N, C);
  snprintf(name, sizeof name, "determinism: rmsnorm_bwd dw N=%d C=%d off=%d", N, C, off);
  check_same_bits(name, host_f32(gdw2, C), gdw_h, C * sizeof(float));
  snprintf(name, sizeof name, "rmsnorm_bwd dw=NULL: same dinp N=%d C=%d", N, C);
  check_exact(name, host_act(gdinp3, NC), gdinp_h, NC);
  free_all();
}

static void test_layernorm_case(int N, int C, int off) {
  char name[96];
  const size_t NC = (size_t)N * C;
  const float eps = 1e-6f;
  float *x = randn_bf16(NC, 1.0f), *w = randn_bf16(C, 1.0f), *b = randn_bf16(C, 1.0f);
  for (size_t i = 0; i < NC; i++) x[i] = bf16_round(x[i] + 2.0f);   // a mean away from zero
  float *dout = randn_bf16(NC, 1.0f), *dinp0 = randn_bf16(NC, 0.5f);
  float *dw0 = randn_f32(C, 1.0f), *db0 = randn_f32(C, 1.0f);
  float *out_c = hmalloc(NC * sizeof(float)), *mean_c = hmalloc(N * sizeof(float));
  float *rstd_c = hmalloc(N * sizeof(float)), *dinp_c = copy_of(dinp0, NC);
  float *dw_c = copy_of(dw0, C), *db_c = copy_of(db0, C);
  cpu->layernorm_fwd(cpu, out_c, mean_c, rstd_c, x, w, b, N, C, eps);
  cpu->layernorm_bwd(cpu, dinp_c, dw_c, db_c, dout, x, w, mean_c, rstd_c, N, C);

  void *gx = dev_act(x, NC, off), *gw = dev_act(w, C, off), *gb = dev_act(b, C, off);
  void *gdout = dev_act(dout, NC, off), *gout = dev_act(dout, NC, off);
  void *gdinp = dev_act(dinp0, NC, off);
  float *gmean = dev_f32(mean_c, N, 0), *grstd = dev_f32(rstd_c, N, 0);
  float *gmean_c = dev_f32(mean_c, N, 0), *grstd_c = dev_f32(rstd_c, N, 0);
  float *gdw = dev_f32(dw0, C, off), *gdb = dev_f32(db0, C, off);
  gpu->layernorm_fwd(gpu, gout, gmean, grstd, gx, gw, gb, N, C, eps);
  snprintf(name, sizeof name, "layernorm_fwd out N=%d C=%d off=%d", N, C, off);
  check_elems(name, host_act(gout, NC), out_c, NC, 5e-3, 1e-5);
  snprintf(name, sizeof name, "layernorm_fwd mean, rstd N=%d C=%d off=%d", N, C, off);
  check_elems(name, host_f32(gmean, N), mean_c, N, 1e-5, 1e-6);
  check_elems(name, host_f32(grstd, N), rstd_c, N, 1e-5, 0.0);
  gpu->layernorm_bwd(gpu, gdinp, gdw, gdb, gdout, gx, gw, gmean_c, grstd_c, N, C);
  float *gdinp_h = host_act(gdinp, NC), *gdw_h = host_f32(gdw, C), *gdb_h = host_f32(gdb, C);
  snprintf(name, sizeof name, "layernorm_bwd dinp (+=) N=%d C=%d off=%d", N, C, off);
  check_rel_l2(name, gdinp_h, dinp_c, NC, 1e-2);
  snprintf(name, sizeof name, "layernorm_bwd dinp increment N=%d C=%d off=%d", N, C, off);
  check_rel_l2(name, diff_of(gdinp_h, dinp0, NC), diff_of(dinp_c, dinp0, NC), NC, 3e-2);
  snprintf(name, sizeof name, "layernorm_bwd dw (+=) N=%d C=%d off=%d", N, C, off);
  check_rel_l2(name, diff_of(gdw_h, dw0, C), diff_of(dw_c, dw0, C), C, 1e-4);
  snprintf(name, sizeof name, "layernorm_bwd db (+=) N=%d C=%d off=%d", N, C, off);
  check_rel_l2(name, diff_of(gdb_h, db0, C), diff_of(db_c, db0, C), C, 1e-4);
  float *gdw2 = dev_f32(dw0, C, off), *gdb2 = dev_f32(db0, C, off);
  void *gdinp2 = dev_act(dinp0, NC, off);
  gpu->layernorm_bwd(gpu, gdinp2, gdw2, gdb2, gdout, gx, gw, gmean_c, grstd_c, N, C);
  snprintf(name, sizeof name, "determinism: layernorm_bwd dw, db N=%d C=%d off=%d", N, C, off);
  check_same_bits(name, host_f32(gdw2, C), gdw_h, C * sizeof(float));
  check_same_bits(name, host_f32(gdb2, C), gdb_h, C * sizeof(float));
  // only db (dw frozen): db as before
  float *gdb3 = dev_f32(db0, C, off);
  void *gdinp3 = dev_act(dinp0, NC, off);
  gpu->layernorm_bwd(gpu, gdinp3, NULL, gdb3, gdout, gx, gw, gmean_c, grstd_c, N, C);
  snprintf(name, sizeof name, "layernorm_bwd dw=NULL: same db N=%d C=%d", N, C);
  check_exact(name, host_f32(gdb3, C), gdb_h, C);
  free_all();
}

static void test_norms(void) {
  test_rmsnorm_case(67, 256, 0);
  test_rmsnorm_case(600, 1536, 0);   // several column-sum chunks, a 2B-sized row
  test_rmsnorm_case(33, 100, 0);     // C % 8 != 0: scalar rows
  test_rmsnorm_case(16, 64, 1);
  test_layernorm_case(67, 256, 0);
  test_layernorm_case(520, 1280, 0);
  test_layernorm_case(33, 100, 0);
  test_layernorm_case(16, 64, 1);
}

// ---------------------------------------------------------------------------------------------------------
// elementwise, RoPE

static void test_elementwise_case(size_t n, int N, int I, int off) {
  char name[96];
  float *a = randn_bf16(n, 2.0f), *b = randn_bf16(n, 2.0f), *dy = randn_bf16(n, 1.0f);
  float *ref = hmalloc(n * sizeof(float));
  void *ga = dev_act(a, n, off), *gb = dev_act(b, n, off), *gdy = dev_act(dy, n, off), *gout = dev_act(a, n, off);

  cpu->add(cpu, ref, a, b, n);
  gpu->add(gpu, gout, ga, gb, n);
  snprintf(name, sizeof name, "add n=%zu off=%d (bf16 of the fp32 sum)", n, off);
  check_exact(name, host_act(gout, n), rounded(ref, n), n);
  gpu->add(gpu, ga, ga, gb, n);   // in place, as the model calls it
  snprintf(name, sizeof name, "add in place n=%zu off=%d", n, off);
  check_exact(name, host_act(ga, n), rounded(ref, n), n);
  gpu->to_act(gpu, ga, dev_f32(a, n, 0), n);

  void (*fwd[2])(lcc_backend *, void *, const void *, size_t) = {gpu->quick_gelu_fwd, gpu->gelu_fwd};
  void (*bwd[2])(lcc_backend *, void *, const void *, const void *, size_t) = {gpu->quick_gelu_bwd, gpu->gelu_bwd};
  void (*cfwd[2])(lcc_backend *, void *, const void *, size_t) = {cpu->quick_gelu_fwd, cpu->gelu_fwd};
  void (*cbwd[2])(lcc_backend *, void *, const void *, const void *, size_t) = {cpu->quick_gelu_bwd, cpu->gelu_bwd};
  const char *names[2] = {"quick_gelu", "gelu"};
  for (int k = 0; k < 2; k++) {
    cfwd[k](cpu, ref, a, n);
    fwd[k](gpu, gout, ga, n);
    snprintf(name, sizeof name, "%s_fwd n=%zu off=%d", names[k], n, off);
    check_elems(name, host_act(gout, n), ref, n, 4e-3, 1e-5);
    cbwd[k](cpu, ref, dy, a, n);
    bwd[k](gpu, gout, gdy, ga, n);
    snprintf(name, sizeof name, "%s_bwd n=%zu off=%d", names[k], n, off);
    check_elems(name, host_act(gout, n), ref, n, 4e-3, 1e-5);
  }

  // SwiGLU on gu [N, 2I] (a's first 2NI values), dout [N, I]
  const size_t ni = (size_t)N * I;
  LCC_CHECK(2 * ni <= n, "test: swiglu sizes");
  cpu->swiglu_fwd(cpu, ref, a, N, I);
  gpu->swiglu_fwd(gpu, gout, ga, N, I);
  snprintf(name, sizeof name, "swiglu_fwd N=%d I=%d off=%d", N, I, off);
  check_elems(name, host_act(gout, ni), ref, ni, 4e-3, 1e-5);
  cpu->swiglu_bwd(cpu, ref, dy, a, N, I);
  gpu->swiglu_bwd(gpu, gout, gdy, ga, N, I);
  snprintf(name, sizeof name, "swiglu_bwd N=%d I=%d off=%d", N, I, off);
  check_elems(name, host_act(gout, 2 * ni), ref, 2 * ni, 4e-3, 1e-5);
  free_all();
}

static void test_rope_case(int T, int Hq, int Hkv, int D, int off) {
  char name[96];
  const size_t row = (size_t)(Hq + 2 * Hkv) * D, n = (size_t)T * row, half = D / 2;
  float *qkv = randn_bf16(n, 1.0f), *cs = hmalloc((size_t)T * half * sizeof(float));
  float *sn = hmalloc((size_t)T * half * sizeof(float));
  for (size_t i = 0; i < (size_t)T * half; i++) {
    double theta = 10.0 * test_rand_uniform() - 5.0;
    cs[i] = (float)cos(theta), sn[i] = (float)sin(theta);
  }
  float *ref = copy_of(qkv, n);
  void *g = dev_act(qkv, n, off);
  float *gcos = dev_f32(cs, (size_t)T * half, 0), *gsin = dev_f32(sn, (size_t)T * half, 0);
  cpu->rope_fwd(cpu, ref, cs, sn, T, Hq, Hkv, D);
  gpu->rope_fwd(gpu, g, gcos, gsin, T, Hq, Hkv, D);
  float *out = host_act(g, n);
  snprintf(name, sizeof name, "rope_fwd T=%d Hq=%d Hkv=%d D=%d off=%d", T, Hq, Hkv, D, off);
  check_elems(name, out, ref, n, 4e-3, 1e-5);
  float *ref_b = copy_of(out, n);   // backward on the forward's output: both sides start equal
  cpu->rope_bwd(cpu, ref_b, cs, sn, T, Hq, Hkv, D);
  gpu->rope_bwd(gpu, g, gcos, gsin, T, Hq, Hkv, D);
  float *back = host_act(g, n);
  snprintf(name, sizeof name, "rope_bwd T=%d Hq=%d Hkv=%d D=%d off=%d", T, Hq, Hkv, D, off);
  check_elems(name, back, ref_b, n, 4e-3, 1e-5);
  size_t bad = 0;   // value heads pass through untouched
  for (int t = 0; t < T; t++)
    for (size_t i = (size_t)(Hq + Hkv) * D; i < row; i++) bad += back[t * row + i] != qkv[t * row + i];
  snprintf(name, sizeof name, "rope: value heads untouched D=%d off=%d", D, off);
  check_tol(name, (double)bad, 0.0);
  free_all();
}

static void test_pointwise(void) {
  test_elementwise_case(4096, 16, 128, 0);
  test_elementwise_case(1003, 7, 60, 0);   // n % 8 != 0, I % 8 != 0
  test_elementwise_case(1003, 7, 64, 1);
  test_rope_case(19, 4, 2, 16, 0);
  test_rope_case(33, 6, 2, 128, 0);
  test_rope_case(11, 3, 3, 10, 0);   // D/2 odd: one pair per thread
  test_rope_case(11, 2, 1, 16, 1);   // 2-byte aligned qkv
}

// ---------------------------------------------------------------------------------------------------------
// embedding, scatter

static void test_embedding_case(int T, int V, int C, int hot_id, int hot_count, int off) {
  char name[96];
  int32_t *ids = hmalloc((size_t)T * sizeof(int32_t));
  for (int t = 0; t < T; t++) ids[t] = (int32_t)(test_rand_u32() % (uint32_t)V);
  for (int k = 0; k < hot_count && k < T; k++) ids[(k * 7) % T] = hot_id;   // one id spanning several chunks
  float *table = randn_bf16((size_t)V * C, 1.0f), *dout = randn_bf16((size_t)T * C, 1.0f);
  float *dt0 = randn_f32((size_t)V * C, 1.0f);
  float *out_c = hmalloc((size_t)T * C * sizeof(float)), *dt_c = copy_of(dt0, (size_t)V * C);
  cpu->embedding_fwd(cpu, out_c, ids, table, T, C);
  cpu->embedding_bwd(cpu, dt_c, ids, dout, T, C);

  int32_t *gids = dev_i32(ids, T);
  void *gtable = dev_act(table, (size_t)V * C, off), *gout = dev_act(dout, (size_t)T * C, off);
  void *gdout = dev_act(dout, (size_t)T * C, off);
  float *gdt = dev_f32(dt0, (size_t)V * C, off), *gdt2 = dev_f32(dt0, (size_t)V * C, off);
  gpu->embedding_fwd(gpu, gout, gids, gtable, T, C);
  snprintf(name, sizeof name, "embedding_fwd T=%d V=%d C=%d off=%d", T, V, C, off);
  check_exact(name, host_act(gout, (size_t)T * C), out_c, (size_t)T * C);
  gpu->embedding_bwd(gpu, gdt, gids, gdout, T, C);
  float *gdt_h = host_f32(gdt, (size_t)V * C);
  snprintf(name, sizeof name, "embedding_bwd (+=) T=%d V=%d C=%d off=%d", T, V, C, off);
  check_rel_l2(name, diff_of(gdt_h, dt0, (size_t)V * C), diff_of(dt_c, dt0, (size_t)V * C), (size_t)V * C, 1e-5);
  int *count = memset(hmalloc((size_t)V * sizeof(int)), 0, (size_t)V * sizeof(int));
  for (int t = 0; t < T; t++) count[ids[t]]++;
  size_t bad = 0;   // ids seen at most once: one addition on either side, so exactly equal
  for (int v = 0; v < V; v++)
    if (count[v] <= 1)
      for (int c = 0; c < C; c++) bad += gdt_h[(size_t)v * C + c] != dt_c[(size_t)v * C + c];
  snprintf(name, sizeof name, "embedding_bwd: unused and single ids exact T=%d V=%d", T, V);
  check_tol(name, (double)bad, 0.0);
  gpu->embedding_bwd(gpu, gdt2, gids, gdout, T, C);
  snprintf(name, sizeof name, "determinism: embedding_bwd T=%d V=%d C=%d off=%d", T, V, C, off);
  check_same_bits(name, host_f32(gdt2, (size_t)V * C), gdt_h, (size_t)V * C * sizeof(float));
  free_all();
}

static void test_scatter_case(int T, int M, int C, int off) {
  char name[96];
  int32_t *rows = hmalloc((size_t)M * sizeof(int32_t));
  for (int m = 0; m < M; m++) rows[m] = (int32_t)((m * 5 + 3) % T);   // distinct when gcd(5, T) = 1
  float *x = randn_bf16((size_t)T * C, 1.0f), *feats = randn_bf16((size_t)M * C, 1.0f);
  float *x_c = copy_of(x, (size_t)T * C), *dx_c = copy_of(x, (size_t)T * C);
  float *df_c = hmalloc((size_t)M * C * sizeof(float));
  cpu->scatter_rows_fwd(cpu, x_c, feats, rows, M, C);
  cpu->scatter_rows_bwd(cpu, df_c, dx_c, rows, M, C);
  int32_t *grows = dev_i32(rows, M);
  void *gx = dev_act(x, (size_t)T * C, off), *gf = dev_act(feats, (size_t)M * C, off);
  void *gdx = dev_act(x, (size_t)T * C, off), *gdx2 = dev_act(x, (size_t)T * C, off);
  void *gdf = dev_act(feats, (size_t)M * C, off);
  gpu->scatter_rows_fwd(gpu, gx, gf, grows, M, C);
  snprintf(name, sizeof name, "scatter_rows_fwd T=%d M=%d C=%d off=%d", T, M, C, off);
  check_exact(name, host_act(gx, (size_t)T * C), x_c, (size_t)T * C);
  gpu->scatter_rows_bwd(gpu, gdf, gdx, grows, M, C);
  snprintf(name, sizeof name, "scatter_rows_bwd dfeats T=%d M=%d C=%d off=%d", T, M, C, off);
  check_exact(name, host_act(gdf, (size_t)M * C), df_c, (size_t)M * C);
  snprintf(name, sizeof name, "scatter_rows_bwd dx rows zeroed T=%d M=%d off=%d", T, M, off);
  check_exact(name, host_act(gdx, (size_t)T * C), dx_c, (size_t)T * C);
  gpu->scatter_rows_bwd(gpu, NULL, gdx2, grows, M, C);
  snprintf(name, sizeof name, "scatter_rows_bwd dfeats=NULL T=%d M=%d off=%d", T, M, off);
  check_exact(name, host_act(gdx2, (size_t)T * C), dx_c, (size_t)T * C);
  free_all();
}

static void test_embeddings(void) {
  test_embedding_case(700, 50, 64, 7, 300, 0);
  test_embedding_case(3000, 5000, 48, 11, 100, 0);
  test_embedding_case(257, 30, 20, 3, 90, 0);   // C % 8 != 0
  test_embedding_case(130, 40, 64, 5, 70, 1);
  test_scatter_case(101, 40, 64, 0);
  test_scatter_case(101, 40, 36, 1);
}

// ---------------------------------------------------------------------------------------------------------
// LM head + cross-entropy

static void test_lm_head_case(int T, int C, int V, int off) {
  char name[96];
  int32_t *targets = hmalloc((size_t)T * sizeof(int32_t));
  int n_valid = 0;
  for (int t = 0; t < T; t++) {
    targets[t] = test_rand_u32() % 5 == 0 ? -100 : (int32_t)(test_rand_u32() % (uint32_t)V);
    n_valid += targets[t] >= 0;
  }
  float *weights = hmalloc((size_t)T * sizeof(float));
  for (int t = 0; t < T; t++) weights[t] = targets[t] >= 0 ? 1.0f / (float)n_valid : 0.0f;
  float *x = randn_bf16((size_t)T * C, 1.0f), *w = randn_bf16((size_t)V * C, 0.5f);
  float *dx0 = randn_bf16((size_t)T * C, 1.0f), *dw0 = randn_f32((size_t)V * C, 0.01f);
  float *loss_c = hmalloc((size_t)T * sizeof(float)), *dx_c = copy_of(dx0, (size_t)T * C);
  float *dw_c = copy_of(dw0, (size_t)V * C);
  cpu->lm_head_ce(cpu, loss_c, dx_c, dw_c, x, w, targets, weights, T, C, V);

  int32_t *gtargets = dev_i32(targets, T);
  float *gweights = dev_f32(weights, T, 0), *gloss = dev_f32(dx0, T, 0), *gloss2 = dev_f32(dx0, T, 0);
  void *gx = dev_act(x, (size_t)T * C, off), *gw = dev_act(w, (size_t)V * C, off);
  void *gdx = dev_act(dx0, (size_t)T * C, off), *gdx2 = dev_act(dx0, (size_t)T * C, off);
  float *gdw = dev_f32(dw0, (size_t)V * C, off), *gdw2 = dev_f32(dw0, (size_t)V * C, off);
  gpu->lm_head_ce(gpu, gloss, gdx, gdw, gx, gw, gtargets, gweights, T, C, V);
  float *loss_g = host_f32(gloss, T), *dx_g = host_act(gdx, (size_t)T * C), *dw_g = host_f32(gdw, (size_t)V * C);
  snprintf(name, sizeof name, "lm_head_ce losses T=%d C=%d V=%d off=%d", T, C, V, off);
  check_elems(name, loss_g, loss_c, T, 0.0, 1e-3);
  snprintf(name, sizeof name, "lm_head_ce dx T=%d C=%d V=%d off=%d", T, C, V, off);
  check_rel_l2(name, dx_g, dx_c, (size_t)T * C, 2e-2);
  size_t bad = 0;   // ignored rows: loss 0 and dx 0, exactly
  for (int t = 0; t < T; t++)
    if (targets[t] < 0) {
      bad += loss_g[t] != 0.0f;
      for (int c = 0; c < C; c++) bad += dx_g[(size_t)t * C + c] != 0.0f;
    }
  snprintf(name, sizeof name, "lm_head_ce ignored rows: loss 0, dx 0 T=%d V=%d", T, V);
  check_tol(name, (double)bad, 0.0);
  snprintf(name, sizeof name, "lm_head_ce dw (+=) T=%d C=%d V=%d off=%d", T, C, V, off);
  check_rel_l2(name, diff_of(dw_g, dw0, (size_t)V * C), diff_of(dw_c, dw0, (size_t)V * C), (size_t)V * C, 2e-2);
  // the same call again: bit-identical; the loss-only call: the same losses
  gpu->lm_head_ce(gpu, gloss2, gdx2, gdw2, gx, gw, gtargets, gweights, T, C, V);
  snprintf(name, sizeof name, "determinism: lm_head_ce losses, dx, dw T=%d V=%d", T, V);
  check_same_bits(name, host_f32(gloss2, T), loss_g, (size_t)T * sizeof(float));
  check_same_bits(name, host_act(gdx2, (size_t)T * C), dx_g, (size_t)T * C * sizeof(float));
  check_same_bits(name, host_f32(gdw2, (size_t)V * C), dw_g, (size_t)V * C * sizeof(float));
  gpu->lm_head_ce(gpu, gloss2, NULL, NULL, gx, gw, gtargets, NULL, T, C, V);
  snprintf(name, sizeof name, "lm_head_ce loss only: same losses T=%d V=%d", T, V);
  check_same_bits(name, host_f32(gloss2, T), loss_g, (size_t)T * sizeof(float));
  free_all();
}

// Last, because a cuBLASLt without an algorithm for an alignment ends the run (a fatal error).
static void test_gemm_misaligned(void) {
  test_linear_case(16, 64, 48, 1, 1, 0);    // 2-byte aligned operands (the bias goes through the aligned copy)
  test_lm_head_case(300, 40, 1001, 1);      // V % 4 != 0, 2-byte aligned operands
}

// ---------------------------------------------------------------------------------------------------------
// optimizer and fp32 utilities

static void test_optim_case(size_t n, int off) {
  char name[96];
  float *p = randn_f32(n, 1.0f), *m = randn_f32(n, 0.01f), *v = randn_f32(n, 0.01f);
  for (size_t i = 0; i < n; i++) v[i] = v[i] * v[i];   // second moments are >= 0
  float *gp = dev_f32(p, n, off), *gm = dev_f32(m, n, off), *gv = dev_f32(v, n, off);
  void *gact = (char *)dev_alloc(n * 2) + off * 2;
  for (int step = 1; step <= 3; step++) {
    float *g = randn_f32(n, 0.1f), *gg = dev_f32(g, n, off);
    cpu->adamw(cpu, p, NULL, g, m, v, n, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, step, 0.5f);
    gpu->adamw(gpu, gp, gact, gg, gm, gv, n, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, step, 0.5f);
  }
  float *p_g = host_f32(gp, n);
  snprintf(name, sizeof name, "adamw x3 param n=%zu off=%d", n, off);
  check_elems(name, p_g, p, n, 1e-6, 1e-12);
  snprintf(name, sizeof name, "adamw x3 m, v n=%zu off=%d", n, off);
  check_elems(name, host_f32(gm, n), m, n, 1e-6, 1e-12);
  check_elems(name, host_f32(gv, n), v, n, 1e-6, 1e-20);
  snprintf(name, sizeof name, "adamw param_act = bf16(param) n=%zu off=%d", n, off);
  check_exact(name, host_act(gact, n), rounded(p_g, n), n);

  float *x = randn_f32(n, 1.0f), *gx = dev_f32(x, n, off);
  double s_c = cpu->sum_squares(cpu, x, n), s_g = gpu->sum_squares(gpu, gx, n);
  snprintf(name, sizeof name, "sum_squares n=%zu off=%d", n, off);
  check_tol(name, fabs(s_g - s_c) / s_c, 1e-12);
  snprintf(name, sizeof name, "determinism: sum_squares n=%zu off=%d", n, off);
  double s_g2 = gpu->sum_squares(gpu, gx, n);
  check_same_bits(name, &s_g2, &s_g, sizeof s_g);
  cpu->scale(cpu, x, 0.37f, n);
  gpu->scale(gpu, gx, 0.37f, n);
  snprintf(name, sizeof name, "scale n=%zu off=%d", n, off);
  check_exact(name, host_f32(gx, n), x, n);
  float *a = randn_f32(n, 1.0f), *ga = dev_f32(a, n, off);
  cpu->add_f32(cpu, x, a, n);
  gpu->add_f32(gpu, gx, ga, n);
  snprintf(name, sizeof name, "add_f32 n=%zu off=%d", n, off);
  check_exact(name, host_f32(gx, n), x, n);
  free_all();
}

static void test_optim(void) {
  test_optim_case(100003, 0);
  test_optim_case(1000003, 0);   // more than one block per partial sum
  test_optim_case(1001, 1);
}

int main(void) {
  test_seed(0x9E3779B97F4A7C15ull);
  char why[256] = "";
  if (lcc_cuda_device_count(why, sizeof why) == 0) {
    printf("SKIP: no CUDA device: %s\n", why);
    return 77;
  }
  cpu = lcc_cpu_backend(0);
  gpu = lcc_cuda_backend(0);
  test_memory();
  test_casts();
  test_copy_rows();
  test_pointwise();
  test_norms();
  test_embeddings();
  test_optim();
  test_linear();
  test_lm_head_case(2500, 64, 3000, 0);   // ~2000 rows with a target: two chunks of at most 1024
  test_gemm_misaligned();
  gpu->destroy(gpu);
  cpu->destroy(cpu);
  return test_finish("test_cuda_ops");
}
