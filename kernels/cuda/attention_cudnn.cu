// cuDNN's fused SDPA through the cuDNN backend API: the operation graphs that cuDNN's flash-attention
// engines recognize (the same graphs cudnn-frontend builds for cuDNN 9 before 9.21), one execution plan per
// shape, cached.
//
// Packed varlen input is cut into runs of consecutive sequences of equal length: a run of B sequences of S
// rows is a dense batch [B, H, S, D] whose strides step through the packed rows, so no padding masks or
// ragged offsets are needed (ViT blocks of one video have equal lengths; a decoder batch is usually one
// sequence). The softmax statistics cuDNN reads and writes are [B, Hq, S] per run; small kernels move them
// from and to the backend's lse [Hq, T].
//
// Forward graph (scores fp32, P bf16):
//   S = matmul(Q, K^T) * scale;  causal: S = select(gen_index(row) >= gen_index(col), S, -inf)
//   M = max_row(S);  E = exp(S - M);  Z = sum_row(E);  Stats = M + log(Z);  O = matmul(E / Z, V)
// Backward graph (the deterministic form: dQ straight from a matmul, which makes cuDNN keep dP in its
// workspace instead of accumulating dQ with atomics):
//   Sum = sum_row(dO * O) * 1;  P = exp(mask(matmul(Q, K^T) * scale) - Stats)
//   dV = matmul(P^T, dO);  dS = (matmul(dO, V^T) - Sum) * P * scale;  dK = matmul(dS^T, Q);  dQ = matmul(dS, K)
//   GQA: dK, dV as [B, Hq, S, D] reduced over each kv head's query heads by an add reduction.
#include "cuda_common.h"

#include <cudnn.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "attention_cudnn.h"

#define MAX_PLANS 32        // cached plans; the least recently used goes first
#define MAX_DESCS 256       // descriptors one plan keeps alive
#define MAX_CFGS 32         // engine configurations tried per graph
#define AUTO_DP_LIMIT ((int64_t)256 << 20)   // auto path: largest dP workspace the backward may need (bytes)

// CUDNN_ATTR_OPERATIONGRAPH_HANDLE and CUDNN_ATTR_EXECUTION_PLAN_HANDLE are marked deprecated in cuDNN 9 but
// remain how a graph and a plan are tied to a handle (the alternative, device-property descriptors, is for
// building plans ahead of time); the numeric values avoid the deprecation warning.
#define ATTR_GRAPH_HANDLE ((cudnnBackendAttributeName_t)800)
#define ATTR_PLAN_HANDLE ((cudnnBackendAttributeName_t)400)

// Tensor ids of the variant pack; virtual tensors count up from UID_VIRTUAL.
enum { UID_Q = 1, UID_K, UID_V, UID_O, UID_STATS, UID_DO, UID_DQ, UID_DK, UID_DV, UID_SUM, UID_SCALE, UID_NEG_INF, UID_ONE,
       UID_VIRTUAL = 100 };

typedef struct {
  int bwd, b, s, hq, hkv, d, causal;
} plan_key;

typedef struct {
  plan_key key;
  int failed;                  // no plan for this shape: why says why
  char why[256];
  cudnnBackendDescriptor_t plan;
  int64_t ws;                  // workspace bytes
  cudnnBackendDescriptor_t descs[MAX_DESCS];   // everything made for the plan, destroyed with it
  int n_descs;
  uint64_t used;               // last use, for eviction
} plan_entry;

struct lcc_sdpa {
  cudnnHandle_t handle;
  plan_entry *plans[MAX_PLANS];
  uint64_t clock;
  void *ws;                    // workspace, then the statistics of a run
  size_t ws_cap;
};

// ---- descriptors with a sticky first error ----

typedef struct {
  plan_entry *e;
  int64_t next_uid;
  cudnnBackendDescriptor_t ops[64];
  int n_ops;
  cudnnStatus_t st;            // first failure
  const char *what;
} builder;

static cudnnBackendDescriptor_t make(builder *b, cudnnBackendDescriptorType_t type, const char *what) {
  if (b->st != CUDNN_STATUS_SUCCESS) return NULL;
  cudnnBackendDescriptor_t d = NULL;
  if (b->e->n_descs == MAX_DESCS) {
    b->st = CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED, b->what = "too many descriptors";
    return NULL;
  }
  if ((b->st = cudnnBackendCreateDescriptor(type, &d)) != CUDNN_STATUS_SUCCESS) {
    b->what = what;
    return NULL;
  }
  b->e->descs[b->e->n_descs++] = d;
  return d;
}

static void set(builder *b, cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type,
                int64_t n, const void *v, const char *what) {
  if (b->st != CUDNN_STATUS_SUCCESS) return;
  if ((b->st = cudnnBackendSetAttribute(d, name, type, n, v)) != CUDNN_STATUS_SUCCESS) b->what = what;
}

