// Model <-> GGUF for llama.cpp (QWEN2VL.md section 5): the text model (arch "qwen2vl") and the vision
// projector (arch "clip", projector "qwen2vl_merger"), with the metadata and tensor names that llama.cpp's
// convert_hf_to_gguf.py writes. One mapping table (the plan) drives both directions, so HF -> GGUF -> HF
// gives back the same tensors.
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "convert.h"
#include "util.h"

// ---- the plan: which slice of which parameter each GGUF tensor holds ----

enum { WHOLE, ROWS, TIME };   // the whole tensor; rows [r0, r1) (qkv split); temporal slice r0 of the patch embedding

typedef struct {
  char name[64];                  // GGUF tensor name
  int param;                      // model parameter
  int kind;
  int64_t r0, r1;
  int ndim;
  int64_t ne[LCC_GGUF_MAX_DIMS];  // GGUF shape (ggml order: the reversed PyTorch shape)
  int mmproj;                     // 1: in the projector file
} plan_entry;

typedef struct {
  const char *hf, *gguf;
} name_pair;

static const name_pair decoder_names[] = {   // model.layers.N.<hf> -> blk.N.<gguf>
    {"input_layernorm.weight", "attn_norm.weight"},    {"self_attn.q_proj.weight", "attn_q.weight"},
    {"self_attn.q_proj.bias", "attn_q.bias"},          {"self_attn.k_proj.weight", "attn_k.weight"},
    {"self_attn.k_proj.bias", "attn_k.bias"},          {"self_attn.v_proj.weight", "attn_v.weight"},
    {"self_attn.v_proj.bias", "attn_v.bias"},          {"self_attn.o_proj.weight", "attn_output.weight"},
    {"post_attention_layernorm.weight", "ffn_norm.weight"}, {"mlp.gate_proj.weight", "ffn_gate.weight"},
    {"mlp.up_proj.weight", "ffn_up.weight"},           {"mlp.down_proj.weight", "ffn_down.weight"},
};
static const name_pair vision_names[] = {   // visual.blocks.B.<hf> -> v.blk.B.<gguf> (qkv is split apart)
    {"norm1.weight", "ln1.weight"},         {"norm1.bias", "ln1.bias"},       {"attn.proj.weight", "attn_out.weight"},
    {"attn.proj.bias", "attn_out.bias"},    {"norm2.weight", "ln2.weight"},   {"norm2.bias", "ln2.bias"},
    {"mlp.fc1.weight", "ffn_up.weight"},    {"mlp.fc1.bias", "ffn_up.bias"},  {"mlp.fc2.weight", "ffn_down.weight"},
    {"mlp.fc2.bias", "ffn_down.bias"},
};
static const name_pair global_names[] = {
    {"model.embed_tokens.weight", "token_embd.weight"}, {"model.norm.weight", "output_norm.weight"},
    {"lm_head.weight", "output.weight"},                {"visual.merger.ln_q.weight", "v.post_ln.weight"},
    {"visual.merger.ln_q.bias", "v.post_ln.bias"},      {"visual.merger.mlp.0.weight", "mm.0.weight"},
    {"visual.merger.mlp.0.bias", "mm.0.bias"},          {"visual.merger.mlp.2.weight", "mm.2.weight"},
    {"visual.merger.mlp.2.bias", "mm.2.bias"},
};

static const char *lookup(const name_pair *t, size_t n, const char *hf) {
  for (size_t i = 0; i < n; i++)
    if (!strcmp(t[i].hf, hf)) return t[i].gguf;
  return NULL;
}
#define LOOKUP(table, hf) lookup(table, sizeof table / sizeof table[0], hf)

typedef struct {
  plan_entry *e;
  int n;
} plan;

