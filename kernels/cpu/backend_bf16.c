// The CPU backend with bf16 act tensors ("cpu-bf16"): the CUDA backend's storage types on the host.
//
// Why it exists: the model, trainer, checkpoints and communicators have act_bytes == 2 paths (2-byte
// activations, bf16 compute weights beside fp32 masters) that the fp32 CPU backend never takes, and CI has no
// GPU. This backend takes those paths on any machine. It is a test vehicle, not a fast backend.
//
// How: each op widens its act inputs (bf16 in uint16 storage) into fp32 scratch, runs the fp32 CPU op
// (kernels/cpu) on them, and rounds its act outputs back to bf16. Widening is exact, so every act output is
// the fp32 CPU result on the same (bf16-valued) inputs, rounded once: that is what the tests assert, bit for
// bit. fp32 arguments (weight gradients, norm/softmax statistics, RoPE tables, optimizer state) pass straight
// through. Pure data movement (copy_rows, embedding lookup, vision scatter) works on the 2-byte elements.
//
// Rounding: to nearest, ties to even, as CUDA's __float2bfloat16_rn. Adding 0x7fff plus the lowest kept bit
// and truncating rounds up exactly when the dropped 16 bits exceed half, or equal half with an odd kept part;
// a carry walks into the exponent (up to inf for values past the largest bf16). NaN is caught first: its
// payload may sit only in the dropped bits, and the addition would turn it into inf or -0. Everything here is
// elementwise or a fixed-order fp32 op, so results are bit-identical for any thread count.
#include "cpu.h"
#include "half.h"
#include "util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define N_SLOTS 4   // the most act tensors one op widens (linear_bwd: dinp, dout, inp, w)

typedef struct {
  lcc_backend *cpu;        // the fp32 backend: its memory ops, and the `be` of every fp32 op called here
  float *slot[N_SLOTS];    // fp32 scratch, grown on demand and kept: no allocation per call in steady state
  size_t cap[N_SLOTS];     // floats in each slot
} bf16_impl;

// ---------------------------------------------------------------------------------------------------------
// conversions (half.h)

static void widen(float *out, const void *inp_, size_t n) {
  const uint16_t *inp = inp_;   // [n] bf16
#pragma omp parallel for schedule(static) if (n >= CPU_PAR_MIN)
  for (size_t i = 0; i < n; i++) out[i] = lcc_bf16_to_f32(inp[i]);
}

static void narrow(void *out_, const float *inp, size_t n) {
  uint16_t *out = out_;   // [n] bf16
#pragma omp parallel for schedule(static) if (n >= CPU_PAR_MIN)
  for (size_t i = 0; i < n; i++) out[i] = lcc_f32_to_bf16(inp[i]);
}

// ---------------------------------------------------------------------------------------------------------
// scratch: only the main thread's ops use it (the communication thread calls add_f32 and release, which don't)

// Slot k with room for n floats (at least one allocation, so a non-NULL tensor never widens to NULL).
static float *slot(lcc_backend *be, int k, size_t n) {
  bf16_impl *im = be->impl;
  if (!im->slot[k] || im->cap[k] < n) {
    im->cpu->free(im->cpu, im->slot[k]);
    im->slot[k] = im->cpu->alloc(im->cpu, n * sizeof(float));
    im->cap[k] = n;
  }
  return im->slot[k];
}

// The act tensor x[n] widened into slot k; NULL (an absent optional argument) stays NULL.
static float *arg_in(lcc_backend *be, int k, const void *x, size_t n) {
  if (!x) return NULL;
  float *s = slot(be, k, n);
  widen(s, x, n);
  return s;
}

// Slot k as fp32 room for the act output x[n] (overwritten by the op); NULL (output skipped) stays NULL.
static float *arg_out(lcc_backend *be, int k, const void *x, size_t n) { return x ? slot(be, k, n) : NULL; }

// The fp32 result s[n] rounded into the act output x (nothing when x is NULL).
static void round_out(void *x, const float *s, size_t n) {
  if (x) narrow(x, s, n);
}

static lcc_backend *cpu(lcc_backend *be) { return ((bf16_impl *)be->impl)->cpu; }

