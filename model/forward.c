// Qwen2-VL forward: batch checks and host-side index work, then ViT -> merger -> scatter -> decoder -> loss,
// written out as one explicit call list over the backend.
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "model_internal.h"
#include "util.h"

// ---- activation memory: one allocation, carved in order, grown when a batch needs more ----

typedef struct {
  size_t off;
  char *base;   // NULL while measuring
} carver;

static void *carve(carver *cv, size_t bytes) {
  size_t at = (cv->off + 63) & ~(size_t)63;
  cv->off = at + bytes;
  return cv->base ? cv->base + at : NULL;
}

static void layout_acts(lcc_model *m, carver *cv, int T, int N, int S, int B) {
  const lcc_config *c = &m->cfg;
  lcc_acts *a = &m->acts;
  const size_t ab = m->be->act_bytes, fb = sizeof(float), ib = sizeof(int32_t);
  const size_t E = (size_t)c->vit_embed_dim, M = (size_t)c->vit_mlp_dim, P = (size_t)lcc_patch_dim(c);
  const size_t U = (size_t)lcc_merge_units(c), Nv = (size_t)N / U;
  const size_t C = (size_t)c->hidden_size, I = (size_t)c->intermediate_size, D = (size_t)c->head_dim;
  const size_t HD = (size_t)c->num_heads * D, Q = HD + 2 * (size_t)c->num_kv_heads * D;
  const size_t L = (size_t)c->num_layers, Tn = (size_t)T, Nn = (size_t)N;
  const size_t nb = m->vision_trainable ? (size_t)c->vit_depth : 1;   // block buffer sets
  const size_t nx = m->vision_trainable ? (size_t)c->vit_depth + 1 : 2;
  const size_t NL = m->recompute ? 1 : L;   // decoder layer buffer sets

  // Persistent for the whole step: the decoder's residual stream, the final norm, tables and indices.
  for (size_t l = 0; l <= L; l++) a->x[l] = carve(cv, Tn * C * ab);
  a->nf = carve(cv, Tn * C * ab);
  a->rstdf = carve(cv, Tn * fb);
  a->cos = carve(cv, Tn * D / 2 * fb);
  a->sin = carve(cv, Tn * D / 2 * fb);
  a->losses = carve(cv, Tn * fb);
  a->loss_w = carve(cv, Tn * fb);
  a->ids = carve(cv, Tn * ib);
  a->targets = carve(cv, Tn * ib);
  a->scatter_rows = carve(cv, (Nv + 1) * ib);
  a->tok_cu = carve(cv, ((size_t)S + 1) * ib);
  a->vit_cu = carve(cv, ((size_t)B + 1) * ib);

  // The ViT's buffers. A frozen ViT is done (its output scattered into x[0]) before the first decoder layer
  // writes anything, and backward never needs it: then its buffers share memory with the decoder's.
  const size_t shared = cv->off;
  a->v_pix = carve(cv, Nn * P * ab);
  for (size_t i = 0; i < nx; i++) a->vx[i] = carve(cv, Nn * E * ab);
  a->v_n1 = carve(cv, nb * Nn * E * ab);
  a->v_qkv = carve(cv, nb * Nn * 3 * E * ab);
  a->v_att = carve(cv, nb * Nn * E * ab);
  a->v_h = carve(cv, nb * Nn * E * ab);
  a->v_n2 = carve(cv, nb * Nn * E * ab);
  a->v_f1 = carve(cv, nb * Nn * M * ab);
  a->v_f2 = carve(cv, nb * Nn * M * ab);
  a->v_mean1 = carve(cv, nb * Nn * fb);
  a->v_rstd1 = carve(cv, nb * Nn * fb);
  a->v_mean2 = carve(cv, nb * Nn * fb);
  a->v_rstd2 = carve(cv, nb * Nn * fb);
  a->v_lse = carve(cv, nb * (size_t)c->vit_num_heads * Nn * fb);
  a->v_cos = carve(cv, Nn * (size_t)c->vit_head_dim / 2 * fb);
  a->v_sin = carve(cv, Nn * (size_t)c->vit_head_dim / 2 * fb);
  a->mg_n = carve(cv, Nn * E * ab);
  a->mg_h1 = carve(cv, Nn * E * ab);   // [N/U, U*E]
  a->mg_h2 = carve(cv, Nn * E * ab);
  a->mg_out = carve(cv, Nv * C * ab);
  a->mg_mean = carve(cv, Nn * fb);
  a->mg_rstd = carve(cv, Nn * fb);
  const size_t vit_end = cv->off;
  if (!m->vision_trainable) cv->off = shared;

  a->n1 = carve(cv, NL * Tn * C * ab);
  a->qkv = carve(cv, NL * Tn * Q * ab);
  a->att = carve(cv, NL * Tn * HD * ab);
  a->h = carve(cv, NL * Tn * C * ab);
  a->n2 = carve(cv, NL * Tn * C * ab);
  a->gu = carve(cv, NL * Tn * 2 * I * ab);
  a->s = carve(cv, NL * Tn * I * ab);
  a->rstd1 = carve(cv, NL * Tn * fb);
  a->rstd2 = carve(cv, NL * Tn * fb);
  a->lse = carve(cv, NL * (size_t)c->num_heads * Tn * fb);
  if (m->n_grad) {   // backward scratch
    size_t wide = Tn * (C > Q ? (C > 2 * I ? C : 2 * I) : (Q > 2 * I ? Q : 2 * I));
    size_t vwide = Nn * (3 * E > M ? 3 * E : M);
    a->d_res = carve(cv, (Tn * C > Nn * E ? Tn * C : Nn * E) * ab);
    a->d_a = carve(cv, (wide > vwide ? wide : vwide) * ab);
    a->d_b = carve(cv, (wide > vwide ? wide : vwide) * ab);
    a->d_vis = carve(cv, Nv * C * ab);
    a->d_nf = carve(cv, Tn * C * ab);
  }
  if (cv->off < vit_end) cv->off = vit_end;
}

