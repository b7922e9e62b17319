// The backend interface: every numeric op the model needs, as a table of functions.
//
// Two implementations fill this table: kernels/cpu (fp32 everywhere; the reference every other backend
// is tested against) and kernels/cuda (bf16 activations and compute weights, fp32 accumulation).
//
// Tensors are raw pointers into backend memory (host memory on the CPU backend, device memory on CUDA).
// Two element types appear:
//   void *  : "act" tensors, in the backend's activation type (float on CPU, bf16 on CUDA): activations,
//             their gradients, and the compute copy of the weights. be->act_bytes gives the element size.
//   float * : fp32 on every backend: master weights, weight gradients, optimizer moments, norm and softmax
//             statistics, per-token losses, RoPE tables.
// Integer tensors (token ids, targets, row indices, sequence offsets) are int32 in backend memory.
//
// Accumulation rules (the same for every backend, stated per op):
//   - weight gradients (dw, db) are always accumulated (+=), so micro-batches and tied weights add up;
//   - norm backward accumulates into dinp (+=): dinp is the residual-stream gradient;
//   - every other backward overwrites its input gradient.
// Every op is deterministic: the same inputs give bit-identical outputs for any thread count.
#ifndef LCC_BACKEND_H
#define LCC_BACKEND_H

#include <stddef.h>
#include <stdint.h>

typedef struct lcc_backend lcc_backend;

struct lcc_backend {
  const char *name;   // "cpu", "cpu-bf16" or "cuda"
  size_t act_bytes;   // bytes per act element: 4 (fp32) or 2 (bf16)
  void *impl;         // backend private state (handles, streams, workspaces)
  void (*destroy)(lcc_backend *be);

  // ---- memory ----
  void *(*alloc)(lcc_backend *be, size_t bytes);   // zero-filled; exits with a message when out of memory
  void (*free)(lcc_backend *be, void *p);
  void (*upload)(lcc_backend *be, void *dst, const void *host_src, size_t bytes);
  void (*download)(lcc_backend *be, void *host_dst, const void *src, size_t bytes);
  void (*zero)(lcc_backend *be, void *p, size_t bytes);
  void (*copy)(lcc_backend *be, void *dst, const void *src, size_t bytes);   // backend to backend
  void (*sync)(lcc_backend *be);                                             // wait for queued work

  // ---- casts between fp32 and the act type ----
  void (*to_act)(lcc_backend *be, void *out, const float *inp, size_t n);     // out[n] = (act) inp[n]
  void (*from_act)(lcc_backend *be, float *out, const void *inp, size_t n);   // out[n] = (float) inp[n]

  // ---- linear: out[N,OC] = inp[N,C] @ w[OC,C]^T (+ bias[OC]) ----
  // bias may be NULL. Weights are row-major [out, in] as in PyTorch.
  void (*linear_fwd)(lcc_backend *be, void *out, const void *inp, const void *w, const void *bias,
                     int N, int C, int OC);
  // dinp[N,C] = dout @ w (overwrite; skipped when NULL); dw[OC,C] += dout^T @ inp (skipped when NULL);
  // dbias[OC] += sum over rows of dout (skipped when NULL).
  void (*linear_bwd)(lcc_backend *be, void *dinp, float *dw, float *dbias, const void *dout,
                     const void *inp, const void *w, int N, int C, int OC);

