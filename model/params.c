// The parameter table: every Qwen2-VL tensor under its HF name, laid out in one flat buffer.
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "util.h"

typedef struct {
  lcc_model *m;
  int cap;
} table_builder;

static int add(table_builder *tb, int init, int ndim, const int64_t *shape, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int add(table_builder *tb, int init, int ndim, const int64_t *shape, const char *fmt, ...) {
  lcc_model *m = tb->m;
  if (m->n_params == tb->cap) {
    tb->cap = tb->cap ? 2 * tb->cap : 256;
    m->params = lcc_realloc(m->params, (size_t)tb->cap * sizeof(lcc_param));
  }
  lcc_param *p = &m->params[m->n_params];
  memset(p, 0, sizeof *p);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->name, sizeof p->name, fmt, ap);
  va_end(ap);
  p->ndim = ndim;
  p->numel = 1;
  for (int d = 0; d < ndim; d++) {
    p->shape[d] = shape[d];
    p->numel *= (size_t)shape[d];
  }
  p->init = init;
  return m->n_params++;
}

#define SHAPE(...) (const int64_t[]){__VA_ARGS__}
#define ADD_W(ndim, shape, ...) add(&tb, LCC_INIT_NORMAL, ndim, shape, __VA_ARGS__)
#define ADD_B(n, ...) add(&tb, LCC_INIT_ZERO, 1, SHAPE(n), __VA_ARGS__)
#define ADD_ONE(n, ...) add(&tb, LCC_INIT_ONE, 1, SHAPE(n), __VA_ARGS__)

// Canonical order (before frozen tensors are moved to the front): vision tower, merger, decoder.
static void build_table(lcc_model *m) {
  const lcc_config *c = &m->cfg;
  table_builder tb = {m, 0};
  const int64_t E = c->vit_embed_dim, M = c->vit_mlp_dim, U = (int64_t)lcc_merge_units(c) * E;
  const int64_t C = c->hidden_size, I = c->intermediate_size, V = c->vocab_size;
  const int64_t DQ = (int64_t)c->num_heads * c->head_dim, DKV = (int64_t)c->num_kv_heads * c->head_dim;

  m->vit_idx_patch = ADD_W(5, SHAPE(E, c->in_channels, c->temporal_patch_size, c->patch_size, c->patch_size),
                           "visual.patch_embed.proj.weight");
  m->vit_idx = lcc_calloc((size_t)c->vit_depth, sizeof *m->vit_idx);
  for (int b = 0; b < c->vit_depth; b++) {
    int *ix = m->vit_idx[b];
    const char *pre = "visual.blocks";
    ix[VB_NORM1_W] = ADD_ONE(E, "%s.%d.norm1.weight", pre, b);
    ix[VB_NORM1_B] = ADD_B(E, "%s.%d.norm1.bias", pre, b);
    ix[VB_QKV_W] = ADD_W(2, SHAPE(3 * E, E), "%s.%d.attn.qkv.weight", pre, b);
    ix[VB_QKV_B] = ADD_B(3 * E, "%s.%d.attn.qkv.bias", pre, b);
    ix[VB_PROJ_W] = ADD_W(2, SHAPE(E, E), "%s.%d.attn.proj.weight", pre, b);
    ix[VB_PROJ_B] = ADD_B(E, "%s.%d.attn.proj.bias", pre, b);
    ix[VB_NORM2_W] = ADD_ONE(E, "%s.%d.norm2.weight", pre, b);
    ix[VB_NORM2_B] = ADD_B(E, "%s.%d.norm2.bias", pre, b);
    ix[VB_FC1_W] = ADD_W(2, SHAPE(M, E), "%s.%d.mlp.fc1.weight", pre, b);
    ix[VB_FC1_B] = ADD_B(M, "%s.%d.mlp.fc1.bias", pre, b);
    ix[VB_FC2_W] = ADD_W(2, SHAPE(E, M), "%s.%d.mlp.fc2.weight", pre, b);
    ix[VB_FC2_B] = ADD_B(E, "%s.%d.mlp.fc2.bias", pre, b);
  }
  m->mg_idx[0] = ADD_ONE(E, "visual.merger.ln_q.weight");
  m->mg_idx[1] = ADD_B(E, "visual.merger.ln_q.bias");
  m->mg_idx[2] = ADD_W(2, SHAPE(U, U), "visual.merger.mlp.0.weight");
  m->mg_idx[3] = ADD_B(U, "visual.merger.mlp.0.bias");
  m->mg_idx[4] = ADD_W(2, SHAPE(C, U), "visual.merger.mlp.2.weight");
  m->mg_idx[5] = ADD_B(C, "visual.merger.mlp.2.bias");

  m->tok_idx = ADD_W(2, SHAPE(V, C), "model.embed_tokens.weight");
  m->dec_idx = lcc_calloc((size_t)c->num_layers, sizeof *m->dec_idx);
  for (int l = 0; l < c->num_layers; l++) {
    int *ix = m->dec_idx[l];
    const char *pre = "model.layers";
    ix[DL_IN_NORM] = ADD_ONE(C, "%s.%d.input_layernorm.weight", pre, l);
    ix[DL_Q_W] = ADD_W(2, SHAPE(DQ, C), "%s.%d.self_attn.q_proj.weight", pre, l);   // q, k, v adjacent:
    ix[DL_K_W] = ADD_W(2, SHAPE(DKV, C), "%s.%d.self_attn.k_proj.weight", pre, l);  // one [DQ+2DKV, C] GEMM
    ix[DL_V_W] = ADD_W(2, SHAPE(DKV, C), "%s.%d.self_attn.v_proj.weight", pre, l);
    ix[DL_Q_B] = ADD_B(DQ, "%s.%d.self_attn.q_proj.bias", pre, l);
    ix[DL_K_B] = ADD_B(DKV, "%s.%d.self_attn.k_proj.bias", pre, l);
    ix[DL_V_B] = ADD_B(DKV, "%s.%d.self_attn.v_proj.bias", pre, l);
    ix[DL_O_W] = ADD_W(2, SHAPE(C, DQ), "%s.%d.self_attn.o_proj.weight", pre, l);
    ix[DL_POST_NORM] = ADD_ONE(C, "%s.%d.post_attention_layernorm.weight", pre, l);
    ix[DL_GATE_W] = ADD_W(2, SHAPE(I, C), "%s.%d.mlp.gate_proj.weight", pre, l);    // gate, up adjacent:
    ix[DL_UP_W] = ADD_W(2, SHAPE(I, C), "%s.%d.mlp.up_proj.weight", pre, l);        // one [2I, C] GEMM
    ix[DL_DOWN_W] = ADD_W(2, SHAPE(C, I), "%s.%d.mlp.down_proj.weight", pre, l);
  }
  m->norm_idx = ADD_ONE(C, "model.norm.weight");
  m->head_idx = c->tie_word_embeddings ? m->tok_idx : ADD_W(2, SHAPE(V, C), "lm_head.weight");
}