static void add_entry(plan *p, const lcc_param *prm, int param, int kind, int64_t r0, int64_t r1, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

static void add_entry(plan *p, const lcc_param *prm, int param, int kind, int64_t r0, int64_t r1, const char *fmt, ...) {
  p->e = lcc_realloc(p->e, (size_t)(p->n + 1) * sizeof *p->e);
  plan_entry *e = &p->e[p->n++];
  *e = (plan_entry){.param = param, .kind = kind, .r0 = r0, .r1 = r1, .mmproj = !strncmp(prm->name, "visual.", 7)};
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->name, sizeof e->name, fmt, ap);
  va_end(ap);
  if (kind == TIME) {   // [E, C, T, P, P] -> one [E, C, P, P] slice: ne = [P, P, C, E]
    e->ndim = 4;
    e->ne[0] = prm->shape[4], e->ne[1] = prm->shape[3], e->ne[2] = prm->shape[1], e->ne[3] = prm->shape[0];
    return;
  }
  LCC_CHECK(prm->ndim <= LCC_GGUF_MAX_DIMS, "convert: '%s' has %d dimensions", prm->name, prm->ndim);
  e->ndim = prm->ndim;
  for (int d = 0; d < prm->ndim; d++) e->ne[d] = prm->shape[prm->ndim - 1 - d];
  if (kind == ROWS) e->ne[prm->ndim - 1] = r1 - r0;
}

static plan make_plan(const lcc_model *m) {
  plan p = {0};
  for (int i = 0; i < m->n_params; i++) {
    const lcc_param *prm = &m->params[i];
    const char *g;
    int idx, off = 0;   // off: where the per-block part of a visual.blocks.N. / model.layers.N. name starts
    if (!strcmp(prm->name, "visual.patch_embed.proj.weight")) {   // Conv3d -> two Conv2d, one per frame of the pair
      add_entry(&p, prm, i, TIME, 0, 0, "v.patch_embd.weight");
      add_entry(&p, prm, i, TIME, 1, 0, "v.patch_embd.weight.1");
    } else if (sscanf(prm->name, "visual.blocks.%d.%n", &idx, &off) == 1 && off && !strncmp(prm->name + off, "attn.qkv.", 9)) {
      const int64_t E = prm->shape[0] / 3;   // rows [0,E) q, [E,2E) k, [2E,3E) v
      const char *what = prm->name + off + 9, *qkv[] = {"q", "k", "v"};
      for (int k = 0; k < 3; k++) add_entry(&p, prm, i, ROWS, k * E, (k + 1) * E, "v.blk.%d.attn_%s.%s", idx, qkv[k], what);
    } else if (off && (g = LOOKUP(vision_names, prm->name + off))) {
      add_entry(&p, prm, i, WHOLE, 0, 0, "v.blk.%d.%s", idx, g);
    } else if ((off = 0, sscanf(prm->name, "model.layers.%d.%n", &idx, &off) == 1) && off &&
               (g = LOOKUP(decoder_names, prm->name + off))) {
      add_entry(&p, prm, i, WHOLE, 0, 0, "blk.%d.%s", idx, g);
    } else {
      g = LOOKUP(global_names, prm->name);
      LCC_CHECK(g, "convert: no GGUF name for parameter '%s'", prm->name);
      add_entry(&p, prm, i, WHOLE, 0, 0, "%s", g);
    }
  }
  return p;
}

static int64_t entry_numel(const plan_entry *e) {
  int64_t n = 1;
  for (int d = 0; d < e->ndim; d++) n *= e->ne[d];
  return n;
}

// The entry's values out of (gather) or into (scatter) the parameter's fp32 values.
static void move_slice(const plan_entry *e, const lcc_param *prm, float *param_vals, float *vals, int gather) {
  if (e->kind == TIME) {
    const int64_t E = prm->shape[0], C = prm->shape[1], T = prm->shape[2], PP = prm->shape[3] * prm->shape[4];
    for (int64_t ec = 0; ec < E * C; ec++) {
      float *p = param_vals + (ec * T + e->r0) * PP, *v = vals + ec * PP;
      memcpy(gather ? v : p, gather ? p : v, (size_t)PP * sizeof(float));
    }
    return;
  }
  const int64_t row = (int64_t)prm->numel / prm->shape[0];   // elements per row of the HF tensor
  float *p = param_vals + (e->kind == ROWS ? e->r0 * row : 0);
  memcpy(gather ? vals : p, gather ? p : vals, (size_t)entry_numel(e) * sizeof(float));
}

