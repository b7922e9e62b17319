// Every op of the CPU backend, run with 1, 2 and 3 threads on the same inputs: the outputs must be
// bit-identical. Sizes are large enough that the row loops and the GEMM tiles actually split, and do not
// divide evenly into the chunks and tiles the kernels use (T = 203 rows).
#include "backend.h"
#include "testlib.h"
#include "util.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ---------------------------------------------------------------------------------------------------------
// inputs, made once


// CE_T: rows of the LM head test, 322 with a target: two chunks of 256, the second partial.
enum { T = 203, C = 333, LC = 256, LOC = 384, I = 77, V = 1000, CE_T = 403, CE_C = 64, SC_C = 600, M = 60,
       NV = 100003 };

typedef struct {
  float *x, *x2, *w, *b, *dy;   // [T,C], [T,C], [C], [C], [T,C]: norms and elementwise
  float *lin_x, *lin_w, *lin_b, *lin_dy, *lin_dw0;   // [T,LC], [LOC,LC], [LOC], [T,LOC], [LOC,LC]
  float *gu, *gu_dy;                                 // [T,2I], [T,I]
  float *table;                                      // [V,C]
  int32_t ids[T], targets[CE_T], rows[M];
  float *ce_x, *ce_w, *ce_weights;                   // [CE_T,CE_C], [V,CE_C], [CE_T]
  float *sc_x, *sc_feats;                            // [T,SC_C], [M,SC_C]
  float *p, *g, *m, *v;                              // [NV] each
} inputs;

static inputs in;

static void make_inputs(void) {
  in.x = test_randn((size_t)T * C, 1.0f), in.x2 = test_randn((size_t)T * C, 1.0f), in.w = test_randn(C, 1.0f), in.b = test_randn(C, 1.0f);
  in.dy = test_randn((size_t)T * C, 1.0f);
  in.lin_x = test_randn((size_t)T * LC, 1.0f), in.lin_w = test_randn((size_t)LOC * LC, 1.0f), in.lin_b = test_randn(LOC, 1.0f);
  in.lin_dy = test_randn((size_t)T * LOC, 1.0f), in.lin_dw0 = test_randn((size_t)LOC * LC, 1.0f);
  in.gu = test_randn((size_t)T * 2 * I, 1.0f), in.gu_dy = test_randn((size_t)T * I, 1.0f);
  in.table = test_randn((size_t)V * C, 1.0f);
  for (int t = 0; t < T; t++) in.ids[t] = (int32_t)(test_rand_u32() % 50);   // many repeats
  for (int t = 0; t < CE_T; t++) in.targets[t] = t % 5 == 2 ? -100 : (int32_t)(test_rand_u32() % V);
  for (int k = 0; k < M; k++) in.rows[k] = (k * 37) % T;   // distinct: 37 and 203 are coprime
  in.ce_x = test_randn((size_t)CE_T * CE_C, 1.0f), in.ce_w = test_randn((size_t)V * CE_C, 1.0f), in.ce_weights = test_randn(CE_T, 1.0f);
  in.sc_x = test_randn((size_t)T * SC_C, 1.0f), in.sc_feats = test_randn((size_t)M * SC_C, 1.0f);
  in.p = test_randn(NV, 1.0f), in.g = test_randn(NV, 1.0f), in.m = test_randn(NV, 1.0f), in.v = test_randn(NV, 1.0f);
  for (int i = 0; i < NV; i++) in.v[i] = in.v[i] * in.v[i];   // second moments are >= 0
}

// ---------------------------------------------------------------------------------------------------------
// outputs of one run

#define MAX_RESULTS 64

typedef struct {
  char name[MAX_RESULTS][96];
  void *data[MAX_RESULTS];
  size_t bytes[MAX_RESULTS];
  int n;
} results;

static void record(results *rs, const char *name, const void *data, size_t bytes) {
  LCC_CHECK(rs->n < MAX_RESULTS, "too many results");
  snprintf(rs->name[rs->n], sizeof rs->name[0], "%s", name);
  rs->data[rs->n] = memcpy(lcc_malloc(bytes), data, bytes);
  rs->bytes[rs->n] = bytes;
  rs->n++;
}

static float *scratch(size_t n) { return lcc_calloc(n, sizeof(float)); }

static float *copy_of(const float *x, size_t n) { return memcpy(lcc_malloc(n * sizeof(float)), x, n * sizeof(float)); }

static void run_linear(lcc_backend *be, results *rs) {
  float *out = scratch((size_t)T * LOC), *dinp = scratch((size_t)T * LC);
  float *dw = copy_of(in.lin_dw0, (size_t)LOC * LC), *db = copy_of(in.lin_b, LOC);
  be->linear_fwd(be, out, in.lin_x, in.lin_w, in.lin_b, T, LC, LOC);
  be->linear_bwd(be, dinp, dw, db, in.lin_dy, in.lin_x, in.lin_w, T, LC, LOC);
  record(rs, "linear out", out, (size_t)T * LOC * 4);
  record(rs, "linear dinp", dinp, (size_t)T * LC * 4);
  record(rs, "linear dw", dw, (size_t)LOC * LC * 4);
  record(rs, "linear db", db, LOC * 4);
  free(out), free(dinp), free(dw), free(db);
}