  // ---- normalization over the last dim C of [N,C] rows ----
  // RMSNorm: out = w * x * rstd, rstd = 1/sqrt(mean(x^2) + eps). rstd[N] is saved for backward.
  // Backward: dinp += (the residual-stream gradient); dw, db += (skipped when NULL: frozen weights).
  void (*rmsnorm_fwd)(lcc_backend *be, void *out, float *rstd, const void *inp, const void *w,
                      int N, int C, float eps);
  void (*rmsnorm_bwd)(lcc_backend *be, void *dinp, float *dw, const void *dout, const void *inp,
                      const void *w, const float *rstd, int N, int C);
  // LayerNorm: out = (x - mean) * rstd * w + b. mean[N], rstd[N] are saved for backward.
  void (*layernorm_fwd)(lcc_backend *be, void *out, float *mean, float *rstd, const void *inp,
                        const void *w, const void *b, int N, int C, float eps);
  void (*layernorm_bwd)(lcc_backend *be, void *dinp, float *dw, float *db, const void *dout,
                        const void *inp, const void *w, const float *mean, const float *rstd, int N, int C);

  // ---- elementwise ----
  void (*add)(lcc_backend *be, void *out, const void *a, const void *b, size_t n);   // out = a + b
  // SwiGLU on fused rows gu[N, 2I] = [gate | up]: out[N,I] = silu(gate) * up.
  void (*swiglu_fwd)(lcc_backend *be, void *out, const void *gu, int N, int I);
  void (*swiglu_bwd)(lcc_backend *be, void *dgu, const void *dout, const void *gu, int N, int I);
  // QuickGELU x*sigmoid(1.702x) and exact GELU 0.5x(1+erf(x/sqrt2)), on n elements.
  void (*quick_gelu_fwd)(lcc_backend *be, void *out, const void *inp, size_t n);
  void (*quick_gelu_bwd)(lcc_backend *be, void *dinp, const void *dout, const void *inp, size_t n);
  void (*gelu_fwd)(lcc_backend *be, void *out, const void *inp, size_t n);
  void (*gelu_bwd)(lcc_backend *be, void *dinp, const void *dout, const void *inp, size_t n);

  // ---- rotary embedding, NEOX pairs (i, i + D/2), in place on the q and k heads of a packed qkv ----
  // qkv[T, (Hq + 2*Hkv) * D]: per row, Hq query heads, then Hkv key heads, then Hkv value heads.
  // cos, sin: [T, D/2] fp32 angles' cosines and sines per token (built by model/rope.c for the vision 2D
  // RoPE and for M-RoPE). Forward rotates by +theta; backward (on dqkv) rotates by -theta.
  void (*rope_fwd)(lcc_backend *be, void *qkv, const float *cos, const float *sin, int T, int Hq, int Hkv, int D);
  void (*rope_bwd)(lcc_backend *be, void *dqkv, const float *cos, const float *sin, int T, int Hq, int Hkv, int D);

  // ---- attention on a packed qkv (layout above), softmax(q k^T / sqrt(D)) v per sequence ----
  // Sequences are the row ranges [cu_seqlens[s], cu_seqlens[s+1]) for s < n_seq (int32, backend memory),
  // which cover [0, T) exactly; tokens never attend across them (ViT blocks, packed samples).
  // causal: a row sees only rows <= itself.
  // GQA: query head h uses kv head h / (Hq / Hkv).
  // out[T, Hq*D]; lse[Hq, T] fp32 = log-sum-exp of each row's scaled scores (saved for backward).
  void (*attention_fwd)(lcc_backend *be, void *out, float *lse, const void *qkv, const int32_t *cu_seqlens,
                        int n_seq, int T, int Hq, int Hkv, int D, int causal);
  // dqkv[T, (Hq+2Hkv)*D] (overwrite) from dout[T, Hq*D].
  void (*attention_bwd)(lcc_backend *be, void *dqkv, const void *dout, const void *qkv, const void *out,
                        const float *lse, const int32_t *cu_seqlens, int n_seq, int T, int Hq, int Hkv,
                        int D, int causal);