// ---- writing ----

// llama.cpp's rules (convert_hf_to_gguf.py prepare_tensors): 1-D tensors and norms F32; the patch embedding
// F16 in an F16 file, else F32; Q8_0 only for rows of whole blocks (else F16).
static int tensor_type(const plan_entry *e, int type) {
  const size_t n = strlen(e->name);
  if (e->ndim == 1 || (n > 12 && !strcmp(e->name + n - 12, "_norm.weight"))) return LCC_GGML_F32;
  if (!strncmp(e->name, "v.patch_embd.", 13)) return type == LCC_GGML_F16 ? LCC_GGML_F16 : LCC_GGML_F32;
  if (type == LCC_GGML_Q8_0 && e->ne[0] % 32) return LCC_GGML_F16;
  return type;
}

static uint32_t file_type(int type) {   // llama_ftype: ALL_F32, MOSTLY_F16, MOSTLY_Q8_0, MOSTLY_BF16
  return type == LCC_GGML_F16 ? 1 : type == LCC_GGML_Q8_0 ? 7 : type == LCC_GGML_BF16 ? 32 : 0;
}

static void set_general(lcc_gguf_writer *w, const char *arch, const char *gtype, const char *name, int type) {
  lcc_gguf_set_str(w, "general.architecture", arch);
  lcc_gguf_set_str(w, "general.type", gtype);
  lcc_gguf_set_str(w, "general.name", name);
  lcc_gguf_set_u32(w, "general.file_type", file_type(type));
  lcc_gguf_set_u32(w, "general.quantization_version", 2);   // GGML_QNT_VERSION
}

// Token types as convert_hf_to_gguf.py assigns them: added tokens CONTROL when special or "<|...|>",
// else USER_DEFINED; ids the tokenizer lacks become "[PAD<id>]" UNUSED.
enum { TOK_NORMAL = 1, TOK_CONTROL = 3, TOK_USER_DEFINED = 4, TOK_UNUSED = 5 };

static int token_type(const char *s, int kind) {
  if (!(kind & LCC_TOK_ADDED)) return TOK_NORMAL;
  const size_t n = strlen(s);
  const int looks_special = n >= 4 && !strncmp(s, "<|", 2) && !strcmp(s + n - 2, "|>");
  return (kind & LCC_TOK_SPECIAL) || looks_special ? TOK_CONTROL : TOK_USER_DEFINED;
}

// tokenizer.ggml.*: the BPE vocabulary, merges and special ids (no BOS added: Qwen2's bos_token is null).
static void set_vocab(lcc_gguf_writer *w, const lcc_config *cfg, const lcc_tok_files *tok) {
  const int V = cfg->vocab_size;
  const char **tokens = lcc_malloc((size_t)V * sizeof *tokens);   // [V]
  int32_t *types = lcc_malloc((size_t)V * sizeof *types);         // [V]
  char *pads = lcc_malloc((size_t)V * 20), *pad = pads;           // "[PAD<id>]" strings, one after another
  for (int i = 0; i < V; i++) {
    const char *s = i < tok->size ? tok->token[i] : NULL;
    if (s) {
      tokens[i] = s;
      types[i] = token_type(s, tok->kind[i]);
    } else {
      tokens[i] = pad;
      pad += sprintf(pad, "[PAD%d]", i) + 1;
      types[i] = TOK_UNUSED;
    }
  }
  lcc_gguf_set_str(w, "tokenizer.ggml.model", "gpt2");
  lcc_gguf_set_str(w, "tokenizer.ggml.pre", "qwen2");
  lcc_gguf_set_arr_str(w, "tokenizer.ggml.tokens", tokens, (size_t)V);
  lcc_gguf_set_arr_i32(w, "tokenizer.ggml.token_type", types, (size_t)V);
  lcc_gguf_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)tok->merges, (size_t)tok->n_merges);
  lcc_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)cfg->eos_token_id);
  lcc_gguf_set_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)tok->endoftext);
  lcc_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)cfg->bos_token_id);
  lcc_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", 0);
  lcc_gguf_set_str(w, "tokenizer.chat_template", lcc_qwen2vl_chat_template);
  free(pads);
  free(types);
  free(tokens);
}