// ---------------------------------------------------------------------------------------------------------
// ops: widen, run the fp32 op, round

static void bf16_to_act(lcc_backend *be, void *out, const float *inp, size_t n) { narrow(out, inp, n); }
static void bf16_from_act(lcc_backend *be, float *out, const void *inp, size_t n) { widen(out, inp, n); }

static void bf16_linear_fwd(lcc_backend *be, void *out, const void *inp, const void *w, const void *bias,
                            int N, int C, int OC) {
  float *o = arg_out(be, 0, out, (size_t)N * OC);
  cpu_linear_fwd(cpu(be), o, arg_in(be, 1, inp, (size_t)N * C), arg_in(be, 2, w, (size_t)OC * C),
                 arg_in(be, 3, bias, OC), N, C, OC);
  round_out(out, o, (size_t)N * OC);
}

static void bf16_linear_bwd(lcc_backend *be, void *dinp, float *dw, float *dbias, const void *dout,
                            const void *inp, const void *w, int N, int C, int OC) {
  // w is read only for dinp, inp only for dw: frozen layers skip widening their weights' partner
  float *di = arg_out(be, 0, dinp, (size_t)N * C);
  cpu_linear_bwd(cpu(be), di, dw, dbias, arg_in(be, 1, dout, (size_t)N * OC),
                 arg_in(be, 2, dw ? inp : NULL, (size_t)N * C), arg_in(be, 3, dinp ? w : NULL, (size_t)OC * C),
                 N, C, OC);
  round_out(dinp, di, (size_t)N * C);
}

static void bf16_rmsnorm_fwd(lcc_backend *be, void *out, float *rstd, const void *inp, const void *w,
                             int N, int C, float eps) {
  float *o = arg_out(be, 0, out, (size_t)N * C);
  cpu_rmsnorm_fwd(cpu(be), o, rstd, arg_in(be, 1, inp, (size_t)N * C), arg_in(be, 2, w, C), N, C, eps);
  round_out(out, o, (size_t)N * C);
}

static void bf16_rmsnorm_bwd(lcc_backend *be, void *dinp, float *dw, const void *dout, const void *inp,
                             const void *w, const float *rstd, int N, int C) {
  float *di = arg_in(be, 0, dinp, (size_t)N * C);   // accumulated: starts from its current values
  cpu_rmsnorm_bwd(cpu(be), di, dw, arg_in(be, 1, dout, (size_t)N * C), arg_in(be, 2, inp, (size_t)N * C),
                  arg_in(be, 3, w, C), rstd, N, C);
  round_out(dinp, di, (size_t)N * C);
}

static void bf16_layernorm_fwd(lcc_backend *be, void *out, float *mean, float *rstd, const void *inp,
                               const void *w, const void *b, int N, int C, float eps) {
  float *o = arg_out(be, 0, out, (size_t)N * C);
  cpu_layernorm_fwd(cpu(be), o, mean, rstd, arg_in(be, 1, inp, (size_t)N * C), arg_in(be, 2, w, C),
                    arg_in(be, 3, b, C), N, C, eps);
  round_out(out, o, (size_t)N * C);
}

static void bf16_layernorm_bwd(lcc_backend *be, void *dinp, float *dw, float *db, const void *dout,
                               const void *inp, const void *w, const float *mean, const float *rstd, int N, int C) {
  float *di = arg_in(be, 0, dinp, (size_t)N * C);   // accumulated
  cpu_layernorm_bwd(cpu(be), di, dw, db, arg_in(be, 1, dout, (size_t)N * C), arg_in(be, 2, inp, (size_t)N * C),
                    arg_in(be, 3, w, C), mean, rstd, N, C);
  round_out(dinp, di, (size_t)N * C);
}

static void bf16_add(lcc_backend *be, void *out, const void *a, const void *b, size_t n) {
  float *o = arg_out(be, 0, out, n);
  cpu_add(cpu(be), o, arg_in(be, 1, a, n), arg_in(be, 2, b, n), n);
  round_out(out, o, n);
}

