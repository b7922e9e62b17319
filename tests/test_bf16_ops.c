// The cpu-bf16 backend against the fp32 CPU backend. Every input is a bf16 value, so both backends see the
// same numbers; cpu-bf16 is defined as "the fp32 op, then one rounding of each act output", so its act outputs
// must equal the fp32 results rounded to bf16 (ties to even) bit for bit, and its fp32 outputs must equal the
// fp32 ones exactly. Checked for every op of the table:
//   - the rounding rule on chosen values (ties, carries, overflow, -0, inf, NaN), every bf16 value's round trip;
//   - the memory ops (bytes) and the fp32 utilities (pass-through);
//   - accumulation kept (norm dinp +=, dw/db +=), overwritten outputs fully written (they start as NaN),
//     absent optional arguments (NULL), strides (ldq, ld_dst/ld_src), in-place RoPE, aliasing in add;
//   - embedding, scatter and copy_rows exact on the 2-byte elements; adamw writes param_act = bf16(param);
//   - 1 and 2 threads give bit-identical results.
#include "backend.h"
#include "testlib.h"
#include "util.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static lcc_backend *f32, *b16;

// ---------------------------------------------------------------------------------------------------------
// bf16 by hand (written apart from the backend's bit trick: the dropped half compared with 0x8000)

static uint16_t bf(float x) {
  uint32_t u;
  memcpy(&u, &x, 4);
  if (isnan(x)) return (uint16_t)((u >> 16) | 0x40);
  uint32_t hi = u >> 16, lo = u & 0xffffu;
  if (lo > 0x8000u || (lo == 0x8000u && (hi & 1u))) hi++;   // nearest; a tie goes to the even neighbour
  return (uint16_t)hi;
}

static float fb(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float x;
  memcpy(&x, &u, 4);
  return x;
}

static float bits_f(uint32_t u) {
  float x;
  memcpy(&x, &u, 4);
  return x;
}

static int bf_isnan(uint16_t h) { return (h & 0x7f80) == 0x7f80 && (h & 0x7f); }

// One act tensor as both backends hold it: the same values as fp32 (cpu) and bf16 (cpu-bf16). After an op,
// f is the fp32 result and h the bf16 one.
typedef struct {
  float *f;      // [n]
  uint16_t *h;   // [n]
  size_t n;
} tensor;

static tensor t_rand(size_t n, float scale) {   // ~ N(0, scale^2), bf16 values
  tensor t = {test_randn(n, scale), lcc_malloc(n * 2), n};
  for (size_t i = 0; i < n; i++) t.h[i] = bf(t.f[i]), t.f[i] = fb(t.h[i]);
  return t;
}

static tensor t_nan(size_t n) {   // an overwritten output: NaN until written
  tensor t = {lcc_malloc(n * 4), lcc_malloc(n * 2), n};
  for (size_t i = 0; i < n; i++) t.f[i] = NAN, t.h[i] = 0x7fc0;
  return t;
}

// The bf16 result becomes both sides' input for the next op.
static void t_sync(tensor *t) {
  for (size_t i = 0; i < t->n; i++) t->f[i] = fb(t->h[i]);
}

static void t_free(tensor *t) { free(t->f), free(t->h); }

static float *dup(const float *x, size_t n) { return memcpy(lcc_malloc(n * 4), x, n * 4); }

// ---------------------------------------------------------------------------------------------------------
// checks

// h[n] == bf16(f[n]) bit for bit; the reference must be finite and not all zero, or the check proves nothing.
static void check_rounded(const char *what, const uint16_t *h, const float *f, size_t n) {
  size_t bad = n, nonfinite = 0, nonzero = 0;
  for (size_t i = 0; i < n; i++) {
    nonfinite += !isfinite(f[i]);
    nonzero += f[i] != 0.0f;
    if (h[i] != bf(f[i]) && bad == n) bad = i;
  }
  if (bad < n) fprintf(stderr, "  %s: [%zu] = 0x%04x, bf16(%.9g) = 0x%04x\n", what, bad, h[bad], f[bad], bf(f[bad]));
  checkf(bad == n && nonfinite == 0 && nonzero > 0, "%s: %zu values == bf16(fp32) (%zu non-finite, %zu non-zero)",
         what, n, nonfinite, nonzero);
}