static void set_text_meta(lcc_gguf_writer *w, const lcc_config *c, const lcc_tok_files *tok, const char *name, int type) {
  set_general(w, "qwen2vl", "model", name, type);
  lcc_gguf_set_u32(w, "qwen2vl.block_count", (uint32_t)c->num_layers);
  lcc_gguf_set_u32(w, "qwen2vl.context_length", (uint32_t)c->max_position_embeddings);
  lcc_gguf_set_u32(w, "qwen2vl.embedding_length", (uint32_t)c->hidden_size);
  lcc_gguf_set_u32(w, "qwen2vl.feed_forward_length", (uint32_t)c->intermediate_size);
  lcc_gguf_set_u32(w, "qwen2vl.attention.head_count", (uint32_t)c->num_heads);
  lcc_gguf_set_u32(w, "qwen2vl.attention.head_count_kv", (uint32_t)c->num_kv_heads);
  const int32_t sections[4] = {c->mrope_section[0], c->mrope_section[1], c->mrope_section[2], 0};   // [t, h, w, e]
  lcc_gguf_set_arr_i32(w, "qwen2vl.rope.dimension_sections", sections, 4);
  lcc_gguf_set_f32(w, "qwen2vl.rope.freq_base", c->rope_theta);
  lcc_gguf_set_f32(w, "qwen2vl.attention.layer_norm_rms_epsilon", c->rms_norm_eps);
  set_vocab(w, c, tok);
}

static void set_mmproj_meta(lcc_gguf_writer *w, const lcc_config *c, const lcc_preproc *pp, const char *name, int type) {
  set_general(w, "clip", "mmproj", name, type);
  lcc_gguf_set_bool(w, "clip.has_vision_encoder", 1);
  lcc_gguf_set_u32(w, "clip.vision.projection_dim", (uint32_t)c->hidden_size);
  lcc_gguf_set_u32(w, "clip.vision.image_size", 560);   // the converter's placeholder: Qwen2-VL has no fixed size
  lcc_gguf_set_u32(w, "clip.vision.patch_size", (uint32_t)c->patch_size);
  lcc_gguf_set_u32(w, "clip.vision.embedding_length", (uint32_t)c->vit_embed_dim);
  // As llama.cpp's converter: vision_config.hidden_size lands here (QWEN2VL.md 5.2); clip.cpp sizes the MLP
  // from the tensors, and the reverse conversion does too.
  lcc_gguf_set_u32(w, "clip.vision.feed_forward_length", (uint32_t)c->vit_out_dim);
  lcc_gguf_set_u32(w, "clip.vision.block_count", (uint32_t)c->vit_depth);
  lcc_gguf_set_u32(w, "clip.vision.attention.head_count", (uint32_t)c->vit_num_heads);
  const float mean[3] = {(float)pp->mean[0], (float)pp->mean[1], (float)pp->mean[2]};
  const float std[3] = {(float)pp->std[0], (float)pp->std[1], (float)pp->std[2]};
  lcc_gguf_set_arr_f32(w, "clip.vision.image_mean", mean, 3);
  lcc_gguf_set_arr_f32(w, "clip.vision.image_std", std, 3);
  lcc_gguf_set_str(w, "clip.projector_type", "qwen2vl_merger");
  lcc_gguf_set_f32(w, "clip.vision.attention.layer_norm_epsilon", c->rms_norm_eps);   // the converter passes rms_norm_eps
}

