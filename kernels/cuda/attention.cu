// Attention on the GPU: our own FlashAttention-2-style kernels (always available) and cuDNN's fused SDPA
// (attention_cudnn.cu), used where it supports the case. Semantics and layouts are kernels/backend.h's:
// packed qkv [T, (Hq + 2 Hkv) D] bf16 rows, sequences [cu_seqlens[s], cu_seqlens[s+1]) (int32, device
// memory), out [T, Hq D] bf16, lse [Hq, T] fp32.
//
// Path, from the environment variable LCC_ATTENTION when the backend is made (lcc_cuda_attention_install
// reads it again when called again): "auto" (default) uses cuDNN for forward and backward when it supports
// the case and our kernels otherwise (a cuDNN failure is logged once); "own" uses only our kernels; "cudnn"
// uses only cuDNN for forward and backward and is a fatal error where it cannot (for testing it).
// attention_cached always runs our kernel.
//
// Our kernels: bf16 tensor-core MMAs (mma.sync m16n8k16, fp32 accumulation). A warp owns 16 rows of a tile.
// The m16n8 accumulator layout is fixed by the PTX ISA ("matrix fragments for mma.m16n8k16"): lane l holds
// rows l/4 and l/4 + 8, columns 2(l%4) and 2(l%4) + 1 of each 8-column tile. So row statistics need only
// the 4 lanes of a row, and two score tiles repack into one A fragment of the next MMA without shared memory.
// Head dims: multiples of 8 up to 128; tiles pad the head dim to a multiple of 16 with zeros.
//
// Backward is deterministic without atomics: one kernel per (key tile, kv head) accumulates dK and dV over
// the group's query heads and the query tiles in a fixed order; another per (query tile, head) makes dQ.
// P is recomputed from the saved lse in both.
#include "cuda_common.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "attention.h"
#include "attention_cudnn.h"
#include "backend_cuda.h"

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
#error "attention.cu needs sm_80 or newer (bf16 mma.sync)"
#endif

#define DMAX 128                // largest head dim of our kernels
#define KSTEPS (DMAX / 16)      // 16-wide k-steps over the head dim
#define DTILES (DMAX / 8)       // 8-wide n-tiles over the head dim
#define LDH (DMAX + 8)          // row stride (elements) of [rows][head dim] tiles; the 16-byte pad spreads
                                // a fragment load's 32 lanes over 32 banks
#define TILE 64                 // query rows (forward, dQ) or keys (dK dV) per block: 4 warps x 16
#define CHUNK 32                // the inner loop's step: keys (dQ) or queries (dK dV)
#define THREADS 128
#define LOG2E 1.4426950408889634f
#define LN2 0.6931471805599453f

// ---- fragments (PTX ISA, mma.m16n8k16 with .bf16 inputs and .f32 accumulators) ----

// d += a b: a is 16x16 (row-major fragment), b 16x8 (column-major fragment), d 16x8 fp32.
static __device__ __forceinline__ void mma_bf16(float d[4], const uint32_t a[4], const uint32_t b[2]) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
               "{%0,%1,%2,%3};\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

static __device__ __forceinline__ uint32_t ld32(const bf16 *p) { return *(const uint32_t *)p; }

// Two floats as one bf16x2 register: lo in the low half (the lower column).
static __device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *(uint32_t *)&v;
}

// A fragment of the 16x16 block at (r0, c0) of a row-major bf16 tile (row stride ld). Lane (g = lane/4,
// t = lane%4) holds rows g and g+8, columns 2t, 2t+1 and 2t+8, 2t+9.
static __device__ __forceinline__ void frag_a(uint32_t a[4], const bf16 *s, int ld, int r0, int c0, int g, int t) {
  const bf16 *p = s + (r0 + g) * ld + c0 + 2 * t;
  a[0] = ld32(p);
  a[1] = ld32(p + 8 * ld);
  a[2] = ld32(p + 8);
  a[3] = ld32(p + 8 * ld + 8);
}

// B fragment of the 16x8 (k x n) block at (k0, n0) of B, read from its transpose M[n][k] stored row-major
// (row stride ld): lane holds B[k0 + 2t, 2t+1][n0 + g] and B[k0 + 2t+8, 2t+9][n0 + g].
static __device__ __forceinline__ void frag_b(uint32_t b[2], const bf16 *m, int ld, int n0, int k0, int g, int t) {
  const bf16 *p = m + (n0 + g) * ld + k0 + 2 * t;
  b[0] = ld32(p);
  b[1] = ld32(p + 8);
}

// B fragment of the 16x8 (k x n) block at (k0, n0) of B stored row-major (B[k][n] at m[k * ld + n]), with
// ldmatrix .trans: lanes 0-15 address rows k0..k0+15 (16-byte aligned); each 8x8 block arrives transposed,
// which is the column-major B fragment.
static __device__ __forceinline__ void frag_bt(uint32_t b[2], const bf16 *m, int ld, int k0, int n0, int lane) {
  const uint32_t addr = (uint32_t)__cvta_generic_to_shared(m + (k0 + (lane & 15)) * ld + n0);
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];\n" : "=r"(b[0]), "=r"(b[1]) : "r"(addr));
}

// The A fragment over 16 columns made of two accumulator tiles c0 (columns 0-7) and c1 (columns 8-15).
static __device__ __forceinline__ void acc_to_a(uint32_t a[4], const float c0[4], const float c1[4]) {
  a[0] = pack2(c0[0], c0[1]);
  a[1] = pack2(c0[2], c0[3]);
  a[2] = pack2(c1[0], c1[1]);
  a[3] = pack2(c1[2], c1[3]);
}

