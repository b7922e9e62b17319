// The non-weight files of an HF Qwen2-VL folder, and the tokenizer.json they come from.
// JSON is written with sorted keys and 2-space indents, as transformers' save_pretrained writes it, so the
// same inputs always give the same bytes.
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "convert.h"
#include "tokenizer.h"
#include "util.h"

const char lcc_qwen2vl_chat_template[] =
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}{% for message in messages %}{% if loop.first and message['role'] != 'system' %}<|im_start|>system\n"
    "You are a helpful assistant.<|im_end|>\n"
    "{% endif %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% endif %}";

void lcc_preproc_default(lcc_preproc *pp) {
  *pp = (lcc_preproc){.mean = {0.48145466, 0.4578275, 0.40821073},   // OpenAI CLIP's, as Qwen2-VL-7B-Instruct
                      .std = {0.26862954, 0.26130258, 0.27577711},
                      .min_pixels = 56 * 56,
                      .max_pixels = 16384 * 28 * 28};
}

// ---- output helpers: a JSON string (UTF-8 kept, escapes as Python's json with ensure_ascii=False), the
// shortest decimal that reads back as the same double, files opened and closed with checks ----

static void json_put_string(FILE *f, const char *s) {
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    switch (*p) {
      case '"': fputs("\\\"", f); break;
      case '\\': fputs("\\\\", f); break;
      case '\n': fputs("\\n", f); break;
      case '\r': fputs("\\r", f); break;
      case '\t': fputs("\\t", f); break;
      case '\b': fputs("\\b", f); break;
      case '\f': fputs("\\f", f); break;
      default:
        if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
  }
  fputc('"', f);
}

static void fmt_double(char *buf, size_t n, double x) {
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(buf, n, "%.*g", prec, x);
    if (strtod(buf, NULL) == x) return;
  }
}