// The tensors of one file (mmproj or not) in plan order, converted one at a time.
static int write_tensors(const lcc_model *m, const plan *p, int mmproj, int type, lcc_gguf_writer *w, const char *path) {
  for (int k = 0; k < p->n; k++)
    if (p->e[k].mmproj == mmproj) lcc_gguf_add_tensor(w, p->e[k].name, tensor_type(&p->e[k], type), p->e[k].ndim, p->e[k].ne);
  if (lcc_gguf_write_begin(w, path)) return -1;
  float *param_vals = NULL;   // [numel] fp32 values of parameter `cached`
  int cached = -1, rc = 0;
  for (int k = 0; k < p->n && !rc; k++) {
    const plan_entry *e = &p->e[k];
    if (e->mmproj != mmproj) continue;
    const lcc_param *prm = &m->params[e->param];
    if (cached != e->param) {
      param_vals = lcc_realloc(param_vals, prm->numel * sizeof(float));
      m->be->download(m->be, param_vals, m->master + prm->offset, prm->numel * sizeof(float));
      cached = e->param;
    }
    const int64_t n = entry_numel(e);
    const int t = tensor_type(e, type);
    float *vals = lcc_malloc((size_t)n * sizeof(float));   // [n] this tensor's values
    move_slice(e, prm, param_vals, vals, 1);
    void *out = t == LCC_GGML_Q8_0 ? lcc_malloc(lcc_ggml_nbytes(t, n)) : vals;   // 16- and 32-bit: in place
    lcc_ggml_from_f32(t, vals, n, out);
    rc = lcc_gguf_write_tensor(w, out, lcc_ggml_nbytes(t, n));
    if (out != vals) free(out);
    free(vals);
  }
  free(param_vals);
  return rc ? rc : lcc_gguf_write_end(w);
}

int lcc_write_gguf(const lcc_model *m, const lcc_tok_files *tok, const lcc_preproc *pp, int type, const char *name,
                   const char *text_path, const char *mmproj_path) {
  plan p = make_plan(m);
  lcc_gguf_writer *w = lcc_gguf_writer_new();
  set_text_meta(w, &m->cfg, tok, name, type);
  int rc = write_tensors(m, &p, 0, type, w, text_path);
  lcc_gguf_writer_free(w);
  if (!rc) {
    w = lcc_gguf_writer_new();
    set_mmproj_meta(w, &m->cfg, pp, name, type);
    rc = write_tensors(m, &p, 1, type, w, mmproj_path);
    lcc_gguf_writer_free(w);
  }
  free(p.e);
  return rc;
}

// ---- reading ----

static int expect_str(const lcc_gguf_file *f, const char *key, const char *want) {
  const char *s;
  if (lcc_gguf_get_str(f, key, &s)) return -1;
  if (strcmp(s, want)) return lcc_error("%s: key '%s' is \"%.60s\", expected \"%s\"", f->path, key, s, want);
  return 0;
}

int lcc_gguf_pair_open(lcc_gguf_pair *p, const char *text_path, const char *mmproj_path) {
  *p = (lcc_gguf_pair){.text_path = text_path, .mmproj_path = mmproj_path};
  if (!(p->text = lcc_gguf_open(text_path)) || !(p->mmproj = lcc_gguf_open(mmproj_path)) ||
      expect_str(p->text, "general.architecture", "qwen2vl") || expect_str(p->mmproj, "general.architecture", "clip") ||
      expect_str(p->mmproj, "clip.projector_type", "qwen2vl_merger")) {
    lcc_gguf_pair_close(p);
    return -1;
  }
  return 0;
}