static void reserve(lcc_model *m, int T, int N, int S, int B) {
  lcc_acts *a = &m->acts;
  if (a->mem && T <= a->cap_tokens && N <= a->cap_patches && S <= a->cap_samples && B <= a->cap_blocks) return;
  if (a->mem) m->be->free(m->be, a->mem);
  T = T > a->cap_tokens ? T : a->cap_tokens;
  N = N > a->cap_patches ? N : a->cap_patches;
  S = S > a->cap_samples ? S : a->cap_samples;
  B = B > a->cap_blocks ? B : a->cap_blocks;
  if (!a->vx) a->vx = lcc_calloc((size_t)m->cfg.vit_depth + 1, sizeof(void *));
  if (!a->x) a->x = lcc_calloc((size_t)m->cfg.num_layers + 1, sizeof(void *));
  carver cv = {0, NULL};
  layout_acts(m, &cv, T, N, S, B);
  a->mem = m->be->alloc(m->be, cv.off);
  cv = (carver){0, a->mem};
  layout_acts(m, &cv, T, N, S, B);
  a->cap_tokens = T, a->cap_patches = N, a->cap_samples = S, a->cap_blocks = B;
}

// ---- batch checks and host-side indices ----

typedef struct {
  int32_t *targets;   // [T] next-token labels within each sample, -1 where not trained
  float *loss_w;      // [T] weight of each target in the objective
  int32_t *pos;       // [3, T] position ids, per sample (t | h | w blocks over the whole batch)
  int32_t *rows;      // [Nv] token row of each vision feature
  int32_t *tok_cu;    // [S + 1]
  int32_t *vit_cu;    // [B + 1] ViT attention blocks: one per temporal group of each item
  int n_blocks, n_vis;
} host_prep;

static void prep_free(host_prep *h) {
  free(h->targets), free(h->loss_w), free(h->pos), free(h->rows), free(h->tok_cu), free(h->vit_cu);
}