static void finish(builder *b, cudnnBackendDescriptor_t d, const char *what) {
  if (b->st != CUDNN_STATUS_SUCCESS) return;
  if ((b->st = cudnnBackendFinalize(d)) != CUDNN_STATUS_SUCCESS) b->what = what;
}

static void set_desc(builder *b, cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t name, cudnnBackendDescriptor_t v,
                     const char *what) {
  set(b, d, name, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &v, what);
}

// ---- tensors and operations ----

typedef struct {
  int64_t dim[4], stride[4];
} layout4;

static layout4 L4(int64_t d0, int64_t d1, int64_t d2, int64_t d3, int64_t s0, int64_t s1, int64_t s2, int64_t s3) {
  layout4 l = {{d0, d1, d2, d3}, {s0, s1, s2, s3}};
  return l;
}

static cudnnBackendDescriptor_t tensor(builder *b, int64_t uid, cudnnDataType_t type, layout4 l, bool is_virtual,
                                       bool by_value) {
  cudnnBackendDescriptor_t t = make(b, CUDNN_BACKEND_TENSOR_DESCRIPTOR, "tensor");
  const int64_t align = 16;
  set(b, t, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &type, "tensor type");
  set(b, t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, l.dim, "tensor dims");
  set(b, t, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, l.stride, "tensor strides");
  set(b, t, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid, "tensor id");
  set(b, t, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &align, "tensor alignment");
  if (is_virtual) set(b, t, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &is_virtual, "tensor virtual");
  if (by_value) set(b, t, CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, 1, &by_value, "tensor by value");
  finish(b, t, "tensor");
  return t;
}

static cudnnBackendDescriptor_t virt(builder *b, cudnnDataType_t type, layout4 l) {
  return tensor(b, b->next_uid++, type, l, true, false);
}

static void add_op(builder *b, cudnnBackendDescriptor_t op) {
  if (b->st != CUDNN_STATUS_SUCCESS) return;
  if (b->n_ops == (int)(sizeof b->ops / sizeof b->ops[0])) {
    b->st = CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED, b->what = "too many operations";
    return;
  }
  b->ops[b->n_ops++] = op;
}

// y = mode(x, b, t) elementwise in `math` precision; b and t may be NULL; axis only for GEN_INDEX.
static void pointwise(builder *b, cudnnPointwiseMode_t mode, cudnnDataType_t math, cudnnBackendDescriptor_t x,
                      cudnnBackendDescriptor_t in_b, cudnnBackendDescriptor_t in_t, cudnnBackendDescriptor_t y, int64_t axis) {
  cudnnBackendDescriptor_t pw = make(b, CUDNN_BACKEND_POINTWISE_DESCRIPTOR, "pointwise");
  set(b, pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode, "pointwise mode");
  set(b, pw, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &math, "pointwise precision");
  if (mode == CUDNN_POINTWISE_GEN_INDEX) set(b, pw, CUDNN_ATTR_POINTWISE_AXIS, CUDNN_TYPE_INT64, 1, &axis, "pointwise axis");
  finish(b, pw, "pointwise");
  cudnnBackendDescriptor_t op = make(b, CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR, "pointwise op");
  set_desc(b, op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, pw, "pointwise op descriptor");
  set_desc(b, op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC, x, "pointwise op x");
  if (in_b) set_desc(b, op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC, in_b, "pointwise op b");
  if (in_t) set_desc(b, op, CUDNN_ATTR_OPERATION_POINTWISE_TDESC, in_t, "pointwise op t");
  set_desc(b, op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC, y, "pointwise op y");
  finish(b, op, "pointwise op");
  add_op(b, op);
}

static void matmul(builder *b, cudnnBackendDescriptor_t a, cudnnBackendDescriptor_t bm, cudnnBackendDescriptor_t c) {
  const cudnnDataType_t f32 = CUDNN_DATA_FLOAT;
  cudnnBackendDescriptor_t mm = make(b, CUDNN_BACKEND_MATMUL_DESCRIPTOR, "matmul");
  set(b, mm, CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &f32, "matmul precision");
  finish(b, mm, "matmul");
  cudnnBackendDescriptor_t op = make(b, CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR, "matmul op");
  set_desc(b, op, CUDNN_ATTR_OPERATION_MATMUL_ADESC, a, "matmul op a");
  set_desc(b, op, CUDNN_ATTR_OPERATION_MATMUL_BDESC, bm, "matmul op b");
  set_desc(b, op, CUDNN_ATTR_OPERATION_MATMUL_CDESC, c, "matmul op c");
  set_desc(b, op, CUDNN_ATTR_OPERATION_MATMUL_DESC, mm, "matmul op descriptor");
  finish(b, op, "matmul op");
  add_op(b, op);
}