static void check_t(const char *what, const tensor *t) { check_rounded(what, t->h, t->f, t->n); }

// fp32 outputs: identical to the fp32 backend's.
static void check_same(const char *what, const float *got, const float *ref, size_t n) {
  checkf(memcmp(got, ref, n * 4) == 0, "%s: %zu fp32 values identical", what, n);
}

// ---------------------------------------------------------------------------------------------------------
// rounding, memory, utilities

static void test_rounding(void) {
  static const struct { uint32_t in; uint16_t out; } cases[] = {
    {0x3f800000, 0x3f80},   // 1: exact
    {0x3f808000, 0x3f80},   // 1 + 2^-8: a tie, to the even 1
    {0x3f818000, 0x3f82},   // 1 + 3 2^-8: a tie between 1 + 2^-7 (odd) and 1 + 2^-6 (even)
    {0x3f808001, 0x3f81},   // just above the tie: up
    {0x3f807fff, 0x3f80},   // just below: down
    {0xbf808000, 0xbf80},   // -(1 + 2^-8): the tie, sign kept
    {0xbf818000, 0xbf82},
    {0x3fffffff, 0x4000},   // 2 - 2^-23: the carry walks into the exponent
    {0x7f7f7fff, 0x7f7f},   // below the largest bf16's upper tie: stays finite
    {0x7f7fffff, 0x7f80},   // FLT_MAX: past it, inf
    {0x80000000, 0x8000},   // -0
    {0x7f800000, 0x7f80},   // inf
    {0xff800000, 0xff80},   // -inf
    {0x00008000, 0x0000},   // subnormal tie, even neighbour 0
    {0x00018000, 0x0002},   // subnormal tie, 1 is odd: up to 2
  };
  enum { NC = sizeof cases / sizeof cases[0] };
  static const uint32_t nans[] = {0x7fc00000, 0x7f800001, 0xffffffff, 0x7fff0000, 0xff80ffff};
  enum { NN = sizeof nans / sizeof nans[0] };
  float x[NC + NN];
  uint16_t h[NC + NN];
  for (int i = 0; i < NC; i++) x[i] = bits_f(cases[i].in);
  for (int i = 0; i < NN; i++) x[NC + i] = bits_f(nans[i]);
  b16->to_act(b16, h, x, NC + NN);
  int ok = 1;
  for (int i = 0; i < NC; i++) {
    ok &= CHECKF(h[i] == cases[i].out, "to_act(0x%08x) = 0x%04x, want 0x%04x", cases[i].in, h[i], cases[i].out);
    ok &= CHECKF(bf(x[i]) == cases[i].out, "the test's bf(0x%08x) = 0x%04x, want 0x%04x", cases[i].in, bf(x[i]),
                 cases[i].out);
  }
  for (int i = 0; i < NN; i++) {
    ok &= CHECKF(bf_isnan(h[NC + i]) && (h[NC + i] >> 15) == (nans[i] >> 31), "to_act(NaN 0x%08x) = 0x%04x",
                 nans[i], h[NC + i]);
  }
  check(ok, "to_act: ties to even, carries, overflow to inf, -0, inf, NaN (sign kept, never inf)");

  // every bf16 value: widens to its bits << 16 and rounds back to itself (NaN to a NaN)
  uint16_t *all = lcc_malloc(65536 * 2), *back = lcc_malloc(65536 * 2);
  float *wide = lcc_malloc(65536 * 4);
  for (uint32_t i = 0; i < 65536; i++) all[i] = (uint16_t)i;
  b16->from_act(b16, wide, all, 65536);
  b16->to_act(b16, back, wide, 65536);
  size_t bad = 0;
  for (uint32_t i = 0; i < 65536; i++) {
    uint32_t u;
    memcpy(&u, &wide[i], 4);
    bad += u != i << 16 || (bf_isnan(all[i]) ? !bf_isnan(back[i]) : back[i] != all[i]);
  }
  checkf(bad == 0, "from_act/to_act: all 65536 bf16 values round-trip (%zu wrong)", bad);
  free(all), free(back), free(wide);

  const size_t n = 5000;   // arbitrary fp32 values, most not representable
  float *r = test_randn(n, 3.0f);
  uint16_t *rh = lcc_malloc(n * 2);
  b16->to_act(b16, rh, r, n);
  check_rounded("to_act: random fp32", rh, r, n);
  free(r), free(rh);
}

