// Qwen2-VL: parameters, activations, forward and backward over the backend interface.
//
// Parameters live in one flat buffer, one tensor after another, each under its Hugging Face (legacy) name.
// Frozen tensors come first and trainable ones after, so the trainable part is one contiguous range that
// lines up with the flat gradient buffer (which holds trainable tensors only) and the optimizer state.
// Within a decoder layer q/k/v weights (and biases) are adjacent, as are gate/up: each group is one GEMM.
#ifndef LCC_MODEL_H
#define LCC_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "../kernels/backend.h"
#include "config.h"
#include "safetensors.h"

// ---- parameter table ----
typedef struct {
  char name[96];        // HF legacy name, e.g. "model.layers.3.self_attn.q_proj.weight"
  int ndim;
  int64_t shape[5];     // HF shape ([out, in] for linears; patch_embed is [E, 3, 2, 14, 14])
  size_t numel;
  size_t offset;        // element offset in the flat parameter buffers
  long long grad_offset;  // element offset in the flat gradient buffer; -1 when frozen
  int init;             // LCC_INIT_*: how a fresh model fills it
} lcc_param;

enum { LCC_INIT_NORMAL, LCC_INIT_ZERO, LCC_INIT_ONE };

// Per-layer parameter indices (into lcc_model.params).
enum { VB_NORM1_W, VB_NORM1_B, VB_QKV_W, VB_QKV_B, VB_PROJ_W, VB_PROJ_B, VB_NORM2_W, VB_NORM2_B,
       VB_FC1_W, VB_FC1_B, VB_FC2_W, VB_FC2_B, VB_COUNT };
enum { DL_IN_NORM, DL_Q_W, DL_K_W, DL_V_W, DL_Q_B, DL_K_B, DL_V_B, DL_O_W, DL_POST_NORM,
       DL_GATE_W, DL_UP_W, DL_DOWN_W, DL_COUNT };

// ---- a batch: samples packed one after another (no padding), host memory ----
enum { LCC_IMAGE = 0, LCC_VIDEO = 1 };
typedef struct {
  int kind;       // LCC_IMAGE or LCC_VIDEO
  int t, h, w;    // grid_thw in patches
} lcc_vision_item;

enum { LCC_LOSS_SAMPLE_MEAN = 0, LCC_LOSS_TOKEN_MEAN = 1 };
enum { LCC_POS_MROPE = 0, LCC_POS_1D = 1 };

typedef struct {
  int n_samples;
  int n_tokens;                 // all samples
  const int32_t *ids;           // [n_tokens]
  const int32_t *labels;        // [n_tokens] HF labels (unshifted), -100 = not trained
  const int32_t *sample_start;  // [n_samples + 1] token offset of each sample
  int n_items;                  // vision items of all samples, in order of appearance
  const lcc_vision_item *items; // [n_items]
  int n_patches;                // sum of t*h*w
  const float *pixels;          // [n_patches, patch_dim] normalized patch rows, items in order
  // Loss normalization across the whole global batch (all micro-batches and ranks):
  // SAMPLE_MEAN: each sample's token-mean CE / norm_count (= samples in the global batch);
  // TOKEN_MEAN: sum of CE / norm_count (= labelled tokens in the global batch).
  int loss_mode;
  double norm_count;
} lcc_batch;

