// Token embedding lookup and its gradient; row moves: the vision-feature scatter into pad-token rows, its
// backward, and strided row copies.
//
// Embedding backward without float atomics (dtable[ids[t]] += dout[t] for every t, repeated ids summed in
// token order, bit-identical run to run):
//   1. order: each token's position in the (id, t) order, found by counting the tokens that precede it
//      (T^2 integer compares from shared memory: 0.6 G at T = 24K, an estimated 0.1-0.2 ms on an H100; a
//      radix sort would replace it if T grew to hundreds of thousands);
//   2. runs: the sorted positions in chunks of EMB_CHUNK; within a chunk, each run of equal ids sums its
//      rows in token order into part[run start];
//   3. segments: each id's first position adds its run sums (its own chunk's, then one per following chunk
//      it spans, in order) into dtable[id]. Every id's row is written by one thread per column.
// Working memory: the backend's shared work scratch, 8 T + 4 T C bytes (0.15 GB at T = 24K, C = 1536).
#include "cuda_common.h"

#define ROW_THREADS 128   // threads per row for the row moves (8 columns each per step)
#define RANK_THREADS 256
#define EMB_CHUNK 64      // sorted positions per run-sum block
#define EMB_THREADS 128   // columns / 8 per block of the run and segment kernels

// ---- row moves ----

// dst row dst_idx[r] (or r) = src row src_idx[r] (or r), one block per row r, raw 16-bit copies. dst may be
// NULL (no copy); zero_src then clears the source row (scatter backward: rows are distinct, each block
// reads its own row before clearing it). vec: both bases 16-byte aligned and C % 8 == 0.
static __global__ void move_rows_kernel(uint16_t *dst, const int32_t *dst_idx, uint16_t *src, const int32_t *src_idx,
                                        int C, int zero_src, int vec) {
  const size_t r = blockIdx.x;
  uint16_t *s = src + (size_t)(src_idx ? src_idx[r] : r) * C;
  uint16_t *d = dst ? dst + (size_t)(dst_idx ? dst_idx[r] : r) * C : NULL;
  if (vec) {
    for (int i = threadIdx.x * 8; i < C; i += blockDim.x * 8) {
      if (d) *(uint4 *)(d + i) = *(const uint4 *)(s + i);
      if (zero_src) *(uint4 *)(s + i) = make_uint4(0, 0, 0, 0);
    }
  } else {
    for (int i = threadIdx.x; i < C; i += blockDim.x) {
      if (d) d[i] = s[i];
      if (zero_src) s[i] = 0;
    }
  }
}

static void move_rows(lcc_backend *be, void *dst, const int32_t *dst_idx, void *src, const int32_t *src_idx, int R,
                      int C, int zero_src) {
  if (R == 0 || C == 0) return;
  const int vec = C % 8 == 0 && (!dst || cuda_aligned(dst, 16)) && cuda_aligned(src, 16);
  move_rows_kernel<<<(unsigned)R, ROW_THREADS, 0, cuda_of(be)->stream>>>((uint16_t *)dst, dst_idx, (uint16_t *)src,
                                                                           src_idx, C, zero_src, vec);
  CUDA_LAUNCH_CHECK();
}

void cuda_embedding_fwd(lcc_backend *be, void *out, const int32_t *ids, const void *table, int T, int C) {
  // out [T, C] = table [V, C] rows ids [T]
  move_rows(be, out, NULL, (void *)table, ids, T, C, 0);
}

void cuda_scatter_rows_fwd(lcc_backend *be, void *x, const void *feats, const int32_t *rows, int M, int C) {
  // x [T, C] rows rows[m] = feats [M, C] rows m
  move_rows(be, x, rows, (void *)feats, NULL, M, C, 0);
}

void cuda_scatter_rows_bwd(lcc_backend *be, void *dfeats, void *dx, const int32_t *rows, int M, int C) {
  // dfeats [M, C] (or NULL) = dx rows rows[m], then those rows of dx [T, C] = 0
  move_rows(be, dfeats, NULL, dx, rows, M, C, 1);
}

void cuda_copy_rows(lcc_backend *be, void *dst, int ld_dst, const void *src, int ld_src, int rows, int cols) {
  // dst [rows, ld_dst] <- src [rows, ld_src], the first cols of each row
  if (rows == 0 || cols == 0) return;
  const size_t e = sizeof(bf16);
  CUDA_CHECK(cudaMemcpy2DAsync(dst, (size_t)ld_dst * e, src, (size_t)ld_src * e, (size_t)cols * e, (size_t)rows,
                               cudaMemcpyDeviceToDevice, cuda_of(be)->stream));
}

// ---- embedding backward ----