  // Attention of Tn new rows against a key/value cache (incremental decoding): q rows ldq elements apart
  // (a packed qkv), kc, vc [Tc, Hkv*D] hold the past rows then the new rows' own; new row i sees cache rows
  // 0 .. Tc - Tn + i. out[Tn, Hq*D].
  void (*attention_cached)(lcc_backend *be, void *out, const void *q, int ldq, const void *kc, const void *vc, int Tn,
                           int Tc, int Hq, int Hkv, int D);
  // Copies a [rows, cols] block of act elements between buffers with row strides ld_dst, ld_src.
  void (*copy_rows)(lcc_backend *be, void *dst, int ld_dst, const void *src, int ld_src, int rows, int cols);

  // ---- embedding and vision scatter ----
  // out[T,C] = table[ids[t]]; dtable[V,C] += rows of dout by id.
  void (*embedding_fwd)(lcc_backend *be, void *out, const int32_t *ids, const void *table, int T, int C);
  void (*embedding_bwd)(lcc_backend *be, float *dtable, const int32_t *ids, const void *dout, int T, int C);
  // Vision features into their pad-token rows: x[rows[m]] = feats[m] for m < M (rows distinct).
  void (*scatter_rows_fwd)(lcc_backend *be, void *x, const void *feats, const int32_t *rows, int M, int C);
  // dfeats[m] = dx[rows[m]] (overwrite; skipped when NULL), then dx[rows[m]] = 0: the pad tokens'
  // embedding rows get no gradient, as in HF's masked_scatter.
  void (*scatter_rows_bwd)(lcc_backend *be, void *dfeats, void *dx, const int32_t *rows, int M, int C);

  // ---- fused LM head + cross-entropy, chunked: never holds more than [chunk, V] logits ----
  // For each row t with targets[t] >= 0: logits = x[t] @ w^T, losses[t] = logsumexp(logits) - logits[targets[t]]
  // (fp32; 0 where targets[t] < 0). The objective is sum_t weights[t] * losses[t]: the caller's weights set
  // the normalization (per-sample mean then mean over samples, or per-token mean). weights may be NULL when
  // dx and dw are both NULL (loss only).
  // Its gradient: dx[T,C] (overwrite, zero rows where ignored; skipped when NULL), dw[V,C] += (skipped when
  // NULL). Rows with targets < 0 cost nothing.
  void (*lm_head_ce)(lcc_backend *be, float *losses, void *dx, float *dw, const void *x, const void *w,
                     const int32_t *targets, const float *weights, int T, int C, int V);

  // ---- optimizer and gradient utilities on fp32 buffers ----
  // AdamW (decoupled weight decay, bias-corrected, step >= 1) on n elements, with grads scaled by
  // grad_scale first (gradient clipping). Also writes the act-type copy of the updated parameters when
  // param_act is not NULL (CUDA bf16 weights; NULL on CPU, where compute and master weights are one buffer).
  void (*adamw)(lcc_backend *be, float *param, void *param_act, const float *grad, float *m, float *v,
                size_t n, float lr, float beta1, float beta2, float eps, float weight_decay, int step,
                float grad_scale);
  double (*sum_squares)(lcc_backend *be, const float *x, size_t n);   // sum of x^2, fp64 result on the host
  void (*scale)(lcc_backend *be, float *x, float s, size_t n);          // x *= s
  void (*add_f32)(lcc_backend *be, float *out, const float *a, size_t n);   // out += a
  // Zeroes [p, p + bytes) and gives its whole pages back to the system until they are written again: the
  // gradient memory of ZeRO-2 buckets that are already reduced.
  void (*release)(lcc_backend *be, void *p, size_t bytes);
};

// The CPU backend (kernels/cpu). n_threads <= 0 keeps OpenMP's default.
lcc_backend *lcc_cpu_backend(int n_threads);
// The CPU backend with bf16 act tensors (name "cpu-bf16", act_bytes 2): the CUDA backend's storage types on
// the host. Each op widens its act inputs to fp32, runs the CPU op, and rounds its act outputs to bf16
// (nearest even), so the mixed-precision paths of the model, checkpoints and communicators run without a GPU.
lcc_backend *lcc_cpu_bf16_backend(int n_threads);

#endif