// y = reduce(x) over the dims where y has extent 1 (or, for the GQA head sums, fewer heads).
static void reduction(builder *b, cudnnReduceTensorOp_t mode, cudnnBackendDescriptor_t x, cudnnBackendDescriptor_t y) {
  const cudnnDataType_t f32 = CUDNN_DATA_FLOAT;
  const bool deterministic = false;   // the attribute's default, as cudnn-frontend sets it for SDPA
  cudnnBackendDescriptor_t rd = make(b, CUDNN_BACKEND_REDUCTION_DESCRIPTOR, "reduction");
  set(b, rd, CUDNN_ATTR_REDUCTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &f32, "reduction precision");
  set(b, rd, CUDNN_ATTR_REDUCTION_OPERATOR, CUDNN_TYPE_REDUCTION_OPERATOR_TYPE, 1, &mode, "reduction operator");
  set(b, rd, CUDNN_ATTR_REDUCTION_IS_DETERMINISTIC, CUDNN_TYPE_BOOLEAN, 1, &deterministic, "reduction determinism");
  finish(b, rd, "reduction");
  cudnnBackendDescriptor_t op = make(b, CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR, "reduction op");
  set_desc(b, op, CUDNN_ATTR_OPERATION_REDUCTION_DESC, rd, "reduction op descriptor");
  set_desc(b, op, CUDNN_ATTR_OPERATION_REDUCTION_XDESC, x, "reduction op x");
  set_desc(b, op, CUDNN_ATTR_OPERATION_REDUCTION_YDESC, y, "reduction op y");
  finish(b, op, "reduction op");
  add_op(b, op);
}

// The same data under other dims and strides (a transpose).
static void reshape(builder *b, cudnnBackendDescriptor_t x, cudnnBackendDescriptor_t y) {
  cudnnBackendDescriptor_t op = make(b, CUDNN_BACKEND_OPERATION_RESHAPE_DESCRIPTOR, "reshape op");
  set_desc(b, op, CUDNN_ATTR_OPERATION_RESHAPE_XDESC, x, "reshape op x");
  set_desc(b, op, CUDNN_ATTR_OPERATION_RESHAPE_YDESC, y, "reshape op y");
  finish(b, op, "reshape op");
  add_op(b, op);
}

// Scores x [B, H, S, S] with keys after the query replaced by neg_inf.
static cudnnBackendDescriptor_t causal_mask(builder *b, cudnnBackendDescriptor_t x, cudnnBackendDescriptor_t neg_inf,
                                            layout4 scores) {
  cudnnBackendDescriptor_t row = virt(b, CUDNN_DATA_INT32, scores), col = virt(b, CUDNN_DATA_INT32, scores);
  cudnnBackendDescriptor_t keep = virt(b, CUDNN_DATA_BOOLEAN, scores), y = virt(b, CUDNN_DATA_FLOAT, scores);
  pointwise(b, CUDNN_POINTWISE_GEN_INDEX, CUDNN_DATA_FLOAT, x, NULL, NULL, row, 2);
  pointwise(b, CUDNN_POINTWISE_GEN_INDEX, CUDNN_DATA_FLOAT, x, NULL, NULL, col, 3);
  pointwise(b, CUDNN_POINTWISE_CMP_GE, CUDNN_DATA_BOOLEAN, row, col, NULL, keep, 0);
  pointwise(b, CUDNN_POINTWISE_BINARY_SELECT, CUDNN_DATA_FLOAT, x, neg_inf, keep, y, 0);   // keep ? x : -inf
  return y;
}

// Layouts of one run: B sequences of S rows starting at a row of the packed buffers.
typedef struct {
  layout4 q, k, kt, v, vt, o, scores, scores_t, stats, heads;
} run_layouts;

static run_layouts layouts(const plan_key *k) {
  const int64_t B = k->b, S = k->s, H = k->hq, HK = k->hkv, D = k->d, row = (H + 2 * HK) * D, orow = H * D;
  run_layouts l;
  l.q = L4(B, H, S, D, S * row, D, row, 1);
  l.k = L4(B, HK, S, D, S * row, D, row, 1);
  l.kt = L4(B, HK, D, S, S * row, D, 1, row);
  l.v = l.k;
  l.vt = l.kt;
  l.o = L4(B, H, S, D, S * orow, D, orow, 1);
  l.scores = L4(B, H, S, S, H * S * S, S * S, S, 1);
  l.scores_t = L4(B, H, S, S, H * S * S, S * S, 1, S);
  l.stats = L4(B, H, S, 1, H * S, S, 1, 1);
  l.heads = L4(B, H, S, D, H * S * D, S * D, D, 1);   // dK, dV per query head before the GQA sum
  return l;
}