static void bf16_swiglu_fwd(lcc_backend *be, void *out, const void *gu, int N, int I) {
  float *o = arg_out(be, 0, out, (size_t)N * I);
  cpu_swiglu_fwd(cpu(be), o, arg_in(be, 1, gu, (size_t)N * 2 * I), N, I);
  round_out(out, o, (size_t)N * I);
}

static void bf16_swiglu_bwd(lcc_backend *be, void *dgu, const void *dout, const void *gu, int N, int I) {
  float *d = arg_out(be, 0, dgu, (size_t)N * 2 * I);
  cpu_swiglu_bwd(cpu(be), d, arg_in(be, 1, dout, (size_t)N * I), arg_in(be, 2, gu, (size_t)N * 2 * I), N, I);
  round_out(dgu, d, (size_t)N * 2 * I);
}

// The four activations share one shape: out[n] = f(inp[n]), dinp[n] = f'(inp[n]) dout[n].
typedef void (*act_fwd_fn)(lcc_backend *, void *, const void *, size_t);
typedef void (*act_bwd_fn)(lcc_backend *, void *, const void *, const void *, size_t);

static void act_fwd(lcc_backend *be, act_fwd_fn f, void *out, const void *inp, size_t n) {
  float *o = arg_out(be, 0, out, n);
  f(cpu(be), o, arg_in(be, 1, inp, n), n);
  round_out(out, o, n);
}

static void act_bwd(lcc_backend *be, act_bwd_fn f, void *dinp, const void *dout, const void *inp, size_t n) {
  float *d = arg_out(be, 0, dinp, n);
  f(cpu(be), d, arg_in(be, 1, dout, n), arg_in(be, 2, inp, n), n);
  round_out(dinp, d, n);
}

static void bf16_quick_gelu_fwd(lcc_backend *be, void *out, const void *inp, size_t n) {
  act_fwd(be, cpu_quick_gelu_fwd, out, inp, n);
}
static void bf16_quick_gelu_bwd(lcc_backend *be, void *dinp, const void *dout, const void *inp, size_t n) {
  act_bwd(be, cpu_quick_gelu_bwd, dinp, dout, inp, n);
}
static void bf16_gelu_fwd(lcc_backend *be, void *out, const void *inp, size_t n) {
  act_fwd(be, cpu_gelu_fwd, out, inp, n);
}
static void bf16_gelu_bwd(lcc_backend *be, void *dinp, const void *dout, const void *inp, size_t n) {
  act_bwd(be, cpu_gelu_bwd, dinp, dout, inp, n);
}

// In place on qkv[T, (Hq + 2 Hkv) D]: widen the whole tensor, rotate, round back (v heads round-trip exactly).
static void bf16_rope_fwd(lcc_backend *be, void *qkv, const float *cos, const float *sin, int T, int Hq, int Hkv,
                          int D) {
  size_t n = (size_t)T * (Hq + 2 * Hkv) * D;
  float *x = arg_in(be, 0, qkv, n);
  cpu_rope_fwd(cpu(be), x, cos, sin, T, Hq, Hkv, D);
  round_out(qkv, x, n);
}

static void bf16_rope_bwd(lcc_backend *be, void *dqkv, const float *cos, const float *sin, int T, int Hq, int Hkv,
                          int D) {
  size_t n = (size_t)T * (Hq + 2 * Hkv) * D;
  float *x = arg_in(be, 0, dqkv, n);
  cpu_rope_bwd(cpu(be), x, cos, sin, T, Hq, Hkv, D);
  round_out(dqkv, x, n);
}

static void bf16_attention_fwd(lcc_backend *be, void *out, float *lse, const void *qkv, const int32_t *cu_seqlens,
                               int n_seq, int T, int Hq, int Hkv, int D, int causal) {
  size_t n_out = (size_t)T * Hq * D, n_qkv = (size_t)T * (Hq + 2 * Hkv) * D;
  float *o = arg_out(be, 0, out, n_out);
  cpu_attention_fwd(cpu(be), o, lse, arg_in(be, 1, qkv, n_qkv), cu_seqlens, n_seq, T, Hq, Hkv, D, causal);
  round_out(out, o, n_out);
}