static FILE *out_open(const char *dir, const char *name, char *path, size_t cap) {
  lcc_pathf(path, cap, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  if (!f) lcc_error("%s: %s", path, strerror(errno));
  return f;
}

static int out_close(FILE *f, const char *path) {
  int bad = ferror(f) | fflush(f) | fsync(fileno(f));
  int err = errno;
  bad |= fclose(f);
  return bad ? lcc_error("%s: write failed: %s", path, strerror(err)) : 0;
}

// ---- tokenizer.json ----

static int token_id(const lcc_tok_files *t, const lcc_json *v, const char *what, int64_t *id) {
  if (!v || v->type != LCC_JSON_NUMBER || !v->is_integer || v->integer < 0 || v->integer >= (1 << 24))
    return lcc_error("%s: %s must have an integer id in [0, 2^24)", t->path, what);
  *id = v->integer;
  return 0;
}

static int set_token(lcc_tok_files *t, int64_t id, const char *s, int kind) {
  if (t->token[id] && strcmp(t->token[id], s))
    return lcc_error("%s: id %lld is both '%s' and '%s'", t->path, (long long)id, t->token[id], s);
  t->token[id] = s;
  t->kind[id] |= (unsigned char)kind;
  return 0;
}

static int read_vocab(lcc_tok_files *t, const lcc_json *vocab, const lcc_json *added) {
  int64_t max_id = -1, id = 0;
  for (const lcc_json *e = vocab->child; e; e = e->next) {
    if (token_id(t, e, "every model.vocab entry", &id)) return -1;
    max_id = id > max_id ? id : max_id;
  }
  for (const lcc_json *e = added->child; e; e = e->next) {
    const lcc_json *content = lcc_json_get(e, "content");
    if (!content || content->type != LCC_JSON_STRING) return lcc_error("%s: an added token has no \"content\" string", t->path);
    if (token_id(t, lcc_json_get(e, "id"), "every added token", &id)) return -1;
    max_id = id > max_id ? id : max_id;
  }
  t->size = (int)(max_id + 1);
  t->token = lcc_calloc((size_t)t->size + 1, sizeof *t->token);
  t->kind = lcc_calloc((size_t)t->size + 1, 1);
  for (const lcc_json *e = vocab->child; e; e = e->next)
    if (set_token(t, e->integer, e->key, LCC_TOK_VOCAB)) return -1;
  for (const lcc_json *e = added->child; e; e = e->next) {
    const lcc_json *special = lcc_json_get(e, "special");
    const int kind = LCC_TOK_ADDED | (special && special->type == LCC_JSON_BOOL && special->boolean ? LCC_TOK_SPECIAL : 0);
    if (set_token(t, lcc_json_get(e, "id")->integer, lcc_json_get(e, "content")->str, kind)) return -1;
  }
  return 0;
}

// Merges as "left right": tokenizer.json holds either that string or the pair [left, right].
static int read_merges(lcc_tok_files *t, const lcc_json *merges) {
  t->merges = lcc_calloc(merges->count + 1, sizeof *t->merges);
  for (const lcc_json *e = merges->child; e; e = e->next) {
    const lcc_json *a = lcc_json_at(e, 0), *b = lcc_json_at(e, 1);
    if (e->type == LCC_JSON_STRING && strchr(e->str, ' ')) {
      t->merges[t->n_merges++] = lcc_strdup(e->str);
    } else if (e->type == LCC_JSON_ARRAY && e->count == 2 && a->type == LCC_JSON_STRING && b->type == LCC_JSON_STRING) {
      if (strchr(a->str, ' ') || strchr(b->str, ' '))
        return lcc_error("%s: merge %d ('%s', '%s') contains a space: merges.txt cannot hold it", t->path, t->n_merges, a->str, b->str);
      char *s = lcc_malloc(a->str_len + b->str_len + 2);
      sprintf(s, "%s %s", a->str, b->str);
      t->merges[t->n_merges++] = s;
    } else {
      return lcc_error("%s: merge %d must be \"left right\" or [\"left\", \"right\"]", t->path, t->n_merges);
    }
  }
  return 0;
}

// The id of a token in the vocabulary or the added tokens, -1 when absent.
static int32_t tok_files_id(const lcc_tok_files *t, const char *token) {
  for (int i = 0; i < t->size; i++)
    if (t->token[i] && !strcmp(t->token[i], token)) return i;
  return -1;
}

int lcc_tok_files_load(lcc_tok_files *t, const char *path) {
  memset(t, 0, sizeof *t);
  struct stat st;
  lcc_pathf(t->path, sizeof t->path, stat(path, &st) == 0 && S_ISDIR(st.st_mode) ? "%s/tokenizer.json" : "%s", path);
  lcc_tokenizer *tk = lcc_tokenizer_load(t->path);   // checks it is a Qwen2 byte-level BPE tokenizer
  if (!tk) return -1;
  lcc_tokenizer_free(tk);
  size_t len;
  char *text = lcc_read_file(t->path, &len);
  if (!text) return -1;
  t->doc = lcc_json_parse(text, len, t->path);
  free(text);
  if (!t->doc) return -1;
  const lcc_json *root = lcc_json_root(t->doc), *model = lcc_json_get(root, "model");
  const lcc_json *vocab = lcc_json_get(model, "vocab"), *merges = lcc_json_get(model, "merges");
  t->added_tokens = lcc_json_get(root, "added_tokens");
  if (!vocab || vocab->type != LCC_JSON_OBJECT || !merges || merges->type != LCC_JSON_ARRAY || !t->added_tokens ||
      t->added_tokens->type != LCC_JSON_ARRAY)
    return lcc_error("%s: needs model.vocab (object), model.merges and added_tokens (arrays)", t->path);
  if (read_vocab(t, vocab, t->added_tokens) || read_merges(t, merges)) return -1;
  t->endoftext = tok_files_id(t, "<|endoftext|>");
  t->im_end = tok_files_id(t, "<|im_end|>");
  if (t->endoftext < 0 || t->im_end < 0) return lcc_error("%s: not a Qwen2 tokenizer: <|endoftext|> or <|im_end|> is missing", t->path);
  return 0;
}

void lcc_tok_files_free(lcc_tok_files *t) {
  for (int i = 0; i < t->n_merges; i++) free(t->merges[i]);
  free(t->merges);
  free(t->token);
  free(t->kind);
  if (t->doc) lcc_json_free(t->doc);
  memset(t, 0, sizeof *t);
}


int lcc_tok_files_check(const lcc_tok_files *t, const lcc_config *cfg) {
  if (t->size > cfg->vocab_size)
    return lcc_error("%s does not fit this model: it has %d token ids, the model's vocab_size is %d", t->path, t->size, cfg->vocab_size);
  const struct { const char *token; int id; const char *key; } ids[] = {
      {"<|vision_start|>", cfg->vision_start_token_id, "vision_start_token_id"},
      {"<|vision_end|>", cfg->vision_end_token_id, "vision_end_token_id"},
      {"<|vision_pad|>", cfg->vision_token_id, "vision_token_id"},
      {"<|image_pad|>", cfg->image_token_id, "image_token_id"},
      {"<|video_pad|>", cfg->video_token_id, "video_token_id"},
  };
  for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
    const int32_t id = tok_files_id(t, ids[i].token);
    if (id != ids[i].id)
      return lcc_error("%s does not fit this model: %s is token %d there, but the config's %s is %d", t->path, ids[i].token,
                       id, ids[i].key, ids[i].id);
  }
  if (cfg->eos_token_id >= t->size || !t->token[cfg->eos_token_id] || cfg->bos_token_id >= t->size || !t->token[cfg->bos_token_id])
    return lcc_error("%s does not fit this model: it has no token for bos_token_id %d or eos_token_id %d", t->path,
                     cfg->bos_token_id, cfg->eos_token_id);
  return 0;
}

