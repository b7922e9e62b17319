// Reads and writes Hugging Face config.json for Qwen2VLForConditionalGeneration.
// Text fields live at the root (legacy, what Qwen publishes) or in "text_config" (transformers >= 4.5x
// nested form, where some of them, e.g. the token ids, stay at the root): a text key is looked up in
// text_config first and then at the root. Vision fields live in "vision_config". A JSON null counts as
// absent, as transformers writes null for unset fields.
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "util.h"

typedef enum { ROOT, TEXT, VISION } scope;

typedef struct {
  const char *what;                            // file name for messages
  const lcc_json *root, *text_config, *vision;
} source;

typedef struct {
  const lcc_json *v;   // NULL when absent
  char name[96];       // dotted key for messages: "text_config.hidden_size", "vision_config.depth"
} item;

static const lcc_json *member(const lcc_json *obj, const char *key) {
  const lcc_json *v = lcc_json_get(obj, key);
  return v && v->type != LCC_JSON_NULL ? v : NULL;
}

static item lookup(const source *s, scope sc, const char *key) {
  item it = {0};
  if (sc == VISION) {
    it.v = member(s->vision, key);
    snprintf(it.name, sizeof it.name, "vision_config.%s", key);
    return it;
  }
  if (sc == TEXT && s->text_config && (it.v = member(s->text_config, key))) {
    snprintf(it.name, sizeof it.name, "text_config.%s", key);
    return it;
  }
  it.v = member(s->root, key);
  snprintf(it.name, sizeof it.name, "%s%s", sc == TEXT && s->text_config && !it.v ? "text_config." : "", key);
  return it;
}