static void test_memory(void) {
  check(!strcmp(b16->name, "cpu-bf16") && b16->act_bytes == 2, "name cpu-bf16, act_bytes 2");
  const size_t bytes = 3 * 4096 + 100;
  uint8_t *host = lcc_malloc(bytes), *back = lcc_malloc(bytes);
  uint8_t *p = b16->alloc(b16, bytes), *q = b16->alloc(b16, bytes);
  int zero = 1;
  for (size_t i = 0; i < bytes; i++) zero &= p[i] == 0, host[i] = (uint8_t)(i * 7 + 1);
  b16->upload(b16, p, host, bytes);
  b16->copy(b16, q, p, bytes);
  b16->sync(b16);
  b16->download(b16, back, q, bytes);
  int same = !memcmp(back, host, bytes);
  b16->zero(b16, q + 10, 50);
  b16->release(b16, p + 1, bytes - 1);
  int zeroed = p[0] == host[0];
  for (size_t i = 1; i < bytes; i++) zeroed &= p[i] == 0;
  for (size_t i = 0; i < bytes; i++) zeroed &= q[i] == (i >= 10 && i < 60 ? 0 : host[i]);
  check(zero && same && zeroed, "alloc zero-fills; upload/copy/download/zero/release move bytes");
  b16->free(b16, p), b16->free(b16, q);
  free(host), free(back);
}

static void test_utilities(void) {
  const size_t n = 777;
  float *x = test_randn(n, 1), *a = test_randn(n, 1), *y = dup(x, n);
  check(b16->sum_squares(b16, x, n) == f32->sum_squares(f32, x, n), "sum_squares: as fp32");
  b16->scale(b16, x, 0.37f, n), f32->scale(f32, y, 0.37f, n);
  check_same("scale", x, y, n);
  b16->add_f32(b16, x, a, n), f32->add_f32(f32, y, a, n);
  check_same("add_f32", x, y, n);
  free(x), free(a), free(y);
}

// ---------------------------------------------------------------------------------------------------------
// linear, norms, elementwise

static void test_linear(void) {
  const int N = 9, C = 40, OC = 24;
  tensor x = t_rand((size_t)N * C, 1), w = t_rand((size_t)OC * C, 0.2f), b = t_rand(OC, 0.5f);
  tensor out = t_nan((size_t)N * OC);
  f32->linear_fwd(f32, out.f, x.f, w.f, b.f, N, C, OC);
  b16->linear_fwd(b16, out.h, x.h, w.h, b.h, N, C, OC);
  check_t("linear_fwd + bias", &out);
  f32->linear_fwd(f32, out.f, x.f, w.f, NULL, N, C, OC);
  b16->linear_fwd(b16, out.h, x.h, w.h, NULL, N, C, OC);
  check_t("linear_fwd, bias NULL", &out);

  tensor dout = t_rand((size_t)N * OC, 1), dinp = t_nan((size_t)N * C);
  float *dw = test_randn((size_t)OC * C, 1), *dw2 = dup(dw, (size_t)OC * C), *db = test_randn(OC, 1), *db2 = dup(db, OC);
  f32->linear_bwd(f32, dinp.f, dw, db, dout.f, x.f, w.f, N, C, OC);
  b16->linear_bwd(b16, dinp.h, dw2, db2, dout.h, x.h, w.h, N, C, OC);
  check_t("linear_bwd dinp (overwritten)", &dinp);
  check_same("linear_bwd dw +=", dw2, dw, (size_t)OC * C);
  check_same("linear_bwd dbias +=", db2, db, OC);
  f32->linear_bwd(f32, NULL, dw, NULL, dout.f, x.f, w.f, N, C, OC);   // frozen input: dinp NULL
  b16->linear_bwd(b16, NULL, dw2, NULL, dout.h, x.h, w.h, N, C, OC);
  check_same("linear_bwd dinp and dbias NULL: dw +=", dw2, dw, (size_t)OC * C);
  tensor dinp2 = t_nan((size_t)N * C);
  f32->linear_bwd(f32, dinp2.f, NULL, NULL, dout.f, x.f, w.f, N, C, OC);   // frozen weight: dw NULL
  b16->linear_bwd(b16, dinp2.h, NULL, NULL, dout.h, x.h, w.h, N, C, OC);
  check_t("linear_bwd dw and dbias NULL: dinp", &dinp2);
  t_free(&x), t_free(&w), t_free(&b), t_free(&out), t_free(&dout), t_free(&dinp), t_free(&dinp2);
  free(dw), free(dw2), free(db), free(db2);
}