static void graph_fwd(builder *b, const plan_key *k) {
  const run_layouts l = layouts(k);
  const layout4 one = L4(1, 1, 1, 1, 1, 1, 1, 1);
  const cudnnDataType_t f32 = CUDNN_DATA_FLOAT, bf = CUDNN_DATA_BFLOAT16;
  cudnnBackendDescriptor_t q = tensor(b, UID_Q, bf, l.q, false, false), kt = tensor(b, UID_K, bf, l.kt, false, false);
  cudnnBackendDescriptor_t v = tensor(b, UID_V, bf, l.v, false, false), o = tensor(b, UID_O, bf, l.o, false, false);
  cudnnBackendDescriptor_t stats = tensor(b, UID_STATS, f32, l.stats, false, false);
  cudnnBackendDescriptor_t scale = tensor(b, UID_SCALE, f32, one, false, true);

  cudnnBackendDescriptor_t s0 = virt(b, f32, l.scores), s = virt(b, f32, l.scores);
  matmul(b, q, kt, s0);
  pointwise(b, CUDNN_POINTWISE_MUL, f32, s0, scale, NULL, s, 0);
  if (k->causal) s = causal_mask(b, s, tensor(b, UID_NEG_INF, f32, one, false, true), l.scores);
  cudnnBackendDescriptor_t mx = virt(b, f32, l.stats), e0 = virt(b, f32, l.scores), e = virt(b, f32, l.scores);
  cudnnBackendDescriptor_t z = virt(b, f32, l.stats), lz = virt(b, f32, l.stats), p = virt(b, bf, l.scores);
  reduction(b, CUDNN_REDUCE_TENSOR_MAX, s, mx);
  pointwise(b, CUDNN_POINTWISE_SUB, f32, s, mx, NULL, e0, 0);
  pointwise(b, CUDNN_POINTWISE_EXP, f32, e0, NULL, NULL, e, 0);
  reduction(b, CUDNN_REDUCE_TENSOR_ADD, e, z);
  pointwise(b, CUDNN_POINTWISE_LOG, f32, z, NULL, NULL, lz, 0);
  pointwise(b, CUDNN_POINTWISE_ADD, f32, mx, lz, NULL, stats, 0);
  pointwise(b, CUDNN_POINTWISE_DIV, f32, e, z, NULL, p, 0);
  matmul(b, p, v, o);
}