// Records "<file>: key '<dotted key>': <message>".
static int invalid(const source *s, scope sc, const char *key, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int invalid(const source *s, scope sc, const char *key, const char *fmt, ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return lcc_error("%s: key '%s': %s", s->what, lookup(s, sc, key).name, msg);
}

// Short description of a JSON value for "got ..." in messages.
static const char *describe(const lcc_json *v, char *buf, size_t n) {
  switch (v->type) {
    case LCC_JSON_NULL: return "null";
    case LCC_JSON_BOOL: return v->boolean ? "true" : "false";
    case LCC_JSON_NUMBER:
      if (v->is_integer) snprintf(buf, n, "%lld", (long long)v->integer);
      else if (v->number == floor(v->number) && fabs(v->number) < 1e15) snprintf(buf, n, "%.1f", v->number);
      else snprintf(buf, n, "%.17g", v->number);
      return buf;
    case LCC_JSON_STRING: snprintf(buf, n, "the string \"%.40s\"", v->str); return buf;
    case LCC_JSON_ARRAY: return "an array";
    case LCC_JSON_OBJECT: return "an object";
  }
  return "?";
}

static int wrong_type(const source *s, const item *it, const char *expected) {
  char buf[80];
  return lcc_error("%s: key '%s': expected %s (got %s)", s->what, it->name, expected, describe(it->v, buf, sizeof buf));
}

static int missing(const source *s, const item *it) { return lcc_error("%s: key '%s': missing", s->what, it->name); }

// An integer in [lo, INT_MAX]; `def` when absent unless required.
static int read_int(const source *s, scope sc, const char *key, int required, int def, int lo, int *out) {
  item it = lookup(s, sc, key);
  *out = def;
  if (!it.v) return required ? missing(s, &it) : 0;
  if (it.v->type != LCC_JSON_NUMBER || !it.v->is_integer) return wrong_type(s, &it, "an integer");
  if (it.v->integer < lo) return invalid(s, sc, key, "must be >= %d (got %lld)", lo, (long long)it.v->integer);
  if (it.v->integer > INT_MAX) return invalid(s, sc, key, "too large (got %lld)", (long long)it.v->integer);
  *out = (int)it.v->integer;
  return 0;
}

// Positive and finite once stored as a float.
static int check_positive(const source *s, const item *it) {
  if (it->v->type != LCC_JSON_NUMBER) return wrong_type(s, it, "a number");
  float f = (float)it->v->number;
  if (!(f > 0) || !isfinite(f))
    return lcc_error("%s: key '%s': must be a positive finite float (got %g)", s->what, it->name, it->v->number);
  return 0;
}

// A finite positive number; `def` when absent.
static int read_positive(const source *s, scope sc, const char *key, double def, double *out) {
  item it = lookup(s, sc, key);
  *out = def;
  if (!it.v) return 0;
  if (check_positive(s, &it)) return -1;
  *out = it.v->number;
  return 0;
}

static int read_bool(const source *s, scope sc, const char *key, int def, int *out) {
  item it = lookup(s, sc, key);
  *out = def;
  if (!it.v) return 0;
  if (it.v->type != LCC_JSON_BOOL) return wrong_type(s, &it, "true or false");
  *out = it.v->boolean;
  return 0;
}

// When present, the string must equal `want`: for settings this implementation does not let vary.
static int expect_string(const source *s, scope sc, const char *key, const char *want) {
  item it = lookup(s, sc, key);
  if (!it.v) return 0;
  if (it.v->type != LCC_JSON_STRING) return wrong_type(s, &it, "a string");
  if (strcmp(it.v->str, want)) return invalid(s, sc, key, "only \"%s\" is supported (got \"%.40s\")", want, it.v->str);
  return 0;
}

static int read_dtype(const source *s, lcc_config *c) {
  item it = lookup(s, TEXT, "torch_dtype");
  if (!it.v) it = lookup(s, TEXT, "dtype");   // transformers >= 4.56 spelling
  snprintf(c->torch_dtype, sizeof c->torch_dtype, "float32");   // what transformers loads when unset
  if (!it.v) return 0;
  if (it.v->type != LCC_JSON_STRING) return wrong_type(s, &it, "a string");
  int ident = it.v->str_len > 0 && it.v->str_len < sizeof c->torch_dtype;   // "bfloat16", "float32", ...
  for (size_t i = 0; i < it.v->str_len && ident; i++) ident = isalnum((unsigned char)it.v->str[i]) || it.v->str[i] == '_';
  if (!ident) return lcc_error("%s: key '%s': unknown dtype \"%.40s\"", s->what, it.name, it.v->str);
  memcpy(c->torch_dtype, it.v->str, it.v->str_len + 1);
  return 0;
}

// mrope_section lives in rope_scaling (transformers 4.x) or rope_parameters (5.x), which may also carry
// rope_theta. Needs head_dim.
static int read_rope(const source *s, lcc_config *c) {
  const char *names[] = {"rope_scaling", "rope_parameters"};
  item sec = {0}, theta = lookup(s, TEXT, "rope_theta");
  for (int i = 0; i < 2 && !sec.v; i++) {
    item rs = lookup(s, TEXT, names[i]);
    if (!rs.v) continue;
    if (rs.v->type != LCC_JSON_OBJECT) return wrong_type(s, &rs, "an object");
    sec.v = member(rs.v, "mrope_section");
    snprintf(sec.name, sizeof sec.name, "%.60s.mrope_section", rs.name);
    if (!theta.v && (theta.v = member(rs.v, "rope_theta"))) snprintf(theta.name, sizeof theta.name, "%.60s.rope_theta", rs.name);
  }
  if (!sec.v) {
    snprintf(sec.name, sizeof sec.name, "rope_scaling.mrope_section");
    return missing(s, &sec);
  }
  if (sec.v->type != LCC_JSON_ARRAY || sec.v->count != 3) return wrong_type(s, &sec, "an array of 3 integers");
  long long sum = 0;
  for (int i = 0; i < 3; i++) {
    const lcc_json *e = lcc_json_at(sec.v, (size_t)i);
    if (e->type != LCC_JSON_NUMBER || !e->is_integer || e->integer < 0 || e->integer > INT_MAX)
      return wrong_type(s, &sec, "an array of 3 non-negative integers");
    c->mrope_section[i] = (int)e->integer;
    sum += e->integer;
  }
  if (2 * sum != c->head_dim)
    return lcc_error("%s: key '%s': 2 * (%d + %d + %d) must equal head_dim %d (hidden_size / num_attention_heads)", s->what,
                     sec.name, c->mrope_section[0], c->mrope_section[1], c->mrope_section[2], c->head_dim);
  c->rope_theta = 1000000.0f;
  if (!theta.v) return 0;
  if (check_positive(s, &theta)) return -1;
  c->rope_theta = (float)theta.v->number;
  return 0;
}

static int read_token_ids(const source *s, lcc_config *c) {
  struct { const char *key; int def, *out; } ids[] = {
      {"bos_token_id", 151643, &c->bos_token_id},       {"eos_token_id", 151645, &c->eos_token_id},
      {"vision_start_token_id", 151652, &c->vision_start_token_id},
      {"vision_end_token_id", 151653, &c->vision_end_token_id},
      {"vision_token_id", 151654, &c->vision_token_id}, {"image_token_id", 151655, &c->image_token_id},
      {"video_token_id", 151656, &c->video_token_id},
  };
  for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
    if (read_int(s, TEXT, ids[i].key, 0, ids[i].def, 0, ids[i].out)) return -1;
    if (*ids[i].out >= c->vocab_size)
      return invalid(s, TEXT, ids[i].key, "token id %d is outside the vocabulary [0, %d)%s", *ids[i].out, c->vocab_size,
                     lookup(s, TEXT, ids[i].key).v ? "" : " (default value: set it in the config)");
  }
  return 0;
}