static void test_rmsnorm(void) {
  const int N = 7, C = 72;
  tensor x = t_rand((size_t)N * C, 2), w = t_rand(C, 1), out = t_nan((size_t)N * C);
  float *rstd = lcc_malloc(N * 4), *rstd2 = lcc_malloc(N * 4);
  f32->rmsnorm_fwd(f32, out.f, rstd, x.f, w.f, N, C, 1e-6f);
  b16->rmsnorm_fwd(b16, out.h, rstd2, x.h, w.h, N, C, 1e-6f);
  check_t("rmsnorm_fwd out", &out);
  check_same("rmsnorm_fwd rstd", rstd2, rstd, N);

  tensor dout = t_rand((size_t)N * C, 1), dinp = t_rand((size_t)N * C, 1);   // dinp accumulates
  float *dw = test_randn(C, 1), *dw2 = dup(dw, C);
  f32->rmsnorm_bwd(f32, dinp.f, dw, dout.f, x.f, w.f, rstd, N, C);
  b16->rmsnorm_bwd(b16, dinp.h, dw2, dout.h, x.h, w.h, rstd, N, C);
  check_t("rmsnorm_bwd dinp +=", &dinp);
  check_same("rmsnorm_bwd dw +=", dw2, dw, C);
  t_sync(&dinp);
  f32->rmsnorm_bwd(f32, dinp.f, NULL, dout.f, x.f, w.f, rstd, N, C);
  b16->rmsnorm_bwd(b16, dinp.h, NULL, dout.h, x.h, w.h, rstd, N, C);
  check_t("rmsnorm_bwd dw NULL: dinp +=", &dinp);
  t_free(&x), t_free(&w), t_free(&out), t_free(&dout), t_free(&dinp);
  free(rstd), free(rstd2), free(dw), free(dw2);
}

static void test_layernorm(void) {
  const int N = 6, C = 80;
  tensor x = t_rand((size_t)N * C, 2), w = t_rand(C, 1), b = t_rand(C, 1), out = t_nan((size_t)N * C);
  float *mean = lcc_malloc(N * 4), *rstd = lcc_malloc(N * 4), *mean2 = lcc_malloc(N * 4), *rstd2 = lcc_malloc(N * 4);
  f32->layernorm_fwd(f32, out.f, mean, rstd, x.f, w.f, b.f, N, C, 1e-6f);
  b16->layernorm_fwd(b16, out.h, mean2, rstd2, x.h, w.h, b.h, N, C, 1e-6f);
  check_t("layernorm_fwd out", &out);
  check_same("layernorm_fwd mean", mean2, mean, N);
  check_same("layernorm_fwd rstd", rstd2, rstd, N);

  tensor dout = t_rand((size_t)N * C, 1), dinp = t_rand((size_t)N * C, 1);
  float *dw = test_randn(C, 1), *dw2 = dup(dw, C), *db = test_randn(C, 1), *db2 = dup(db, C);
  f32->layernorm_bwd(f32, dinp.f, dw, db, dout.f, x.f, w.f, mean, rstd, N, C);
  b16->layernorm_bwd(b16, dinp.h, dw2, db2, dout.h, x.h, w.h, mean, rstd, N, C);
  check_t("layernorm_bwd dinp +=", &dinp);
  check_same("layernorm_bwd dw +=", dw2, dw, C);
  check_same("layernorm_bwd db +=", db2, db, C);
  t_sync(&dinp);
  f32->layernorm_bwd(f32, dinp.f, NULL, NULL, dout.f, x.f, w.f, mean, rstd, N, C);
  b16->layernorm_bwd(b16, dinp.h, NULL, NULL, dout.h, x.h, w.h, mean, rstd, N, C);
  check_t("layernorm_bwd dw, db NULL: dinp +=", &dinp);
  t_free(&x), t_free(&w), t_free(&b), t_free(&out), t_free(&dout), t_free(&dinp);
  free(mean), free(rstd), free(mean2), free(rstd2), free(dw), free(dw2), free(db), free(db2);
}