// Does `name` fall under one of the comma-separated module prefixes (whole path components only)?
static int is_frozen(const char *name, const char *freeze) {
  if (!freeze) return 0;
  for (const char *p = freeze; *p;) {
    const char *end = strchr(p, ',');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    while (n && p[n - 1] == ' ') n--;
    while (n && *p == ' ') p++, n--;
    if (n && strncmp(name, p, n) == 0 && (name[n] == '.' || name[n] == 0)) return 1;
    if (!end) break;
    p = end + 1;
  }
  return 0;
}

static int check_freeze_prefixes(const lcc_model *m, const char *freeze) {
  if (!freeze) return 0;
  for (const char *p = freeze; *p;) {
    const char *end = strchr(p, ',');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    char prefix[128];
    if (n >= sizeof prefix) return lcc_error("freeze: module prefix too long");
    memcpy(prefix, p, n);
    prefix[n] = 0;
    char *s = prefix;
    while (*s == ' ') s++;
    for (char *e = s + strlen(s); e > s && e[-1] == ' ';) *--e = 0;
    if (*s) {
      int hit = 0;
      for (int i = 0; i < m->n_params && !hit; i++) hit = is_frozen(m->params[i].name, s);
      if (!hit) return lcc_error("freeze: '%s' matches no parameter (examples: 'visual', 'visual.blocks', "
                                 "'model.embed_tokens', 'model.layers.0')", s);
    }
    if (!end) break;
    p = end + 1;
  }
  return 0;
}

// Tensors computed by one GEMM must stay adjacent: a freeze list may not split them.
static int check_fused(const lcc_model *m) {
  for (int l = 0; l < m->cfg.num_layers; l++) {
    const int *ix = m->dec_idx[l];
    const int groups[3][3] = {{DL_Q_W, DL_K_W, DL_V_W}, {DL_Q_B, DL_K_B, DL_V_B}, {DL_GATE_W, DL_UP_W, -1}};
    for (int g = 0; g < 3; g++)
      for (int k = 1; k < 3 && groups[g][k] >= 0; k++) {
        const lcc_param *a = &m->params[ix[groups[g][k - 1]]], *b = &m->params[ix[groups[g][k]]];
        if (a->offset + a->numel != b->offset)
          return lcc_error("freeze: '%s' and '%s' are computed together; freeze both or neither", a->name, b->name);
      }
  }
  return 0;
}