static void graph_bwd(builder *b, const plan_key *k) {
  const run_layouts l = layouts(k);
  const layout4 one = L4(1, 1, 1, 1, 1, 1, 1, 1);
  const cudnnDataType_t f32 = CUDNN_DATA_FLOAT, bf = CUDNN_DATA_BFLOAT16;
  const int gqa = k->hq != k->hkv;
  cudnnBackendDescriptor_t q = tensor(b, UID_Q, bf, l.q, false, false), kt = tensor(b, UID_K, bf, l.kt, false, false);
  cudnnBackendDescriptor_t vt = tensor(b, UID_V, bf, l.vt, false, false), o = tensor(b, UID_O, bf, l.o, false, false);
  cudnnBackendDescriptor_t d_o = tensor(b, UID_DO, bf, l.o, false, false);
  cudnnBackendDescriptor_t stats = tensor(b, UID_STATS, f32, l.stats, false, false);
  cudnnBackendDescriptor_t sum = tensor(b, UID_SUM, f32, l.stats, false, false);
  cudnnBackendDescriptor_t dq = tensor(b, UID_DQ, bf, l.q, false, false), dk = tensor(b, UID_DK, bf, l.k, false, false);
  cudnnBackendDescriptor_t dv = tensor(b, UID_DV, bf, l.v, false, false);
  cudnnBackendDescriptor_t scale = tensor(b, UID_SCALE, f32, one, false, true);
  cudnnBackendDescriptor_t unit = tensor(b, UID_ONE, f32, one, false, true);

  // Sum = rowsum(dO * O), through a non-virtual tensor in our workspace
  const int64_t B = k->b, S = k->s, H = k->hq, D = k->d;
  cudnnBackendDescriptor_t t0 = virt(b, f32, L4(B, H, S, D, H * S * D, S * D, H * D, 1)), t1 = virt(b, f32, l.stats);
  pointwise(b, CUDNN_POINTWISE_MUL, f32, d_o, o, NULL, t0, 0);
  reduction(b, CUDNN_REDUCE_TENSOR_ADD, t0, t1);
  pointwise(b, CUDNN_POINTWISE_MUL, f32, t1, unit, NULL, sum, 0);

  // P = exp(mask(Q K^T scale) - Stats)
  cudnnBackendDescriptor_t s0 = virt(b, f32, l.scores), s = virt(b, f32, l.scores);
  matmul(b, q, kt, s0);
  pointwise(b, CUDNN_POINTWISE_MUL, f32, s0, scale, NULL, s, 0);
  if (k->causal) s = causal_mask(b, s, tensor(b, UID_NEG_INF, f32, one, false, true), l.scores);
  cudnnBackendDescriptor_t s3 = virt(b, f32, l.scores), p = virt(b, f32, l.scores), pt = virt(b, bf, l.scores_t);
  pointwise(b, CUDNN_POINTWISE_SUB, f32, s, stats, NULL, s3, 0);
  pointwise(b, CUDNN_POINTWISE_EXP, f32, s3, NULL, NULL, p, 0);

  // dV = P^T dO
  reshape(b, p, pt);
  if (gqa) {
    cudnnBackendDescriptor_t dv_heads = virt(b, bf, l.heads);
    matmul(b, pt, d_o, dv_heads);
    reduction(b, CUDNN_REDUCE_TENSOR_ADD, dv_heads, dv);
  } else {
    matmul(b, pt, d_o, dv);
  }

  // dS = (dO V^T - Sum) * P * scale
  cudnnBackendDescriptor_t dp = virt(b, f32, l.scores), u = virt(b, f32, l.scores), w = virt(b, f32, l.scores);
  cudnnBackendDescriptor_t ds = virt(b, f32, l.scores), dst = virt(b, bf, l.scores_t);
  matmul(b, d_o, vt, dp);
  pointwise(b, CUDNN_POINTWISE_SUB, f32, dp, sum, NULL, u, 0);
  pointwise(b, CUDNN_POINTWISE_MUL, f32, u, p, NULL, w, 0);
  pointwise(b, CUDNN_POINTWISE_MUL, f32, w, scale, NULL, ds, 0);

  // dK = dS^T Q
  reshape(b, ds, dst);
  if (gqa) {
    cudnnBackendDescriptor_t dk_heads = virt(b, bf, l.heads);
    matmul(b, dst, q, dk_heads);
    reduction(b, CUDNN_REDUCE_TENSOR_ADD, dk_heads, dk);
  } else {
    matmul(b, dst, q, dk);
  }

  // dQ = dS K
  cudnnBackendDescriptor_t kr = virt(b, f32, l.k);
  reshape(b, kt, kr);
  matmul(b, ds, kr, dq);
}

// ---- plans ----

// Freeing a descriptor we made fails only on a bug: stop there.
static void destroy_desc(cudnnBackendDescriptor_t d) {
  const cudnnStatus_t st = cudnnBackendDestroyDescriptor(d);
  LCC_CHECK(st == CUDNN_STATUS_SUCCESS, "cudnnBackendDestroyDescriptor: %s", cudnnGetErrorString(st));
}

static void entry_free(plan_entry *e) {
  for (int i = e->n_descs - 1; i >= 0; i--) destroy_desc(e->descs[i]);
  free(e);
}

static void fail(plan_entry *e, const char *what, cudnnStatus_t st) {
  char last[160] = "";
  cudnnGetLastErrorString(last, sizeof last);
  snprintf(e->why, sizeof e->why, "%s: %s%s%s", what, cudnnGetErrorString(st), last[0] ? ": " : "", last);
  e->failed = 1;
}

