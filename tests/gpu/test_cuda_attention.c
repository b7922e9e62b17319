// The CUDA attention ops against the CPU backend, on both paths (LCC_ATTENTION=own: our kernels; =cudnn:
// cuDNN's fused SDPA, a fatal error if it cannot run a case). Per case:
//   - forward out (relative L2 <= 1e-2: bf16 output) and lse (relative L2 <= 1e-3, max abs <= 1e-2: fp32),
//     the CPU running on the same bf16-rounded inputs;
//   - backward dq, dk, dv (relative L2 <= 2e-2 each), the CPU given the GPU forward's out and lse;
//   - determinism: forward and backward run twice give bit-identical results;
//   - attention_cached (always our kernel) against the forward's last rows (relative L2 <= 1e-2).
// It also prints times (first calls include building cuDNN's plans) and the speed of a Qwen2-VL-7B decoder
// layer's and a ViT layer's attention at T 8192. Exit 77 (a skip) where no GPU exists.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "cuda/attention.h"
#include "cuda/backend_cuda.h"
#include "cuda/device.h"
#include "testlib.h"
#include "util.h"

typedef struct {
  const char *name;
  int Hq, Hkv, D, causal;
  int n_seq;
  int lens[16];
} attn_case;

static const attn_case cases[] = {
    {"decoder GQA 4/2, D 32", 4, 2, 32, 1, 4, {700, 3, 300, 997}},
    {"decoder GQA 4/2, D 128", 4, 2, 128, 1, 2, {1500, 500}},
    {"ViT blocks, D 24", 2, 2, 24, 0, 9, {256, 256, 256, 256, 100, 100, 130, 130, 130}},
    {"ViT blocks, D 80", 4, 4, 80, 0, 10, {196, 196, 196, 196, 196, 196, 64, 64, 64, 64}},
};

// Device act buffer of n values from host floats; rounded holds them as the device stores them.
static void *to_device(lcc_backend *g, const float *x, size_t n, float *rounded) {
  float *f = g->alloc(g, n * sizeof(float));
  void *a = g->alloc(g, n * g->act_bytes);
  g->upload(g, f, x, n * sizeof(float));
  g->to_act(g, a, f, n);
  g->from_act(g, f, a, n);
  g->download(g, rounded, f, n * sizeof(float));
  g->free(g, f);
  return a;
}

static void act_to_host(lcc_backend *g, float *dst, const void *a, size_t n) {
  float *f = g->alloc(g, n * sizeof(float));
  g->from_act(g, f, a, n);
  g->download(g, dst, f, n * sizeof(float));
  g->free(g, f);
}

static int same_bytes(lcc_backend *g, const void *a, const void *b, size_t bytes) {
  char *x = lcc_malloc(bytes), *y = lcc_malloc(bytes);
  g->download(g, x, a, bytes);
  g->download(g, y, b, bytes);
  int same = !memcmp(x, y, bytes);
  free(x);
  free(y);
  return same;
}

// Columns [c0, c1) of every row of a [T, row] matrix, compared.
static double part_err(const float *x, const float *ref, int T, int row, int c0, int c1) {
  size_t n = (size_t)T * (c1 - c0);
  float *a = lcc_malloc(n * sizeof(float)), *b = lcc_malloc(n * sizeof(float));
  for (int t = 0, k = 0; t < T; t++)
    for (int c = c0; c < c1; c++, k++) a[k] = x[(size_t)t * row + c], b[k] = ref[(size_t)t * row + c];
  double e = rel_l2(a, b, n);
  free(a);
  free(b);
  return e;
}