static void run_norms(lcc_backend *be, results *rs) {
  float *out = scratch((size_t)T * C), *mean = scratch(T), *rstd = scratch(T);
  float *dinp = copy_of(in.x2, (size_t)T * C), *dw = copy_of(in.w, C), *db = copy_of(in.b, C);
  be->rmsnorm_fwd(be, out, rstd, in.x, in.w, T, C, 1e-6f);
  be->rmsnorm_bwd(be, dinp, dw, in.dy, in.x, in.w, rstd, T, C);
  record(rs, "rmsnorm out", out, (size_t)T * C * 4);
  record(rs, "rmsnorm rstd", rstd, T * 4);
  record(rs, "rmsnorm dinp", dinp, (size_t)T * C * 4);
  record(rs, "rmsnorm dw", dw, C * 4);
  be->layernorm_fwd(be, out, mean, rstd, in.x, in.w, in.b, T, C, 1e-6f);
  be->layernorm_bwd(be, dinp, dw, db, in.dy, in.x, in.w, mean, rstd, T, C);
  record(rs, "layernorm out", out, (size_t)T * C * 4);
  record(rs, "layernorm mean", mean, T * 4);
  record(rs, "layernorm rstd", rstd, T * 4);
  record(rs, "layernorm dinp", dinp, (size_t)T * C * 4);
  record(rs, "layernorm dw", dw, C * 4);
  record(rs, "layernorm db", db, C * 4);
  free(out), free(mean), free(rstd), free(dinp), free(dw), free(db);
}

static void run_elementwise(lcc_backend *be, results *rs) {
  size_t n = (size_t)T * C;
  float *out = scratch(n), *dinp = scratch(n), *sw = scratch((size_t)T * I), *dgu = scratch((size_t)T * 2 * I);
  be->add(be, out, in.x, in.x2, n);
  record(rs, "add", out, n * 4);
  be->swiglu_fwd(be, sw, in.gu, T, I);
  be->swiglu_bwd(be, dgu, in.gu_dy, in.gu, T, I);
  record(rs, "swiglu out", sw, (size_t)T * I * 4);
  record(rs, "swiglu dgu", dgu, (size_t)T * 2 * I * 4);
  be->quick_gelu_fwd(be, out, in.x, n);
  be->quick_gelu_bwd(be, dinp, in.dy, in.x, n);
  record(rs, "quick_gelu out", out, n * 4);
  record(rs, "quick_gelu dinp", dinp, n * 4);
  be->gelu_fwd(be, out, in.x, n);
  be->gelu_bwd(be, dinp, in.dy, in.x, n);
  record(rs, "gelu out", out, n * 4);
  record(rs, "gelu dinp", dinp, n * 4);
  free(out), free(dinp), free(sw), free(dgu);
}

// qkv [T, (Hq + 2 Hkv) D] made from the first T * row values of in.lin_dw0 and in.lin_x (plenty of values).
static void run_rope_attention(lcc_backend *be, results *rs, const char *tag, const int32_t *cu, int n_seq,
                               int Hq, int Hkv, int D, int causal) {
  int row = (Hq + 2 * Hkv) * D;
  size_t n = (size_t)T * row, n_out = (size_t)T * Hq * D;
  LCC_CHECK(n <= (size_t)LOC * LC && n_out <= (size_t)T * LC, "attention test too large for its inputs");
  float *qkv = copy_of(in.lin_dw0, n), *dout = copy_of(in.lin_x, n_out);
  float *cs = scratch((size_t)T * D / 2), *sn = scratch((size_t)T * D / 2);
  for (int i = 0; i < T * D / 2; i++) {
    cs[i] = cosf(0.37f * i);
    sn[i] = sinf(0.37f * i);
  }
  float *out = scratch(n_out), *lse = scratch((size_t)Hq * T), *dqkv = scratch(n);
  char name[96];
  be->rope_fwd(be, qkv, cs, sn, T, Hq, Hkv, D);
  snprintf(name, sizeof name, "%s rope fwd", tag);
  record(rs, name, qkv, n * 4);
  be->attention_fwd(be, out, lse, qkv, cu, n_seq, T, Hq, Hkv, D, causal);
  be->attention_bwd(be, dqkv, dout, qkv, out, lse, cu, n_seq, T, Hq, Hkv, D, causal);
  be->rope_bwd(be, dqkv, cs, sn, T, Hq, Hkv, D);
  snprintf(name, sizeof name, "%s attention out", tag);
  record(rs, name, out, n_out * 4);
  snprintf(name, sizeof name, "%s attention lse", tag);
  record(rs, name, lse, (size_t)Hq * T * 4);
  snprintf(name, sizeof name, "%s attention+rope dqkv", tag);
  record(rs, name, dqkv, n * 4);
  free(qkv), free(dout), free(cs), free(sn), free(out), free(lse), free(dqkv);
}