static __global__ void emb_order_kernel(int32_t *order, int32_t *sorted_ids, const int32_t *ids, int T) {
  // order [T]: the tokens in (id, t) order; sorted_ids [T]: their ids. Thread t counts the tokens before it.
  __shared__ int32_t tile[RANK_THREADS];
  const int t = blockIdx.x * RANK_THREADS + threadIdx.x;
  const int32_t id = t < T ? ids[t] : 0;
  int rank = 0;
  for (int j0 = 0; j0 < T; j0 += RANK_THREADS) {
    __syncthreads();   // the previous tile is fully read
    if (j0 + (int)threadIdx.x < T) tile[threadIdx.x] = ids[j0 + threadIdx.x];
    __syncthreads();
    const int n = min_i(RANK_THREADS, T - j0);
    for (int k = 0; k < n; k++) {
      const int32_t o = tile[k];
      rank += (o < id) | ((o == id) & (j0 + k < t));
    }
  }
  if (t < T) {
    order[rank] = t;
    sorted_ids[rank] = id;
  }
}

static __global__ void emb_runs_kernel(float *part, const int32_t *order, const int32_t *sorted_ids, const bf16 *dout,
                                       int T, int C, int vec_in, int vec_part) {
  // grid (chunks of EMB_CHUNK sorted positions, column groups); part [T, C]: run sums at run starts
  const int c = (blockIdx.y * blockDim.x + threadIdx.x) * 8;
  if (c >= C) return;
  const int p0 = blockIdx.x * EMB_CHUNK, p1 = min_i(p0 + EMB_CHUNK, T), n = C - c;
  float acc[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
  int start = p0;
  for (int p = p0; p < p1; p++) {
    float f[8];
    load8_bf16(dout + (size_t)order[p] * C + c, n, vec_in, f);
#pragma unroll
    for (int k = 0; k < 8; k++) acc[k] += f[k];
    if (p + 1 == p1 || sorted_ids[p + 1] != sorted_ids[p]) {   // the run ends here
      store8_f32(part + (size_t)start * C + c, n, vec_part, acc);
#pragma unroll
      for (int k = 0; k < 8; k++) acc[k] = 0.0f;
      start = p + 1;
    }
  }
}

static __global__ void emb_segments_kernel(float *dtable, const float *part, const int32_t *sorted_ids, int T, int C,
                                           int vec_part, int vec_tab) {
  // grid (T sorted positions, column groups): position s acts only if it starts its id's segment
  const int s = blockIdx.x;
  const int32_t id = sorted_ids[s];
  if (s > 0 && sorted_ids[s - 1] == id) return;
  const int c = (blockIdx.y * blockDim.x + threadIdx.x) * 8;
  if (c >= C) return;
  const int n = C - c;
  float tot[8], f[8];
  load8_f32(part + (size_t)s * C + c, n, vec_part, tot);
  for (int b = (s / EMB_CHUNK + 1) * EMB_CHUNK; b < T && sorted_ids[b] == id; b += EMB_CHUNK) {
    load8_f32(part + (size_t)b * C + c, n, vec_part, f);   // the run that starts chunk b
#pragma unroll
    for (int k = 0; k < 8; k++) tot[k] += f[k];
  }
  float *row = dtable + (size_t)id * C + c;
  load8_f32(row, n, vec_tab, f);
#pragma unroll
  for (int k = 0; k < 8; k++) f[k] += tot[k];
  store8_f32(row, n, vec_tab, f);
}

void cuda_embedding_bwd(lcc_backend *be, float *dtable, const int32_t *ids, const void *dout, int T, int C) {
  // dtable [V, C] += dout [T, C] rows by ids [T]
  if (T == 0 || C == 0) return;
  cudaStream_t st = cuda_of(be)->stream;
  const size_t index_bytes = cuda_round256((size_t)2 * T * sizeof(int32_t));
  char *work = (char *)cuda_scratch(be, SCRATCH_WORK, index_bytes + (size_t)T * C * sizeof(float));
  int32_t *order = (int32_t *)work, *sorted_ids = order + T;   // [T] each
  float *part = (float *)(work + index_bytes);                 // [T, C]
  emb_order_kernel<<<cuda_blocks((size_t)T, RANK_THREADS), RANK_THREADS, 0, st>>>(order, sorted_ids, ids, T);
  CUDA_LAUNCH_CHECK();
  const unsigned col_groups = cuda_blocks(((size_t)C + 7) / 8, EMB_THREADS);
  const int vec_in = C % 8 == 0 && cuda_aligned(dout, 16), vec_part = C % 4 == 0;   // part: cudaMalloc-aligned
  const int vec_tab = C % 4 == 0 && cuda_aligned(dtable, 16);
  dim3 grid_runs(cuda_blocks((size_t)T, EMB_CHUNK), col_groups);
  emb_runs_kernel<<<grid_runs, EMB_THREADS, 0, st>>>(part, order, sorted_ids, (const bf16 *)dout, T, C, vec_in,
                                                      vec_part);
  CUDA_LAUNCH_CHECK();
  dim3 grid_seg((unsigned)T, col_groups);
  emb_segments_kernel<<<grid_seg, EMB_THREADS, 0, st>>>(dtable, part, sorted_ids, T, C, vec_part, vec_tab);
  CUDA_LAUNCH_CHECK();
}