static void test_elementwise(void) {
  const size_t n = 1001;
  tensor a = t_rand(n, 1), b = t_rand(n, 1), out = t_nan(n), dout = t_rand(n, 1);
  f32->add(f32, out.f, a.f, b.f, n), b16->add(b16, out.h, a.h, b.h, n);
  check_t("add", &out);
  f32->add(f32, a.f, a.f, b.f, n), b16->add(b16, a.h, a.h, b.h, n);   // the residual stream: out is a
  check_t("add in place (out == a)", &a);

  typedef void (*fwd_fn)(lcc_backend *, void *, const void *, size_t);
  typedef void (*bwd_fn)(lcc_backend *, void *, const void *, const void *, size_t);
  const struct { const char *name; fwd_fn fwd32, fwd16; bwd_fn bwd32, bwd16; } acts[2] = {
    {"quick_gelu", f32->quick_gelu_fwd, b16->quick_gelu_fwd, f32->quick_gelu_bwd, b16->quick_gelu_bwd},
    {"gelu", f32->gelu_fwd, b16->gelu_fwd, f32->gelu_bwd, b16->gelu_bwd},
  };
  for (int k = 0; k < 2; k++) {
    tensor y = t_nan(n), dx = t_nan(n);
    char name[64];
    acts[k].fwd32(f32, y.f, b.f, n), acts[k].fwd16(b16, y.h, b.h, n);
    snprintf(name, sizeof name, "%s_fwd", acts[k].name);
    check_t(name, &y);
    acts[k].bwd32(f32, dx.f, dout.f, b.f, n), acts[k].bwd16(b16, dx.h, dout.h, b.h, n);
    snprintf(name, sizeof name, "%s_bwd (overwritten)", acts[k].name);
    check_t(name, &dx);
    t_free(&y), t_free(&dx);
  }

  const int N = 7, I = 33;
  tensor gu = t_rand((size_t)N * 2 * I, 2), sout = t_nan((size_t)N * I), sdout = t_rand((size_t)N * I, 1);
  tensor dgu = t_nan((size_t)N * 2 * I);
  f32->swiglu_fwd(f32, sout.f, gu.f, N, I), b16->swiglu_fwd(b16, sout.h, gu.h, N, I);
  check_t("swiglu_fwd", &sout);
  f32->swiglu_bwd(f32, dgu.f, sdout.f, gu.f, N, I), b16->swiglu_bwd(b16, dgu.h, sdout.h, gu.h, N, I);
  check_t("swiglu_bwd (overwritten)", &dgu);
  t_free(&a), t_free(&b), t_free(&out), t_free(&dout), t_free(&gu), t_free(&sout), t_free(&sdout), t_free(&dgu);
}

// ---------------------------------------------------------------------------------------------------------
// RoPE and attention

static void test_rope(void) {
  const int T = 11, Hq = 4, Hkv = 2, D = 16;
  tensor qkv = t_rand((size_t)T * (Hq + 2 * Hkv) * D, 1);
  float *cos_ = lcc_malloc((size_t)T * D / 2 * 4), *sin_ = lcc_malloc((size_t)T * D / 2 * 4);
  for (int i = 0; i < T * D / 2; i++) cos_[i] = cosf(0.37f * i), sin_[i] = sinf(0.37f * i);
  f32->rope_fwd(f32, qkv.f, cos_, sin_, T, Hq, Hkv, D), b16->rope_fwd(b16, qkv.h, cos_, sin_, T, Hq, Hkv, D);
  check_t("rope_fwd in place", &qkv);
  t_sync(&qkv);
  f32->rope_bwd(f32, qkv.f, cos_, sin_, T, Hq, Hkv, D), b16->rope_bwd(b16, qkv.h, cos_, sin_, T, Hq, Hkv, D);
  check_t("rope_bwd in place", &qkv);
  t_free(&qkv), free(cos_), free(sin_);
}