// ---- tiles in shared memory ----

// dst[r][c] = src[r * lds + c] for r < rows, c < D; zeros for rows up to nrows and columns up to Dp.
// 16-byte chunks: D % 8 == 0 and src rows 16-byte aligned (checked on the host).
static __device__ void load_tile(bf16 *dst, int ldd, const bf16 *src, long lds, int rows, int nrows, int D, int Dp) {
  const int chunks = Dp / 8;
  for (int i = threadIdx.x; i < nrows * chunks; i += blockDim.x) {
    const int r = i / chunks, c = (i % chunks) * 8;
    uint4 v = make_uint4(0, 0, 0, 0);
    if (r < rows && c < D) v = *(const uint4 *)(src + r * lds + c);
    *(uint4 *)(dst + r * ldd + c) = v;
  }
}

// ---- which tile a block works on ----

// A block's rows: queries [q0 + i0, q0 + min(i0 + TILE, nq)) of a sequence whose queries start at row q0
// and keys at row k0. Query i sees key j when j < nk and, if causal, j <= i + shift.
typedef struct {
  int q0, k0, nq, nk, shift, i0;
} span;

// Tile b (of `tile` rows) over the sequences of cu (n_seq of them, packed: queries = keys = the sequence's
// rows), or over one block of nq queries and nk keys when cu is NULL. Returns 0 past the last tile. Every
// thread calls it (each warp scans cu on its own, 32 sequences a step) and gets the same answer.
static __device__ int find_span(const int32_t *cu, int n_seq, int nq, int nk, int tile, int b, span *sp) {
  if (!cu) {
    sp->q0 = sp->k0 = 0;
    sp->nq = nq, sp->nk = nk, sp->shift = nk - nq, sp->i0 = b * tile;
    return b * tile < nq;
  }
  const int lane = threadIdx.x & 31;
  int before = 0;   // tiles of the sequences already scanned
  for (int s0 = 0; s0 < n_seq; s0 += 32) {
    const int s = s0 + lane;
    const int n = s < n_seq ? (cu[s + 1] - cu[s] + tile - 1) / tile : 0;
    int incl = n;   // inclusive prefix sum of the tile counts over the lanes
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const int y = __shfl_up_sync(0xffffffffu, incl, o);
      if (lane >= o) incl += y;
    }
    const int total = __shfl_sync(0xffffffffu, incl, 31);
    if (b < before + total) {
      const int src = __ffs(__ballot_sync(0xffffffffu, before + incl > b)) - 1;
      const int first = __shfl_sync(0xffffffffu, before + incl - n, src);   // tiles before sequence s0 + src
      const int start = cu[s0 + src], len = cu[s0 + src + 1] - start;
      sp->q0 = sp->k0 = start;
      sp->nq = sp->nk = len, sp->shift = 0, sp->i0 = (b - first) * tile;
      return 1;
    }
    before += total;
  }
  return 0;
}

// Upper bound on the tiles of T rows split into n_seq sequences.
static unsigned tile_blocks(int T, int n_seq) { return cuda_blocks((size_t)T + (size_t)n_seq * TILE, TILE); }

// ---- forward (also attention against a cache) ----

typedef struct {
  const bf16 *q, *k, *v;   // query head 0, kv head 0 of row 0
  bf16 *o;                 // output head 0 of row 0
  float *lse;              // lse[h * lse_ld + row] (natural log), or NULL
  long ldq, ldk, ldv, ldo; // row strides (elements)
  int lse_ld;
  const int32_t *cu;       // sequences (see find_span), or NULL for one block of nq queries, nk keys
  int n_seq, nq, nk;
  int group, D, Dp, causal;
  float scale_log2;        // softmax scale times log2(e): the kernels use exp2
} fwd_args;