static void run_case(lcc_backend *g, lcc_backend *cpu, const attn_case *c) {
  int32_t cu[17] = {0};
  for (int s = 0; s < c->n_seq; s++) cu[s + 1] = cu[s] + c->lens[s];
  const int T = cu[c->n_seq], Hq = c->Hq, Hkv = c->Hkv, D = c->D, row = (Hq + 2 * Hkv) * D, HD = Hq * D;
  const size_t nqkv = (size_t)T * row, nout = (size_t)T * HD, nlse = (size_t)Hq * T;
  float *qkv = lcc_malloc(nqkv * sizeof(float)), *dout = lcc_malloc(nout * sizeof(float));
  for (size_t i = 0; i < nqkv; i++) qkv[i] = (i % row < (size_t)(Hq + Hkv) * D ? 1.5f : 1.0f) * test_rand_normal();   // q, k sharper
  for (size_t i = 0; i < nout; i++) dout[i] = test_rand_normal();
  void *d_qkv = to_device(g, qkv, nqkv, qkv), *d_dout = to_device(g, dout, nout, dout);
  int32_t *d_cu = g->alloc(g, sizeof cu);
  g->upload(g, d_cu, cu, sizeof cu);
  void *d_out = g->alloc(g, nout * g->act_bytes), *d_out2 = g->alloc(g, nout * g->act_bytes);
  float *d_lse = g->alloc(g, nlse * sizeof(float)), *d_lse2 = g->alloc(g, nlse * sizeof(float));
  void *d_dqkv = g->alloc(g, nqkv * g->act_bytes), *d_dqkv2 = g->alloc(g, nqkv * g->act_bytes);

  // forward, twice, both timed: the first builds cuDNN's plans
  double t0 = lcc_now();
  g->attention_fwd(g, d_out, d_lse, d_qkv, d_cu, c->n_seq, T, Hq, Hkv, D, c->causal);
  g->sync(g);
  double t_fwd1 = lcc_now() - t0;
  t0 = lcc_now();
  g->attention_fwd(g, d_out2, d_lse2, d_qkv, d_cu, c->n_seq, T, Hq, Hkv, D, c->causal);
  g->sync(g);
  double t_fwd = lcc_now() - t0;
  float *out_g = lcc_malloc(nout * sizeof(float)), *lse_g = lcc_malloc(nlse * sizeof(float));
  float *out_c = lcc_malloc(nout * sizeof(float)), *lse_c = lcc_malloc(nlse * sizeof(float));
  act_to_host(g, out_g, d_out, nout);
  g->download(g, lse_g, d_lse, nlse * sizeof(float));
  cpu->attention_fwd(cpu, out_c, lse_c, qkv, cu, c->n_seq, T, Hq, Hkv, D, c->causal);
  check_tol("forward out (rel L2)", rel_l2(out_g, out_c, nout), 1e-2);
  check_tol("forward lse (rel L2)", rel_l2(lse_g, lse_c, nlse), 1e-3);
  check_tol("forward lse (max abs)", max_abs_diff(lse_g, lse_c, nlse), 1e-2);
  check(same_bytes(g, d_out, d_out2, nout * g->act_bytes) && same_bytes(g, d_lse, d_lse2, nlse * sizeof(float)),
        "forward repeated: bit-identical");

  // backward, twice; the CPU gets the GPU forward's out and lse
  t0 = lcc_now();
  g->attention_bwd(g, d_dqkv, d_dout, d_qkv, d_out, d_lse, d_cu, c->n_seq, T, Hq, Hkv, D, c->causal);
  g->sync(g);
  double t_bwd1 = lcc_now() - t0;
  t0 = lcc_now();
  g->attention_bwd(g, d_dqkv2, d_dout, d_qkv, d_out, d_lse, d_cu, c->n_seq, T, Hq, Hkv, D, c->causal);
  g->sync(g);
  double t_bwd = lcc_now() - t0;
  float *dqkv_g = lcc_malloc(nqkv * sizeof(float)), *dqkv_c = lcc_malloc(nqkv * sizeof(float));
  act_to_host(g, dqkv_g, d_dqkv, nqkv);
  cpu->attention_bwd(cpu, dqkv_c, dout, qkv, out_g, lse_g, cu, c->n_seq, T, Hq, Hkv, D, c->causal);
  check_tol("backward dq (rel L2)", part_err(dqkv_g, dqkv_c, T, row, 0, Hq * D), 2e-2);
  check_tol("backward dk (rel L2)", part_err(dqkv_g, dqkv_c, T, row, Hq * D, (Hq + Hkv) * D), 2e-2);
  check_tol("backward dv (rel L2)", part_err(dqkv_g, dqkv_c, T, row, (Hq + Hkv) * D, row), 2e-2);
  check(same_bytes(g, d_dqkv, d_dqkv2, nqkv * g->act_bytes), "backward repeated: bit-identical");
  printf("  time (T %d): forward %.3f ms (first call %.3f ms), backward %.3f ms (first call %.3f ms)\n", T, t_fwd * 1e3,
         t_fwd1 * 1e3, t_bwd * 1e3, t_bwd1 * 1e3);

  free(qkv), free(dout), free(out_g), free(lse_g), free(out_c), free(lse_c), free(dqkv_g), free(dqkv_c);
  g->free(g, d_qkv), g->free(g, d_dout), g->free(g, d_cu), g->free(g, d_out), g->free(g, d_out2);
  g->free(g, d_lse), g->free(g, d_lse2), g->free(g, d_dqkv), g->free(g, d_dqkv2);
}