static void test_attention(int causal) {
  const int T = 13, Hq = 4, Hkv = 2, D = 8, n_qkv = T * (Hq + 2 * Hkv) * D, n_out = T * Hq * D;
  const int32_t cu[3] = {0, 5, 13};
  tensor qkv = t_rand(n_qkv, 1), out = t_nan(n_out), dout = t_rand(n_out, 1), dqkv = t_nan(n_qkv);
  float *lse = lcc_malloc(Hq * T * 4), *lse2 = lcc_malloc(Hq * T * 4);
  char name[64];
  f32->attention_fwd(f32, out.f, lse, qkv.f, cu, 2, T, Hq, Hkv, D, causal);
  b16->attention_fwd(b16, out.h, lse2, qkv.h, cu, 2, T, Hq, Hkv, D, causal);
  snprintf(name, sizeof name, "attention_fwd out (%s)", causal ? "causal" : "non-causal");
  check_t(name, &out);
  snprintf(name, sizeof name, "attention_fwd lse (%s)", causal ? "causal" : "non-causal");
  check_same(name, lse2, lse, Hq * T);
  t_sync(&out);   // backward reads the saved (bf16) output
  f32->attention_bwd(f32, dqkv.f, dout.f, qkv.f, out.f, lse, cu, 2, T, Hq, Hkv, D, causal);
  b16->attention_bwd(b16, dqkv.h, dout.h, qkv.h, out.h, lse, cu, 2, T, Hq, Hkv, D, causal);
  snprintf(name, sizeof name, "attention_bwd dqkv (%s)", causal ? "causal" : "non-causal");
  check_t(name, &dqkv);
  t_free(&qkv), t_free(&out), t_free(&dout), t_free(&dqkv), free(lse), free(lse2);
}

// q: the new rows of a packed qkv, ldq = the packed row; the buffer ends right after the last row's q heads.
static void test_attention_cached(void) {
  const int Tc = 20, Tn = 6, Hq = 4, Hkv = 2, D = 8, ldq = (Hq + 2 * Hkv) * D;
  tensor q = t_rand((size_t)(Tn - 1) * ldq + Hq * D, 1), kc = t_rand((size_t)Tc * Hkv * D, 1);
  tensor vc = t_rand((size_t)Tc * Hkv * D, 1), out = t_nan((size_t)Tn * Hq * D);
  f32->attention_cached(f32, out.f, q.f, ldq, kc.f, vc.f, Tn, Tc, Hq, Hkv, D);
  b16->attention_cached(b16, out.h, q.h, ldq, kc.h, vc.h, Tn, Tc, Hq, Hkv, D);
  check_t("attention_cached, q rows ldq apart", &out);
  t_free(&q), t_free(&kc), t_free(&vc), t_free(&out);
}

// ---------------------------------------------------------------------------------------------------------
// data movement, LM head, optimizer

static void test_copy_rows(void) {
  const int rows = 5, cols = 7, ld_src = 11, ld_dst = 9;
  tensor src = t_rand((size_t)rows * ld_src, 1), dst = t_rand((size_t)rows * ld_dst, 1);
  f32->copy_rows(f32, dst.f, ld_dst, src.f, ld_src, rows, cols);
  b16->copy_rows(b16, dst.h, ld_dst, src.h, ld_src, rows, cols);
  check_t("copy_rows ld_dst 9, ld_src 11: the block copied, the rest kept", &dst);
  t_free(&src), t_free(&dst);
}