static int read_text(const source *s, lcc_config *c) {
  if (read_int(s, TEXT, "vocab_size", 1, 0, 1, &c->vocab_size) || read_int(s, TEXT, "hidden_size", 1, 0, 1, &c->hidden_size) ||
      read_int(s, TEXT, "intermediate_size", 1, 0, 1, &c->intermediate_size) ||
      read_int(s, TEXT, "num_hidden_layers", 1, 0, 1, &c->num_layers) ||
      read_int(s, TEXT, "num_attention_heads", 1, 0, 1, &c->num_heads) ||
      read_int(s, TEXT, "num_key_value_heads", 1, 0, 1, &c->num_kv_heads))
    return -1;
  if (c->hidden_size % c->num_heads)
    return invalid(s, TEXT, "num_attention_heads", "must divide hidden_size %d (got %d)", c->hidden_size, c->num_heads);
  if (c->num_heads % c->num_kv_heads)
    return invalid(s, TEXT, "num_key_value_heads", "must divide num_attention_heads %d (got %d)", c->num_heads, c->num_kv_heads);
  c->head_dim = c->hidden_size / c->num_heads;
  double eps;
  int sliding;
  if (expect_string(s, TEXT, "hidden_act", "silu") || read_rope(s, c) ||
      read_int(s, TEXT, "max_position_embeddings", 0, 32768, 1, &c->max_position_embeddings) ||
      read_positive(s, TEXT, "rms_norm_eps", 1e-6, &eps) ||
      read_bool(s, TEXT, "tie_word_embeddings", 0, &c->tie_word_embeddings) || read_dtype(s, c) ||
      read_bool(s, TEXT, "use_sliding_window", 0, &sliding) || read_token_ids(s, c))
    return -1;
  c->rms_norm_eps = (float)eps;
  if (sliding) return invalid(s, TEXT, "use_sliding_window", "sliding-window attention is not supported");
  return 0;
}