static int check_batch(const lcc_model *m, const lcc_batch *b) {
  const lcc_config *c = &m->cfg;
  const int ms = c->spatial_merge_size;
  if (b->n_samples < 1 || b->n_tokens < 1) return lcc_error("batch: empty (%d samples, %d tokens)", b->n_samples, b->n_tokens);
  if (b->sample_start[0] != 0 || b->sample_start[b->n_samples] != b->n_tokens)
    return lcc_error("batch: sample offsets must run from 0 to %d tokens", b->n_tokens);
  for (int s = 0; s < b->n_samples; s++)
    if (b->sample_start[s + 1] <= b->sample_start[s]) return lcc_error("batch: sample %d is empty", s);
  for (int t = 0; t < b->n_tokens; t++)
    if (b->ids[t] < 0 || b->ids[t] >= c->vocab_size)
      return lcc_error("batch: token %d has id %d outside the vocabulary [0, %d)", t, b->ids[t], c->vocab_size);
  long long patches = 0;
  for (int k = 0; k < b->n_items; k++) {
    const lcc_vision_item *it = &b->items[k];
    if ((it->kind != LCC_IMAGE && it->kind != LCC_VIDEO) || it->t < 1 || it->h < ms || it->w < ms || it->h % ms || it->w % ms)
      return lcc_error("batch: vision item %d has kind %d and grid (%d, %d, %d): need t >= 1 and h, w multiples of %d",
                       k, it->kind, it->t, it->h, it->w, ms);
    patches += (long long)it->t * it->h * it->w;
  }
  if (patches != b->n_patches) return lcc_error("batch: vision grids hold %lld patches but %d patch rows were given", patches, b->n_patches);
  return 0;
}

static int prep_batch(const lcc_model *m, const lcc_batch *b, host_prep *h) {
  const lcc_config *c = &m->cfg;
  const int T = b->n_tokens, S = b->n_samples, U = lcc_merge_units(c);
  memset(h, 0, sizeof *h);
  h->targets = lcc_malloc((size_t)T * sizeof(int32_t));
  h->loss_w = lcc_calloc((size_t)T, sizeof(float));
  h->pos = lcc_malloc((size_t)3 * T * sizeof(int32_t));
  h->tok_cu = lcc_malloc(((size_t)S + 1) * sizeof(int32_t));
  h->rows = lcc_malloc(((size_t)b->n_patches / U + 1) * sizeof(int32_t));
  for (int k = 0; k < b->n_items; k++) h->n_blocks += b->items[k].t;
  h->vit_cu = lcc_malloc(((size_t)h->n_blocks + 1) * sizeof(int32_t));

  int32_t *pos1 = lcc_malloc((size_t)3 * T * sizeof(int32_t));   // one sample's (t | h | w) blocks
  int item = 0, rc = 0;
  for (int s = 0; s < S && !rc; s++) {
    const int t0 = b->sample_start[s], n = b->sample_start[s + 1] - t0;
    h->tok_cu[s] = t0;
    // this sample's items: as many as its pad tokens hold
    int pads = 0, first = item, delta;
    for (int t = t0; t < t0 + n; t++) {
      if (b->ids[t] == c->image_token_id || b->ids[t] == c->video_token_id) h->rows[h->n_vis++] = t, pads++;
    }
    for (int need = 0; item < b->n_items && need < pads; item++)
      need += b->items[item].t * b->items[item].h * b->items[item].w / U;
    if (m->pos_mode == LCC_POS_MROPE) {
      rc = lcc_rope_index(c, b->ids + t0, n, b->items + first, item - first, pos1, &delta);
      if (rc) lcc_error("batch sample %d: %s", s, lcc_last_error());
    } else {
      for (int t = 0; t < n; t++) pos1[t] = pos1[n + t] = pos1[2 * n + t] = t;
    }
    for (int a = 0; a < 3 && !rc; a++) memcpy(h->pos + (size_t)a * T + t0, pos1 + (size_t)a * n, (size_t)n * sizeof(int32_t));
    // targets: label of the next token inside the sample; LiveCC or per-token normalization
    int valid = 0;
    for (int t = t0; t < t0 + n; t++) {
      h->targets[t] = (b->labels && t + 1 < t0 + n && b->labels[t + 1] >= 0) ? b->labels[t + 1] : -1;
      if (h->targets[t] >= c->vocab_size) rc = lcc_error("batch sample %d: label %d outside the vocabulary", s, h->targets[t]);
      valid += h->targets[t] >= 0;
    }
    const double w = b->loss_mode == LCC_LOSS_TOKEN_MEAN ? 1.0 / b->norm_count : valid ? 1.0 / ((double)valid * b->norm_count) : 0.0;
    for (int t = t0; t < t0 + n; t++) h->loss_w[t] = h->targets[t] >= 0 ? (float)w : 0.0f;
  }
  h->tok_cu[S] = T;
  free(pos1);
  if (!rc && item != b->n_items)
    rc = lcc_error("batch: %d vision items but the tokens hold pads for only %d of them", b->n_items, item);
  if (!rc && h->n_vis * U != b->n_patches)
    rc = lcc_error("batch: %d vision pad tokens but the vision items produce %d features", h->n_vis, b->n_patches / U);
  int blk = 0, row = 0;
  for (int k = 0; k < b->n_items; k++)
    for (int tt = 0; tt < b->items[k].t; tt++, blk++) {
      h->vit_cu[blk] = row;
      row += b->items[k].h * b->items[k].w;
    }
  h->vit_cu[h->n_blocks] = row;
  return rc;
}