static void bf16_attention_bwd(lcc_backend *be, void *dqkv, const void *dout, const void *qkv, const void *out,
                               const float *lse, const int32_t *cu_seqlens, int n_seq, int T, int Hq, int Hkv,
                               int D, int causal) {
  size_t n_out = (size_t)T * Hq * D, n_qkv = (size_t)T * (Hq + 2 * Hkv) * D;
  float *d = arg_out(be, 0, dqkv, n_qkv);
  cpu_attention_bwd(cpu(be), d, arg_in(be, 1, dout, n_out), arg_in(be, 2, qkv, n_qkv), arg_in(be, 3, out, n_out),
                    lse, cu_seqlens, n_seq, T, Hq, Hkv, D, causal);
  round_out(dqkv, d, n_qkv);
}

static void bf16_attention_cached(lcc_backend *be, void *out, const void *q, int ldq, const void *kc, const void *vc,
                                  int Tn, int Tc, int Hq, int Hkv, int D) {
  // q: Tn rows ldq apart, of which the first Hq D elements are read; widened with the same stride
  size_t n_out = (size_t)Tn * Hq * D, n_q = Tn > 0 ? (size_t)(Tn - 1) * ldq + (size_t)Hq * D : 0;
  size_t n_kv = (size_t)Tc * Hkv * D;
  float *o = arg_out(be, 0, out, n_out);
  cpu_attention_cached(cpu(be), o, arg_in(be, 1, q, n_q), ldq, arg_in(be, 2, kc, n_kv), arg_in(be, 3, vc, n_kv),
                       Tn, Tc, Hq, Hkv, D);
  round_out(out, o, n_out);
}

static void bf16_lm_head_ce(lcc_backend *be, float *losses, void *dx, float *dw, const void *x, const void *w,
                            const int32_t *targets, const float *weights, int T, int C, int V) {
  float *d = arg_out(be, 0, dx, (size_t)T * C);
  cpu_lm_head_ce(cpu(be), losses, d, dw, arg_in(be, 1, x, (size_t)T * C), arg_in(be, 2, w, (size_t)V * C), targets,
                 weights, T, C, V);
  round_out(dx, d, (size_t)T * C);
}

static void bf16_embedding_bwd(lcc_backend *be, float *dtable, const int32_t *ids, const void *dout, int T, int C) {
  cpu_embedding_bwd(cpu(be), dtable, ids, arg_in(be, 0, dout, (size_t)T * C), T, C);
}

// AdamW on the fp32 masters, then the bf16 compute copy of the updated values.
static void bf16_adamw(lcc_backend *be, float *param, void *param_act, const float *grad, float *m, float *v,
                       size_t n, float lr, float beta1, float beta2, float eps, float weight_decay, int step,
                       float grad_scale) {
  cpu_adamw(cpu(be), param, NULL, grad, m, v, n, lr, beta1, beta2, eps, weight_decay, step, grad_scale);
  round_out(param_act, param, n);
}

// ---------------------------------------------------------------------------------------------------------
// data movement directly on the 2-byte elements (the tensors' full sizes are not in these signatures)

static void bf16_copy_rows(lcc_backend *be, void *dst, int ld_dst, const void *src, int ld_src, int rows, int cols) {
  // dst [rows, ld_dst] <- src [rows, ld_src], the first cols of each row
  for (int r = 0; r < rows; r++)
    memcpy((uint16_t *)dst + (size_t)r * ld_dst, (const uint16_t *)src + (size_t)r * ld_src, (size_t)cols * 2);
}

static void bf16_embedding_fwd(lcc_backend *be, void *out_, const int32_t *ids, const void *table_, int T, int C) {
  uint16_t *out = out_;            // [T, C]
  const uint16_t *table = table_;  // [V, C]
#pragma omp parallel for schedule(static) if ((size_t)T * C >= CPU_PAR_MIN)
  for (int t = 0; t < T; t++) memcpy(out + (size_t)t * C, table + (size_t)ids[t] * C, (size_t)C * 2);
}

