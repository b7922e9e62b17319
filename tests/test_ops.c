// Every op of the CPU backend: finite-difference gradient checks of each backward against its forward
// (L = sum(out * R) for a fixed random R, evaluated in double, central differences), and value checks of the
// forwards against naive double-precision loops. Accumulated gradients start from random values and the
// check uses the difference; overwritten ones start as NaN. One line per check; exit 1 on any failure.
#include "backend.h"
#include "cpu/cpu.h"   // cpu_expf, the vectorizable exp the softmaxes and activations use
#include "testlib.h"
#include "util.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static lcc_backend *be;

// ---------------------------------------------------------------------------------------------------------
// buffers (random inputs: testlib)


static float *filled(size_t n, float value) {
  float *x = lcc_malloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++) x[i] = value;
  return x;
}

static float *dup(const float *x, size_t n) { return memcpy(lcc_malloc(n * sizeof(float)), x, n * sizeof(float)); }

static void sub_inplace(float *a, const float *b, size_t n) {   // a -= b: accumulated grad minus its start
  for (size_t i = 0; i < n; i++) a[i] -= b[i];
}

static double dot(const float *a, const float *b, size_t n) {
  double s = 0.0;
  for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
  return s;
}

// ---------------------------------------------------------------------------------------------------------
// checks

