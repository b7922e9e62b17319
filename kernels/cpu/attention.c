// Attention on a packed qkv, per sequence of cu_seqlens, in query tiles: S = scale Q K^T and O = P V are
// GEMMs over the keys a tile can see; the softmax runs between them in fp32 with the row max subtracted.
// Backward follows FlashAttention-2: P is recomputed from the saved log-sum-exp.
//
// Threads: the forward splits over (query tile, query head); the backward over (sequence, kv head), so each
// task owns the dK/dV rows it accumulates and sums its query heads and tiles in a fixed order. Each task's
// GEMMs are single-threaded OpenBLAS calls: the regions stay parallel even for one task (see cpu_gemm).
#include "cpu.h"
#include "util.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define Q_TILE 64   // query rows per tile: scratch is Q_TILE x (longest sequence) floats per thread

// Where the heads of one packed qkv row live (floats), and the score scale.
typedef struct {
  int Hq, Hkv, D;
  int row;       // floats per qkv row: (Hq + 2 Hkv) * D
  int group;     // query heads per kv head: Hq / Hkv
  float scale;   // 1 / sqrt(D)
} layout;

static layout make_layout(int Hq, int Hkv, int D) {
  LCC_CHECK(Hq > 0 && Hkv > 0 && Hq % Hkv == 0, "attention: Hq=%d must be a multiple of Hkv=%d", Hq, Hkv);
  return (layout){Hq, Hkv, D, (Hq + 2 * Hkv) * D, Hq / Hkv, 1.0f / sqrtf((float)D)};
}

static size_t q_off(const layout *L, int t, int h) { return (size_t)t * L->row + (size_t)h * L->D; }
static size_t k_off(const layout *L, int t, int j) { return (size_t)t * L->row + (size_t)(L->Hq + j) * L->D; }
static size_t v_off(const layout *L, int t, int j) {
  return (size_t)t * L->row + (size_t)(L->Hq + L->Hkv + j) * L->D;
}

// Checks that the sequences are ordered ranges inside [0, T); returns the longest length.
static int longest_sequence(const int32_t *cu_seqlens, int n_seq, int T) {
  LCC_CHECK(n_seq >= 0 && (n_seq == 0 || cu_seqlens[0] >= 0), "attention: bad cu_seqlens start");
  int longest = 0;
  for (int s = 0; s < n_seq; s++) {
    int len = cu_seqlens[s + 1] - cu_seqlens[s];
    LCC_CHECK(len >= 0 && cu_seqlens[s + 1] <= T, "attention: cu_seqlens[%d..%d] = %d..%d outside [0, %d]", s,
              s + 1, cu_seqlens[s], cu_seqlens[s + 1], T);
    if (len > longest) longest = len;
  }
  return longest;
}

// Keys visible to query tile [i0, i0 + tq) of the sequence starting at `start` and ending at `end`.
static int visible_keys(int causal, int start, int end, int i0, int tq) {
  return causal ? i0 + tq - start : end - start;
}

// S[tq, nk] = scale * Q[tq, D] @ K[nk, D]^T; rows of Q and K are L->row apart.
static void scores(const layout *L, float *S, const float *q, const float *k, int tq, int nk) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, tq, nk, L->D, L->scale, q, L->row, k, L->row, 0.0f, S, nk);
}

// Softmax of one row of scores over its first n_vis entries, in place; the masked tail [n_vis, nk) becomes 0.
// Returns the log-sum-exp of the visible scores.
static float softmax_row(float *p, int n_vis, int nk) {
  float mx = cpu_max(p, n_vis);
  for (int i = 0; i < n_vis; i++) p[i] = cpu_expf(p[i] - mx);
  double sum = cpu_sum(p, n_vis);
  float inv = (float)(1.0 / sum);
  for (int i = 0; i < n_vis; i++) p[i] *= inv;
  for (int i = n_vis; i < nk; i++) p[i] = 0.0f;
  return mx + (float)log(sum);
}