// ---- the forward pass ----

static void vision_forward(lcc_model *m) {
  lcc_backend *be = m->be;
  const lcc_config *c = &m->cfg;
  lcc_acts *a = &m->acts;
  const int N = m->cur_patches, E = c->vit_embed_dim, M = c->vit_mlp_dim, H = c->vit_num_heads, Dv = c->vit_head_dim;
  const int P = lcc_patch_dim(c), U = lcc_merge_units(c), C = c->hidden_size;
  const float eps = c->vit_norm_eps;
  const size_t NE = (size_t)N * E;
  be->linear_fwd(be, a->vx[0], a->v_pix, lcc_w(m, m->vit_idx_patch), NULL, N, P, E);   // PatchEmbed (Conv3d as linear)
  for (int b = 0; b < c->vit_depth; b++) {
    const lcc_vit_tensors w = lcc_vit_of(m, b, lcc_w);
    const size_t k = m->vision_trainable ? (size_t)b : 0;   // frozen: every block reuses one buffer set
    void *x = a->vx[m->vision_trainable ? b : b % 2], *out = a->vx[m->vision_trainable ? b + 1 : (b + 1) % 2];
    void *n1 = act_at(m, a->v_n1, k * NE), *qkv = act_at(m, a->v_qkv, k * 3 * NE), *att = act_at(m, a->v_att, k * NE);
    void *h = act_at(m, a->v_h, k * NE), *n2 = act_at(m, a->v_n2, k * NE);
    void *f1 = act_at(m, a->v_f1, k * N * (size_t)M), *f2 = act_at(m, a->v_f2, k * N * (size_t)M);
    float *mean1 = a->v_mean1 + k * N, *rstd1 = a->v_rstd1 + k * N, *mean2 = a->v_mean2 + k * N, *rstd2 = a->v_rstd2 + k * N;
    float *lse = a->v_lse + k * (size_t)H * N;
    be->layernorm_fwd(be, n1, mean1, rstd1, x, w.norm1_w, w.norm1_b, N, E, eps);   // n1 [N,E]
    be->linear_fwd(be, qkv, n1, w.qkv_w, w.qkv_b, N, E, 3 * E);                     // qkv [N,3E]
    be->rope_fwd(be, qkv, a->v_cos, a->v_sin, N, H, H, Dv);
    be->attention_fwd(be, att, lse, qkv, a->vit_cu, m->cur_blocks, N, H, H, Dv, 0); // att [N,E]
    be->linear_fwd(be, h, att, w.proj_w, w.proj_b, N, E, E);
    be->add(be, h, h, x, NE);                                                       // h = x + proj(att)
    be->layernorm_fwd(be, n2, mean2, rstd2, h, w.norm2_w, w.norm2_b, N, E, eps);    // n2 [N,E]
    be->linear_fwd(be, f1, n2, w.fc1_w, w.fc1_b, N, E, M);                          // f1 [N,M]
    be->quick_gelu_fwd(be, f2, f1, (size_t)N * M);                                  // f2 [N,M]
    be->linear_fwd(be, out, f2, w.fc2_w, w.fc2_b, N, M, E);
    be->add(be, out, out, h, NE);                                                   // out = h + mlp
  }
  // PatchMerger: LayerNorm per patch, then each merge window's U consecutive rows as one [U*E] row.
  void *xv = a->vx[m->vision_trainable ? c->vit_depth : c->vit_depth % 2];
  const int Nv = N / U;
  be->layernorm_fwd(be, a->mg_n, a->mg_mean, a->mg_rstd, xv, lcc_w(m, m->mg_idx[0]), lcc_w(m, m->mg_idx[1]), N, E, eps);
  be->linear_fwd(be, a->mg_h1, a->mg_n, lcc_w(m, m->mg_idx[2]), lcc_w(m, m->mg_idx[3]), Nv, U * E, U * E);   // [Nv, UE]
  be->gelu_fwd(be, a->mg_h2, a->mg_h1, (size_t)Nv * U * E);
  be->linear_fwd(be, a->mg_out, a->mg_h2, lcc_w(m, m->mg_idx[4]), lcc_w(m, m->mg_idx[5]), Nv, U * E, C);     // [Nv, C]
}

