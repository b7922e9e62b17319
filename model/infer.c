// Incremental inference: the decoder's call list over a segment of new tokens, attention against the cache.
#include <stdlib.h>
#include <string.h>

#include "infer.h"
#include "model_internal.h"
#include "util.h"

static void free_segment(lcc_infer *s) {
  lcc_backend *be = s->m->be;
  void *bufs[] = {s->x, s->t1, s->qkv, s->att, s->h, s->gu, s->s, s->rstd, s->cos, s->sin, s->dev_ids, s->rows};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
    if (bufs[i]) be->free(be, bufs[i]);
}

// Segment buffers for up to n tokens.
static void reserve_segment(lcc_infer *s, int n) {
  if (n <= s->seg_cap) return;
  free_segment(s);
  lcc_model *m = s->m;
  lcc_backend *be = m->be;
  const lcc_config *c = &m->cfg;
  const size_t ab = be->act_bytes, N = (size_t)n, C = (size_t)c->hidden_size, I = (size_t)c->intermediate_size;
  const size_t D = (size_t)c->head_dim, HD = (size_t)c->num_heads * D, Q = HD + 2 * (size_t)c->num_kv_heads * D;
  s->x = be->alloc(be, N * C * ab);
  s->t1 = be->alloc(be, N * C * ab);
  s->qkv = be->alloc(be, N * Q * ab);
  s->att = be->alloc(be, N * HD * ab);
  s->h = be->alloc(be, N * C * ab);
  s->gu = be->alloc(be, N * 2 * I * ab);
  s->s = be->alloc(be, N * I * ab);
  s->rstd = be->alloc(be, N * sizeof(float));
  s->cos = be->alloc(be, N * D / 2 * sizeof(float));
  s->sin = be->alloc(be, N * D / 2 * sizeof(float));
  s->dev_ids = be->alloc(be, N * sizeof(int32_t));
  s->rows = be->alloc(be, N * sizeof(int32_t));
  s->seg_cap = n;
}

int lcc_infer_init(lcc_infer *s, lcc_model *m, int capacity) {
  memset(s, 0, sizeof *s);
  if (capacity < 1) return lcc_error("inference context capacity must be >= 1 (got %d)", capacity);
  lcc_backend *be = m->be;
  const lcc_config *c = &m->cfg;
  const size_t kv = (size_t)capacity * c->num_kv_heads * c->head_dim * be->act_bytes;
  s->m = m;
  s->cap = capacity;
  s->k = lcc_calloc((size_t)c->num_layers, sizeof(void *));
  s->v = lcc_calloc((size_t)c->num_layers, sizeof(void *));
  for (int l = 0; l < c->num_layers; l++) s->k[l] = be->alloc(be, kv), s->v[l] = be->alloc(be, kv);
  s->ids = lcc_malloc((size_t)capacity * sizeof(int32_t));
  s->next_after = lcc_malloc((size_t)capacity * sizeof(int32_t));
  s->last = be->alloc(be, (size_t)c->hidden_size * be->act_bytes);
  s->logits_act = be->alloc(be, (size_t)c->vocab_size * be->act_bytes);
  s->logits = lcc_malloc((size_t)c->vocab_size * sizeof(float));
  return 0;
}

void lcc_infer_free(lcc_infer *s) {
  if (!s->m) return;
  lcc_backend *be = s->m->be;
  for (int l = 0; l < s->m->cfg.num_layers; l++) be->free(be, s->k[l]), be->free(be, s->v[l]);
  free(s->k), free(s->v), free(s->ids), free(s->next_after), free(s->logits);
  be->free(be, s->last);
  be->free(be, s->logits_act);
  free_segment(s);
  memset(s, 0, sizeof *s);
}