void lcc_gguf_pair_close(lcc_gguf_pair *p) {
  lcc_gguf_close(p->text);
  lcc_gguf_close(p->mmproj);
  p->text = p->mmproj = NULL;
}

static const lcc_gguf_tensor *need_tensor(const lcc_gguf_file *f, const char *name) {
  const lcc_gguf_tensor *t = lcc_gguf_find_tensor(f, name);
  if (!t) lcc_error("%s: missing tensor '%s'", f->path, name);
  return t;
}

// Id of a token string in tokenizer.ggml.tokens, for the vision token ids the config needs.
static int find_token(const lcc_gguf_file *f, const lcc_gguf_kv *toks, const char *s, int64_t *id) {
  for (uint64_t i = 0; i < toks->n; i++)
    if (!strcmp(toks->strs[i], s)) {
      *id = (int64_t)i;
      return 0;
    }
  return lcc_error("%s: tokenizer.ggml.tokens has no %s token (needed for the config)", f->path, s);
}

// A float32 of the file back to the double it came from when that is the default's value.
static double same_or(float v, double def) { return (float)def == v ? def : (double)v; }

int lcc_gguf_read_config(const lcc_gguf_pair *p, int untie, lcc_config *cfg, lcc_preproc *pp) {
  const lcc_gguf_file *t = p->text, *v = p->mmproj;
  int64_t L, ctx, C, I, H, KV, bos, eos, depth, E, VH, proj, patch, merge = 2, ids[5];
  double theta, eps;
  const lcc_gguf_kv *sec, *toks, *mean, *std;
  const lcc_gguf_tensor *embd, *pe, *up;
  if (lcc_gguf_get_int(t, "qwen2vl.block_count", &L) || lcc_gguf_get_int(t, "qwen2vl.context_length", &ctx) ||
      lcc_gguf_get_int(t, "qwen2vl.embedding_length", &C) || lcc_gguf_get_int(t, "qwen2vl.feed_forward_length", &I) ||
      lcc_gguf_get_int(t, "qwen2vl.attention.head_count", &H) || lcc_gguf_get_int(t, "qwen2vl.attention.head_count_kv", &KV) ||
      lcc_gguf_get_float(t, "qwen2vl.rope.freq_base", &theta) ||
      lcc_gguf_get_float(t, "qwen2vl.attention.layer_norm_rms_epsilon", &eps) ||
      lcc_gguf_get_arr(t, "qwen2vl.rope.dimension_sections", LCC_GGUF_INT32, 4, &sec) ||
      lcc_gguf_get_arr(t, "tokenizer.ggml.tokens", LCC_GGUF_STRING, 0, &toks) ||
      lcc_gguf_get_int(t, "tokenizer.ggml.bos_token_id", &bos) || lcc_gguf_get_int(t, "tokenizer.ggml.eos_token_id", &eos) ||
      !(embd = need_tensor(t, "token_embd.weight")))
    return -1;
  if (embd->ndim != 2 || (uint64_t)embd->ne[1] != toks->n)
    return lcc_error("%s: token_embd.weight has %lld rows but tokenizer.ggml.tokens has %llu tokens", t->path,
                     (long long)embd->ne[1], (unsigned long long)toks->n);
  const char *vision_tokens[5] = {"<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>"};
  for (int k = 0; k < 5; k++)
    if (find_token(t, toks, vision_tokens[k], &ids[k])) return -1;
  if (lcc_gguf_get_int(v, "clip.vision.block_count", &depth) || lcc_gguf_get_int(v, "clip.vision.embedding_length", &E) ||
      lcc_gguf_get_int(v, "clip.vision.attention.head_count", &VH) || lcc_gguf_get_int(v, "clip.vision.projection_dim", &proj) ||
      lcc_gguf_get_int(v, "clip.vision.patch_size", &patch) ||
      (lcc_gguf_find(v, "clip.vision.spatial_merge_size") && lcc_gguf_get_int(v, "clip.vision.spatial_merge_size", &merge)) ||
      lcc_gguf_get_arr(v, "clip.vision.image_mean", LCC_GGUF_FLOAT32, 3, &mean) ||
      lcc_gguf_get_arr(v, "clip.vision.image_std", LCC_GGUF_FLOAT32, 3, &std) ||
      !(pe = need_tensor(v, "v.patch_embd.weight")) || !(up = need_tensor(v, "v.blk.0.ffn_up.weight")))
    return -1;
  if (pe->ndim != 4 || up->ndim != 2) return lcc_error("%s: v.patch_embd.weight or v.blk.0.ffn_up.weight has the wrong rank", v->path);
  const int tied = !lcc_gguf_find_tensor(t, "output.weight") && !untie;
  char *json = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&json, &len);
  LCC_CHECK(f, "open_memstream failed");
  fprintf(f, "{\"model_type\": \"qwen2_vl\", \"vocab_size\": %lld, \"hidden_size\": %lld, \"intermediate_size\": %lld, "
             "\"num_hidden_layers\": %lld, \"num_attention_heads\": %lld, \"num_key_value_heads\": %lld, "
             "\"max_position_embeddings\": %lld, \"rms_norm_eps\": %.9g, \"rope_theta\": %.9g, "
             "\"rope_scaling\": {\"type\": \"mrope\", \"mrope_section\": [%lld, %lld, %lld]}, \"tie_word_embeddings\": %s, "
             "\"bos_token_id\": %lld, \"eos_token_id\": %lld, \"vision_start_token_id\": %lld, \"vision_end_token_id\": %lld, "
             "\"vision_token_id\": %lld, \"image_token_id\": %lld, \"video_token_id\": %lld, \"vision_config\": {"
             "\"depth\": %lld, \"embed_dim\": %lld, \"num_heads\": %lld, \"hidden_size\": %lld, \"mlp_ratio\": %.17g, "
             "\"patch_size\": %lld, \"temporal_patch_size\": 2, \"spatial_merge_size\": %lld, \"in_channels\": %lld}}",
          (long long)embd->ne[1], (long long)C, (long long)I, (long long)L, (long long)H, (long long)KV, (long long)ctx, eps,
          theta, (long long)lcc_gguf_arr_int(sec, 0), (long long)lcc_gguf_arr_int(sec, 1), (long long)lcc_gguf_arr_int(sec, 2),
          tied ? "true" : "false", (long long)bos, (long long)eos, (long long)ids[0], (long long)ids[1], (long long)ids[2],
          (long long)ids[3], (long long)ids[4], (long long)depth, (long long)E, (long long)VH, (long long)proj,
          E > 0 ? (double)up->ne[1] / (double)E : 0.0, (long long)patch, (long long)merge, (long long)pe->ne[2]);
  LCC_CHECK(fclose(f) == 0, "open_memstream write failed");
  char what[2 * LCC_OPT_STR + 32];
  snprintf(what, sizeof what, "the metadata of %s and %s", t->path, v->path);
  int rc = lcc_config_parse(cfg, json, len, what);
  free(json);
  if (rc) return -1;
  cfg->vit_mlp_dim = (int)up->ne[1];   // exact, whatever the decimal ratio truncates to
  lcc_preproc_default(pp);
  for (int k = 0; k < 3; k++) {
    pp->mean[k] = same_or((float)lcc_gguf_arr_float(mean, (uint64_t)k), pp->mean[k]);
    pp->std[k] = same_or((float)lcc_gguf_arr_float(std, (uint64_t)k), pp->std[k]);
  }
  return 0;
}