// ---- the files ----

// generation_config.json: Qwen2-VL-7B-Instruct's sampling (QWEN2VL.md section 3: nearly greedy, top_k 1),
// eos = [the config's eos, <|endoftext|>], pad = <|endoftext|>.
static int write_generation_config(const char *dir, const lcc_config *cfg, const lcc_tok_files *tok) {
  char path[4096];
  FILE *f = out_open(dir, "generation_config.json", path, sizeof path);
  if (!f) return -1;
  fprintf(f, "{\n  \"bos_token_id\": %d,\n  \"do_sample\": true,\n  \"eos_token_id\": [\n    %d", cfg->bos_token_id, cfg->eos_token_id);
  if (tok->endoftext != cfg->eos_token_id) fprintf(f, ",\n    %d", tok->endoftext);
  fprintf(f, "\n  ],\n  \"pad_token_id\": %d,\n  \"repetition_penalty\": 1.05,\n  \"temperature\": 0.01,\n"
             "  \"top_k\": 1,\n  \"top_p\": 0.001\n}\n", tok->endoftext);
  return out_close(f, path);
}

static void put_doubles(FILE *f, const double *v, int n) {
  char buf[40];
  fputs("[\n", f);
  for (int i = 0; i < n; i++) {
    fmt_double(buf, sizeof buf, v[i]);
    fprintf(f, "    %s%s\n", buf, i + 1 < n ? "," : "");
  }
  fputs("  ]", f);
}

static int write_preprocessor_config(const char *dir, const lcc_config *cfg, const lcc_preproc *pp) {
  char path[4096], rescale[40];
  FILE *f = out_open(dir, "preprocessor_config.json", path, sizeof path);
  if (!f) return -1;
  fmt_double(rescale, sizeof rescale, 1.0 / 255.0);
  fputs("{\n  \"do_convert_rgb\": true,\n  \"do_normalize\": true,\n  \"do_rescale\": true,\n  \"do_resize\": true,\n"
        "  \"image_mean\": ", f);
  put_doubles(f, pp->mean, 3);
  fputs(",\n  \"image_processor_type\": \"Qwen2VLImageProcessor\",\n  \"image_std\": ", f);
  put_doubles(f, pp->std, 3);
  fprintf(f, ",\n  \"max_pixels\": %lld,\n  \"merge_size\": %d,\n  \"min_pixels\": %lld,\n  \"patch_size\": %d,\n"
             "  \"processor_class\": \"Qwen2VLProcessor\",\n  \"resample\": 3,\n  \"rescale_factor\": %s,\n"
             "  \"size\": {\n    \"longest_edge\": %lld,\n    \"shortest_edge\": %lld\n  },\n  \"temporal_patch_size\": %d\n}\n",
          (long long)pp->max_pixels, cfg->spatial_merge_size, (long long)pp->min_pixels, cfg->patch_size, rescale,
          (long long)pp->max_pixels, (long long)pp->min_pixels, cfg->temporal_patch_size);
  return out_close(f, path);
}

static int json_flag(const lcc_json *obj, const char *key) {
  const lcc_json *v = lcc_json_get(obj, key);
  return v && v->type == LCC_JSON_BOOL && v->boolean;
}

static int cmp_added(const void *a, const void *b) {
  const int64_t x = lcc_json_get(*(const lcc_json *const *)a, "id")->integer, y = lcc_json_get(*(const lcc_json *const *)b, "id")->integer;
  return x < y ? -1 : x > y;
}