static void bf16_scatter_rows_fwd(lcc_backend *be, void *x_, const void *feats_, const int32_t *rows, int M, int C) {
  uint16_t *x = x_;                // [T, C]
  const uint16_t *feats = feats_;  // [M, C]
#pragma omp parallel for schedule(static) if ((size_t)M * C >= CPU_PAR_MIN)
  for (int m = 0; m < M; m++) memcpy(x + (size_t)rows[m] * C, feats + (size_t)m * C, (size_t)C * 2);
}

static void bf16_scatter_rows_bwd(lcc_backend *be, void *dfeats_, void *dx_, const int32_t *rows, int M, int C) {
  uint16_t *dfeats = dfeats_;   // [M, C] or NULL
  uint16_t *dx = dx_;           // [T, C]: the scattered rows are read, then zeroed
#pragma omp parallel for schedule(static) if ((size_t)M * C >= CPU_PAR_MIN)
  for (int m = 0; m < M; m++) {
    uint16_t *src = dx + (size_t)rows[m] * C;
    if (dfeats) memcpy(dfeats + (size_t)m * C, src, (size_t)C * 2);
    memset(src, 0, (size_t)C * 2);
  }
}

// ---------------------------------------------------------------------------------------------------------

static void bf16_destroy(lcc_backend *be) {
  bf16_impl *im = be->impl;
  for (int k = 0; k < N_SLOTS; k++) im->cpu->free(im->cpu, im->slot[k]);
  im->cpu->destroy(im->cpu);
  free(im);
  free(be);
}

lcc_backend *lcc_cpu_bf16_backend(int n_threads) {
  bf16_impl *im = lcc_calloc(1, sizeof *im);
  im->cpu = lcc_cpu_backend(n_threads);   // sets the thread count, as the fp32 backend does
  lcc_backend *be = lcc_calloc(1, sizeof *be), *c = im->cpu;
  be->name = "cpu-bf16";
  be->act_bytes = 2;
  be->impl = im;
  be->destroy = bf16_destroy;
  // Memory ops count bytes and the fp32 utilities take fp32: the CPU ones as they are (they never look at be).
  be->alloc = c->alloc;
  be->free = c->free;
  be->upload = c->upload;
  be->download = c->download;
  be->zero = c->zero;
  be->copy = c->copy;
  be->sync = c->sync;
  be->release = c->release;
  be->sum_squares = cpu_sum_squares;
  be->scale = cpu_scale;
  be->add_f32 = cpu_add_f32;
  // Everything with an act tensor: the conversions above.
  be->to_act = bf16_to_act;
  be->from_act = bf16_from_act;
  be->linear_fwd = bf16_linear_fwd;
  be->linear_bwd = bf16_linear_bwd;
  be->rmsnorm_fwd = bf16_rmsnorm_fwd;
  be->rmsnorm_bwd = bf16_rmsnorm_bwd;
  be->layernorm_fwd = bf16_layernorm_fwd;
  be->layernorm_bwd = bf16_layernorm_bwd;
  be->add = bf16_add;
  be->swiglu_fwd = bf16_swiglu_fwd;
  be->swiglu_bwd = bf16_swiglu_bwd;
  be->quick_gelu_fwd = bf16_quick_gelu_fwd;
  be->quick_gelu_bwd = bf16_quick_gelu_bwd;
  be->gelu_fwd = bf16_gelu_fwd;
  be->gelu_bwd = bf16_gelu_bwd;
  be->rope_fwd = bf16_rope_fwd;
  be->rope_bwd = bf16_rope_bwd;
  be->attention_fwd = bf16_attention_fwd;
  be->attention_bwd = bf16_attention_bwd;
  be->attention_cached = bf16_attention_cached;
  be->copy_rows = bf16_copy_rows;
  be->embedding_fwd = bf16_embedding_fwd;
  be->embedding_bwd = bf16_embedding_bwd;
  be->scatter_rows_fwd = bf16_scatter_rows_fwd;
  be->scatter_rows_bwd = bf16_scatter_rows_bwd;
  be->lm_head_ce = bf16_lm_head_ce;
  be->adamw = bf16_adamw;
  return be;
}