int lcc_gguf_check_vocab(const lcc_gguf_pair *p, const lcc_tok_files *tok) {
  const lcc_gguf_kv *toks;
  if (lcc_gguf_get_arr(p->text, "tokenizer.ggml.tokens", LCC_GGUF_STRING, 0, &toks)) return -1;
  for (int i = 0; i < tok->size && (uint64_t)i < toks->n; i++)
    if (tok->token[i] && strcmp(tok->token[i], toks->strs[i]))
      return lcc_error("%s: the GGUF vocabulary differs from %s at id %d ('%s' vs '%s'): give the tokenizer.json the model "
                       "was converted with (--tokenizer)", p->text_path, tok->path, i, toks->strs[i], tok->token[i]);
  return 0;
}

static void ne_str(char *out, size_t n, int ndim, const int64_t *ne) {
  size_t k = (size_t)snprintf(out, n, "[");
  for (int d = 0; d < ndim && k < n; d++) k += (size_t)snprintf(out + k, n - k, d ? ", %lld" : "%lld", (long long)ne[d]);
  if (k < n) snprintf(out + k, n - k, "]");
}

// Every tensor of both files must be one the plan reads.
static int check_no_extra(const lcc_gguf_file *f, const plan *p, int mmproj) {
  for (int i = 0; i < f->n_tensors; i++) {
    int known = 0;
    for (int k = 0; k < p->n && !known; k++) known = p->e[k].mmproj == mmproj && !strcmp(p->e[k].name, f->tensors[i].name);
    if (!known) return lcc_error("%s: unexpected tensor '%s': not part of a Qwen2-VL model of this configuration", f->path, f->tensors[i].name);
  }
  return 0;
}