// The graph of e->key, then the first engine configuration cuDNN's heuristics offer that finalizes into a
// plan (within the workspace limit of the auto path).
static void build_plan(lcc_sdpa *p, plan_entry *e, int forced) {
  builder b = {e, UID_VIRTUAL, {0}, 0, CUDNN_STATUS_SUCCESS, NULL};
  if (e->key.bwd) graph_bwd(&b, &e->key);
  else graph_fwd(&b, &e->key);
  cudnnBackendDescriptor_t graph = make(&b, CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, "operation graph");
  set(&b, graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, b.n_ops, b.ops, "graph operations");
  set(&b, graph, ATTR_GRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &p->handle, "graph handle");
  finish(&b, graph, "operation graph");
  const cudnnBackendHeurMode_t mode = CUDNN_HEUR_MODE_A;
  cudnnBackendDescriptor_t heur = make(&b, CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, "heuristics");
  set_desc(&b, heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, graph, "heuristics graph");
  set(&b, heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode, "heuristics mode");
  finish(&b, heur, "heuristics");
  int64_t n_cfg = 0;
  if (b.st == CUDNN_STATUS_SUCCESS &&
      (b.st = cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &n_cfg, NULL)) !=
          CUDNN_STATUS_SUCCESS)
    b.what = "heuristics results";
  if (n_cfg > MAX_CFGS) n_cfg = MAX_CFGS;
  cudnnBackendDescriptor_t cfgs[MAX_CFGS];
  for (int64_t i = 0; i < n_cfg; i++) cfgs[i] = make(&b, CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, "engine config");
  int64_t got = 0;
  if (b.st == CUDNN_STATUS_SUCCESS && n_cfg > 0 &&
      (b.st = cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, n_cfg, &got,
                                       cfgs)) != CUDNN_STATUS_SUCCESS)
    b.what = "heuristics results";
  if (b.st != CUDNN_STATUS_SUCCESS) {
    fail(e, b.what, b.st);
    return;
  }
  const int64_t ws_limit = forced ? INT64_MAX : 4 * AUTO_DP_LIMIT;
  cudnnStatus_t last = CUDNN_STATUS_NOT_SUPPORTED;
  int64_t smallest_ws = -1;
  for (int64_t i = 0; i < got; i++) {
    cudnnBackendDescriptor_t plan = make(&b, CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, "plan");
    set(&b, plan, ATTR_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &p->handle, "plan handle");
    set_desc(&b, plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, cfgs[i], "plan engine config");
    if (b.st != CUDNN_STATUS_SUCCESS) break;
    if ((last = cudnnBackendFinalize(plan)) != CUDNN_STATUS_SUCCESS) continue;   // not this engine
    int64_t ws = 0, n = 0;
    if ((last = cudnnBackendGetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1, &n, &ws)) !=
        CUDNN_STATUS_SUCCESS)
      continue;
    if (ws > ws_limit) {
      if (smallest_ws < 0 || ws < smallest_ws) smallest_ws = ws;
      continue;
    }
    e->plan = plan;
    e->ws = ws;
    return;
  }
  if (b.st != CUDNN_STATUS_SUCCESS) fail(e, b.what, b.st);
  else if (smallest_ws >= 0) {
    snprintf(e->why, sizeof e->why, "every plan needs more than %lld MiB of workspace (smallest %lld MiB)",
             (long long)(ws_limit >> 20), (long long)(smallest_ws >> 20));
    e->failed = 1;
  } else fail(e, got ? "no engine configuration finalizes" : "heuristics offer no engine", last);
}

// The cached plan for key (built on first use; a failed shape stays failed).
static plan_entry *plan_for(lcc_sdpa *p, const plan_key *key, int forced) {
  int free_slot = -1, oldest = 0;
  for (int i = 0; i < MAX_PLANS; i++) {
    plan_entry *e = p->plans[i];
    if (!e) {
      if (free_slot < 0) free_slot = i;
      continue;
    }
    if (!memcmp(&e->key, key, sizeof *key)) {
      e->used = ++p->clock;
      return e;
    }
    if (p->plans[oldest] && e->used < p->plans[oldest]->used) oldest = i;
  }
  const int slot = free_slot >= 0 ? free_slot : oldest;
  if (p->plans[slot]) entry_free(p->plans[slot]);
  plan_entry *e = (plan_entry *)lcc_calloc(1, sizeof *e);
  e->key = *key;
  e->used = ++p->clock;
  build_plan(p, e, forced);
  p->plans[slot] = e;
  return e;
}

// ---- calls ----

// Runs of consecutive sequences with equal length: run r covers sequences [first[r], first[r] + count[r]).
typedef struct {
  int n;
  int *first, *count;
} runs;

static runs find_runs(const lcc_sdpa_call *c) {
  runs r = {0, (int *)lcc_malloc((size_t)c->n_seq * sizeof(int)), (int *)lcc_malloc((size_t)c->n_seq * sizeof(int))};
  for (int s = 0; s < c->n_seq; s++) {
    const int len = c->cu[s + 1] - c->cu[s];
    if (len == 0) continue;   // no rows
    if (r.n && r.first[r.n - 1] + r.count[r.n - 1] == s &&
        c->cu[r.first[r.n - 1] + 1] - c->cu[r.first[r.n - 1]] == len)
      r.count[r.n - 1]++;
    else {
      r.first[r.n] = s;
      r.count[r.n] = 1;
      r.n++;
    }
  }
  return r;
}

static void runs_free(runs *r) {
  free(r->first);
  free(r->count);
}

// Records a reason in why and returns -1.
static int refuse(char *why, size_t why_len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int refuse(char *why, size_t why_len, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, why_len, fmt, ap);
  va_end(ap);
  return -1;
}

// Plans for every run (none executes unless all exist); the workspace they need, with room for the
// statistics (and, backward, the row sums) of the largest run. Returns -1 with why set.
// Floats from the stats to the backward's row sums in the workspace: rounded up so the sums keep the 16-byte
// alignment every tensor of the graph declares.
static size_t stats_stride(int64_t stats) { return ((size_t)stats + 63) & ~(size_t)63; }