// One causal sequence of T rows: attention_cached of its last Tn rows against the cache of all T rows equals
// the forward's last Tn rows.
static void run_cached(lcc_backend *g, int Hq, int Hkv, int D, int T, int Tn) {
  const int row = (Hq + 2 * Hkv) * D, HD = Hq * D, KD = Hkv * D;
  const size_t nqkv = (size_t)T * row, ab = g->act_bytes;
  float *qkv = lcc_malloc(nqkv * sizeof(float));
  for (size_t i = 0; i < nqkv; i++) qkv[i] = test_rand_normal();
  void *d_qkv = to_device(g, qkv, nqkv, qkv);
  int32_t cu[2] = {0, T}, *d_cu = g->alloc(g, sizeof cu);
  g->upload(g, d_cu, cu, sizeof cu);
  void *d_out = g->alloc(g, (size_t)T * HD * ab), *d_att = g->alloc(g, (size_t)Tn * HD * ab);
  float *d_lse = g->alloc(g, (size_t)Hq * T * sizeof(float));
  void *d_k = g->alloc(g, (size_t)T * KD * ab), *d_v = g->alloc(g, (size_t)T * KD * ab);
  g->attention_fwd(g, d_out, d_lse, d_qkv, d_cu, 1, T, Hq, Hkv, D, 1);
  g->copy_rows(g, d_k, KD, (char *)d_qkv + (size_t)HD * ab, row, T, KD);
  g->copy_rows(g, d_v, KD, (char *)d_qkv + (size_t)(HD + KD) * ab, row, T, KD);
  g->attention_cached(g, d_att, (char *)d_qkv + (size_t)(T - Tn) * row * ab, row, d_k, d_v, Tn, T, Hq, Hkv, D);
  float *out = lcc_malloc((size_t)T * HD * sizeof(float)), *att = lcc_malloc((size_t)Tn * HD * sizeof(float));
  act_to_host(g, out, d_out, (size_t)T * HD);
  act_to_host(g, att, d_att, (size_t)Tn * HD);
  char what[96];
  snprintf(what, sizeof what, "cached %d of %d rows, %d/%d heads of %d", Tn, T, Hq, Hkv, D);
  check_tol(what, rel_l2(att, out + (size_t)(T - Tn) * HD, (size_t)Tn * HD), 1e-2);
  free(qkv), free(out), free(att);
  g->free(g, d_qkv), g->free(g, d_cu), g->free(g, d_out), g->free(g, d_att), g->free(g, d_lse), g->free(g, d_k);
  g->free(g, d_v);
}

// Speed only (no reference): one sequence of T rows, forward and backward, repeated and timed.
static void run_timing(lcc_backend *g, int T, int Hq, int Hkv, int D, int causal) {
  const size_t nqkv = (size_t)T * (Hq + 2 * Hkv) * D, nout = (size_t)T * Hq * D, ab = g->act_bytes;
  float *x = lcc_malloc(nqkv * sizeof(float));
  for (size_t i = 0; i < nqkv; i++) x[i] = test_rand_normal();
  void *d_qkv = to_device(g, x, nqkv, x), *d_dout = to_device(g, x, nout, x);
  int32_t cu[2] = {0, T}, *d_cu = g->alloc(g, sizeof cu);
  g->upload(g, d_cu, cu, sizeof cu);
  void *d_out = g->alloc(g, nout * ab), *d_dqkv = g->alloc(g, nqkv * ab);
  float *d_lse = g->alloc(g, (size_t)Hq * T * sizeof(float));
  double t[2] = {0.0, 0.0};
  for (int rep = 0; rep < 4; rep++) {   // the first round builds plans and is not counted
    double t0 = lcc_now();
    g->attention_fwd(g, d_out, d_lse, d_qkv, d_cu, 1, T, Hq, Hkv, D, causal);
    g->sync(g);
    double t1 = lcc_now();
    g->attention_bwd(g, d_dqkv, d_dout, d_qkv, d_out, d_lse, d_cu, 1, T, Hq, Hkv, D, causal);
    g->sync(g);
    if (rep) t[0] += (t1 - t0) / 3, t[1] += (lcc_now() - t1) / 3;
  }
  const double flop = 4.0 * T * T * D * Hq * (causal ? 0.5 : 1.0);   // forward; backward counts 2.5 times that
  printf("  T %d, %d/%d heads of %d, %s: forward %.3f ms (%.0f TFLOP/s), backward %.3f ms (%.0f TFLOP/s)\n", T, Hq, Hkv, D,
         causal ? "causal" : "full", t[0] * 1e3, flop / t[0] * 1e-12, t[1] * 1e3, 2.5 * flop / t[1] * 1e-12);
  free(x);
  g->free(g, d_qkv), g->free(g, d_dout), g->free(g, d_cu), g->free(g, d_out), g->free(g, d_dqkv), g->free(g, d_lse);
}

int main(void) {
  test_seed(0x9E3779B97F4A7C15ull);
  char why[256] = "";
  if (lcc_cuda_device_count(why, sizeof why) == 0) {
    printf("SKIP: no CUDA device: %s\n", why);
    return 77;
  }
  lcc_backend *g = lcc_cuda_backend(0), *cpu = lcc_cpu_backend(0);
  const char *paths[] = {"own", "cudnn"};
  for (int p = 0; p < 2; p++) {
    setenv("LCC_ATTENTION", paths[p], 1);
    lcc_cuda_attention_install(g);   // reads LCC_ATTENTION again
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      printf("LCC_ATTENTION=%s: %s\n", paths[p], cases[i].name);
      run_case(g, cpu, &cases[i]);
    }
    printf("LCC_ATTENTION=%s: attention_cached\n", paths[p]);
    run_cached(g, 4, 2, 32, 300, 1);
    run_cached(g, 4, 2, 32, 300, 37);
    run_cached(g, 4, 2, 128, 1000, 70);
    printf("LCC_ATTENTION=%s: speed\n", paths[p]);
    run_timing(g, 8192, 28, 4, 128, 1);   // a Qwen2-VL-7B decoder layer
    run_timing(g, 8192, 16, 16, 80, 0);   // a ViT layer's worth of patches in one block
  }
  g->destroy(g);
  cpu->destroy(cpu);
  return test_finish("test_cuda_attention");
}