// One plan entry's values out of its GGUF tensor. An untied model without output.weight (--untie) reads
// token_embd.weight for the LM head.
static int read_entry(const lcc_gguf_pair *p, const plan_entry *e, float *vals) {
  const lcc_gguf_file *f = e->mmproj ? p->mmproj : p->text;
  const lcc_gguf_tensor *t = lcc_gguf_find_tensor(f, e->name);
  if (!t && !strcmp(e->name, "output.weight")) t = lcc_gguf_find_tensor(f, "token_embd.weight");
  if (!t) return lcc_error("%s: missing tensor '%s'", f->path, e->name);
  int same = t->ndim == e->ndim;
  for (int d = 0; d < e->ndim && same; d++) same = t->ne[d] == e->ne[d];
  if (!same) {
    char want[96], got[96];
    ne_str(want, sizeof want, e->ndim, e->ne);
    ne_str(got, sizeof got, t->ndim, t->ne);
    return lcc_error("%s: tensor '%s' has ggml shape %s but the configuration needs %s", f->path, t->name, got, want);
  }
  if (lcc_ggml_to_f32(t->type, lcc_gguf_data(f, t), t->numel, vals))
    return lcc_error("%s: tensor '%s' is %s, which livecc-convert does not read (F32, F16, BF16, Q8_0)", f->path, t->name,
                     lcc_ggml_type_name(t->type));
  return 0;
}

int lcc_gguf_read_weights(const lcc_gguf_pair *p, lcc_model *m) {
  plan pl = make_plan(m);
  int rc = 0;
  for (int i = 0; i < m->n_params && !rc; i++) {
    const lcc_param *prm = &m->params[i];
    float *param_vals = lcc_malloc(prm->numel * sizeof(float));   // [numel] assembled from its GGUF tensors
    for (int k = 0; k < pl.n && !rc; k++) {
      const plan_entry *e = &pl.e[k];
      if (e->param != i) continue;
      float *vals = lcc_malloc((size_t)entry_numel(e) * sizeof(float));
      if (!(rc = read_entry(p, e, vals))) move_slice(e, prm, param_vals, vals, 0);
      free(vals);
    }
    if (!rc) m->be->upload(m->be, m->master + prm->offset, param_vals, prm->numel * sizeof(float));
    free(param_vals);
  }
  if (!rc && (check_no_extra(p->text, &pl, 0) || check_no_extra(p->mmproj, &pl, 1))) rc = -1;
  free(pl.e);
  if (!rc) lcc_model_sync_weights(m);
  return rc;
}