// ---- activations of one forward pass, kept for backward (backend memory) ----
typedef struct {
  // ViT over N patches (E wide); when the vision tower is frozen only block 0's buffers exist and every
  // block reuses them (nothing is kept for backward).
  void *v_pix;        // [N, P] input patch rows (P = 1176)
  void **vx;          // [depth + 1] residual stream [N, E]: vx[0] = patch embedding, vx[b+1] = block b output
  void *v_n1, *v_qkv, *v_att, *v_h, *v_n2, *v_f1, *v_f2;   // per block (stride below): [N,E] [N,3E] [N,E] [N,E] [N,E] [N,M] [N,M]
  float *v_mean1, *v_rstd1, *v_mean2, *v_rstd2, *v_lse;    // per block: [N] x4, [heads, N]
  float *v_cos, *v_sin;                                     // [N, Dv/2]
  void *mg_n, *mg_h1, *mg_h2, *mg_out;                      // merger: [N,E] [N/4,4E] [N/4,4E] [N/4,C]
  float *mg_mean, *mg_rstd;                                 // [N]
  // decoder over T tokens (C wide, Q = (Hq + 2Hkv) * D qkv width, I intermediate)
  void **x;           // [L + 1] residual stream [T, C]: x[0] = embeddings with vision rows, x[l+1] = layer l output
  void *n1, *qkv, *att, *h, *n2, *gu, *s;   // per layer: [T,C] [T,Q] [T,Hq*D] [T,C] [T,C] [T,2I] [T,I]
  float *rstd1, *rstd2, *lse;               // per layer: [T] [T] [Hq, T]
  void *nf;                                 // final norm output [T, C]
  float *rstdf;                             // [T]
  float *cos, *sin;                         // M-RoPE tables [T, D/2]
  float *losses, *loss_w;                   // [T] per-token CE and its weight in the objective
  int32_t *ids, *targets, *scatter_rows, *tok_cu, *vit_cu;   // [T] [T] [N/4] [n_samples+1] [blocks+1]
  // backward scratch
  void *d_res, *d_a, *d_b;        // [max(T,N), max(C,E)], and two buffers of the widest activation row
  void *d_vis;                    // [N/4, C] gradient of the merger output
  void *d_nf;                     // [T, C] gradient of the final norm output (fuse_head_grad: from the forward)
  // capacity of this allocation
  int cap_tokens, cap_patches, cap_samples, cap_blocks, per_block;   // per_block: the ViT keeps all blocks
  void *mem;                      // the single allocation behind every pointer above
} lcc_acts;

// Called by lcc_model_backward each time the gradients of a stage (the LM head and final norm, one decoder
// layer, the embedding, the merger, one ViT block, the patch embedding) are final for this backward pass:
// [begin, end) in gradient-buffer elements. The ranges arrive in decreasing order and tile the trainable
// range [0, n_grad), so a data-parallel layer can start reducing them while backward goes on.
typedef struct {
  void *ctx;
  void (*ready)(void *ctx, size_t begin, size_t end);
} lcc_grad_hook;

typedef struct {
  lcc_config cfg;
  lcc_backend *be;
  int n_params;
  lcc_param *params;
  int vit_idx_patch, mg_idx[6], tok_idx, norm_idx, head_idx;   // head_idx = tok_idx when tied
  int (*vit_idx)[VB_COUNT];     // [depth]
  int (*dec_idx)[DL_COUNT];     // [num_layers]
  size_t n_elems;               // all parameters
  size_t train_begin;           // first trainable element; [train_begin, n_elems) is trainable
  size_t n_grad;                // = n_elems - train_begin
  int vision_trainable;         // any visual.* tensor trainable (then the ViT keeps activations)
  float *master;                // [n_elems] fp32 master weights (backend memory)
  void *weights;                // [n_elems] compute copy in act type (== master on fp32 backends)
  float *grads;                 // [n_grad] fp32 (NULL when nothing is trainable)
  int pos_mode;                 // LCC_POS_MROPE or LCC_POS_1D
  int recompute;                // keep only each decoder layer's input; backward recomputes the rest (set before
                                // the first forward)
  int fuse_head_grad;           // training: every forward with labels is followed by backward, so the forward's
                                // fused LM head + CE also computes its gradients (one pass over the head, not two)
  lcc_grad_hook grad_hook;      // optional (ready == NULL: none)
  lcc_acts acts;
  // last forward
  int cur_tokens, cur_patches, cur_samples, cur_blocks, cur_vis_tokens;
  double loss;                  // objective contribution of the last batch (sum of weights * CE)
  double *sample_loss;          // [n_samples] token-mean CE of each sample of the last batch
} lcc_model;

// Builds the parameter table for cfg. freeze: comma-separated HF name prefixes ("visual" freezes the
// whole vision tower and merger, as LiveCC); NULL or "" trains everything. Weights are zero until
// lcc_model_init_random or lcc_model_load_hf. be == NULL builds the table and layout only, allocating
// nothing (memory plans). Returns 0, or -1 with lcc_error().
int lcc_model_create(lcc_model *m, const lcc_config *cfg, lcc_backend *be, const char *freeze);
void lcc_model_destroy(lcc_model *m);
int lcc_model_find(const lcc_model *m, const char *name);   // parameter index, -1 if none
// Hash of the layout (names, shapes, offsets, trainable range): checkpoints of flat optimizer state load
// only into a model with the same layout.
uint64_t lcc_model_layout_hash(const lcc_model *m);