int lcc_model_create(lcc_model *m, const lcc_config *cfg, lcc_backend *be, const char *freeze) {
  memset(m, 0, sizeof *m);
  m->cfg = *cfg;
  m->be = be;
  build_table(m);
  if (check_freeze_prefixes(m, freeze)) {
    lcc_model_destroy(m);
    return -1;
  }
  // Frozen tensors first, trainable after, each group in canonical order: the layout assigns offsets in
  // that order while the table keeps canonical order for names and indices.
  size_t off = 0;
  for (int pass = 0; pass < 2; pass++)
    for (int i = 0; i < m->n_params; i++) {
      lcc_param *p = &m->params[i];
      if (is_frozen(p->name, freeze) != (pass == 0)) continue;
      p->offset = off;
      off += p->numel;
      if (pass == 0) m->train_begin = off;
    }
  m->n_elems = off;
  m->n_grad = m->n_elems - m->train_begin;
  for (int i = 0; i < m->n_params; i++) {
    lcc_param *p = &m->params[i];
    p->grad_offset = p->offset >= m->train_begin ? (long long)(p->offset - m->train_begin) : -1;
    if (p->grad_offset >= 0 && strncmp(p->name, "visual.", 7) == 0) m->vision_trainable = 1;
  }
  if (check_fused(m)) {
    lcc_model_destroy(m);
    return -1;
  }
  if (!be) return 0;   // the layout only (memory plans)
  m->master = be->alloc(be, m->n_elems * sizeof(float));
  m->weights = be->act_bytes == sizeof(float) ? (void *)m->master : be->alloc(be, m->n_elems * be->act_bytes);
  m->grads = m->n_grad ? be->alloc(be, m->n_grad * sizeof(float)) : NULL;
  return 0;
}

void lcc_model_destroy(lcc_model *m) {
  lcc_backend *be = m->be;
  if (m->acts.mem) be->free(be, m->acts.mem);
  free(m->acts.vx);
  free(m->acts.x);
  if (m->weights && m->weights != (void *)m->master) be->free(be, m->weights);
  if (m->master) be->free(be, m->master);
  if (m->grads) be->free(be, m->grads);
  free(m->params);
  free(m->vit_idx);
  free(m->dec_idx);
  free(m->sample_loss);
  memset(m, 0, sizeof *m);
}

int lcc_model_find(const lcc_model *m, const char *name) {
  for (int i = 0; i < m->n_params; i++)
    if (strcmp(m->params[i].name, name) == 0) return i;
  return -1;
}

uint64_t lcc_model_layout_hash(const lcc_model *m) {
  uint64_t h = lcc_crc64(0, &m->train_begin, sizeof m->train_begin);
  for (int i = 0; i < m->n_params; i++) {
    const lcc_param *p = &m->params[i];
    h = lcc_crc64(h, p->name, strlen(p->name));
    h = lcc_crc64(h, p->shape, (size_t)p->ndim * sizeof(int64_t));
    h = lcc_crc64(h, &p->offset, sizeof p->offset);
  }
  return h;
}

void *lcc_w(const lcc_model *m, int i) { return (char *)m->weights + m->params[i].offset * m->be->act_bytes; }

float *lcc_g(const lcc_model *m, int i) {
  long long g = m->params[i].grad_offset;
  return g < 0 ? NULL : m->grads + g;
}

void lcc_model_zero_grad(lcc_model *m) {
  if (m->grads) m->be->zero(m->be, m->grads, m->n_grad * sizeof(float));
}

void lcc_model_sync_weights(lcc_model *m) {
  if (m->weights != (void *)m->master) m->be->to_act(m->be, m->weights, m->master, m->n_elems);
}

// ---- seeded init: splitmix64 stream per tensor, Box-Muller normals ----
static uint64_t splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static uint64_t hash_name(uint64_t seed, const char *name) {
  uint64_t h = 1469598103934665603ull ^ seed;   // FNV-1a over the name, keyed by the seed
  for (const char *c = name; *c; c++) h = (h ^ (unsigned char)*c) * 1099511628211ull;
  return h;
}

void lcc_model_init_random(lcc_model *m, uint64_t seed) {
  lcc_backend *be = m->be;
  for (int i = 0; i < m->n_params; i++) {
    const lcc_param *p = &m->params[i];
    float *buf = lcc_malloc(p->numel * sizeof(float));
    uint64_t state = hash_name(seed, p->name);
    for (size_t k = 0; k < p->numel; k += 2) {
      float a = 0.0f, b = 0.0f;
      if (p->init == LCC_INIT_NORMAL) {
        double u1 = ((splitmix64(&state) >> 11) + 1.0) * 0x1.0p-53;   // (0, 1]
        double u2 = (splitmix64(&state) >> 11) * 0x1.0p-53;
        double r = sqrt(-2.0 * log(u1)) * 0.02;
        a = (float)(r * cos(2.0 * M_PI * u2));
        b = (float)(r * sin(2.0 * M_PI * u2));
      } else if (p->init == LCC_INIT_ONE) {
        a = b = 1.0f;
      }
      buf[k] = a;
      if (k + 1 < p->numel) buf[k + 1] = b;
    }
    be->upload(be, m->master + p->offset, buf, p->numel * sizeof(float));
    free(buf);
  }
  lcc_model_sync_weights(m);
}