// One query tile of one head: out rows [i0, i0 + tq) and their lse.
static void forward_tile(const layout *L, float *out, float *lse, const float *qkv, float *S, int T, int start,
                         int end, int i0, int h, int causal) {
  int tq = end - i0 < Q_TILE ? end - i0 : Q_TILE, j = h / L->group;
  int nk = visible_keys(causal, start, end, i0, tq);
  scores(L, S, qkv + q_off(L, i0, h), qkv + k_off(L, start, j), tq, nk);
  for (int r = 0; r < tq; r++) {
    int n_vis = causal ? i0 + r + 1 - start : nk;
    lse[(size_t)h * T + i0 + r] = softmax_row(S + (size_t)r * nk, n_vis, nk);
  }
  // O[tq, D] = P[tq, nk] @ V[nk, D]
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, tq, L->D, nk, 1.0f, S, nk, qkv + v_off(L, start, j),
              L->row, 0.0f, out + (size_t)i0 * L->Hq * L->D + (size_t)h * L->D, L->Hq * L->D);
}

void cpu_attention_fwd(lcc_backend *be, void *out_, float *lse, const void *qkv_, const int32_t *cu_seqlens,
                       int n_seq, int T, int Hq, int Hkv, int D, int causal) {
  float *out = out_;          // [T, Hq D]; rows outside every sequence are left as they are
  const float *qkv = qkv_;    // [T, (Hq + 2 Hkv) D]
  // lse [Hq, T]; cu_seqlens [n_seq + 1]
  layout L = make_layout(Hq, Hkv, D);
  int longest = longest_sequence(cu_seqlens, n_seq, T);
  // The tiles of all sequences, as (sequence, first row): tasks are (tile, head) pairs.
  int n_tiles = 0;
  for (int s = 0; s < n_seq; s++) n_tiles += (cu_seqlens[s + 1] - cu_seqlens[s] + Q_TILE - 1) / Q_TILE;
  int *tile_seq = lcc_malloc((size_t)n_tiles * sizeof(int)), *tile_row = lcc_malloc((size_t)n_tiles * sizeof(int));
  for (int s = 0, k = 0; s < n_seq; s++) {
    for (int i0 = cu_seqlens[s]; i0 < cu_seqlens[s + 1]; i0 += Q_TILE, k++) {
      tile_seq[k] = s;
      tile_row[k] = i0;
    }
  }
  long n_tasks = (long)n_tiles * Hq;
#pragma omp parallel
  {
    float *S = lcc_malloc((size_t)Q_TILE * longest * sizeof(float));   // [Q_TILE, longest]
#pragma omp for schedule(dynamic)
    for (long task = 0; task < n_tasks; task++) {
      int k = (int)(task / Hq), h = (int)(task % Hq), s = tile_seq[k];
      forward_tile(&L, out, lse, qkv, S, T, cu_seqlens[s], cu_seqlens[s + 1], tile_row[k], h, causal);
    }
    free(S);
  }
  free(tile_seq);
  free(tile_row);
}

// Backward of one query tile of head h, sharing kv head j:
// dQ rows (overwrite), dK and dV rows of the sequence (accumulate). P and dS live in scratch [Q_TILE, nk].
static void backward_tile(const layout *L, float *dqkv, const float *dout, const float *qkv, const float *out,
                          const float *lse, float *P, float *dS, int T, int start, int end, int i0, int h,
                          int causal) {
  int tq = end - i0 < Q_TILE ? end - i0 : Q_TILE, j = h / L->group, ld_o = L->Hq * L->D, D = L->D;
  int nk = visible_keys(causal, start, end, i0, tq);
  const float *q = qkv + q_off(L, i0, h), *k = qkv + k_off(L, start, j), *v = qkv + v_off(L, start, j);
  const float *dO = dout + (size_t)i0 * ld_o + (size_t)h * D, *O = out + (size_t)i0 * ld_o + (size_t)h * D;
  // P = exp(S - lse), recomputed; masked entries are 0 and so contribute nothing below
  scores(L, P, q, k, tq, nk);
  for (int r = 0; r < tq; r++) {
    int n_vis = causal ? i0 + r + 1 - start : nk;
    float m = lse[(size_t)h * T + i0 + r], *p = P + (size_t)r * nk;
    for (int c = 0; c < n_vis; c++) p[c] = cpu_expf(p[c] - m);
    for (int c = n_vis; c < nk; c++) p[c] = 0.0f;
  }
  // dP[tq, nk] = dO @ V^T, then dS = P * (dP - rowsum(dO * O)) in place
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, tq, nk, D, 1.0f, dO, ld_o, v, L->row, 0.0f, dS, nk);
  for (int r = 0; r < tq; r++) {
    float di = 0.0f;
    for (int d = 0; d < D; d++) di += dO[(size_t)r * ld_o + d] * O[(size_t)r * ld_o + d];
    float *ds = dS + (size_t)r * nk;
    const float *p = P + (size_t)r * nk;
    for (int c = 0; c < nk; c++) ds[c] = p[c] * (ds[c] - di);
  }
  // dQ = scale dS @ K; dK += scale dS^T @ Q; dV += P^T @ dO
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, tq, D, nk, L->scale, dS, nk, k, L->row, 0.0f,
              dqkv + q_off(L, i0, h), L->row);
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, D, tq, L->scale, dS, nk, q, L->row, 1.0f,
              dqkv + k_off(L, start, j), L->row);
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, D, tq, 1.0f, P, nk, dO, ld_o, 1.0f,
              dqkv + v_off(L, start, j), L->row);
}