// HF-style init from a seed: N(0, 0.02) for weights and embeddings, 0 for biases, 1 for norm scales.
// Each tensor's values depend only on (seed, name), not on the layout.
void lcc_model_init_random(lcc_model *m, uint64_t seed);
// Loads safetensors weights from an HF folder (model.safetensors or model.safetensors.index.json), a
// single .safetensors file, or a checkpoint directory; any of F32/F16/BF16. Accepts the legacy and the
// model.language_model.* / model.visual.* layouts. Every tensor must be present with its exact shape.
int lcc_model_load_hf(lcc_model *m, const char *path);
// Writes the weights (fp32, or bf16 when bf16 != 0) as HF safetensors shards of at most shard_bytes each
// with model.safetensors.index.json, in the legacy names, and config.json.
int lcc_model_save_hf(const lcc_model *m, const char *dir, int bf16, size_t shard_bytes);
// The same in any of LCC_F32, LCC_BF16, LCC_F16 (rounded to nearest even).
int lcc_model_save_hf_dtype(const lcc_model *m, const char *dir, lcc_dtype dtype, size_t shard_bytes);
// After master weights change on the host side of a non-fp32 backend: refresh the compute copy.
void lcc_model_sync_weights(lcc_model *m);

// Pointers into the flat buffers for parameter i.
void *lcc_w(const lcc_model *m, int i);       // compute copy (act type)
float *lcc_g(const lcc_model *m, int i);      // gradient, NULL when frozen

// Forward over a batch; with labels, computes the loss (m->loss, m->sample_loss) and, when fuse_head_grad is
// set, already the LM head's gradients (then call lcc_model_backward after it).
// Returns 0, or -1 with lcc_error() when the batch does not fit the model (token/patch counts disagree,
// ids out of range, bad grids).
int lcc_model_forward(lcc_model *m, const lcc_batch *b);
// Backward of the last forward: accumulates into m->grads (call lcc_model_zero_grad between steps).
void lcc_model_backward(lcc_model *m);
void lcc_model_zero_grad(lcc_model *m);
// The vision tower and merger alone over these items (incremental inference): features of every merge
// window, in order, in m->acts.mg_out [n_patches / 4, C]. Returns 0, or -1 with lcc_error().
int lcc_model_vision(lcc_model *m, const lcc_vision_item *items, int n_items, const float *pixels, int n_patches);
// Logits of rows [row0, row0 + n) of the last forward via the LM head, as fp32 in host memory out[n, V] on
// every backend (evaluation, tests; the training loss never forms them).
void lcc_model_logits(lcc_model *m, float *out, int row0, int n);

// Position ids of one sample by the canonical get_rope_index rule (QWEN2VL.md 2.4): pos[3 * T] as
// (t | h | w) blocks of T. items: this sample's vision items in order of appearance; each one's pad tokens
// (image or video token id, t*h*w/merge^2 of them) must be contiguous. *delta = max position + 1 - T.
// Returns 0, or -1 with lcc_error() when pad tokens and items disagree.
int lcc_rope_index(const lcc_config *cfg, const int32_t *ids, int T, const lcc_vision_item *items, int n_items,
                   int32_t *pos, int *delta);
// RoPE angle tables (cos and sin, [rows, D/2] fp32) for the backend's rope op.
// M-RoPE: frequency k of D/2 takes its position from axis t, h or w by mrope_section; theta = rope_theta.
void lcc_mrope_table(const lcc_config *cfg, const int32_t *pos, int T, float *cos_out, float *sin_out);
// Vision 2D RoPE over the patch rows of the items (in merge-window order): first D/4 angles from the
// patch row, last D/4 from the patch column; no temporal position.
void lcc_vision_rope_table(const lcc_config *cfg, const lcc_vision_item *items, int n_items, float *cos_out,
                           float *sin_out);

#endif