lcc_layer_acts lcc_layer_acts_of(lcc_model *m, int l) {
  const lcc_config *c = &m->cfg;
  lcc_acts *a = &m->acts;
  const size_t T = (size_t)m->cur_tokens, C = (size_t)c->hidden_size, I = (size_t)c->intermediate_size;
  const size_t HD = (size_t)c->num_heads * c->head_dim, Q = HD + 2 * (size_t)c->num_kv_heads * c->head_dim;
  const size_t k = m->recompute ? 0 : (size_t)l;   // with recompute every layer uses the one set
  return (lcc_layer_acts){act_at(m, a->n1, k * T * C), act_at(m, a->qkv, k * T * Q), act_at(m, a->att, k * T * HD),
                          act_at(m, a->h, k * T * C), act_at(m, a->n2, k * T * C), act_at(m, a->gu, k * T * 2 * I),
                          act_at(m, a->s, k * T * I), a->rstd1 + k * T, a->rstd2 + k * T,
                          a->lse + k * (size_t)c->num_heads * T};
}

void lcc_decoder_layer_forward(lcc_model *m, int l) {
  lcc_backend *be = m->be;
  const lcc_config *c = &m->cfg;
  lcc_acts *a = &m->acts;
  const int T = m->cur_tokens, C = c->hidden_size, I = c->intermediate_size, D = c->head_dim;
  const int Hq = c->num_heads, Hkv = c->num_kv_heads, HD = Hq * D, Q = HD + 2 * Hkv * D;
  const float eps = c->rms_norm_eps;
  const size_t TC = (size_t)T * C;
  const lcc_decoder_tensors w = lcc_decoder_of(m, l, lcc_w);
  const lcc_layer_acts y = lcc_layer_acts_of(m, l);
  void *x = a->x[l], *out = a->x[l + 1];
  be->rmsnorm_fwd(be, y.n1, y.rstd1, x, w.in_norm, T, C, eps);                              // n1 [T,C]
  be->linear_fwd(be, y.qkv, y.n1, w.qkv_w, w.qkv_b, T, C, Q);                               // qkv [T,Q]
  be->rope_fwd(be, y.qkv, a->cos, a->sin, T, Hq, Hkv, D);                                   // M-RoPE
  be->attention_fwd(be, y.att, y.lse, y.qkv, a->tok_cu, m->cur_samples, T, Hq, Hkv, D, 1);  // att [T,HD]
  be->linear_fwd(be, y.h, y.att, w.o_w, NULL, T, HD, C);
  be->add(be, y.h, y.h, x, TC);                                                             // h = x + o(att)
  be->rmsnorm_fwd(be, y.n2, y.rstd2, y.h, w.post_norm, T, C, eps);                          // n2 [T,C]
  be->linear_fwd(be, y.gu, y.n2, w.gate_up_w, NULL, T, C, 2 * I);                           // gu [T,2I]
  be->swiglu_fwd(be, y.s, y.gu, T, I);                                                      // s [T,I]
  be->linear_fwd(be, out, y.s, w.down_w, NULL, T, I, C);
  be->add(be, out, out, y.h, TC);                                                           // out = h + mlp
}