// ||a - ref|| / ||ref|| over n values.
static double rel_err(const float *a, const double *ref, size_t n) {
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < n; i++) {
    num += (a[i] - ref[i]) * (a[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  return den > 0.0 ? sqrt(num / den) : sqrt(num);
}

// Relative error of values a against a double reference.
static void check_values(const char *name, const float *a, const double *ref, size_t n, double tol) {
  check_tol(name, rel_err(a, ref, n), tol);
}

static void check_exact(const char *name, const void *a, const void *b, size_t bytes) {
  check(memcmp(a, b, bytes) == 0, name);
}

// Finite differences: the loss as a function of the buffers in ctx, and one buffer x[n] perturbed in place.
typedef double (*loss_fn)(void *ctx);

// Gradient tolerances: the relative error of the whole checked vector, and the worst coordinate relative to
// the largest gradient entry. The fp32 central differences measured here are good to about 1e-4, so a
// backward that is off by 1% in any part fails.
#define GRAD_TOL 2e-3
#define GRAD_TOL_COORD 4e-3

// Compares analytic[idx[k]] with central differences of f in x[idx[k]], for k < m.
static void check_grad_at(const char *name, loss_fn f, void *ctx, float *x, const float *analytic,
                          const size_t *idx, size_t m, float h) {
  double *num = lcc_malloc(m * sizeof(double));
  float *a = lcc_malloc(m * sizeof(float));
  for (size_t k = 0; k < m; k++) {
    size_t i = idx[k];
    float x0 = x[i];
    x[i] = x0 + h;
    double lp = f(ctx);
    x[i] = x0 - h;
    double lm = f(ctx);
    x[i] = x0;
    num[k] = (lp - lm) / ((double)(x0 + h) - (double)(x0 - h));   // the step actually taken in fp32
    a[k] = analytic[i];
  }
  double worst = 0.0, scale = 0.0;
  for (size_t k = 0; k < m; k++) {
    worst = fmax(worst, fabs(a[k] - num[k]));
    scale = fmax(scale, fabs(num[k]));
  }
  char line[128];
  snprintf(line, sizeof line, "%s (%zu coords)", name, m);
  check_tol(line, rel_err(a, num, m), GRAD_TOL);
  snprintf(line, sizeof line, "%s worst coord / max|g|", name);
  check_tol(line, scale > 0.0 ? worst / scale : worst, GRAD_TOL_COORD);
  free(num);
  free(a);
}

// Every coordinate of x[n].
static void check_grad(const char *name, loss_fn f, void *ctx, float *x, const float *analytic, size_t n,
                       float h) {
  size_t *idx = lcc_malloc(n * sizeof(size_t));
  for (size_t i = 0; i < n; i++) idx[i] = i;
  check_grad_at(name, f, ctx, x, analytic, idx, n, h);
  free(idx);
}

// ---------------------------------------------------------------------------------------------------------
// linear

typedef struct {
  float *out, *inp, *w, *b, *R;   // [N,OC], [N,C], [OC,C], [OC] or NULL, [N,OC]
  int N, C, OC;
} linear_ctx;

static double linear_loss(void *p) {
  linear_ctx *c = p;
  be->linear_fwd(be, c->out, c->inp, c->w, c->b, c->N, c->C, c->OC);
  return dot(c->out, c->R, (size_t)c->N * c->OC);
}

static void test_linear_grad(int with_bias) {
  int N = 6, C = 5, OC = 7;
  linear_ctx c = {filled((size_t)N * OC, 0), test_randn((size_t)N * C, 1), test_randn((size_t)OC * C, 1),
                  with_bias ? test_randn(OC, 1) : NULL, test_randn((size_t)N * OC, 1), N, C, OC};
  float *dinp = filled((size_t)N * C, NAN), *dw0 = test_randn((size_t)OC * C, 1), *dw = dup(dw0, (size_t)OC * C);
  float *db0 = test_randn(OC, 1), *db = dup(db0, OC);
  be->linear_bwd(be, dinp, dw, with_bias ? db : NULL, c.R, c.inp, c.w, N, C, OC);
  sub_inplace(dw, dw0, (size_t)OC * C);
  sub_inplace(db, db0, OC);
  const char *tag = with_bias ? "linear+bias" : "linear";
  char name[64];
  snprintf(name, sizeof name, "%s dinp", tag);
  check_grad(name, linear_loss, &c, c.inp, dinp, (size_t)N * C, 1e-2f);
  snprintf(name, sizeof name, "%s dw", tag);
  check_grad(name, linear_loss, &c, c.w, dw, (size_t)OC * C, 1e-2f);
  if (with_bias) check_grad("linear+bias db", linear_loss, &c, c.b, db, OC, 1e-2f);
  free(c.out), free(c.inp), free(c.w), free(c.b), free(c.R), free(dinp), free(dw0), free(dw), free(db0), free(db);
}

// Forward and backward against naive loops, at sizes that split every GEMM (fwd: B transposed, dinp: none,
// dw: A transposed) into several cpu_gemm tiles.
static void test_linear_values(void) {
  int N = 150, C = 70, OC = 130;
  float *inp = test_randn((size_t)N * C, 1), *w = test_randn((size_t)OC * C, 1), *b = test_randn(OC, 1);
  float *dout = test_randn((size_t)N * OC, 1), *out = filled((size_t)N * OC, NAN);
  float *dinp = filled((size_t)N * C, NAN), *dw = filled((size_t)OC * C, 0), *db = filled(OC, 0);
  double *ref_out = calloc((size_t)N * OC, sizeof(double)), *ref_dinp = calloc((size_t)N * C, sizeof(double));
  double *ref_dw = calloc((size_t)OC * C, sizeof(double)), *ref_db = calloc(OC, sizeof(double));
  for (int n = 0; n < N; n++) {
    for (int o = 0; o < OC; o++) {
      double s = b[o];
      for (int i = 0; i < C; i++) s += (double)inp[n * C + i] * w[o * C + i];
      ref_out[n * OC + o] = s;
      double g = dout[n * OC + o];
      ref_db[o] += g;
      for (int i = 0; i < C; i++) {
        ref_dinp[n * C + i] += g * w[o * C + i];
        ref_dw[o * C + i] += g * inp[n * C + i];
      }
    }
  }
  be->linear_fwd(be, out, inp, w, b, N, C, OC);
  be->linear_bwd(be, dinp, dw, db, dout, inp, w, N, C, OC);
  check_values("linear fwd vs naive", out, ref_out, (size_t)N * OC, 1e-5);
  check_values("linear dinp vs naive", dinp, ref_dinp, (size_t)N * C, 1e-5);
  check_values("linear dw vs naive", dw, ref_dw, (size_t)OC * C, 1e-5);
  check_values("linear db vs naive", db, ref_db, OC, 1e-5);
  // NULL outputs are skipped: dw must not change
  float *dw_before = dup(dw, (size_t)OC * C);
  be->linear_bwd(be, dinp, NULL, NULL, dout, inp, w, N, C, OC);
  check_exact("linear bwd dw=NULL leaves dw", dw, dw_before, (size_t)OC * C * sizeof(float));
  free(inp), free(w), free(b), free(dout), free(out), free(dinp), free(dw), free(db), free(dw_before);
  free(ref_out), free(ref_dinp), free(ref_dw), free(ref_db);
}

// ---------------------------------------------------------------------------------------------------------
// norms

typedef struct {
  float *out, *mean, *rstd, *inp, *w, *b, *R;   // [N,C], [N], [N], [N,C], [C], [C] (layernorm), [N,C]
  int N, C;
} norm_ctx;

static const float norm_eps = 1e-6f;

static double rmsnorm_loss(void *p) {
  norm_ctx *c = p;
  be->rmsnorm_fwd(be, c->out, c->rstd, c->inp, c->w, c->N, c->C, norm_eps);
  return dot(c->out, c->R, (size_t)c->N * c->C);
}

static double layernorm_loss(void *p) {
  norm_ctx *c = p;
  be->layernorm_fwd(be, c->out, c->mean, c->rstd, c->inp, c->w, c->b, c->N, c->C, norm_eps);
  return dot(c->out, c->R, (size_t)c->N * c->C);
}

static norm_ctx norm_ctx_new(int N, int C) {
  norm_ctx c = {filled((size_t)N * C, 0), filled(N, 0), filled(N, 0), test_randn((size_t)N * C, 1), test_randn(C, 1),
                test_randn(C, 1), test_randn((size_t)N * C, 1), N, C};
  for (int i = 0; i < N * C; i++) c.inp[i] += 0.5f;   // a nonzero mean, so LayerNorm's centering matters
  return c;
}

static void norm_ctx_free(norm_ctx *c) {
  free(c->out), free(c->mean), free(c->rstd), free(c->inp), free(c->w), free(c->b), free(c->R);
}

static void test_rmsnorm(void) {
  int N = 5, C = 12;
  norm_ctx c = norm_ctx_new(N, C);
  rmsnorm_loss(&c);
  float *dinp0 = test_randn((size_t)N * C, 1), *dinp = dup(dinp0, (size_t)N * C);
  float *dw0 = test_randn(C, 1), *dw = dup(dw0, C);
  be->rmsnorm_bwd(be, dinp, dw, c.R, c.inp, c.w, c.rstd, N, C);
  sub_inplace(dinp, dinp0, (size_t)N * C);
  sub_inplace(dw, dw0, C);
  check_grad("rmsnorm dinp", rmsnorm_loss, &c, c.inp, dinp, (size_t)N * C, 1e-2f);
  check_grad("rmsnorm dw", rmsnorm_loss, &c, c.w, dw, C, 1e-2f);
  double *ref = lcc_malloc((size_t)N * C * sizeof(double));
  for (int n = 0; n < N; n++) {
    double ss = 0.0;
    for (int i = 0; i < C; i++) ss += (double)c.inp[n * C + i] * c.inp[n * C + i];
    double r = 1.0 / sqrt(ss / C + norm_eps);
    for (int i = 0; i < C; i++) ref[n * C + i] = c.w[i] * c.inp[n * C + i] * r;
  }
  rmsnorm_loss(&c);
  check_values("rmsnorm fwd vs naive", c.out, ref, (size_t)N * C, 1e-6);
  free(ref), free(dinp0), free(dinp), free(dw0), free(dw);
  norm_ctx_free(&c);
}

static void test_layernorm(void) {
  int N = 5, C = 12;
  norm_ctx c = norm_ctx_new(N, C);
  layernorm_loss(&c);
  float *dinp0 = test_randn((size_t)N * C, 1), *dinp = dup(dinp0, (size_t)N * C);
  float *dw0 = test_randn(C, 1), *dw = dup(dw0, C), *db0 = test_randn(C, 1), *db = dup(db0, C);
  be->layernorm_bwd(be, dinp, dw, db, c.R, c.inp, c.w, c.mean, c.rstd, N, C);
  sub_inplace(dinp, dinp0, (size_t)N * C);
  sub_inplace(dw, dw0, C);
  sub_inplace(db, db0, C);
  check_grad("layernorm dinp", layernorm_loss, &c, c.inp, dinp, (size_t)N * C, 1e-2f);
  check_grad("layernorm dw", layernorm_loss, &c, c.w, dw, C, 1e-2f);
  check_grad("layernorm db", layernorm_loss, &c, c.b, db, C, 1e-2f);
  double *ref = lcc_malloc((size_t)N * C * sizeof(double));
  for (int n = 0; n < N; n++) {
    double mu = 0.0, var = 0.0;
    for (int i = 0; i < C; i++) mu += c.inp[n * C + i] / (double)C;
    for (int i = 0; i < C; i++) var += (c.inp[n * C + i] - mu) * (c.inp[n * C + i] - mu) / C;
    for (int i = 0; i < C; i++) ref[n * C + i] = (c.inp[n * C + i] - mu) / sqrt(var + norm_eps) * c.w[i] + c.b[i];
  }
  layernorm_loss(&c);
  check_values("layernorm fwd vs naive", c.out, ref, (size_t)N * C, 1e-6);
  free(ref), free(dinp0), free(dinp), free(dw0), free(dw), free(db0), free(db);
  norm_ctx_free(&c);
}

// ---------------------------------------------------------------------------------------------------------
// elementwise

typedef struct {
  float *out, *inp, *R;
  size_t n;      // elements of inp
  int N, I;      // swiglu: inp [N, 2I], out [N, I]
  int which;     // 0 swiglu, 1 quick_gelu, 2 gelu
} elem_ctx;

static double elem_loss(void *p) {
  elem_ctx *c = p;
  size_t n_out = c->which == 0 ? (size_t)c->N * c->I : c->n;
  if (c->which == 0) be->swiglu_fwd(be, c->out, c->inp, c->N, c->I);
  if (c->which == 1) be->quick_gelu_fwd(be, c->out, c->inp, c->n);
  if (c->which == 2) be->gelu_fwd(be, c->out, c->inp, c->n);
  return dot(c->out, c->R, n_out);
}

static void test_elementwise(void) {
  const char *names[3] = {"swiglu dgu", "quick_gelu dinp", "gelu dinp"};
  int N = 4, I = 6;
  for (int which = 0; which < 3; which++) {
    size_t n = which == 0 ? (size_t)N * 2 * I : 60, n_out = which == 0 ? (size_t)N * I : n;
    elem_ctx c = {filled(n_out, 0), test_randn(n, 1.5f), test_randn(n_out, 1), n, N, I, which};
    float *dinp = filled(n, NAN);
    if (which == 0) be->swiglu_bwd(be, dinp, c.R, c.inp, N, I);
    if (which == 1) be->quick_gelu_bwd(be, dinp, c.R, c.inp, n);
    if (which == 2) be->gelu_bwd(be, dinp, c.R, c.inp, n);
    check_grad(names[which], elem_loss, &c, c.inp, dinp, n, 1e-2f);
    // forward against the formula in double
    double *ref = lcc_malloc(n_out * sizeof(double));
    for (size_t i = 0; i < n_out; i++) {
      if (which == 0) {
        double a = c.inp[(i / I) * 2 * I + i % I], u = c.inp[(i / I) * 2 * I + I + i % I];
        ref[i] = a / (1.0 + exp(-a)) * u;
      } else {
        double x = c.inp[i];
        ref[i] = which == 1 ? x / (1.0 + exp(-1.702 * x)) : 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
      }
    }
    elem_loss(&c);
    char name[64];
    snprintf(name, sizeof name, "%.*s fwd vs formula", (int)(strchr(names[which], ' ') - names[which]), names[which]);
    check_values(name, c.out, ref, n_out, 1e-6);
    free(ref), free(dinp), free(c.out), free(c.inp), free(c.R);
  }
  // add is exact
  float *a = test_randn(1000, 1), *b = test_randn(1000, 1), *out = filled(1000, NAN), *ref = filled(1000, 0);
  for (int i = 0; i < 1000; i++) ref[i] = a[i] + b[i];
  be->add(be, out, a, b, 1000);
  check_exact("add", out, ref, sizeof(float) * 1000);
  free(a), free(b), free(out), free(ref);
}

// ---------------------------------------------------------------------------------------------------------
// rope

typedef struct {
  float *qkv, *work, *cos, *sin, *R;   // [T,(Hq+2Hkv)D] x2, [T,D/2] x2, [T,(Hq+2Hkv)D]
  int T, Hq, Hkv, D;
} rope_ctx;

static double rope_loss(void *p) {
  rope_ctx *c = p;
  size_t n = (size_t)c->T * (c->Hq + 2 * c->Hkv) * c->D;
  memcpy(c->work, c->qkv, n * sizeof(float));
  be->rope_fwd(be, c->work, c->cos, c->sin, c->T, c->Hq, c->Hkv, c->D);
  return dot(c->work, c->R, n);
}

static void test_rope(void) {
  int T = 5, Hq = 4, Hkv = 2, D = 8, half = D / 2, row = (Hq + 2 * Hkv) * D;
  size_t n = (size_t)T * row;
  rope_ctx c = {test_randn(n, 1), filled(n, 0), filled((size_t)T * half, 0), filled((size_t)T * half, 0), test_randn(n, 1),
                T, Hq, Hkv, D};
  for (int i = 0; i < T * half; i++) {
    double theta = 10.0 * test_rand_uniform();
    c.cos[i] = (float)cos(theta);
    c.sin[i] = (float)sin(theta);
  }
  float *dqkv = dup(c.R, n);
  be->rope_bwd(be, dqkv, c.cos, c.sin, T, Hq, Hkv, D);
  check_grad("rope bwd = transpose of fwd (dqkv)", rope_loss, &c, c.qkv, dqkv, n, 1e-2f);
  // forward against the formula: q and k heads rotated, v heads untouched
  double *ref = lcc_malloc(n * sizeof(double));
  for (int t = 0; t < T; t++) {
    for (int h = 0; h < Hq + 2 * Hkv; h++) {
      const float *x = c.qkv + (size_t)t * row + h * D;
      double *y = ref + (size_t)t * row + h * D;
      for (int i = 0; i < half; i++) {
        double cs = c.cos[t * half + i], sn = c.sin[t * half + i];
        int rotated = h < Hq + Hkv;
        y[i] = rotated ? x[i] * cs - x[i + half] * sn : x[i];
        y[i + half] = rotated ? x[i + half] * cs + x[i] * sn : x[i + half];
      }
    }
  }
  rope_loss(&c);
  check_values("rope fwd vs formula", c.work, ref, n, 1e-6);
  free(ref), free(dqkv), free(c.qkv), free(c.work), free(c.cos), free(c.sin), free(c.R);
}

// ---------------------------------------------------------------------------------------------------------
// attention

typedef struct {
  float *qkv, *out, *lse, *R;   // [T,(Hq+2Hkv)D], [T,Hq D], [Hq,T], [T,Hq D]
  const int32_t *cu;            // [n_seq + 1]
  int n_seq, T, Hq, Hkv, D, causal;
} attn_ctx;

static double attn_loss(void *p) {
  attn_ctx *c = p;
  be->attention_fwd(be, c->out, c->lse, c->qkv, c->cu, c->n_seq, c->T, c->Hq, c->Hkv, c->D, c->causal);
  return dot(c->out, c->R, (size_t)c->T * c->Hq * c->D);
}

// softmax(q k^T / sqrt(D)) v by the definition, in double: out [T, Hq D], lse [Hq, T].
static void naive_attention(double *out, double *lse, const attn_ctx *c) {
  int row = (c->Hq + 2 * c->Hkv) * c->D, D = c->D, group = c->Hq / c->Hkv;
  double *s = lcc_malloc((size_t)c->T * sizeof(double));
  for (int q = 0; q < c->n_seq; q++) {
    int start = c->cu[q], end = c->cu[q + 1];
    for (int h = 0; h < c->Hq; h++) {
      int j = h / group;
      for (int i = start; i < end; i++) {
        int last = c->causal ? i + 1 : end;
        double mx = -INFINITY, sum = 0.0;
        for (int k = start; k < last; k++) {
          double d = 0.0;
          for (int e = 0; e < D; e++) d += (double)c->qkv[i * row + h * D + e] * c->qkv[k * row + (c->Hq + j) * D + e];
          s[k] = d / sqrt((double)D);
          mx = fmax(mx, s[k]);
        }
        for (int k = start; k < last; k++) sum += exp(s[k] - mx);
        lse[h * c->T + i] = mx + log(sum);
        for (int e = 0; e < D; e++) {
          double o = 0.0;
          for (int k = start; k < last; k++) o += exp(s[k] - mx) / sum * c->qkv[k * row + (c->Hq + c->Hkv + j) * D + e];
          out[(size_t)i * c->Hq * D + h * D + e] = o;
        }
      }
    }
  }
  free(s);
}

// n_sample: random coordinates per part (dq, dk, dv); 0 checks them all.
static void test_attention(const char *tag, const int32_t *cu, int n_seq, int Hq, int Hkv, int D, int causal,
                           size_t n_sample) {
  int T = cu[n_seq], row = (Hq + 2 * Hkv) * D;
  size_t n = (size_t)T * row, n_out = (size_t)T * Hq * D;
  attn_ctx c = {test_randn(n, 1), filled(n_out, 0), filled((size_t)Hq * T, 0), test_randn(n_out, 1), cu, n_seq, T, Hq, Hkv,
                D, causal};
  attn_loss(&c);
  double *ref_out = lcc_malloc(n_out * sizeof(double)), *ref_lse = lcc_malloc((size_t)Hq * T * sizeof(double));
  naive_attention(ref_out, ref_lse, &c);
  char name[96];
  snprintf(name, sizeof name, "attention %s fwd vs naive", tag);
  check_values(name, c.out, ref_out, n_out, 1e-5);
  snprintf(name, sizeof name, "attention %s lse vs naive", tag);
  check_values(name, c.lse, ref_lse, (size_t)Hq * T, 1e-5);
  float *dqkv = filled(n, NAN);
  be->attention_bwd(be, dqkv, c.R, c.qkv, c.out, c.lse, cu, n_seq, T, Hq, Hkv, D, causal);
  // dq, dk, dv checked apart, so an error in a small part is not hidden by the others
  static const char *part_names[3] = {"dq", "dk", "dv"};
  int part_lo[3] = {0, Hq * D, (Hq + Hkv) * D}, part_hi[3] = {Hq * D, (Hq + Hkv) * D, row};
  size_t *idx = lcc_malloc(n * sizeof(size_t));
  for (int p = 0; p < 3; p++) {
    size_t m = 0, part = (size_t)T * (part_hi[p] - part_lo[p]);
    if (n_sample && n_sample < part) {   // random coordinates of the part
      for (; m < n_sample; m++) {
        size_t k = test_rand_u32() % part;
        idx[m] = k / (part_hi[p] - part_lo[p]) * row + part_lo[p] + k % (part_hi[p] - part_lo[p]);
      }
    } else {
      for (int t = 0; t < T; t++) {
        for (int col = part_lo[p]; col < part_hi[p]; col++) idx[m++] = (size_t)t * row + col;
      }
    }
    snprintf(name, sizeof name, "attention %s %s", tag, part_names[p]);
    check_grad_at(name, attn_loss, &c, c.qkv, dqkv, idx, m, 1e-2f);
  }
  free(idx), free(ref_out), free(ref_lse), free(dqkv), free(c.qkv), free(c.out), free(c.lse), free(c.R);
}

// ---------------------------------------------------------------------------------------------------------
// embedding and scatter_rows

typedef struct {
  float *out, *table, *R;   // [T,C], [V,C], [T,C]
  const int32_t *ids;       // [T]
  int T, C;
} embed_ctx;

static double embed_loss(void *p) {
  embed_ctx *c = p;
  be->embedding_fwd(be, c->out, c->ids, c->table, c->T, c->C);
  return dot(c->out, c->R, (size_t)c->T * c->C);
}

static void test_embedding(void) {
  static const int32_t ids[9] = {3, 0, 3, 6, 1, 3, 0, 5, 2};   // repeated ids sum their rows
  int V = 7, C = 5, T = 9;
  embed_ctx c = {filled((size_t)T * C, 0), test_randn((size_t)V * C, 1), test_randn((size_t)T * C, 1), ids, T, C};
  float *dt0 = test_randn((size_t)V * C, 1), *dt = dup(dt0, (size_t)V * C);
  be->embedding_bwd(be, dt, ids, c.R, T, C);
  sub_inplace(dt, dt0, (size_t)V * C);
  check_grad("embedding dtable", embed_loss, &c, c.table, dt, (size_t)V * C, 1e-2f);
  float *ref = filled((size_t)T * C, 0);
  for (int t = 0; t < T; t++) memcpy(ref + t * C, c.table + ids[t] * C, C * sizeof(float));
  embed_loss(&c);
  check_exact("embedding fwd = gathered rows", c.out, ref, (size_t)T * C * sizeof(float));
  free(ref), free(dt0), free(dt), free(c.out), free(c.table), free(c.R);
}

typedef struct {
  float *x0, *x, *feats, *R;   // [T,C] input, [T,C] output, [M,C], [T,C]
  const int32_t *rows;         // [M]
  int T, M, C;
} scatter_ctx;

static double scatter_loss(void *p) {
  scatter_ctx *c = p;
  memcpy(c->x, c->x0, (size_t)c->T * c->C * sizeof(float));
  be->scatter_rows_fwd(be, c->x, c->feats, c->rows, c->M, c->C);
  return dot(c->x, c->R, (size_t)c->T * c->C);
}

static void test_scatter_rows(void) {
  static const int32_t rows[3] = {6, 1, 3};
  int T = 8, M = 3, C = 5;
  scatter_ctx c = {test_randn((size_t)T * C, 1), filled((size_t)T * C, 0), test_randn((size_t)M * C, 1),
                   test_randn((size_t)T * C, 1), rows, T, M, C};
  float *dfeats = filled((size_t)M * C, NAN), *dx = dup(c.R, (size_t)T * C);
  be->scatter_rows_bwd(be, dfeats, dx, rows, M, C);
  check_grad("scatter_rows dfeats", scatter_loss, &c, c.feats, dfeats, (size_t)M * C, 1e-2f);
  check_grad("scatter_rows dx", scatter_loss, &c, c.x0, dx, (size_t)T * C, 1e-2f);
  float *ref_dfeats = filled((size_t)M * C, 0), *ref_dx = dup(c.R, (size_t)T * C);
  for (int m = 0; m < M; m++) {
    memcpy(ref_dfeats + m * C, c.R + rows[m] * C, C * sizeof(float));
    memset(ref_dx + rows[m] * C, 0, C * sizeof(float));
  }
  check_exact("scatter_rows dfeats = gathered dx rows", dfeats, ref_dfeats, (size_t)M * C * sizeof(float));
  check_exact("scatter_rows dx rows zeroed, others kept", dx, ref_dx, (size_t)T * C * sizeof(float));
  float *ref_x = dup(c.x0, (size_t)T * C);
  for (int m = 0; m < M; m++) memcpy(ref_x + rows[m] * C, c.feats + m * C, C * sizeof(float));
  scatter_loss(&c);
  check_exact("scatter_rows fwd", c.x, ref_x, (size_t)T * C * sizeof(float));
  free(ref_x), free(ref_dfeats), free(ref_dx), free(dfeats), free(dx), free(c.x0), free(c.x), free(c.feats), free(c.R);
}

// ---------------------------------------------------------------------------------------------------------
// lm_head_ce

typedef struct {
  float *losses, *x, *w, *weights;   // [T], [T,C], [V,C], [T]
  int32_t *targets;                  // [T]
  int T, C, V;
} ce_ctx;

static double ce_loss(void *p) {
  ce_ctx *c = p;
  be->lm_head_ce(be, c->losses, NULL, NULL, c->x, c->w, c->targets, c->weights, c->T, c->C, c->V);
  return dot(c->losses, c->weights, c->T);
}

static ce_ctx ce_ctx_new(int T, int C, int V) {
  ce_ctx c = {filled(T, NAN), test_randn((size_t)T * C, 1), test_randn((size_t)V * C, 0.5f), filled(T, 0),
              lcc_malloc((size_t)T * sizeof(int32_t)), T, C, V};
  for (int t = 0; t < T; t++) {
    c.targets[t] = t % 4 == 1 ? -100 : (int32_t)(test_rand_u32() % V);   // every 4th row ignored
    c.weights[t] = (float)(0.2 + test_rand_uniform());
  }
  return c;
}

static void ce_ctx_free(ce_ctx *c) { free(c->losses), free(c->x), free(c->w), free(c->weights), free(c->targets); }

// Losses and gradients from full [T, V] logits in double.
static void naive_ce(const ce_ctx *c, double *losses, double *dx, double *dw) {
  int C = c->C, V = c->V;
  double *logits = lcc_malloc((size_t)V * sizeof(double));
  memset(dx, 0, (size_t)c->T * C * sizeof(double));
  memset(dw, 0, (size_t)V * C * sizeof(double));
  for (int t = 0; t < c->T; t++) {
    losses[t] = 0.0;
    if (c->targets[t] < 0) continue;
    double mx = -INFINITY, sum = 0.0;
    for (int v = 0; v < V; v++) {
      logits[v] = 0.0;
      for (int i = 0; i < C; i++) logits[v] += (double)c->x[t * C + i] * c->w[v * C + i];
      mx = fmax(mx, logits[v]);
    }
    for (int v = 0; v < V; v++) sum += exp(logits[v] - mx);
    losses[t] = mx + log(sum) - logits[c->targets[t]];
    for (int v = 0; v < V; v++) {
      double g = c->weights[t] * (exp(logits[v] - mx) / sum - (v == c->targets[t]));
      for (int i = 0; i < C; i++) {
        dx[t * C + i] += g * c->w[v * C + i];
        dw[v * C + i] += g * c->x[t * C + i];
      }
    }
  }
  free(logits);
}

static void test_lm_head_ce_grad(void) {
  int T = 10, C = 8, V = 40;
  ce_ctx c = ce_ctx_new(T, C, V);
  float *dx = filled((size_t)T * C, NAN), *dw0 = test_randn((size_t)V * C, 1), *dw = dup(dw0, (size_t)V * C);
  be->lm_head_ce(be, c.losses, dx, dw, c.x, c.w, c.targets, c.weights, T, C, V);
  sub_inplace(dw, dw0, (size_t)V * C);
  check_grad("lm_head_ce dx", ce_loss, &c, c.x, dx, (size_t)T * C, 1e-2f);
  check_grad("lm_head_ce dw", ce_loss, &c, c.w, dw, (size_t)V * C, 1e-2f);
  int zero_ok = 1;
  for (int t = 0; t < T; t++) {
    for (int i = 0; i < C && c.targets[t] < 0; i++) zero_ok &= dx[t * C + i] == 0.0f;
    zero_ok &= c.targets[t] >= 0 || c.losses[t] == 0.0f;
  }
  check(zero_ok, "lm_head_ce ignored rows: dx = 0, loss = 0");
  free(dx), free(dw0), free(dw);
  ce_ctx_free(&c);
}

// More rows with a target (300) than one chunk (256), against full logits.
static void test_lm_head_ce_values(void) {
  int T = 400, C = 16, V = 50;
  ce_ctx c = ce_ctx_new(T, C, V);
  float *dx = filled((size_t)T * C, NAN), *dw = filled((size_t)V * C, 0);
  double *ref_losses = lcc_malloc((size_t)T * sizeof(double)), *ref_dx = lcc_malloc((size_t)T * C * sizeof(double));
  double *ref_dw = lcc_malloc((size_t)V * C * sizeof(double));
  be->lm_head_ce(be, c.losses, dx, dw, c.x, c.w, c.targets, c.weights, T, C, V);
  naive_ce(&c, ref_losses, ref_dx, ref_dw);
  check_values("lm_head_ce losses vs full logits", c.losses, ref_losses, T, 1e-6);
  check_values("lm_head_ce dx vs full logits", dx, ref_dx, (size_t)T * C, 1e-5);
  check_values("lm_head_ce dw vs full logits", dw, ref_dw, (size_t)V * C, 1e-5);
  free(dx), free(dw), free(ref_losses), free(ref_dx), free(ref_dw);
  ce_ctx_free(&c);
}

// ---------------------------------------------------------------------------------------------------------
// optimizer and gradient utilities

static void test_adamw(void) {
  size_t n = 37;
  float lr = 1e-2f, b1 = 0.9f, b2 = 0.95f, eps = 1e-8f, wd = 0.1f, gs = 0.5f;
  float *p = test_randn(n, 1), *m = filled(n, 0), *v = filled(n, 0);
  double *rp = lcc_malloc(n * sizeof(double)), *rm = calloc(n, sizeof(double)), *rv = calloc(n, sizeof(double));
  for (size_t i = 0; i < n; i++) rp[i] = p[i];
  for (int step = 1; step <= 3; step++) {
    float *g = test_randn(n, 1);
    be->adamw(be, p, NULL, g, m, v, n, lr, b1, b2, eps, wd, step, gs);
    for (size_t i = 0; i < n; i++) {   // torch.optim.AdamW, in double
      double gi = (double)g[i] * gs;
      rm[i] = b1 * rm[i] + (1.0 - b1) * gi;
      rv[i] = b2 * rv[i] + (1.0 - b2) * gi * gi;
      rp[i] *= 1.0 - (double)lr * wd;
      double mhat = rm[i] / (1.0 - pow(b1, step)), vhat = rv[i] / (1.0 - pow(b2, step));
      rp[i] -= lr * mhat / (sqrt(vhat) + eps);
    }
    free(g);
  }
  check_values("adamw param after 3 steps vs double", p, rp, n, 1e-6);
  check_values("adamw m after 3 steps vs double", m, rm, n, 1e-6);
  check_values("adamw v after 3 steps vs double", v, rv, n, 1e-6);
  free(p), free(m), free(v), free(rp), free(rm), free(rv);
}

static void test_expf(void) {
  double worst = 0.0;
  for (int i = 0; i <= 2000000; i++) {
    float x = -87.0f + 175.0f * (float)i / 2000000;
    worst = fmax(worst, fabs(cpu_expf(x) - exp((double)x)) / exp((double)x));
  }
  check_tol("cpu_expf relative error on [-87, 88]", worst, 3e-7);
  check(cpu_expf(-100.0f) == 0.0f && isinf(cpu_expf(100.0f)) && cpu_expf(0.0f) == 1.0f,
        "cpu_expf limits: 0 below -87, inf above 88");
}

static void test_utilities(void) {
  size_t n = 100003;
  float *x = test_randn(n, 1), *y = dup(x, n);
  double ref = 0.0;
  for (size_t i = 0; i < n; i++) ref += (double)x[i] * x[i];
  check_tol("sum_squares vs double", fabs(be->sum_squares(be, x, n) - ref) / ref, 1e-12);
  be->scale(be, y, 0.37f, n);
  for (size_t i = 0; i < n; i++) x[i] *= 0.37f;
  check_exact("scale", y, x, n * sizeof(float));
  // memory: zero-filled, aligned, copies and casts round-trip
  float *buf = be->alloc(be, 1001 * sizeof(float)), *back = filled(1001, NAN);
  int zero = ((uintptr_t)buf % 64) == 0;
  for (int i = 0; i < 1001; i++) zero &= buf[i] == 0.0f;
  check(zero, "alloc: zero-filled, 64-byte aligned");
  be->to_act(be, buf, x, 1001);
  be->from_act(be, back, buf, 1001);
  check_exact("to_act/from_act round trip", back, x, 1001 * sizeof(float));
  be->free(be, buf);
  // add_f32, copy_rows, release
  float *a = test_randn(n, 1), *b = test_randn(n, 1), *sum = dup(a, n);
  be->add_f32(be, sum, b, n);
  int ok = 1;
  for (size_t i = 0; i < n; i++) ok &= sum[i] == a[i] + b[i];
  check(ok, "add_f32");
  float *dst = filled(7 * 9, -1.0f);
  be->copy_rows(be, dst + 2, 9, a, 11, 7, 5);   // a 7x5 block from rows 11 apart into rows 9 apart
  ok = 1;
  for (int r = 0; r < 7; r++)
    for (int c = 0; c < 9; c++) ok &= dst[r * 9 + c] == (c >= 2 && c < 7 ? a[r * 11 + c - 2] : -1.0f);
  check(ok, "copy_rows");
  float *big = be->alloc(be, n * sizeof(float));
  memcpy(big, a, n * sizeof(float));
  be->release(be, big + 3, (n - 10) * sizeof(float));   // not page aligned at either end
  ok = 1;
  for (size_t i = 0; i < n; i++) ok &= big[i] == (i >= 3 && i < n - 7 ? 0.0f : a[i]);
  check(ok, "release: the range reads as zero, the rest is kept");
  be->free(be, big);
  free(x), free(y), free(back), free(a), free(b), free(sum), free(dst);
}

// Attention of the last Tn rows against a cache equals the causal attention of the whole sequence there.
static void test_attention_cached(int Tc, int Tn, int Hq, int Hkv, int D) {
  const int row = (Hq + 2 * Hkv) * D, KV = Hkv * D;
  float *qkv = test_randn((size_t)Tc * row, 1), *lse = filled((size_t)Hq * Tc, 0), *full = filled((size_t)Tc * Hq * D, 0);
  float *kc = filled((size_t)Tc * KV, 0), *vc = filled((size_t)Tc * KV, 0), *out = filled((size_t)Tn * Hq * D, 0);
  const int32_t cu[2] = {0, Tc};
  be->attention_fwd(be, full, lse, qkv, cu, 1, Tc, Hq, Hkv, D, 1);
  be->copy_rows(be, kc, KV, qkv + Hq * D, row, Tc, KV);
  be->copy_rows(be, vc, KV, qkv + (Hq + Hkv) * D, row, Tc, KV);
  be->attention_cached(be, out, qkv + (size_t)(Tc - Tn) * row, row, kc, vc, Tn, Tc, Hq, Hkv, D);
  double *ref = lcc_malloc((size_t)Tn * Hq * D * sizeof(double));
  for (size_t i = 0; i < (size_t)Tn * Hq * D; i++) ref[i] = full[(size_t)(Tc - Tn) * Hq * D + i];
  char name[96];
  snprintf(name, sizeof name, "attention_cached Tn=%d of Tc=%d vs causal", Tn, Tc);
  check_values(name, out, ref, (size_t)Tn * Hq * D, 1e-6);
  free(qkv), free(lse), free(full), free(kc), free(vc), free(out), free(ref);
}

int main(void) {
  // One thread: these checks are about values, and test_determinism_ops shows every thread count gives the
  // same bits. (The finite differences make thousands of tiny parallel regions, which crawl when the
  // machine is busy with other work.)
  be = lcc_cpu_backend(1);
  test_linear_grad(0);
  test_linear_grad(1);
  test_linear_values();
  test_rmsnorm();
  test_layernorm();
  test_elementwise();
  test_rope();
  static const int32_t cu_small[3] = {0, 5, 12}, cu_small2[3] = {0, 7, 13}, cu_long[3] = {0, 70, 201};
  test_attention("causal GQA 4/2 D=8", cu_small, 2, 4, 2, 8, 1, 0);
  test_attention("non-causal GQA 4/2 D=16", cu_small2, 2, 4, 2, 16, 0, 0);
  test_attention("non-causal MHA 2/2 D=16", cu_small2, 2, 2, 2, 16, 0, 0);
  test_attention("causal GQA 4/2 D=16 multi-tile", cu_long, 2, 4, 2, 16, 1, 200);
  test_attention("non-causal GQA 4/2 D=16 multi-tile", cu_long, 2, 4, 2, 16, 0, 200);
  test_attention_cached(150, 1, 4, 2, 16);
  test_attention_cached(150, 70, 4, 2, 16);
  test_attention_cached(33, 33, 4, 4, 8);
  test_embedding();
  test_scatter_rows();
  test_lm_head_ce_grad();
  test_lm_head_ce_values();
  test_adamw();
  test_utilities();
  test_expf();
  be->destroy(be);
  return test_finish("test_ops");
}