static int read_vision(const source *s, lcc_config *c) {
  double mlp_ratio;
  if (expect_string(s, VISION, "hidden_act", "quick_gelu") || read_int(s, VISION, "depth", 1, 0, 1, &c->vit_depth) ||
      read_int(s, VISION, "embed_dim", 1, 0, 1, &c->vit_embed_dim) ||
      read_int(s, VISION, "num_heads", 1, 0, 1, &c->vit_num_heads) ||
      read_int(s, VISION, "hidden_size", 1, 0, 1, &c->vit_out_dim) ||
      read_positive(s, VISION, "mlp_ratio", 4.0, &mlp_ratio) ||
      read_int(s, VISION, "patch_size", 0, 14, 1, &c->patch_size) ||
      read_int(s, VISION, "temporal_patch_size", 0, 2, 1, &c->temporal_patch_size) ||
      read_int(s, VISION, "spatial_merge_size", 0, 2, 1, &c->spatial_merge_size))
    return -1;
  // transformers reads in_channels; older configs spell it in_chans.
  const char *chans = lookup(s, VISION, "in_channels").v ? "in_channels" : "in_chans";
  if (read_int(s, VISION, chans, 0, 3, 1, &c->in_channels)) return -1;
  int E = c->vit_embed_dim;
  if (E % c->vit_num_heads) return invalid(s, VISION, "num_heads", "must divide embed_dim %d (got %d)", E, c->vit_num_heads);
  c->vit_head_dim = E / c->vit_num_heads;
  if (c->vit_head_dim % 4)
    return invalid(s, VISION, "num_heads", "head_dim %d / %d = %d must be a multiple of 4 (2D rotary embedding)", E,
                   c->vit_num_heads, c->vit_head_dim);
  double mlp = (double)E * mlp_ratio;   // Python's int(embed_dim * mlp_ratio) truncates
  if (mlp < 1 || mlp > INT_MAX) return invalid(s, VISION, "mlp_ratio", "embed_dim %d * mlp_ratio = %g is not a usable width", E, mlp);
  c->vit_mlp_dim = (int)mlp;
  if (c->vit_out_dim != c->hidden_size)
    return invalid(s, VISION, "hidden_size", "must equal the text hidden_size %d (got %d)", c->hidden_size, c->vit_out_dim);
  if (c->spatial_merge_size != 2)
    return invalid(s, VISION, "spatial_merge_size", "only 2 is supported (got %d)", c->spatial_merge_size);
  if (c->temporal_patch_size != 2)
    return invalid(s, VISION, "temporal_patch_size", "only 2 is supported (got %d)", c->temporal_patch_size);
  if ((double)c->in_channels * c->temporal_patch_size * c->patch_size * c->patch_size > INT_MAX / 4)   // no overflow in double
    return invalid(s, VISION, "patch_size", "a patch of %d x %d x %d x %d values is too large", c->in_channels,
                   c->temporal_patch_size, c->patch_size, c->patch_size);
  c->vit_norm_eps = 1e-6f;
  c->vit_rope_theta = 10000.0f;
  return 0;
}

static int object_or_absent(const source *s, const lcc_json *v, const char *key) {
  if (!v || v->type == LCC_JSON_OBJECT) return 0;
  item it = {.v = v};
  snprintf(it.name, sizeof it.name, "%s", key);
  return wrong_type(s, &it, "an object");
}

int lcc_config_parse(lcc_config *cfg, const char *text, size_t len, const char *what) {
  memset(cfg, 0, sizeof *cfg);
  lcc_json_doc *doc = lcc_json_parse(text, len, what);
  if (!doc) return -1;
  source s = {.what = what, .root = lcc_json_root(doc)};
  int rc;
  if (s.root->type != LCC_JSON_OBJECT) {
    rc = lcc_error("%s: expected a JSON object at the top level", what);
  } else {
    s.text_config = member(s.root, "text_config");
    s.vision = member(s.root, "vision_config");
    // text_config carries its own model_type ("qwen2_vl_text"): check only the root's
    rc = object_or_absent(&s, s.text_config, "text_config") || object_or_absent(&s, s.vision, "vision_config") ||
         expect_string(&s, ROOT, "model_type", "qwen2_vl");
    if (!rc && !s.vision) rc = lcc_error("%s: key 'vision_config': missing", what);
    if (!rc) rc = read_text(&s, cfg) || read_vision(&s, cfg);
  }
  lcc_json_free(doc);
  return rc ? -1 : 0;
}

int lcc_config_load(lcc_config *cfg, const char *path) {
  char file[4096];
  struct stat st;
  int is_dir = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
  if (snprintf(file, sizeof file, is_dir ? "%s/config.json" : "%s", path) >= (int)sizeof file)
    return lcc_error("%s: path too long", path);
  size_t len;
  char *text = lcc_read_file(file, &len);
  if (!text) return -1;
  int rc = lcc_config_parse(cfg, text, len, file);
  free(text);
  return rc;
}

// The shortest decimal that reads back as the same float; integral values keep a ".0" as Python prints them.
static const char *fmt_float(char *buf, size_t n, float x) {
  if (x == floorf(x) && fabsf(x) < 1e15f) {
    snprintf(buf, n, "%.1f", x);
    return buf;
  }
  for (int prec = 1; prec <= 9; prec++) {
    snprintf(buf, n, "%.*g", prec, x);
    if ((float)strtod(buf, NULL) == x) break;   // read back the way lcc_config_parse reads it
  }
  return buf;
}