static void test_embedding_scatter(void) {
  const int V = 20, C = 24, T = 10, M = 3;
  const int32_t ids[10] = {3, 0, 19, 3, 7, 7, 7, 12, 1, 3}, rows[3] = {8, 2, 5};
  tensor table = t_rand((size_t)V * C, 1), out = t_nan((size_t)T * C), dout = t_rand((size_t)T * C, 1);
  f32->embedding_fwd(f32, out.f, ids, table.f, T, C), b16->embedding_fwd(b16, out.h, ids, table.h, T, C);
  check_t("embedding_fwd", &out);
  float *dtable = test_randn((size_t)V * C, 1), *dtable2 = dup(dtable, (size_t)V * C);
  f32->embedding_bwd(f32, dtable, ids, dout.f, T, C), b16->embedding_bwd(b16, dtable2, ids, dout.h, T, C);
  check_same("embedding_bwd dtable += (repeated ids)", dtable2, dtable, (size_t)V * C);

  tensor x = t_rand((size_t)T * C, 1), feats = t_rand((size_t)M * C, 1), dfeats = t_nan((size_t)M * C);
  f32->scatter_rows_fwd(f32, x.f, feats.f, rows, M, C), b16->scatter_rows_fwd(b16, x.h, feats.h, rows, M, C);
  check_t("scatter_rows_fwd: rows replaced, others kept", &x);
  f32->scatter_rows_bwd(f32, dfeats.f, dout.f, rows, M, C), b16->scatter_rows_bwd(b16, dfeats.h, dout.h, rows, M, C);
  check_t("scatter_rows_bwd dfeats", &dfeats);
  check_t("scatter_rows_bwd dx: rows zeroed, others kept", &dout);
  tensor dx = t_rand((size_t)T * C, 1);
  f32->scatter_rows_bwd(f32, NULL, dx.f, rows, M, C), b16->scatter_rows_bwd(b16, NULL, dx.h, rows, M, C);
  check_t("scatter_rows_bwd dfeats NULL: dx rows zeroed", &dx);
  t_free(&table), t_free(&out), t_free(&dout), t_free(&x), t_free(&feats), t_free(&dfeats), t_free(&dx);
  free(dtable), free(dtable2);
}

static void test_lm_head_ce(void) {
  const int T = 12, C = 32, V = 50;
  int32_t targets[12];
  float weights[12], losses[12], losses2[12];
  for (int t = 0; t < T; t++) targets[t] = t % 4 == 1 ? -1 : (t * 17) % V, weights[t] = 1.0f / (t + 2);
  tensor x = t_rand((size_t)T * C, 1), w = t_rand((size_t)V * C, 0.3f), dx = t_nan((size_t)T * C);
  float *dw = test_randn((size_t)V * C, 1), *dw2 = dup(dw, (size_t)V * C);
  f32->lm_head_ce(f32, losses, dx.f, dw, x.f, w.f, targets, weights, T, C, V);
  b16->lm_head_ce(b16, losses2, dx.h, dw2, x.h, w.h, targets, weights, T, C, V);
  check_same("lm_head_ce losses", losses2, losses, T);
  check_t("lm_head_ce dx (ignored rows zero)", &dx);
  check_same("lm_head_ce dw +=", dw2, dw, (size_t)V * C);
  f32->lm_head_ce(f32, losses, NULL, dw, x.f, w.f, targets, weights, T, C, V);
  b16->lm_head_ce(b16, losses2, NULL, dw2, x.h, w.h, targets, weights, T, C, V);
  check_same("lm_head_ce dx NULL: dw +=", dw2, dw, (size_t)V * C);
  memset(losses2, 0xff, sizeof losses2);
  f32->lm_head_ce(f32, losses, NULL, NULL, x.f, w.f, targets, NULL, T, C, V);
  b16->lm_head_ce(b16, losses2, NULL, NULL, x.h, w.h, targets, NULL, T, C, V);
  check_same("lm_head_ce loss only (dx, dw, weights NULL)", losses2, losses, T);
  t_free(&x), t_free(&w), t_free(&dx), free(dw), free(dw2);
}

static void test_adamw(void) {
  const size_t n = 999;
  float *p = test_randn(n, 1), *g = test_randn(n, 1), *m = test_randn(n, 0.1f), *v = test_randn(n, 0.1f);
  for (size_t i = 0; i < n; i++) v[i] *= v[i];
  float *p2 = dup(p, n), *m2 = dup(m, n), *v2 = dup(v, n), *p3 = dup(p, n), *m3 = dup(m, n), *v3 = dup(v, n);
  uint16_t *pa = lcc_malloc(n * 2);
  for (size_t i = 0; i < n; i++) pa[i] = 0x7fc0;
  for (int step = 1; step <= 2; step++) {
    f32->adamw(f32, p, NULL, g, m, v, n, 1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f, step, 0.5f);
    b16->adamw(b16, p2, pa, g, m2, v2, n, 1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f, step, 0.5f);
    b16->adamw(b16, p3, NULL, g, m3, v3, n, 1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f, step, 0.5f);
  }
  check_same("adamw param (fp32 master)", p2, p, n);
  check(!memcmp(m2, m, n * 4) && !memcmp(v2, v, n * 4), "adamw m, v identical");
  check_rounded("adamw param_act = bf16(param)", pa, p, n);
  check(!memcmp(p3, p, n * 4) && !memcmp(m3, m, n * 4) && !memcmp(v3, v, n * 4), "adamw param_act NULL");
  free(p), free(g), free(m), free(v), free(p2), free(m2), free(v2), free(p3), free(m3), free(v3), free(pa);
}