// tokenizer_config.json for Qwen2Tokenizer(Fast): the added tokens by id, no BOS, eos <|im_end|>, pad
// <|endoftext|>, the chat template.
static int write_tokenizer_config(const char *dir, const lcc_tok_files *tok) {
  char path[4096];
  FILE *f = out_open(dir, "tokenizer_config.json", path, sizeof path);
  if (!f) return -1;
  const size_t n = tok->added_tokens->count;
  const lcc_json **added = lcc_malloc((n + 1) * sizeof *added);
  size_t k = 0;
  for (const lcc_json *e = tok->added_tokens->child; e; e = e->next) added[k++] = e;
  qsort(added, n, sizeof *added, cmp_added);
  fputs("{\n  \"add_prefix_space\": false,\n  \"added_tokens_decoder\": {", f);
  for (size_t i = 0; i < n; i++) {
    const lcc_json *e = added[i];
    fprintf(f, "%s\n    \"%lld\": {\n      \"content\": ", i ? "," : "", (long long)lcc_json_get(e, "id")->integer);
    json_put_string(f, lcc_json_get(e, "content")->str);
    fprintf(f, ",\n      \"lstrip\": %s,\n      \"normalized\": %s,\n      \"rstrip\": %s,\n      \"single_word\": %s,\n"
               "      \"special\": %s\n    }", json_flag(e, "lstrip") ? "true" : "false", json_flag(e, "normalized") ? "true" : "false",
            json_flag(e, "rstrip") ? "true" : "false", json_flag(e, "single_word") ? "true" : "false",
            json_flag(e, "special") ? "true" : "false");
  }
  free(added);
  fputs(n ? "\n  },\n" : "},\n", f);
  fputs("  \"bos_token\": null,\n  \"chat_template\": ", f);
  json_put_string(f, lcc_qwen2vl_chat_template);
  fputs(",\n  \"clean_up_tokenization_spaces\": false,\n  \"eos_token\": \"<|im_end|>\",\n  \"errors\": \"replace\",\n"
        "  \"model_max_length\": 32768,\n  \"pad_token\": \"<|endoftext|>\",\n  \"split_special_tokens\": false,\n"
        "  \"tokenizer_class\": \"Qwen2Tokenizer\",\n  \"unk_token\": null\n}\n", f);
  return out_close(f, path);
}

static int write_chat_template(const char *dir) {
  char path[4096];
  FILE *f = out_open(dir, "chat_template.json", path, sizeof path);
  if (!f) return -1;
  fputs("{\n  \"chat_template\": ", f);
  json_put_string(f, lcc_qwen2vl_chat_template);
  fputs("\n}\n", f);
  return out_close(f, path);
}

// vocab.json + merges.txt: the slow Qwen2Tokenizer's files (vLLM and older tools read them). vocab.json
// holds model.vocab only, by id; the added tokens come from tokenizer_config.json.
static int write_slow_files(const char *dir, const lcc_tok_files *tok) {
  char path[4096];
  FILE *f = out_open(dir, "vocab.json", path, sizeof path);
  if (!f) return -1;
  fputc('{', f);
  for (int i = 0, first = 1; i < tok->size; i++) {
    if (!(tok->kind[i] & LCC_TOK_VOCAB)) continue;
    if (!first) fputc(',', f);
    first = 0;
    json_put_string(f, tok->token[i]);
    fprintf(f, ":%d", i);
  }
  fputs("}\n", f);
  if (out_close(f, path)) return -1;
  if (!(f = out_open(dir, "merges.txt", path, sizeof path))) return -1;
  fputs("#version: 0.2\n", f);
  for (int i = 0; i < tok->n_merges; i++) fprintf(f, "%s\n", tok->merges[i]);
  return out_close(f, path);
}

static int copy_tokenizer(const char *dir, const lcc_tok_files *tok) {
  size_t len;
  char *text = lcc_read_file(tok->path, &len);
  if (!text) return -1;
  char path[4096];
  FILE *f = out_open(dir, "tokenizer.json", path, sizeof path);
  int rc = -1;
  if (f) {
    fwrite(text, 1, len, f);   // a short write sets the error flag that out_close reports
    rc = out_close(f, path);
  }
  free(text);
  return rc;
}

int lcc_write_hf_files(const char *dir, const lcc_config *cfg, const lcc_tok_files *tok, const lcc_preproc *pp) {
  if (write_generation_config(dir, cfg, tok) || write_preprocessor_config(dir, cfg, pp) || copy_tokenizer(dir, tok) ||
      write_tokenizer_config(dir, tok) || write_chat_template(dir) || write_slow_files(dir, tok))
    return -1;
  return 0;
}