// Positions of the segment (t | h | w blocks of n), continuing at s->next_pos; fills next_after.
static int segment_positions(lcc_infer *s, const int32_t *ids, int n, const lcc_vision_item *items, int n_items,
                             int32_t *pos) {
  const lcc_model *m = s->m;
  if (m->pos_mode == LCC_POS_MROPE) {
    int delta;
    if (lcc_rope_index(&m->cfg, ids, n, items, n_items, pos, &delta)) return -1;
  } else {
    for (int i = 0; i < n; i++) pos[i] = pos[n + i] = pos[2 * n + i] = i;
  }
  int32_t next = s->next_pos;
  for (int i = 0; i < n; i++) {
    for (int a = 0; a < 3; a++) {
      pos[a * n + i] += s->next_pos;
      if (pos[a * n + i] + 1 > next) next = pos[a * n + i] + 1;
    }
    s->next_after[s->n + i] = next;
  }
  return 0;
}

int lcc_infer_append(lcc_infer *s, const int32_t *ids, int n, const lcc_vision_item *items, int n_items,
                     const float *pixels, int n_patches) {
  lcc_model *m = s->m;
  lcc_backend *be = m->be;
  const lcc_config *c = &m->cfg;
  const int C = c->hidden_size, I = c->intermediate_size, D = c->head_dim, Hq = c->num_heads, Hkv = c->num_kv_heads;
  const int HD = Hq * D, KV = Hkv * D, Q = HD + 2 * KV;
  const float eps = c->rms_norm_eps;
  if (n < 1) return lcc_error("append: no tokens");
  if (s->n + n > s->cap) return lcc_error("append: %d + %d tokens exceed the context capacity %d", s->n, n, s->cap);
  for (int i = 0; i < n; i++)
    if (ids[i] < 0 || ids[i] >= c->vocab_size) return lcc_error("append: token id %d outside [0, %d)", ids[i], c->vocab_size);
  int32_t *pos = lcc_malloc((size_t)3 * n * sizeof(int32_t)), *rows = lcc_malloc((size_t)n * sizeof(int32_t));
  int n_vis = 0;
  for (int i = 0; i < n; i++)
    if (ids[i] == c->image_token_id || ids[i] == c->video_token_id) rows[n_vis++] = i;
  int rc = segment_positions(s, ids, n, items, n_items, pos);
  if (!rc && n_vis * lcc_merge_units(c) != n_patches)
    rc = lcc_error("append: %d pad tokens but %d patch rows (%d features)", n_vis, n_patches, n_patches / lcc_merge_units(c));
  if (!rc && n_patches) rc = lcc_model_vision(m, items, n_items, pixels, n_patches);   // features in acts.mg_out
  if (rc) {
    free(pos), free(rows);
    return -1;
  }
  reserve_segment(s, n);
  float *cs = lcc_malloc((size_t)n * D * sizeof(float));   // cos then sin, [n, D/2] each
  lcc_mrope_table(c, pos, n, cs, cs + (size_t)n * D / 2);
  be->upload(be, s->cos, cs, (size_t)n * D / 2 * sizeof(float));
  be->upload(be, s->sin, cs + (size_t)n * D / 2, (size_t)n * D / 2 * sizeof(float));
  be->upload(be, s->dev_ids, ids, (size_t)n * sizeof(int32_t));
  be->upload(be, s->rows, rows, (size_t)n_vis * sizeof(int32_t));
  free(cs), free(pos), free(rows);

  be->embedding_fwd(be, s->x, s->dev_ids, lcc_w(m, m->tok_idx), n, C);                      // x [n,C]
  if (n_vis) be->scatter_rows_fwd(be, s->x, m->acts.mg_out, s->rows, n_vis, C);
  const int Tc = s->n + n;
  for (int l = 0; l < c->num_layers; l++) {
    const lcc_decoder_tensors w = lcc_decoder_of(m, l, lcc_w);
    be->rmsnorm_fwd(be, s->t1, s->rstd, s->x, w.in_norm, n, C, eps);                         // t1 = n1 [n,C]
    be->linear_fwd(be, s->qkv, s->t1, w.qkv_w, w.qkv_b, n, C, Q);                            // qkv [n,Q]
    be->rope_fwd(be, s->qkv, s->cos, s->sin, n, Hq, Hkv, D);
    be->copy_rows(be, act_at(m, s->k[l], (size_t)s->n * KV), KV, act_at(m, s->qkv, HD), Q, n, KV);       // cache k
    be->copy_rows(be, act_at(m, s->v[l], (size_t)s->n * KV), KV, act_at(m, s->qkv, HD + KV), Q, n, KV);  // cache v
    be->attention_cached(be, s->att, s->qkv, Q, s->k[l], s->v[l], n, Tc, Hq, Hkv, D);        // att [n,HD]
    be->linear_fwd(be, s->h, s->att, w.o_w, NULL, n, HD, C);                                 // h [n,C]
    be->add(be, s->h, s->h, s->x, (size_t)n * C);                                             // h = x + o(att)
    be->rmsnorm_fwd(be, s->t1, s->rstd, s->h, w.post_norm, n, C, eps);                       // t1 = n2
    be->linear_fwd(be, s->gu, s->t1, w.gate_up_w, NULL, n, C, 2 * I);                        // gu [n,2I]
    be->swiglu_fwd(be, s->s, s->gu, n, I);                                                   // s [n,I]
    be->linear_fwd(be, s->t1, s->s, w.down_w, NULL, n, I, C);                                // t1 = mlp [n,C]
    be->add(be, s->x, s->t1, s->h, (size_t)n * C);                                            // x = h + mlp
  }
  // the next-token logits of the last appended token
  be->rmsnorm_fwd(be, s->last, s->rstd, act_at(m, s->x, (size_t)(n - 1) * C), lcc_w(m, m->norm_idx), 1, C, eps);
  be->linear_fwd(be, s->logits_act, s->last, lcc_w(m, m->head_idx), NULL, 1, C, c->vocab_size);
  if (be->act_bytes == sizeof(float)) {
    be->download(be, s->logits, s->logits_act, (size_t)c->vocab_size * sizeof(float));
  } else {   // widen on the device first
    float *wide = be->alloc(be, (size_t)c->vocab_size * sizeof(float));
    be->from_act(be, wide, s->logits_act, (size_t)c->vocab_size);
    be->download(be, s->logits, wide, (size_t)c->vocab_size * sizeof(float));
    be->free(be, wide);
  }
  memcpy(s->ids + s->n, ids, (size_t)n * sizeof(int32_t));
  s->n = Tc;
  s->next_pos = s->next_after[Tc - 1];
  return 0;
}