// embed_dim * mlp_ratio must truncate back to vit_mlp_dim in Python's double arithmetic.
static void fmt_mlp_ratio(char *buf, size_t n, const lcc_config *c) {
  if (c->vit_mlp_dim % c->vit_embed_dim == 0) {
    snprintf(buf, n, "%d", c->vit_mlp_dim / c->vit_embed_dim);
    return;
  }
  double r = (double)c->vit_mlp_dim / c->vit_embed_dim;
  while ((int)((double)c->vit_embed_dim * r) < c->vit_mlp_dim) r = nextafter(r, INFINITY);
  snprintf(buf, n, "%.17g", r);
}

int lcc_config_save(const lcc_config *c, const char *path) {
  LCC_CHECK(c->vit_embed_dim > 0, "lcc_config_save: %s: config was not loaded", path);
  FILE *f = fopen(path, "w");
  if (!f) return lcc_error("%s: %s", path, strerror(errno));
  char eps[32], theta[32], ratio[32];
  fmt_float(eps, sizeof eps, c->rms_norm_eps);
  fmt_float(theta, sizeof theta, c->rope_theta);
  fmt_mlp_ratio(ratio, sizeof ratio, c);
  fprintf(f,
          "{\n"
          "  \"architectures\": [\"Qwen2VLForConditionalGeneration\"],\n"
          "  \"model_type\": \"qwen2_vl\",\n"
          "  \"attention_dropout\": 0.0,\n"
          "  \"bos_token_id\": %d,\n"
          "  \"eos_token_id\": %d,\n"
          "  \"vision_start_token_id\": %d,\n"
          "  \"vision_end_token_id\": %d,\n"
          "  \"vision_token_id\": %d,\n"
          "  \"image_token_id\": %d,\n"
          "  \"video_token_id\": %d,\n"
          "  \"hidden_act\": \"silu\",\n"
          "  \"hidden_size\": %d,\n"
          "  \"initializer_range\": 0.02,\n"
          "  \"intermediate_size\": %d,\n"
          "  \"max_position_embeddings\": %d,\n"
          "  \"max_window_layers\": %d,\n"
          "  \"num_attention_heads\": %d,\n"
          "  \"num_hidden_layers\": %d,\n"
          "  \"num_key_value_heads\": %d,\n"
          "  \"rms_norm_eps\": %s,\n"
          "  \"rope_theta\": %s,\n"
          "  \"rope_scaling\": {\"type\": \"mrope\", \"mrope_section\": [%d, %d, %d]},\n"
          "  \"sliding_window\": %d,\n"
          "  \"use_sliding_window\": false,\n"
          "  \"tie_word_embeddings\": %s,\n"
          "  \"torch_dtype\": \"%s\",\n"
          "  \"use_cache\": true,\n"
          "  \"vocab_size\": %d,\n"
          "  \"vision_config\": {\n"
          "    \"depth\": %d, \"embed_dim\": %d, \"mlp_ratio\": %s, \"num_heads\": %d,\n"
          "    \"in_chans\": %d, \"in_channels\": %d, \"hidden_size\": %d, \"hidden_act\": \"quick_gelu\",\n"
          "    \"patch_size\": %d, \"spatial_patch_size\": %d, \"spatial_merge_size\": %d, \"temporal_patch_size\": %d\n"
          "  }\n"
          "}\n",
          c->bos_token_id, c->eos_token_id, c->vision_start_token_id, c->vision_end_token_id, c->vision_token_id,
          c->image_token_id, c->video_token_id, c->hidden_size, c->intermediate_size, c->max_position_embeddings,
          c->num_layers, c->num_heads, c->num_layers, c->num_kv_heads, eps, theta, c->mrope_section[0],
          c->mrope_section[1], c->mrope_section[2], c->max_position_embeddings, c->tie_word_embeddings ? "true" : "false",
          c->torch_dtype, c->vocab_size, c->vit_depth, c->vit_embed_dim, ratio, c->vit_num_heads, c->in_channels,
          c->in_channels, c->vit_out_dim, c->patch_size, c->patch_size, c->spatial_merge_size, c->temporal_patch_size);
  int bad = ferror(f) | fflush(f) | fsync(fileno(f));
  bad |= fclose(f);
  return bad ? lcc_error("%s: write failed: %s", path, strerror(errno)) : 0;
}