static void run_embedding(lcc_backend *be, results *rs) {
  float *out = scratch((size_t)T * C), *dtable = copy_of(in.table, (size_t)V * C);
  be->embedding_fwd(be, out, in.ids, in.table, T, C);
  be->embedding_bwd(be, dtable, in.ids, in.dy, T, C);
  record(rs, "embedding out", out, (size_t)T * C * 4);
  record(rs, "embedding dtable", dtable, (size_t)V * C * 4);
  float *x = copy_of(in.sc_x, (size_t)T * SC_C), *dfeats = scratch((size_t)M * SC_C);
  be->scatter_rows_fwd(be, x, in.sc_feats, in.rows, M, SC_C);
  record(rs, "scatter_rows x", x, (size_t)T * SC_C * 4);
  be->scatter_rows_bwd(be, dfeats, x, in.rows, M, SC_C);
  record(rs, "scatter_rows dfeats", dfeats, (size_t)M * SC_C * 4);
  record(rs, "scatter_rows dx", x, (size_t)T * SC_C * 4);
  free(out), free(dtable), free(x), free(dfeats);
}

static void run_lm_head_ce(lcc_backend *be, results *rs) {
  float *losses = scratch(CE_T), *dx = scratch((size_t)CE_T * CE_C), *dw = copy_of(in.ce_w, (size_t)V * CE_C);
  be->lm_head_ce(be, losses, dx, dw, in.ce_x, in.ce_w, in.targets, in.ce_weights, CE_T, CE_C, V);
  record(rs, "lm_head_ce losses", losses, CE_T * 4);
  record(rs, "lm_head_ce dx", dx, (size_t)CE_T * CE_C * 4);
  record(rs, "lm_head_ce dw", dw, (size_t)V * CE_C * 4);
  free(losses), free(dx), free(dw);
}

static void run_optimizer(lcc_backend *be, results *rs) {
  float *p = copy_of(in.p, NV), *m = copy_of(in.m, NV), *v = copy_of(in.v, NV), *g = copy_of(in.g, NV);
  double ss = be->sum_squares(be, g, NV);
  record(rs, "sum_squares", &ss, sizeof ss);
  be->scale(be, g, 0.3f, NV);
  record(rs, "scale", g, NV * 4);
  for (int step = 1; step <= 2; step++) {
    be->adamw(be, p, NULL, g, m, v, NV, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, step, 0.7f);
  }
  record(rs, "adamw param", p, NV * 4);
  record(rs, "adamw m", m, NV * 4);
  record(rs, "adamw v", v, NV * 4);
  free(p), free(m), free(v), free(g);
}

static void run_all(int n_threads, results *rs) {
  static const int32_t cu_two[3] = {0, 70, T}, cu_one[2] = {0, T};
  lcc_backend *be = lcc_cpu_backend(n_threads);
  run_linear(be, rs);
  run_norms(be, rs);
  run_elementwise(be, rs);
  run_rope_attention(be, rs, "causal GQA 4/2 D=16, 2 seqs:", cu_two, 2, 4, 2, 16, 1);
  run_rope_attention(be, rs, "non-causal GQA 4/2 D=16, 2 seqs:", cu_two, 2, 4, 2, 16, 0);
  // one sequence and one kv head: the backward is a single task, so OpenBLAS threads inside it
  run_rope_attention(be, rs, "causal 2/1 D=64, 1 seq:", cu_one, 1, 2, 1, 64, 1);
  run_embedding(be, rs);
  run_lm_head_ce(be, rs);
  run_optimizer(be, rs);
  be->destroy(be);
}

int main(void) {
  test_seed(0x853C49E6748FEA9Bull);
  make_inputs();
  static const int threads[3] = {1, 2, 3};
  static results rs[3];
  for (int k = 0; k < 3; k++) run_all(threads[k], &rs[k]);
  for (int i = 0; i < rs[0].n; i++) {
    int same = 1;
    for (int k = 1; k < 3; k++) {
      same &= rs[k].bytes[i] == rs[0].bytes[i] && !memcmp(rs[k].data[i], rs[0].data[i], rs[0].bytes[i]);
    }
    checkf(same, "%-52s identical with 1, 2, 3 threads", rs[0].name[i]);
  }
  for (int k = 0; k < 3; k++) {
    for (int i = 0; i < rs[k].n; i++) free(rs[k].data[i]);
  }
  return test_finish("test_determinism_ops");
}