void cpu_attention_bwd(lcc_backend *be, void *dqkv_, const void *dout_, const void *qkv_, const void *out_,
                       const float *lse, const int32_t *cu_seqlens, int n_seq, int T, int Hq, int Hkv, int D,
                       int causal) {
  float *dqkv = dqkv_;         // [T, (Hq + 2 Hkv) D], overwritten
  const float *dout = dout_;   // [T, Hq D]
  const float *qkv = qkv_;     // [T, (Hq + 2 Hkv) D]
  const float *out = out_;     // [T, Hq D]
  // lse [Hq, T]; cu_seqlens [n_seq + 1]
  layout L = make_layout(Hq, Hkv, D);
  int longest = longest_sequence(cu_seqlens, n_seq, T);
  memset(dqkv, 0, (size_t)T * L.row * sizeof(float));   // dK, dV accumulate from 0; rows outside sequences stay 0
  int n_tasks = n_seq * Hkv;
#pragma omp parallel
  {
    float *P = lcc_malloc((size_t)Q_TILE * longest * sizeof(float));    // [Q_TILE, longest]
    float *dS = lcc_malloc((size_t)Q_TILE * longest * sizeof(float));   // [Q_TILE, longest]
#pragma omp for schedule(dynamic)
    for (int task = 0; task < n_tasks; task++) {
      int s = task / Hkv, j = task % Hkv, start = cu_seqlens[s], end = cu_seqlens[s + 1];
      for (int h = j * L.group; h < (j + 1) * L.group; h++) {
        for (int i0 = start; i0 < end; i0 += Q_TILE) {
          backward_tile(&L, dqkv, dout, qkv, out, lse, P, dS, T, start, end, i0, h, causal);
        }
      }
    }
    free(P);
    free(dS);
  }
}

void cpu_attention_cached(lcc_backend *be, void *out_, const void *q_, int ldq, const void *kc_, const void *vc_, int Tn,
                          int Tc, int Hq, int Hkv, int D) {
  float *out = out_;            // [Tn, Hq D]
  const float *q = q_;          // [Tn, ldq]: query head h at column h D
  const float *kc = kc_;        // [Tc, Hkv D]
  const float *vc = vc_;        // [Tc, Hkv D]
  LCC_CHECK(Hq > 0 && Hkv > 0 && Hq % Hkv == 0 && Tn <= Tc, "attention_cached: bad shapes");
  const int group = Hq / Hkv, ldkv = Hkv * D, past = Tc - Tn, n_tiles = (Tn + Q_TILE - 1) / Q_TILE;
  const float scale = 1.0f / sqrtf((float)D);
#pragma omp parallel
  {
    float *S = lcc_malloc((size_t)Q_TILE * Tc * sizeof(float));   // [Q_TILE, Tc]
#pragma omp for schedule(dynamic)
    for (long task = 0; task < (long)n_tiles * Hq; task++) {
      const int i0 = (int)(task / Hq) * Q_TILE, h = (int)(task % Hq), j = h / group;
      const int tq = Tn - i0 < Q_TILE ? Tn - i0 : Q_TILE, nk = past + i0 + tq;   // keys the tile's last row sees
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, tq, nk, D, scale, q + (size_t)i0 * ldq + (size_t)h * D, ldq,
                  kc + (size_t)j * D, ldkv, 0.0f, S, nk);
      for (int r = 0; r < tq; r++) softmax_row(S + (size_t)r * nk, past + i0 + r + 1, nk);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, tq, D, nk, 1.0f, S, nk, vc + (size_t)j * D, ldkv, 0.0f,
                  out + (size_t)i0 * Hq * D + (size_t)h * D, Hq * D);
    }
    free(S);
  }
}