static void decoder_forward(lcc_model *m) {
  lcc_backend *be = m->be;
  const lcc_config *c = &m->cfg;
  lcc_acts *a = &m->acts;
  const int T = m->cur_tokens, C = c->hidden_size;
  be->embedding_fwd(be, a->x[0], a->ids, lcc_w(m, m->tok_idx), T, C);
  if (m->cur_vis_tokens) be->scatter_rows_fwd(be, a->x[0], a->mg_out, a->scatter_rows, m->cur_vis_tokens, C);
  for (int l = 0; l < c->num_layers; l++) lcc_decoder_layer_forward(m, l);
  be->rmsnorm_fwd(be, a->nf, a->rstdf, a->x[c->num_layers], lcc_w(m, m->norm_idx), T, C, c->rms_norm_eps);   // nf [T,C]
}

static void compute_loss(lcc_model *m, const lcc_batch *b, const host_prep *h) {
  lcc_backend *be = m->be;
  const int T = m->cur_tokens;
  const int grad = m->fuse_head_grad && m->n_grad;   // backward will follow: its LM-head pass happens here
  be->lm_head_ce(be, m->acts.losses, grad ? m->acts.d_nf : NULL, grad ? lcc_g(m, m->head_idx) : NULL, m->acts.nf,
                 lcc_w(m, m->head_idx), m->acts.targets, m->acts.loss_w, T, m->cfg.hidden_size, m->cfg.vocab_size);
  float *losses = lcc_malloc((size_t)T * sizeof(float));
  be->download(be, losses, m->acts.losses, (size_t)T * sizeof(float));
  m->sample_loss = lcc_realloc(m->sample_loss, (size_t)b->n_samples * sizeof(double));
  m->loss = 0.0;
  for (int s = 0; s < b->n_samples; s++) {
    double sum = 0.0;
    int n = 0;
    for (int t = b->sample_start[s]; t < b->sample_start[s + 1]; t++) {
      if (h->targets[t] < 0) continue;
      sum += losses[t];
      m->loss += (double)h->loss_w[t] * losses[t];
      n++;
    }
    m->sample_loss[s] = n ? sum / n : 0.0;
  }
  free(losses);
}

// Uploads the patch rows, the vision RoPE tables and the ViT blocks of the items (reserved already, with
// cur_patches and cur_blocks set), then runs the tower and the merger: features in acts.mg_out.
static void run_vision(lcc_model *m, const lcc_vision_item *items, int n_items, const float *pixels, const int32_t *vit_cu) {
  lcc_backend *be = m->be;
  const lcc_config *c = &m->cfg;
  lcc_acts *a = &m->acts;
  const size_t N = (size_t)m->cur_patches, vhalf = (size_t)c->vit_head_dim / 2, P = (size_t)lcc_patch_dim(c);
  float *vcs = lcc_malloc(N * vhalf * 2 * sizeof(float));
  lcc_vision_rope_table(c, items, n_items, vcs, vcs + N * vhalf);
  be->upload(be, a->v_cos, vcs, N * vhalf * sizeof(float));
  be->upload(be, a->v_sin, vcs + N * vhalf, N * vhalf * sizeof(float));
  free(vcs);
  be->upload(be, a->vit_cu, vit_cu, ((size_t)m->cur_blocks + 1) * sizeof(int32_t));
  if (be->act_bytes == sizeof(float)) {
    be->upload(be, a->v_pix, pixels, N * P * sizeof(float));
  } else {   // stage the fp32 rows in backend memory, then cast
    float *stage = be->alloc(be, N * P * sizeof(float));
    be->upload(be, stage, pixels, N * P * sizeof(float));
    be->to_act(be, a->v_pix, stage, N * P);
    be->free(be, stage);
  }
  vision_forward(m);
}