static int prepare(lcc_sdpa *p, const lcc_sdpa_call *c, int bwd, const runs *r, plan_entry **plans, size_t *stats_off,
                   char *why, size_t why_len) {
  if (c->D % 8 || c->D > 256) return refuse(why, why_len, "head dim %d (cuDNN needs a multiple of 8 up to 256)", c->D);
  int64_t ws = 0, stats = 0;
  for (int i = 0; i < r->n; i++) {
    const int S = c->cu[r->first[i] + 1] - c->cu[r->first[i]], B = r->count[i];
    const int64_t s64 = (S + 63) / 64 * 64;
    if (bwd && S == 1) return refuse(why, why_len, "a sequence of one row (cuDNN's backward needs 2 or more)");
    if (bwd && !c->forced && (int64_t)B * c->Hq * s64 * s64 * 2 > AUTO_DP_LIMIT)
      return refuse(why, why_len, "%d sequence(s) of %d rows: the deterministic backward's dP workspace would exceed %lld MiB",
                    B, S, (long long)(AUTO_DP_LIMIT >> 20));
    const plan_key key = {bwd, B, S, c->Hq, c->Hkv, c->D, c->causal};
    plans[i] = plan_for(p, &key, c->forced);
    if (plans[i]->failed)
      return refuse(why, why_len, "%s of %d x %d rows, %d/%d heads of %d: %s", bwd ? "backward" : "forward", B, S, c->Hq,
                    c->Hkv, c->D, plans[i]->why);
    if (plans[i]->ws > ws) ws = plans[i]->ws;
    if ((int64_t)B * c->Hq * S > stats) stats = (int64_t)B * c->Hq * S;
  }
  *stats_off = ((size_t)ws + 255) / 256 * 256;
  const size_t need = *stats_off + stats_stride(stats) * sizeof(float) * (bwd ? 2 : 1);
  if (need > p->ws_cap) {
    if (p->ws) {
      CUDA_CHECK(cudaStreamSynchronize(c->stream));   // queued work may still use it
      CUDA_CHECK(cudaFree(p->ws));
      p->ws = NULL, p->ws_cap = 0;
    }
    cudaError_t err = cudaMalloc(&p->ws, need);
    if (err != cudaSuccess) {
      cudaGetLastError();   // not sticky: clear it
      p->ws = NULL;
      return refuse(why, why_len, "no GPU memory for %zu bytes of workspace", need);
    }
    p->ws_cap = need;
  }
  return 0;
}

// lse[h, r0 + b S + s] <-> stats[(b H + h) S + s] for one run: to_lse = 1 after the forward, 0 before the backward.
static __global__ void stats_copy_kernel(float *lse, float *stats, int B, int H, int S, int T, int r0, int to_lse) {
  const long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (long)B * H * S) return;
  const int s = (int)(i % S), h = (int)(i / S % H), b = (int)(i / ((long)S * H));
  float *x = lse + (long)h * T + r0 + (long)b * S + s;
  if (to_lse) *x = stats[i];
  else stats[i] = *x;
}

static void stats_copy(const lcc_sdpa_call *c, float *lse, float *stats, int B, int S, int r0, int to_lse) {
  const size_t n = (size_t)B * c->Hq * S;
  stats_copy_kernel<<<cuda_blocks(n, 256), 256, 0, c->stream>>>(lse, stats, B, c->Hq, S, c->T, r0, to_lse);
  CUDA_LAUNCH_CHECK();
}

static int execute(lcc_sdpa *p, const lcc_sdpa_call *c, plan_entry *e, int n, const int64_t *uids, void **ptrs, char *why,
                   size_t why_len) {
  cudnnBackendDescriptor_t pack = NULL;
  cudnnStatus_t st = cudnnBackendCreateDescriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, &pack);
  void *ws = p->ws;
  if (st == CUDNN_STATUS_SUCCESS) st = cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, n, uids);
  if (st == CUDNN_STATUS_SUCCESS) st = cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, n, ptrs);
  if (st == CUDNN_STATUS_SUCCESS) st = cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &ws);
  if (st == CUDNN_STATUS_SUCCESS) st = cudnnBackendFinalize(pack);
  if (st == CUDNN_STATUS_SUCCESS) st = cudnnSetStream(p->handle, c->stream);
  if (st == CUDNN_STATUS_SUCCESS) st = cudnnBackendExecute(p->handle, e->plan, pack);
  if (pack) destroy_desc(pack);
  if (st == CUDNN_STATUS_SUCCESS) return 0;
  char last[160] = "";
  cudnnGetLastErrorString(last, sizeof last);
  snprintf(why, why_len, "execute: %s %s", cudnnGetErrorString(st), last);
  return -1;
}