// ---------------------------------------------------------------------------------------------------------
// determinism: sizes past the ops' one-thread threshold, so 2 threads really split the work

typedef struct {
  uint16_t *out, *dinp, *attn, *dqkv;
  float *dw;
} det_result;

static det_result run_threads(int n_threads, const tensor *x, const tensor *w, const tensor *dy, const tensor *qkv,
                              const tensor *ady) {
  enum { N = 64, C = 256, OC = 512, T = 300, H = 4, D = 16 };
  lcc_backend *be = lcc_cpu_bf16_backend(n_threads);
  const int32_t cu[3] = {0, 170, T};
  det_result r = {lcc_malloc((size_t)N * OC * 2), lcc_malloc((size_t)N * C * 2), lcc_malloc((size_t)T * H * D * 2),
                  lcc_malloc((size_t)T * 3 * H * D * 2), lcc_calloc((size_t)OC * C, 4)};
  float *lse = lcc_malloc((size_t)H * T * 4);
  be->linear_fwd(be, r.out, x->h, w->h, NULL, N, C, OC);
  be->linear_bwd(be, r.dinp, r.dw, NULL, dy->h, x->h, w->h, N, C, OC);
  be->attention_fwd(be, r.attn, lse, qkv->h, cu, 2, T, H, H, D, 1);
  be->attention_bwd(be, r.dqkv, ady->h, qkv->h, r.attn, lse, cu, 2, T, H, H, D, 1);
  be->destroy(be);
  free(lse);
  return r;
}

static void test_determinism(void) {
  enum { N = 64, C = 256, OC = 512, T = 300, H = 4, D = 16 };
  tensor x = t_rand((size_t)N * C, 1), w = t_rand((size_t)OC * C, 0.1f), dy = t_rand((size_t)N * OC, 1);
  tensor qkv = t_rand((size_t)T * 3 * H * D, 1), ady = t_rand((size_t)T * H * D, 1);
  det_result a = run_threads(1, &x, &w, &dy, &qkv, &ady), b = run_threads(2, &x, &w, &dy, &qkv, &ady);
  check(!memcmp(a.out, b.out, (size_t)N * OC * 2) && !memcmp(a.dinp, b.dinp, (size_t)N * C * 2) &&
            !memcmp(a.dw, b.dw, (size_t)OC * C * 4),
        "1 vs 2 threads: linear fwd/bwd bit-identical");
  check(!memcmp(a.attn, b.attn, (size_t)T * H * D * 2) && !memcmp(a.dqkv, b.dqkv, (size_t)T * 3 * H * D * 2),
        "1 vs 2 threads: attention fwd/bwd bit-identical");
  det_result *rs[2] = {&a, &b};
  for (int k = 0; k < 2; k++) free(rs[k]->out), free(rs[k]->dinp), free(rs[k]->attn), free(rs[k]->dqkv), free(rs[k]->dw);
  t_free(&x), t_free(&w), t_free(&dy), t_free(&qkv), t_free(&ady);
}

int main(void) {
  test_seed(42);
  f32 = lcc_cpu_backend(1);
  b16 = lcc_cpu_bf16_backend(1);
  test_rounding();
  test_memory();
  test_utilities();
  test_linear();
  test_rmsnorm();
  test_layernorm();
  test_elementwise();
  test_rope();
  test_attention(1);
  test_attention(0);
  test_attention_cached();
  test_copy_rows();
  test_embedding_scatter();
  test_lm_head_ce();
  test_adamw();
  test_determinism();
  f32->destroy(f32);
  b16->destroy(b16);
  return test_finish("test_bf16_ops");
}