void lcc_infer_truncate(lcc_infer *s, int keep) {
  LCC_CHECK(keep >= 0 && keep <= s->n, "truncate to %d of %d cached tokens", keep, s->n);
  s->n = keep;
  s->next_pos = keep ? s->next_after[keep - 1] : 0;
}

void lcc_infer_evict(lcc_infer *s, int a, int b) {
  LCC_CHECK(a >= 0 && a <= b && b <= s->n, "evict [%d, %d) of %d cached tokens", a, b, s->n);
  lcc_model *m = s->m;
  const int KV = m->cfg.num_kv_heads * m->cfg.head_dim, tail = s->n - b;
  for (int l = 0; l < m->cfg.num_layers && tail > 0; l++) {   // rows [b, n) move down to a (ascending: no overlap hazard)
    for (int r = 0; r < tail; r++) {
      m->be->copy_rows(m->be, act_at(m, s->k[l], (size_t)(a + r) * KV), KV, act_at(m, s->k[l], (size_t)(b + r) * KV), KV, 1, KV);
      m->be->copy_rows(m->be, act_at(m, s->v[l], (size_t)(a + r) * KV), KV, act_at(m, s->v[l], (size_t)(b + r) * KV), KV, 1, KV);
    }
  }
  memmove(s->ids + a, s->ids + b, (size_t)tail * sizeof(int32_t));
  memmove(s->next_after + a, s->next_after + b, (size_t)tail * sizeof(int32_t));
  s->n -= b - a;
}