int lcc_sdpa_fwd(lcc_sdpa *p, const lcc_sdpa_call *c, bf16 *out, float *lse, char *why, size_t why_len) {
  runs r = find_runs(c);
  plan_entry **plans = (plan_entry **)lcc_malloc((size_t)(r.n ? r.n : 1) * sizeof *plans);
  size_t stats_off = 0;
  int rc = prepare(p, c, 0, &r, plans, &stats_off, why, why_len);
  const long row = (long)(c->Hq + 2 * c->Hkv) * c->D;
  float scale = 1.0f / sqrtf((float)c->D), neg_inf = -INFINITY;
  float *stats = (float *)((char *)p->ws + stats_off);
  for (int i = 0; i < r.n && !rc; i++) {
    const int r0 = c->cu[r.first[i]], S = c->cu[r.first[i] + 1] - r0, B = r.count[i];
    bf16 *q = (bf16 *)c->qkv + (long)r0 * row;
    const int64_t uids[] = {UID_Q, UID_K, UID_V, UID_O, UID_STATS, UID_SCALE, UID_NEG_INF};
    void *ptrs[] = {q, q + (long)c->Hq * c->D, q + (long)(c->Hq + c->Hkv) * c->D, out + (long)r0 * c->Hq * c->D, stats,
                    &scale, &neg_inf};
    rc = execute(p, c, plans[i], c->causal ? 7 : 6, uids, ptrs, why, why_len);
    if (!rc) stats_copy(c, lse, stats, B, S, r0, 1);
  }
  free(plans);
  runs_free(&r);
  return rc;
}

int lcc_sdpa_bwd(lcc_sdpa *p, const lcc_sdpa_call *c, bf16 *dqkv, const bf16 *out, const bf16 *dout, const float *lse,
                 char *why, size_t why_len) {
  runs r = find_runs(c);
  plan_entry **plans = (plan_entry **)lcc_malloc((size_t)(r.n ? r.n : 1) * sizeof *plans);
  size_t stats_off = 0;
  int rc = prepare(p, c, 1, &r, plans, &stats_off, why, why_len);
  const long row = (long)(c->Hq + 2 * c->Hkv) * c->D, orow = (long)c->Hq * c->D;
  float scale = 1.0f / sqrtf((float)c->D), neg_inf = -INFINITY, unit = 1.0f;
  for (int i = 0; i < r.n && !rc; i++) {
    const int r0 = c->cu[r.first[i]], S = c->cu[r.first[i] + 1] - r0, B = r.count[i];
    float *stats = (float *)((char *)p->ws + stats_off), *sum = stats + stats_stride((int64_t)B * c->Hq * S);
    stats_copy(c, (float *)lse, stats, B, S, r0, 0);
    bf16 *q = (bf16 *)c->qkv + (long)r0 * row, *dq = dqkv + (long)r0 * row;
    const long kofs = (long)c->Hq * c->D, vofs = (long)(c->Hq + c->Hkv) * c->D;
    const int64_t uids[] = {UID_Q, UID_K, UID_V, UID_O, UID_DO, UID_STATS, UID_SUM, UID_DQ, UID_DK, UID_DV, UID_SCALE, UID_ONE,
                            UID_NEG_INF};
    void *ptrs[] = {q, q + kofs, q + vofs, (bf16 *)out + (long)r0 * orow, (bf16 *)dout + (long)r0 * orow, stats, sum, dq,
                    dq + kofs, dq + vofs, &scale, &unit, &neg_inf};
    rc = execute(p, c, plans[i], c->causal ? 13 : 12, uids, ptrs, why, why_len);
  }
  free(plans);
  runs_free(&r);
  return rc;
}

lcc_sdpa *lcc_sdpa_create(char *why, size_t why_len) {
  cudnnHandle_t h = NULL;
  cudnnStatus_t st = cudnnCreate(&h);
  if (st != CUDNN_STATUS_SUCCESS) {
    snprintf(why, why_len, "cudnnCreate: %s", cudnnGetErrorString(st));
    return NULL;
  }
  lcc_sdpa *p = (lcc_sdpa *)lcc_calloc(1, sizeof *p);
  p->handle = h;
  return p;
}

void lcc_sdpa_destroy(lcc_sdpa *p) {
  for (int i = 0; i < MAX_PLANS; i++)
    if (p->plans[i]) entry_free(p->plans[i]);
  if (p->ws) CUDA_CHECK(cudaFree(p->ws));
  const cudnnStatus_t st = cudnnDestroy(p->handle);
  LCC_CHECK(st == CUDNN_STATUS_SUCCESS, "cudnnDestroy: %s", cudnnGetErrorString(st));
  free(p);
}