// Grid (tiles, Hq), THREADS threads. Online softmax over key tiles of TILE; O, row max and row sum stay in
// registers.
static __global__ void __launch_bounds__(THREADS) attn_fwd_kernel(fwd_args a) {
  __shared__ __align__(16) bf16 ks[TILE * LDH];   // K tile [key][d]; the Q tile before the loop
  __shared__ __align__(16) bf16 vs[TILE * LDH];   // V tile [key][d]
  span sp;
  if (!find_span(a.cu, a.n_seq, a.nq, a.nk, TILE, blockIdx.x, &sp)) return;
  const int h = blockIdx.y, kvh = h / a.group, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int g = lane >> 2, t = lane & 3, nkk = a.Dp / 16, ndt = a.Dp / 8;
  const int rows = min_i(TILE, sp.nq - sp.i0);

  load_tile(ks, LDH, a.q + (long)(sp.q0 + sp.i0) * a.ldq + (long)h * a.D, a.ldq, rows, TILE, a.D, a.Dp);
  __syncthreads();
  uint32_t qf[KSTEPS][4];   // this warp's 16 query rows as A fragments
#pragma unroll
  for (int kk = 0; kk < KSTEPS; kk++)
    if (kk < nkk) frag_a(qf[kk], ks, LDH, warp * 16, kk * 16, g, t);
  __syncthreads();

  const int r_lo = sp.i0 + warp * 16 + g, r_hi = r_lo + 8;   // this lane's query rows (in the sequence)
  const int last = sp.i0 + rows - 1;                         // the tile's last query
  const int n_keys = a.causal ? min_i(sp.nk, last + sp.shift + 1) : sp.nk;
  const bf16 *kbase = a.k + (long)sp.k0 * a.ldk + (long)kvh * a.D;
  const bf16 *vbase = a.v + (long)sp.k0 * a.ldv + (long)kvh * a.D;
  float o[DTILES][4];
#pragma unroll
  for (int dt = 0; dt < DTILES; dt++) o[dt][0] = o[dt][1] = o[dt][2] = o[dt][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};   // running max (log2 units) and sum, rows lo, hi

  for (int j0 = 0; j0 < n_keys; j0 += TILE) {
    const int kr = min_i(TILE, sp.nk - j0);
    load_tile(ks, LDH, kbase + (long)j0 * a.ldk, a.ldk, kr, TILE, a.D, a.Dp);
    load_tile(vs, LDH, vbase + (long)j0 * a.ldv, a.ldv, kr, TILE, a.D, a.Dp);
    __syncthreads();
    float s[TILE / 8][4];   // scores of rows lo, hi against the tile's keys
#pragma unroll
    for (int nt = 0; nt < TILE / 8; nt++) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < KSTEPS; kk++) {
      if (kk >= nkk) continue;
#pragma unroll
      for (int nt = 0; nt < TILE / 8; nt++) {
        uint32_t b[2];
        frag_b(b, ks, LDH, nt * 8, kk * 16, g, t);
        mma_bf16(s[nt], qf[kk], b);
      }
    }
#pragma unroll
    for (int nt = 0; nt < TILE / 8; nt++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int col = j0 + nt * 8 + 2 * t + (e & 1), row = e < 2 ? r_lo : r_hi;
        const int ok = col < sp.nk && (!a.causal || col <= row + sp.shift);
        s[nt][e] = ok ? s[nt][e] * a.scale_log2 : -INFINITY;
      }
    // online softmax, row by row; a row's 4 lanes combine their maxima and sums
#pragma unroll
    for (int r = 0; r < 2; r++) {
      float mx = -INFINITY;
#pragma unroll
      for (int nt = 0; nt < TILE / 8; nt++) mx = fmaxf(mx, fmaxf(s[nt][2 * r], s[nt][2 * r + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float m_new = fmaxf(m[r], mx);
      const float base = m_new == -INFINITY ? 0.0f : m_new;   // a row with nothing visible yet stays at 0
      const float alpha = exp2f(m[r] - base);
      float sum = 0.0f;
#pragma unroll
      for (int nt = 0; nt < TILE / 8; nt++) {
        s[nt][2 * r] = exp2f(s[nt][2 * r] - base);
        s[nt][2 * r + 1] = exp2f(s[nt][2 * r + 1] - base);
        sum += s[nt][2 * r] + s[nt][2 * r + 1];
      }
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
      l[r] = l[r] * alpha + sum;
      m[r] = m_new;
#pragma unroll
      for (int dt = 0; dt < DTILES; dt++) {
        o[dt][2 * r] *= alpha;
        o[dt][2 * r + 1] *= alpha;
      }
    }
    // O += P V, P straight from the score registers
#pragma unroll
    for (int kk = 0; kk < TILE / 16; kk++) {
      uint32_t pa[4];
      acc_to_a(pa, s[2 * kk], s[2 * kk + 1]);
#pragma unroll
      for (int dt = 0; dt < DTILES; dt++) {
        if (dt >= ndt) continue;
        uint32_t b[2];
        frag_bt(b, vs, LDH, kk * 16, dt * 8, lane);
        mma_bf16(o[dt], pa, b);
      }
    }
    __syncthreads();   // the next tile overwrites ks and vs
  }

#pragma unroll
  for (int r = 0; r < 2; r++) {
    const int row = r ? r_hi : r_lo;
    if (row >= sp.nq) continue;
    const float inv = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
    bf16 *orow = a.o + (long)(sp.q0 + row) * a.ldo + (long)h * a.D;
#pragma unroll
    for (int dt = 0; dt < DTILES; dt++) {
      const int c = dt * 8 + 2 * t;
      if (dt < ndt && c < a.D)
        *(__nv_bfloat162 *)(orow + c) = __floats2bfloat162_rn(o[dt][2 * r] * inv, o[dt][2 * r + 1] * inv);
    }
    if (a.lse && t == 0) a.lse[(long)h * a.lse_ld + sp.q0 + row] = m[r] * LN2 + logf(l[r]);
  }
}

// ---- backward ----

typedef struct {
  bf16 *dqkv;              // [T, row]
  const bf16 *qkv, *dout;  // [T, row], [T, Hq D]
  const float *lse;        // [Hq, T]
  const float *delta;      // [Hq, T] rowsum(dO * O)
  const int32_t *cu;
  int n_seq, T, Hq, Hkv, D, Dp, causal;
  float scale, scale_log2;
} bwd_args;

// delta[h, t] = sum_d dout[t, h, d] * out[t, h, d]: one warp per (row, head).
static __global__ void attn_delta_kernel(float *delta, const bf16 *dout, const bf16 *out, int T, int Hq, int D) {
  const long w = ((long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (w >= (long)T * Hq) return;
  const int row = (int)(w / Hq), h = (int)(w % Hq);
  const bf16 *x = dout + (long)row * Hq * D + (long)h * D, *y = out + (long)row * Hq * D + (long)h * D;
  float s = 0.0f;
  for (int d = lane; d < D; d += 32) s += __bfloat162float(x[d]) * __bfloat162float(y[d]);
  s = warp_sum(s);
  if (lane == 0) delta[(long)h * T + row] = s;
}

// Shared memory of the dK dV kernel (bytes): K and V tiles, a query chunk of Q and dO, the chunk's lse and
// delta.
#define DKDV_SMEM (2 * TILE * LDH * 2 + 2 * CHUNK * LDH * 2 + 2 * CHUNK * 4)

// Grid (key tiles, Hkv), THREADS threads. Each warp owns 16 keys and accumulates their dK, dV in registers
// over the group's query heads and the sequence's query chunks, in that fixed order.
static __global__ void __launch_bounds__(THREADS) attn_bwd_dkdv_kernel(bwd_args a) {
  extern __shared__ __align__(16) unsigned char smem[];
  bf16 *ks = (bf16 *)smem;          // [TILE][LDH] keys
  bf16 *vs = ks + TILE * LDH;       // [TILE][LDH] values
  bf16 *qs = vs + TILE * LDH;       // [CHUNK][LDH] queries
  bf16 *ds = qs + CHUNK * LDH;      // [CHUNK][LDH] output gradient
  float *lse_s = (float *)(ds + CHUNK * LDH);   // [CHUNK] lse of the chunk's queries, log2 units
  float *del_s = lse_s + CHUNK;                 // [CHUNK] delta of the chunk's queries
  span sp;
  if (!find_span(a.cu, a.n_seq, 0, 0, TILE, blockIdx.x, &sp)) return;
  const int kvh = blockIdx.y, group = a.Hq / a.Hkv, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int g = lane >> 2, t = lane & 3, nkk = a.Dp / 16, ndt = a.Dp / 8;
  const long ld = (long)(a.Hq + 2 * a.Hkv) * a.D, ldo = (long)a.Hq * a.D;
  const int kfirst = sp.i0, krows = min_i(TILE, sp.nk - kfirst);   // this block's keys (in the sequence)
  const bf16 *krow = a.qkv + (long)(sp.k0 + kfirst) * ld;
  load_tile(ks, LDH, krow + (long)(a.Hq + kvh) * a.D, ld, krows, TILE, a.D, a.Dp);
  load_tile(vs, LDH, krow + (long)(a.Hq + a.Hkv + kvh) * a.D, ld, krows, TILE, a.D, a.Dp);

  const int key_lo = kfirst + warp * 16 + g, key_hi = key_lo + 8;   // this lane's keys
  float dk[DTILES][4], dv[DTILES][4];
#pragma unroll
  for (int d = 0; d < DTILES; d++) dk[d][0] = dk[d][1] = dk[d][2] = dk[d][3] = dv[d][0] = dv[d][1] = dv[d][2] = dv[d][3] = 0.0f;
  const int q_begin = a.causal ? kfirst / CHUNK * CHUNK : 0;   // earlier queries see none of these keys

  for (int hh = 0; hh < group; hh++) {
    const int h = kvh * group + hh;
    for (int i0 = q_begin; i0 < sp.nq; i0 += CHUNK) {
      const int qrows = min_i(CHUNK, sp.nq - i0);
      const bf16 *qsrc = a.qkv + (long)(sp.q0 + i0) * ld + (long)h * a.D;
      const bf16 *dsrc = a.dout + (long)(sp.q0 + i0) * ldo + (long)h * a.D;
      __syncthreads();   // the previous chunk is done with the shared tiles
      load_tile(qs, LDH, qsrc, ld, qrows, CHUNK, a.D, a.Dp);
      load_tile(ds, LDH, dsrc, ldo, qrows, CHUNK, a.D, a.Dp);
      for (int i = threadIdx.x; i < CHUNK; i += blockDim.x) {
        const long at = (long)h * a.T + sp.q0 + i0 + i;
        lse_s[i] = i < qrows ? a.lse[at] * LOG2E : 0.0f;
        del_s[i] = i < qrows ? a.delta[at] : 0.0f;
      }
      __syncthreads();

      // S^T = K Q^T and dP^T = V dO^T: 16 keys x CHUNK queries per warp
      float st[CHUNK / 8][4], dpt[CHUNK / 8][4];
#pragma unroll
      for (int nt = 0; nt < CHUNK / 8; nt++)
        st[nt][0] = st[nt][1] = st[nt][2] = st[nt][3] = dpt[nt][0] = dpt[nt][1] = dpt[nt][2] = dpt[nt][3] = 0.0f;
#pragma unroll
      for (int kk = 0; kk < KSTEPS; kk++) {
        if (kk >= nkk) continue;
        uint32_t ka[4], va[4];
        frag_a(ka, ks, LDH, warp * 16, kk * 16, g, t);
        frag_a(va, vs, LDH, warp * 16, kk * 16, g, t);
#pragma unroll
        for (int nt = 0; nt < CHUNK / 8; nt++) {
          uint32_t b[2];
          frag_b(b, qs, LDH, nt * 8, kk * 16, g, t);
          mma_bf16(st[nt], ka, b);
          frag_b(b, ds, LDH, nt * 8, kk * 16, g, t);
          mma_bf16(dpt[nt], va, b);
        }
      }
      // P^T = exp(S^T scale - lse), zero where masked; dS^T = P^T (dP^T - delta)
#pragma unroll
      for (int nt = 0; nt < CHUNK / 8; nt++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
          const int qi = nt * 8 + 2 * t + (e & 1), q = i0 + qi, key = e < 2 ? key_lo : key_hi;
          const int ok = q < sp.nq && key < sp.nk && (!a.causal || key <= q);
          st[nt][e] = ok ? exp2f(st[nt][e] * a.scale_log2 - lse_s[qi]) : 0.0f;
          dpt[nt][e] = st[nt][e] * (dpt[nt][e] - del_s[qi]);
        }
      // dV += P^T dO, dK += dS^T Q
#pragma unroll
      for (int kk = 0; kk < CHUNK / 16; kk++) {
        uint32_t pa[4], sa[4];
        acc_to_a(pa, st[2 * kk], st[2 * kk + 1]);
        acc_to_a(sa, dpt[2 * kk], dpt[2 * kk + 1]);
#pragma unroll
        for (int d = 0; d < DTILES; d++) {
          if (d >= ndt) continue;
          uint32_t b[2];
          frag_bt(b, ds, LDH, kk * 16, d * 8, lane);
          mma_bf16(dv[d], pa, b);
          frag_bt(b, qs, LDH, kk * 16, d * 8, lane);
          mma_bf16(dk[d], sa, b);
        }
      }
    }
  }

#pragma unroll
  for (int r = 0; r < 2; r++) {
    const int key = r ? key_hi : key_lo;
    if (key >= sp.nk) continue;
    bf16 *row = a.dqkv + (long)(sp.k0 + key) * ld;
#pragma unroll
    for (int d = 0; d < DTILES; d++) {
      const int c = d * 8 + 2 * t;
      if (d >= ndt || c >= a.D) continue;
      *(__nv_bfloat162 *)(row + (long)(a.Hq + kvh) * a.D + c) =
          __floats2bfloat162_rn(dk[d][2 * r] * a.scale, dk[d][2 * r + 1] * a.scale);
      *(__nv_bfloat162 *)(row + (long)(a.Hq + a.Hkv + kvh) * a.D + c) = __floats2bfloat162_rn(dv[d][2 * r], dv[d][2 * r + 1]);
    }
  }
}

// Grid (query tiles, Hq), THREADS threads. Each warp owns 16 queries: dQ accumulates in registers over the
// visible keys, CHUNK at a time.
static __global__ void __launch_bounds__(THREADS) attn_bwd_dq_kernel(bwd_args a) {
  // First the Q and dO tiles [TILE][LDH] (to make fragments), then K and V [CHUNK][LDH] of each key chunk.
  __shared__ __align__(16) bf16 sm[2 * TILE * LDH];
  span sp;
  if (!find_span(a.cu, a.n_seq, 0, 0, TILE, blockIdx.x, &sp)) return;
  const int h = blockIdx.y, kvh = h / (a.Hq / a.Hkv), warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int g = lane >> 2, t = lane & 3, nkk = a.Dp / 16, ndt = a.Dp / 8;
  const long ld = (long)(a.Hq + 2 * a.Hkv) * a.D, ldo = (long)a.Hq * a.D;
  const int rows = min_i(TILE, sp.nq - sp.i0);

  load_tile(sm, LDH, a.qkv + (long)(sp.q0 + sp.i0) * ld + (long)h * a.D, ld, rows, TILE, a.D, a.Dp);
  load_tile(sm + TILE * LDH, LDH, a.dout + (long)(sp.q0 + sp.i0) * ldo + (long)h * a.D, ldo, rows, TILE, a.D, a.Dp);
  __syncthreads();
  uint32_t qf[KSTEPS][4], df[KSTEPS][4];   // this warp's queries and output gradients as A fragments
#pragma unroll
  for (int kk = 0; kk < KSTEPS; kk++)
    if (kk < nkk) {
      frag_a(qf[kk], sm, LDH, warp * 16, kk * 16, g, t);
      frag_a(df[kk], sm + TILE * LDH, LDH, warp * 16, kk * 16, g, t);
    }
  const int r_lo = sp.i0 + warp * 16 + g, r_hi = r_lo + 8;
  float lse2[2], del[2];   // rows lo, hi: lse in log2 units, delta
#pragma unroll
  for (int r = 0; r < 2; r++) {
    const int row = r ? r_hi : r_lo;
    const long at = (long)h * a.T + sp.q0 + row;
    lse2[r] = row < sp.nq ? a.lse[at] * LOG2E : 0.0f;
    del[r] = row < sp.nq ? a.delta[at] : 0.0f;
  }
  __syncthreads();   // done with the Q and dO tiles

  bf16 *ks = sm, *vs = sm + CHUNK * LDH;
  const int last = sp.i0 + rows - 1;
  const int n_keys = a.causal ? min_i(sp.nk, last + 1) : sp.nk;
  const bf16 *kbase = a.qkv + (long)sp.k0 * ld + (long)(a.Hq + kvh) * a.D;
  const bf16 *vbase = a.qkv + (long)sp.k0 * ld + (long)(a.Hq + a.Hkv + kvh) * a.D;
  float dq[DTILES][4];
#pragma unroll
  for (int d = 0; d < DTILES; d++) dq[d][0] = dq[d][1] = dq[d][2] = dq[d][3] = 0.0f;

  for (int j0 = 0; j0 < n_keys; j0 += CHUNK) {
    const int kr = min_i(CHUNK, sp.nk - j0);
    load_tile(ks, LDH, kbase + (long)j0 * ld, ld, kr, CHUNK, a.D, a.Dp);
    load_tile(vs, LDH, vbase + (long)j0 * ld, ld, kr, CHUNK, a.D, a.Dp);
    __syncthreads();
    // S = Q K^T and dP = dO V^T: 16 queries x CHUNK keys per warp
    float s[CHUNK / 8][4], dp[CHUNK / 8][4];
#pragma unroll
    for (int nt = 0; nt < CHUNK / 8; nt++) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = dp[nt][0] = dp[nt][1] = dp[nt][2] = dp[nt][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < KSTEPS; kk++) {
      if (kk >= nkk) continue;
#pragma unroll
      for (int nt = 0; nt < CHUNK / 8; nt++) {
        uint32_t b[2];
        frag_b(b, ks, LDH, nt * 8, kk * 16, g, t);
        mma_bf16(s[nt], qf[kk], b);
        frag_b(b, vs, LDH, nt * 8, kk * 16, g, t);
        mma_bf16(dp[nt], df[kk], b);
      }
    }
    // dS = P (dP - delta), P = exp(S scale - lse), zero where masked
#pragma unroll
    for (int nt = 0; nt < CHUNK / 8; nt++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int key = j0 + nt * 8 + 2 * t + (e & 1), r = e >> 1, row = r ? r_hi : r_lo;
        const int ok = row < sp.nq && key < sp.nk && (!a.causal || key <= row);
        const float p = ok ? exp2f(s[nt][e] * a.scale_log2 - lse2[r]) : 0.0f;
        s[nt][e] = p * (dp[nt][e] - del[r]);
      }
    // dQ += dS K
#pragma unroll
    for (int kk = 0; kk < CHUNK / 16; kk++) {
      uint32_t sa[4];
      acc_to_a(sa, s[2 * kk], s[2 * kk + 1]);
#pragma unroll
      for (int d = 0; d < DTILES; d++) {
        if (d >= ndt) continue;
        uint32_t b[2];
        frag_bt(b, ks, LDH, kk * 16, d * 8, lane);
        mma_bf16(dq[d], sa, b);
      }
    }
    __syncthreads();   // the next chunk overwrites ks and vs
  }

#pragma unroll
  for (int r = 0; r < 2; r++) {
    const int row = r ? r_hi : r_lo;
    if (row >= sp.nq) continue;
    bf16 *dst = a.dqkv + (long)(sp.q0 + row) * ld + (long)h * a.D;
#pragma unroll
    for (int d = 0; d < DTILES; d++) {
      const int c = d * 8 + 2 * t;
      if (d < ndt && c < a.D)
        *(__nv_bfloat162 *)(dst + c) = __floats2bfloat162_rn(dq[d][2 * r] * a.scale, dq[d][2 * r + 1] * a.scale);
    }
  }
}

// ---- per-backend state ----

typedef enum { PATH_AUTO, PATH_OWN, PATH_CUDNN } attn_path;

// Attention's state for one backend, found by the backend's address. lcc_cuda_attention_install registers
// it and chains the backend's destroy to free it.
typedef struct attn_state {
  lcc_backend *be;
  void (*next_destroy)(lcc_backend *be);   // the backend's own destroy, called after ours
  attn_path path;
  lcc_sdpa *sdpa;          // cuDNN plans; NULL until the first cuDNN call
  int sdpa_broken;         // cuDNN could not start at all (no handle): never try again
  int warned;              // a cuDNN fallback was logged
  float *delta;            // backward scratch [Hq, T]
  size_t delta_cap;        // floats
  int32_t *cu_host;        // host copy of cu_seqlens (cuDNN plans need the lengths)
  int cu_cap;
  const int32_t *cu_dev;   // ...of this device array with these sizes, made after upload number cu_uploads
  int cu_n_seq, cu_T;
  unsigned long long cu_uploads;
  int dkdv_smem_set;       // the dK dV kernel may use DKDV_SMEM bytes of shared memory
  struct attn_state *next;
} attn_state;

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static attn_state *registry;   // every installed backend's state

static attn_state *state_of(lcc_backend *be) {
  pthread_mutex_lock(&registry_lock);
  attn_state *st = registry;
  while (st && st->be != be) st = st->next;
  pthread_mutex_unlock(&registry_lock);
  LCC_CHECK(st, "attention: backend %p has no attention state (lcc_cuda_attention_install was not called)", (void *)be);
  return st;
}

static attn_path path_from_env(void) {
  const char *v = getenv("LCC_ATTENTION");
  if (!v || !*v || !strcmp(v, "auto")) return PATH_AUTO;
  if (!strcmp(v, "own")) return PATH_OWN;
  if (!strcmp(v, "cudnn")) return PATH_CUDNN;
  lcc_fatal("LCC_ATTENTION must be auto, own or cudnn (got '%s')", v);
}

static void attention_destroy(lcc_backend *be) {
  pthread_mutex_lock(&registry_lock);
  attn_state **p = &registry;
  while (*p && (*p)->be != be) p = &(*p)->next;
  attn_state *st = *p;
  if (st) *p = st->next;
  pthread_mutex_unlock(&registry_lock);
  LCC_CHECK(st, "attention: destroying a backend without attention state");
  CUDA_CHECK(cudaStreamSynchronize(lcc_cuda_stream(be)));
  if (st->sdpa) lcc_sdpa_destroy(st->sdpa);
  if (st->delta) CUDA_CHECK(cudaFree(st->delta));
  free(st->cu_host);
  void (*next_destroy)(lcc_backend *) = st->next_destroy;
  free(st);
  next_destroy(be);
}

// Grow-only device scratch for delta (the old buffer may still be in use by queued work).
static float *delta_scratch(attn_state *st, cudaStream_t s, size_t n) {
  if (n > st->delta_cap) {
    if (st->delta) {
      CUDA_CHECK(cudaStreamSynchronize(s));
      CUDA_CHECK(cudaFree(st->delta));
    }
    CUDA_CHECK(cudaMalloc(&st->delta, n * sizeof(float)));
    st->delta_cap = n;
  }
  return st->delta;
}

// ---- the ops ----

// Shapes our kernels take; a violation is a bug in the caller (the model's configs all fit).
static void check_shape(const char *op, int Hq, int Hkv, int D, const void *p0, const void *p1, const void *p2) {
  LCC_CHECK(Hq > 0 && Hkv > 0 && Hq % Hkv == 0, "%s: Hq=%d must be a multiple of Hkv=%d", op, Hq, Hkv);
  LCC_CHECK(D > 0 && D % 8 == 0 && D <= DMAX, "%s: head dim %d unsupported by the CUDA kernels (a multiple of 8 up to %d)",
            op, D, DMAX);
  LCC_CHECK(cuda_aligned(p0, 16) && cuda_aligned(p1, 16) && cuda_aligned(p2, 16), "%s: tensors must be 16-byte aligned", op);
}

// cu_seqlens on the host, checked as the CPU backend checks it. The model writes cu_seqlens only by upload
// (once per batch) and every layer reads the same array, so the copy is made (waiting for the stream) only
// when the array, its sizes or the upload count changed: not once per layer.
static const int32_t *host_seqlens(lcc_backend *be, attn_state *st, cudaStream_t s, const int32_t *cu, int n_seq, int T) {
  const unsigned long long uploads = cuda_of(be)->uploads;
  if (cu == st->cu_dev && n_seq == st->cu_n_seq && T == st->cu_T && uploads == st->cu_uploads) return st->cu_host;
  if (n_seq + 1 > st->cu_cap) {
    st->cu_cap = n_seq + 1;
    st->cu_host = (int32_t *)lcc_realloc(st->cu_host, (size_t)st->cu_cap * sizeof(int32_t));
  }
  CUDA_CHECK(cudaMemcpyAsync(st->cu_host, cu, (size_t)(n_seq + 1) * sizeof(int32_t), cudaMemcpyDeviceToHost, s));
  CUDA_CHECK(cudaStreamSynchronize(s));
  const int32_t *h = st->cu_host;
  for (int i = 0; i < n_seq; i++)
    LCC_CHECK(h[0] >= 0 && h[i + 1] >= h[i] && h[i + 1] <= T, "attention: cu_seqlens[%d..%d] = %d..%d outside [0, %d]", i,
              i + 1, h[i], h[i + 1], T);
  st->cu_dev = cu, st->cu_n_seq = n_seq, st->cu_T = T, st->cu_uploads = uploads;
  return h;
}

// Runs cuDNN when the path allows it; returns 1 when it did the work. fwd: dqkv and dout are NULL.
static int try_cudnn(lcc_backend *be, attn_state *st, int bwd, void *dst, float *lse, const void *qkv, const void *out,
                     const void *dout, const int32_t *cu, int n_seq, int T, int Hq, int Hkv, int D, int causal) {
  if (st->path == PATH_OWN || st->sdpa_broken) {
    LCC_CHECK(st->path != PATH_CUDNN, "attention: LCC_ATTENTION=cudnn but cuDNN could not start");
    return 0;
  }
  cudaStream_t s = lcc_cuda_stream(be);
  char why[512] = "";
  if (!st->sdpa && !(st->sdpa = lcc_sdpa_create(why, sizeof why))) {
    st->sdpa_broken = 1;
    LCC_CHECK(st->path != PATH_CUDNN, "attention: LCC_ATTENTION=cudnn but cuDNN could not start: %s", why);
    fprintf(stderr, "livecc: attention: cuDNN unavailable (%s); using the built-in kernels\n", why);
    return 0;
  }
  const int32_t *cu_host = host_seqlens(be, st, s, cu, n_seq, T);
  lcc_sdpa_call c = {s, (const bf16 *)qkv, cu_host, n_seq, T, Hq, Hkv, D, causal, st->path == PATH_CUDNN};
  int rc = bwd ? lcc_sdpa_bwd(st->sdpa, &c, (bf16 *)dst, (const bf16 *)out, (const bf16 *)dout, lse, why, sizeof why)
               : lcc_sdpa_fwd(st->sdpa, &c, (bf16 *)dst, lse, why, sizeof why);
  if (rc == 0) return 1;
  LCC_CHECK(st->path != PATH_CUDNN, "attention: LCC_ATTENTION=cudnn but cuDNN SDPA %s failed: %s", bwd ? "backward" : "forward",
            why);
  if (!st->warned) {
    fprintf(stderr, "livecc: attention: cuDNN SDPA %s not used (%s); using the built-in kernels (logged once)\n",
            bwd ? "backward" : "forward", why);
    st->warned = 1;
  }
  return 0;
}

static void cuda_attention_fwd(lcc_backend *be, void *out, float *lse, const void *qkv, const int32_t *cu_seqlens,
                               int n_seq, int T, int Hq, int Hkv, int D, int causal) {
  attn_state *st = state_of(be);
  check_shape("attention_fwd", Hq, Hkv, D, out, qkv, qkv);
  if (n_seq <= 0 || T <= 0) return;
  if (try_cudnn(be, st, 0, out, lse, qkv, NULL, NULL, cu_seqlens, n_seq, T, Hq, Hkv, D, causal)) return;
  const long ld = (long)(Hq + 2 * Hkv) * D;
  fwd_args a = {(const bf16 *)qkv, (const bf16 *)qkv + (long)Hq * D, (const bf16 *)qkv + (long)(Hq + Hkv) * D,
                (bf16 *)out, lse, ld, ld, ld, (long)Hq * D, T, cu_seqlens, n_seq, 0, 0, Hq / Hkv, D, (D + 15) / 16 * 16,
                causal, LOG2E / sqrtf((float)D)};
  attn_fwd_kernel<<<dim3(tile_blocks(T, n_seq), Hq), THREADS, 0, lcc_cuda_stream(be)>>>(a);
  CUDA_LAUNCH_CHECK();
}

static void cuda_attention_bwd(lcc_backend *be, void *dqkv, const void *dout, const void *qkv, const void *out,
                               const float *lse, const int32_t *cu_seqlens, int n_seq, int T, int Hq, int Hkv, int D,
                               int causal) {
  attn_state *st = state_of(be);
  cudaStream_t s = lcc_cuda_stream(be);
  check_shape("attention_bwd", Hq, Hkv, D, dqkv, qkv, dout);
  LCC_CHECK(cuda_aligned(out, 16), "attention_bwd: tensors must be 16-byte aligned");
  const size_t row = (size_t)(Hq + 2 * Hkv) * D;
  CUDA_CHECK(cudaMemsetAsync(dqkv, 0, (size_t)(T > 0 ? T : 0) * row * sizeof(bf16), s));   // rows outside sequences
  if (n_seq <= 0 || T <= 0) return;
  if (try_cudnn(be, st, 1, dqkv, (float *)lse, qkv, out, dout, cu_seqlens, n_seq, T, Hq, Hkv, D, causal)) return;

  float *delta = delta_scratch(st, s, (size_t)Hq * T);   // [Hq, T]
  attn_delta_kernel<<<cuda_blocks((size_t)T * Hq * 32, 256), 256, 0, s>>>(delta, (const bf16 *)dout, (const bf16 *)out,
                                                                          T, Hq, D);
  CUDA_LAUNCH_CHECK();
  bwd_args a = {(bf16 *)dqkv, (const bf16 *)qkv, (const bf16 *)dout, lse, delta, cu_seqlens, n_seq, T, Hq, Hkv, D,
                (D + 15) / 16 * 16, causal, 1.0f / sqrtf((float)D), LOG2E / sqrtf((float)D)};
  if (!st->dkdv_smem_set) {
    CUDA_CHECK(cudaFuncSetAttribute(attn_bwd_dkdv_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, DKDV_SMEM));
    st->dkdv_smem_set = 1;
  }
  attn_bwd_dkdv_kernel<<<dim3(tile_blocks(T, n_seq), Hkv), THREADS, DKDV_SMEM, s>>>(a);
  CUDA_LAUNCH_CHECK();
  attn_bwd_dq_kernel<<<dim3(tile_blocks(T, n_seq), Hq), THREADS, 0, s>>>(a);
  CUDA_LAUNCH_CHECK();
}

static void cuda_attention_cached(lcc_backend *be, void *out, const void *q, int ldq, const void *kc, const void *vc,
                                  int Tn, int Tc, int Hq, int Hkv, int D) {
  check_shape("attention_cached", Hq, Hkv, D, out, q, kc);
  LCC_CHECK(cuda_aligned(vc, 16) && ldq % 8 == 0 && Tn <= Tc, "attention_cached: bad shapes (ldq %d, Tn %d, Tc %d)", ldq,
            Tn, Tc);
  if (Tn <= 0) return;
  fwd_args a = {(const bf16 *)q, (const bf16 *)kc, (const bf16 *)vc, (bf16 *)out, NULL, ldq, (long)Hkv * D,
                (long)Hkv * D, (long)Hq * D, 0, NULL, 0, Tn, Tc, Hq / Hkv, D, (D + 15) / 16 * 16, 1,
                LOG2E / sqrtf((float)D)};
  attn_fwd_kernel<<<dim3(cuda_blocks((size_t)Tn, TILE), Hq), THREADS, 0, lcc_cuda_stream(be)>>>(a);
  CUDA_LAUNCH_CHECK();
}

extern "C" void lcc_cuda_attention_install(lcc_backend *be) {
  pthread_mutex_lock(&registry_lock);
  attn_state *st = registry;
  while (st && st->be != be) st = st->next;
  if (!st) {   // first install: chain the backend's destroy
    st = (attn_state *)lcc_calloc(1, sizeof *st);
    st->be = be;
    st->next_destroy = be->destroy;
    st->next = registry;
    registry = st;
    be->destroy = attention_destroy;
  }
  st->path = path_from_env();
  pthread_mutex_unlock(&registry_lock);
  be->attention_fwd = cuda_attention_fwd;
  be->attention_bwd = cuda_attention_bwd;
  be->attention_cached = cuda_attention_cached;
}