int lcc_model_vision(lcc_model *m, const lcc_vision_item *items, int n_items, const float *pixels, int n_patches) {
  const lcc_config *c = &m->cfg;
  int blocks = 0, rows = 0;
  long long patches = 0;
  for (int k = 0; k < n_items; k++) {
    const lcc_vision_item *it = &items[k];
    if (it->t < 1 || it->h < c->spatial_merge_size || it->w < c->spatial_merge_size || it->h % c->spatial_merge_size ||
        it->w % c->spatial_merge_size)
      return lcc_error("vision item %d has grid (%d, %d, %d)", k, it->t, it->h, it->w);
    blocks += it->t;
    patches += (long long)it->t * it->h * it->w;
  }
  if (patches != n_patches || n_patches < 1) return lcc_error("vision items hold %lld patches but %d rows were given", patches, n_patches);
  int32_t *vit_cu = lcc_malloc(((size_t)blocks + 1) * sizeof(int32_t));
  for (int k = 0, b = 0; k < n_items; k++)
    for (int t = 0; t < items[k].t; t++, b++) vit_cu[b] = rows, rows += items[k].h * items[k].w;
  vit_cu[blocks] = rows;
  reserve(m, m->acts.cap_tokens > 0 ? m->acts.cap_tokens : 1, n_patches, m->acts.cap_samples > 0 ? m->acts.cap_samples : 1, blocks);
  m->cur_patches = n_patches, m->cur_blocks = blocks;
  run_vision(m, items, n_items, pixels, vit_cu);
  free(vit_cu);
  return 0;
}

int lcc_model_forward(lcc_model *m, const lcc_batch *b) {
  lcc_backend *be = m->be;
  const lcc_config *c = &m->cfg;
  if (check_batch(m, b)) return -1;
  host_prep h;
  if (prep_batch(m, b, &h)) {
    prep_free(&h);
    return -1;
  }
  const int T = b->n_tokens, N = b->n_patches;
  reserve(m, T, N, b->n_samples, h.n_blocks);
  m->cur_tokens = T, m->cur_patches = N, m->cur_samples = b->n_samples, m->cur_blocks = h.n_blocks, m->cur_vis_tokens = h.n_vis;
  lcc_acts *a = &m->acts;

  // inputs and index tables into backend memory
  be->upload(be, a->ids, b->ids, (size_t)T * sizeof(int32_t));
  be->upload(be, a->targets, h.targets, (size_t)T * sizeof(int32_t));
  be->upload(be, a->loss_w, h.loss_w, (size_t)T * sizeof(float));
  be->upload(be, a->tok_cu, h.tok_cu, ((size_t)b->n_samples + 1) * sizeof(int32_t));
  const size_t half = (size_t)c->head_dim / 2;
  float *cs = lcc_malloc((size_t)T * half * 2 * sizeof(float));
  lcc_mrope_table(c, h.pos, T, cs, cs + (size_t)T * half);
  be->upload(be, a->cos, cs, (size_t)T * half * sizeof(float));
  be->upload(be, a->sin, cs + (size_t)T * half, (size_t)T * half * sizeof(float));
  free(cs);
  if (N > 0) {
    be->upload(be, a->scatter_rows, h.rows, (size_t)h.n_vis * sizeof(int32_t));
    run_vision(m, b->items, b->n_items, b->pixels, h.vit_cu);
  }
  decoder_forward(m);
  if (b->labels) compute_loss(m, b, &h);
  prep_free(&h);
  return 0;
}

void lcc_model_logits(lcc_model *m, float *out, int row0, int n) {
  lcc_backend *be = m->be;
  const int C = m->cfg.hidden_size;
  const size_t nV = (size_t)n * m->cfg.vocab_size;
  void *act = be->alloc(be, nV * be->act_bytes);    // [n, V] act type, in backend memory
  float *wide = be->alloc(be, nV * sizeof(float));  // [n, V] fp32, in backend memory
  be->linear_fwd(be, act, act_at(m, m->acts.nf, (size_t)row0 * C), lcc_w(m, m->head_idx), NULL, n, C, m->cfg.vocab_size);
  be->from_act(be, wide, act, nV);
  be->download(be, out, wide, nV * sizeof(float));
  be->free(be, act);
  be->free(be, wide);
}
