// livecc-convert on the TINY-B fixture (tests/fixtures/tiny_b, real weights):
//   1. HF export in fp32: the file list, config.json, generation_config.json, preprocessor_config.json and the
//      index against tests/fixtures/convert/*, tokenizer_config.json against the one transformers wrote for the
//      tiny tokenizer, the chat template of QWEN2VL.md section 3, vocab.json/merges.txt against tokenizer.json,
//      and the weights bit for bit;
//   2. bf16 and fp16 exports load back within rounding, with their dtype in the shards and config.json;
//   3. GGUF: the metadata and tensor layout read back with our reader; HF -> GGUF (f32) -> HF gives every file
//      byte for byte; bf16/fp16/q8_0 GGUF -> HF within rounding;
//   4. a run's checkpoints directory (state.json + latest) exports the same as the HF folder; an HF input's
//      preprocessor_config.json is carried over;
//   5. bad inputs give one clear message: unknown checkpoint version or format, a damaged checkpoint file,
//      no tokenizer, a GGUF without a tensor, truncated GGUF files, an ambiguous GGUF directory, a non-empty
//      output directory, bad options;
//   6. the GGUF reader on hand-made files: every value type, half-float edge cases, damaged headers.
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "checkpoint.h"
#include "convert.h"
#include "gguf.h"
#include "safetensors.h"
#include "testlib.h"
#include "util.h"

static const char *tmp;   // $TEST_TMPDIR/convert, emptied at the start
static const char *TINY = "tests/fixtures/tiny_b", *FIX = "tests/fixtures/convert";   // relative to the repository root
#define TMP(name) path_in(tmp, name)

// ---- small file helpers ----

static char *slurp(const char *path, size_t *len) {
  char *s = lcc_read_file(path, len);
  if (!s) fprintf(stderr, "cannot read %s: %s\n", path, lcc_last_error());
  return s;
}

static void copy_file(const char *from, const char *to) {
  size_t len;
  char *s = slurp(from, &len);
  LCC_CHECK(s, "copy %s", from);
  write_file(to, s, len);
  free(s);
}

static int same_bytes(const char *a, const char *b) {
  size_t la, lb;
  char *x = slurp(a, &la), *y = slurp(b, &lb);
  int same = x && y && la == lb && !memcmp(x, y, la);
  free(x);
  free(y);
  return same;
}

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// Sorted file names of a directory, joined by '\n'.
static void list_dir(const char *dir, char *out, size_t cap) {
  char *names[64];
  int n = 0;
  DIR *d = opendir(dir);
  LCC_CHECK(d, "opendir %s", dir);
  for (struct dirent *e; (e = readdir(d)) && n < 64;)
    if (e->d_name[0] != '.') names[n++] = lcc_strdup(e->d_name);
  closedir(d);
  qsort(names, (size_t)n, sizeof *names, cmp_name);
  out[0] = 0;
  for (int i = 0; i < n; i++) {
    strncat(out, names[i], cap - strlen(out) - 2);
    strcat(out, "\n");
    free(names[i]);
  }
}

static lcc_json_doc *parse_file(const char *path) {
  size_t len;
  char *s = slurp(path, &len);
  lcc_json_doc *d = s ? lcc_json_parse(s, len, path) : NULL;
  free(s);
  LCC_CHECK(d, "%s: %s", path, lcc_last_error());
  return d;
}

// JSON trees equal up to member order.
static int json_equal(const lcc_json *a, const lcc_json *b) {
  if (a->type != b->type) return 0;
  switch (a->type) {
    case LCC_JSON_NULL: return 1;
    case LCC_JSON_BOOL: return a->boolean == b->boolean;
    case LCC_JSON_NUMBER: return a->number == b->number;
    case LCC_JSON_STRING: return a->str_len == b->str_len && !memcmp(a->str, b->str, a->str_len);
    case LCC_JSON_ARRAY:
      if (a->count != b->count) return 0;
      for (const lcc_json *x = a->child, *y = b->child; x; x = x->next, y = y->next)
        if (!json_equal(x, y)) return 0;
      return 1;
    case LCC_JSON_OBJECT:
      if (a->count != b->count) return 0;
      for (const lcc_json *x = a->child; x; x = x->next) {
        const lcc_json *y = lcc_json_get(b, x->key);
        if (!y || !json_equal(x, y)) return 0;
      }
      return 1;
  }
  return 0;
}

static int json_files_equal(const char *a, const char *b) {
  lcc_json_doc *x = parse_file(a), *y = parse_file(b);
  int eq = x && y && json_equal(lcc_json_root(x), lcc_json_root(y));
  if (x) lcc_json_free(x);
  if (y) lcc_json_free(y);
  return eq;
}

// ---- running the converter ----

static int convert(const char *input, const char *output, const char *format, const char *dtype, const char *tokenizer) {
  lcc_convert_opts o;
  LCC_CHECK(!lcc_opts_defaults(&o, lcc_convert_opt_table, lcc_convert_opt_count), "defaults");
  snprintf(o.input, sizeof o.input, "%s", input);
  snprintf(o.output, sizeof o.output, "%s", output);
  snprintf(o.format, sizeof o.format, "%s", format);
  snprintf(o.dtype, sizeof o.dtype, "%s", dtype);
  snprintf(o.tokenizer, sizeof o.tokenizer, "%s", tokenizer ? tokenizer : "");
  printf("livecc-convert --input=%s --output=%s --format=%s --dtype=%s%s%s\n", input, output, format, dtype,
         tokenizer ? " --tokenizer=" : "", tokenizer ? tokenizer : "");
  const int rc = lcc_convert(&o, stdout);
  if (rc) printf("  -> error: %s\n", lcc_last_error());
  return rc;
}

static lcc_backend *be;

// The fp32 weights of an HF folder (or checkpoint) in a model of its config.
static int load_model(lcc_model *m, const char *dir) {
  lcc_config cfg;
  if (lcc_config_load(&cfg, dir) || lcc_model_create(m, &cfg, be, "") || lcc_model_load_hf(m, dir)) {
    fprintf(stderr, "%s: %s\n", dir, lcc_last_error());
    return -1;
  }
  return 0;
}

// Largest |x - ref| / max(|ref|, floor) over all weights; *bits_equal when every value is identical.
static double max_rel_diff(const lcc_model *a, const lcc_model *ref, double floor, int *bits_equal) {
  double worst = 0;
  *bits_equal = a->n_elems == ref->n_elems && !memcmp(a->master, ref->master, ref->n_elems * sizeof(float));
  for (size_t i = 0; i < ref->n_elems && a->n_elems == ref->n_elems; i++) {
    const double d = fabs((double)a->master[i] - ref->master[i]) / fmax(fabs(ref->master[i]), floor);
    worst = d > worst ? d : worst;
  }
  return worst;
}

static double max_abs(const lcc_model *m) {
  double a = 0;
  for (size_t i = 0; i < m->n_elems; i++) a = fmax(a, fabs(m->master[i]));
  return a;
}

// ---- 1. HF export ----

static void test_hf_fp32(const lcc_model *tiny) {
  char out[2100];
  snprintf(out, sizeof out, "%s", TMP("hf32"));
  CHECKF(convert(TINY, out, "hf", "fp32", NULL) == 0, "export");
  char got[4096], want[4096];
  list_dir(out, got, sizeof got);
  char *w = slurp("tests/fixtures/convert/hf_files.txt", NULL);
  snprintf(want, sizeof want, "%s", w ? w : "");
  free(w);
  CHECKF(!strcmp(got, want), "file list:\n%s\nexpected:\n%s", got, want);
  const char *same_json[] = {"config.json", "generation_config.json", "preprocessor_config.json", "model.safetensors.index.json"};
  for (int i = 0; i < 4; i++) {
    char a[2200], b[2200];
    snprintf(a, sizeof a, "%s/%s", out, same_json[i]);
    snprintf(b, sizeof b, "%s/%s", FIX, same_json[i]);
    CHECKF(json_files_equal(a, b), "%s differs from %s", a, b);
  }
  // values that matter, checked directly
  lcc_json_doc *d = parse_file(TMP("hf32/config.json"));
  const lcc_json *r = lcc_json_root(d);
  CHECKF(!strcmp(lcc_json_get(r, "torch_dtype")->str, "float32") && lcc_json_get(r, "vocab_size")->integer == 1024 &&
            !lcc_json_get(r, "tie_word_embeddings")->boolean && lcc_json_get(r, "image_token_id")->integer == 1012 &&
            !strcmp(lcc_json_get(lcc_json_get(r, "rope_scaling"), "type")->str, "mrope") &&
            lcc_json_get(lcc_json_get(r, "vision_config"), "embed_dim")->integer == 64,
         "config.json values");
  lcc_json_free(d);
  d = parse_file(TMP("hf32/model.safetensors.index.json"));
  const lcc_json *map = lcc_json_get(lcc_json_root(d), "weight_map");
  CHECKF(map && map->count == (size_t)tiny->n_params && !strcmp(lcc_json_get(map, "lm_head.weight")->str, "model-00001-of-00001.safetensors"),
         "index: %zu entries", map ? map->count : 0);
  CHECKF(lcc_json_get(lcc_json_get(lcc_json_root(d), "metadata"), "total_size")->integer == (int64_t)(tiny->n_elems * 4), "total_size");
  lcc_json_free(d);
  d = parse_file(TMP("hf32/preprocessor_config.json"));
  r = lcc_json_root(d);
  CHECKF(lcc_json_get(r, "min_pixels")->integer == 3136 && lcc_json_get(r, "max_pixels")->integer == 12845056 &&
            lcc_json_get(r, "rescale_factor")->number == 1.0 / 255 && lcc_json_get(r, "resample")->integer == 3 &&
            !strcmp(lcc_json_get(r, "image_processor_type")->str, "Qwen2VLImageProcessor") &&
            lcc_json_get(r, "image_mean")->child->number == 0.48145466,
         "preprocessor_config.json values");
  lcc_json_free(d);
  // tokenizer files: tokenizer_config.json as transformers wrote it for the tiny tokenizer, the spec's template
  CHECKF(json_files_equal(TMP("hf32/tokenizer_config.json"), "configs/tokenizer/tiny/tokenizer_config.json"), "tokenizer_config.json");
  CHECKF(same_bytes(TMP("hf32/tokenizer.json"), "configs/tokenizer/tiny/tokenizer.json"), "tokenizer.json copied");
  char *tmpl = slurp("tests/fixtures/convert/chat_template.jinja", NULL);
  d = parse_file(TMP("hf32/tokenizer_config.json"));
  CHECKF(tmpl && !strcmp(lcc_json_get(lcc_json_root(d), "chat_template")->str, tmpl), "tokenizer_config chat_template");
  CHECKF(!strcmp(lcc_json_get(lcc_json_root(d), "eos_token")->str, "<|im_end|>") &&
            lcc_json_get(lcc_json_root(d), "bos_token")->type == LCC_JSON_NULL &&
            lcc_json_get(lcc_json_root(d), "model_max_length")->integer == 32768,
         "tokenizer_config special tokens");
  lcc_json_free(d);
  d = parse_file(TMP("hf32/chat_template.json"));
  CHECKF(tmpl && !strcmp(lcc_json_get(lcc_json_root(d), "chat_template")->str, tmpl), "chat_template.json");
  lcc_json_free(d);
  free(tmpl);
  // vocab.json = model.vocab of tokenizer.json; merges.txt = its merges
  lcc_json_doc *tj = parse_file("configs/tokenizer/tiny/tokenizer.json");
  const lcc_json *model = lcc_json_get(lcc_json_root(tj), "model");
  d = parse_file(TMP("hf32/vocab.json"));
  CHECKF(json_equal(lcc_json_root(d), lcc_json_get(model, "vocab")), "vocab.json");
  lcc_json_free(d);
  char *merges = slurp(TMP("hf32/merges.txt"), NULL);
  const lcc_json *m0 = lcc_json_get(model, "merges")->child;
  char line[256];
  snprintf(line, sizeof line, "#version: 0.2\n%s\n", m0->str);
  CHECKF(merges && !strncmp(merges, line, strlen(line)), "merges.txt starts '%.40s'", merges ? merges : "");
  size_t lines = 0;
  for (const char *p = merges; p && *p; p++) lines += *p == '\n';
  CHECKF(lines == lcc_json_get(model, "merges")->count + 1, "merges.txt has %zu lines", lines);
  free(merges);
  lcc_json_free(tj);
  // weights bit for bit
  lcc_model m = {0};
  int eq = 0;
  if (!load_model(&m, out)) max_rel_diff(&m, tiny, 1, &eq);
  CHECKF(eq, "fp32 export weights differ from the fixture");
  if (m.params) lcc_model_destroy(&m);
}

static void test_hf_half(const lcc_model *tiny, const char *dtype, lcc_dtype st, double tol, const char *torch) {
  char out[64];
  snprintf(out, sizeof out, "hf_%s", dtype);
  CHECKF(convert(TINY, TMP(out), "hf", dtype, NULL) == 0, "export %s", dtype);
  lcc_st_file *f = lcc_st_open(path_in(TMP(out), "model-00001-of-00001.safetensors"));
  CHECKF(f && f->n == tiny->n_params, "%s shard", dtype);
  for (int i = 0; f && i < f->n; i++) CHECKF(f->tensors[i].dtype == st, "%s: tensor %s is %s", dtype, f->tensors[i].name, lcc_dtype_name(f->tensors[i].dtype));
  if (f) lcc_st_close(f);
  lcc_config cfg;
  CHECKF(!lcc_config_load(&cfg, TMP(out)) && !strcmp(cfg.torch_dtype, torch), "%s: torch_dtype %s", dtype, cfg.torch_dtype);
  lcc_model m = {0};
  int eq;
  double worst = load_model(&m, TMP(out)) ? INFINITY : max_rel_diff(&m, tiny, 1e-4, &eq);
  CHECKF(worst <= tol, "%s export: relative rounding error %.3g > %.3g", dtype, worst, tol);
  printf("  %s export: largest relative difference %.3g (bound %.3g)\n", dtype, worst, tol);
  if (m.params) lcc_model_destroy(&m);
}

// ---- 3. GGUF ----

static void check_gguf_layout(void) {
  lcc_gguf_file *t = lcc_gguf_open(TMP("gguf_bf16/model-bf16.gguf")), *v = lcc_gguf_open(TMP("gguf_bf16/mmproj-bf16.gguf"));
  CHECKF(t && v, "open bf16 GGUF pair: %s", lcc_last_error());
  if (!t || !v) return;
  const char *s;
  int64_t n;
  const lcc_gguf_kv *kv;
  CHECKF(!lcc_gguf_get_str(t, "general.architecture", &s) && !strcmp(s, "qwen2vl"), "arch");
  CHECKF(!lcc_gguf_get_int(t, "qwen2vl.block_count", &n) && n == 2, "block_count");
  CHECKF(!lcc_gguf_get_int(t, "general.file_type", &n) && n == 32, "file_type MOSTLY_BF16");
  CHECKF(!lcc_gguf_get_arr(t, "qwen2vl.rope.dimension_sections", LCC_GGUF_INT32, 4, &kv) && lcc_gguf_arr_int(kv, 0) == 4 &&
            lcc_gguf_arr_int(kv, 1) == 6 && lcc_gguf_arr_int(kv, 2) == 6 && lcc_gguf_arr_int(kv, 3) == 0, "dimension_sections");
  CHECKF(!lcc_gguf_get_arr(t, "tokenizer.ggml.tokens", LCC_GGUF_STRING, 1024, &kv) && !strcmp(kv->strs[1002], "<|im_end|>") &&
            !strcmp(kv->strs[1014], "[PAD1014]") && !strcmp(kv->strs[198], "\xC4\x8A"), "tokens");
  CHECKF(!lcc_gguf_get_arr(t, "tokenizer.ggml.token_type", LCC_GGUF_INT32, 1024, &kv) && lcc_gguf_arr_int(kv, 198) == 1 &&
            lcc_gguf_arr_int(kv, 1002) == 3 && lcc_gguf_arr_int(kv, 1023) == 5, "token types NORMAL/CONTROL/UNUSED");
  CHECKF(lcc_gguf_find(t, "tokenizer.ggml.add_bos_token") && lcc_gguf_find(t, "tokenizer.ggml.add_bos_token")->i == 0, "add_bos false");
  CHECKF(!lcc_gguf_get_int(t, "tokenizer.ggml.padding_token_id", &n) && n == 1000, "pad id");
  const lcc_gguf_tensor *x = lcc_gguf_find_tensor(t, "token_embd.weight");
  CHECKF(x && x->type == LCC_GGML_BF16 && x->ndim == 2 && x->ne[0] == 128 && x->ne[1] == 1024, "token_embd");
  x = lcc_gguf_find_tensor(t, "blk.1.attn_norm.weight");
  CHECKF(x && x->type == LCC_GGML_F32 && x->ndim == 1, "norms stay F32");
  x = lcc_gguf_find_tensor(t, "blk.0.attn_k.bias");
  CHECKF(x && x->type == LCC_GGML_F32 && x->ne[0] == 64, "biases stay F32");
  CHECKF(t->n_tensors == 27 && v->n_tensors == 40, "tensor counts %d %d", t->n_tensors, v->n_tensors);
  CHECKF(!lcc_gguf_get_str(v, "clip.projector_type", &s) && !strcmp(s, "qwen2vl_merger"), "projector type");
  x = lcc_gguf_find_tensor(v, "v.patch_embd.weight.1");
  CHECKF(x && x->type == LCC_GGML_F32 && x->ndim == 4 && x->ne[0] == 14 && x->ne[1] == 14 && x->ne[2] == 3 && x->ne[3] == 64,
         "patch embedding half: F32 [14, 14, 3, 64]");
  x = lcc_gguf_find_tensor(v, "v.blk.1.attn_v.weight");
  CHECKF(x && x->type == LCC_GGML_BF16 && x->ne[0] == 64 && x->ne[1] == 64, "qkv split");
  CHECKF(lcc_gguf_find_tensor(v, "mm.2.bias") && lcc_gguf_find_tensor(v, "v.post_ln.weight"), "merger names");
  for (int i = 0; i < t->n_tensors; i++) CHECKF(t->tensors[i].offset % 32 == 0 && t->data_start % 32 == 0, "alignment");
  lcc_gguf_close(t);
  lcc_gguf_close(v);
}

static void test_gguf(const lcc_model *tiny) {
  CHECKF(convert(TINY, TMP("gguf32"), "gguf", "fp32", NULL) == 0, "gguf fp32");
  CHECKF(convert(TMP("gguf32"), TMP("rt32"), "hf", "fp32", NULL) == 0, "gguf -> hf");
  char a[4096], b[4096];
  list_dir(TMP("hf32"), a, sizeof a);
  list_dir(TMP("rt32"), b, sizeof b);
  CHECKF(!strcmp(a, b), "round trip file lists differ:\n%s\nvs\n%s", a, b);
  int n_same = 0, n = 0;
  for (char *name = strtok(a, "\n"); name; name = strtok(NULL, "\n"), n++) {
    char x[2048], y[2048];
    snprintf(x, sizeof x, "%s/hf32/%s", tmp, name);
    snprintf(y, sizeof y, "%s/rt32/%s", tmp, name);
    const int same = same_bytes(x, y);
    CHECKF(same, "HF -> GGUF -> HF: %s differs", name);
    n_same += same;
  }
  printf("  HF -> GGUF (f32) -> HF: %d of %d files byte-identical\n", n_same, n);
  const struct { const char *dtype; double tol; } halves[] = {{"bf16", 1.0 / 256}, {"fp16", 1.0 / 2048}, {"q8_0", 1.0 / 127}};
  for (int i = 0; i < 3; i++) {
    char g[64], h[64];
    snprintf(g, sizeof g, "gguf_%s", halves[i].dtype);
    snprintf(h, sizeof h, "rt_%s", halves[i].dtype);
    CHECKF(convert(TINY, TMP(g), "gguf", halves[i].dtype, NULL) == 0, "gguf %s", halves[i].dtype);
    CHECKF(convert(TMP(g), TMP(h), "hf", "fp32", NULL) == 0, "gguf %s -> hf", halves[i].dtype);
    lcc_model m = {0};
    int eq;
    // Q8_0 rounds to a step of max|block| / 127: relative to the values near zero that is large, so its bound
    // is against the largest weight of the model.
    const double worst = load_model(&m, TMP(h)) ? INFINITY : max_rel_diff(&m, tiny, i == 2 ? max_abs(tiny) : 1e-4, &eq);
    CHECKF(worst <= halves[i].tol, "GGUF %s -> HF: difference %.3g > %.3g", halves[i].dtype, worst, halves[i].tol);
    printf("  GGUF %s -> HF: largest difference %.3g (bound %.3g)\n", halves[i].dtype, worst, halves[i].tol);
    if (m.params) lcc_model_destroy(&m);
  }
  check_gguf_layout();
  // the text model file as input: its projector is the mmproj*.gguf next to it
  CHECKF(convert(TMP("gguf32/model-fp32.gguf"), TMP("rt_file"), "hf", "fp32", NULL) == 0, "text .gguf input");
  CHECKF(same_bytes(TMP("rt_file/model-00001-of-00001.safetensors"), TMP("hf32/model-00001-of-00001.safetensors")),
         "text .gguf input: weights");
}

// An HF input's own image processor settings reach the HF export and (mean, std) the mmproj.
static void test_preprocessor(void) {
  mkdir(TMP("pp"), 0755);
  copy_file("tests/fixtures/tiny_b/config.json", TMP("pp/config.json"));
  copy_file("tests/fixtures/tiny_b/model.safetensors", TMP("pp/model.safetensors"));
  const char *pp = "{\"image_mean\": [0.5, 0.5, 0.5], \"image_std\": [0.25, 0.5, 0.75], \"min_pixels\": 3136, "
                   "\"max_pixels\": 602112}";
  write_text(TMP("pp/preprocessor_config.json"), pp);
  CHECKF(convert(TMP("pp"), TMP("pp_hf"), "hf", "fp32", NULL) == 0, "export with a preprocessor_config.json");
  lcc_json_doc *d = parse_file(TMP("pp_hf/preprocessor_config.json"));
  const lcc_json *r = d ? lcc_json_root(d) : NULL;
  CHECKF(r && lcc_json_get(r, "max_pixels")->integer == 602112 && lcc_json_at(lcc_json_get(r, "image_std"), 2)->number == 0.75 &&
            lcc_json_get(lcc_json_get(r, "size"), "longest_edge")->integer == 602112,
         "preprocessor settings carried over");
  if (d) lcc_json_free(d);
  CHECKF(convert(TMP("pp"), TMP("pp_gguf"), "gguf", "fp32", NULL) == 0, "gguf with a preprocessor_config.json");
  lcc_gguf_file *g = lcc_gguf_open(TMP("pp_gguf/mmproj-fp32.gguf"));
  const lcc_gguf_kv *kv = NULL;
  CHECKF(g && !lcc_gguf_get_arr(g, "clip.vision.image_mean", LCC_GGUF_FLOAT32, 3, &kv) && lcc_gguf_arr_float(kv, 0) == 0.5, "mmproj mean");
  lcc_gguf_close(g);
}

// ---- 4. checkpoints ----

// A checkpoint directory of the layout dist/checkpoint.c writes (HF files, an optimizer part, state.json with
// sizes and CRCs), made by hand so that its version and format can be wrong.
static void make_checkpoint(const char *dir, int version, const char *format) {
  char p[2048];
  mkdir(dir, 0755);
  snprintf(p, sizeof p, "%s/config.json", dir);
  copy_file("tests/fixtures/tiny_b/config.json", p);
  snprintf(p, sizeof p, "%s/model.safetensors", dir);
  copy_file("tests/fixtures/tiny_b/model.safetensors", p);
  snprintf(p, sizeof p, "%s/optim-00000-of-00001.safetensors", dir);
  write_text(p, "never reached: the checks of state.json refuse these checkpoints first");
  char state[4096];
  size_t k = (size_t)snprintf(state, sizeof state, "{\n  \"format\": \"%s\",\n  \"version\": %d,\n  \"step\": 3,\n  \"files\": [\n",
                              format, version);
  const char *names[] = {"config.json", "model.safetensors"};
  for (int i = 0; i < 2; i++) {
    uint64_t crc;
    int64_t bytes;
    snprintf(p, sizeof p, "%s/%s", dir, names[i]);
    LCC_CHECK(!lcc_file_crc64(p, &crc, &bytes), "crc %s", p);
    k += (size_t)snprintf(state + k, sizeof state - k, "    {\"name\": \"%s\", \"bytes\": %lld, \"crc64\": \"%016llx\"}%s\n",
                          names[i], (long long)bytes, (unsigned long long)crc, i ? "" : ",");
  }
  snprintf(state + k, sizeof state - k, "  ]\n}\n");
  snprintf(p, sizeof p, "%s/state.json", dir);
  write_text(p, state);
  uint64_t crc;   // state.sum: state.json's own size and CRC-64
  int64_t bytes;
  LCC_CHECK(!lcc_file_crc64(p, &crc, &bytes), "crc %s", p);
  snprintf(state, sizeof state, "%lld %016llx\n", (long long)bytes, (unsigned long long)crc);
  snprintf(p, sizeof p, "%s/state.sum", dir);
  write_text(p, state);
}

// A real checkpoint of the fixture as a CUDA run writes one, from the cpu-bf16 backend (one rank, ZeRO-1,
// everything trained): HF files holding the bf16 compute copy, the fp32 masters in the optimizer part.
static void save_checkpoint(const char *dir) {
  lcc_backend *be = lcc_cpu_bf16_backend(1);
  lcc_comm *comm = lcc_comm_self(be);
  lcc_config cfg;
  lcc_model m;
  lcc_dp dp;
  LCC_CHECK(lcc_config_load(&cfg, TINY) == 0 && lcc_model_create(&m, &cfg, be, "") == 0 && lcc_model_load_hf(&m, TINY) == 0 &&
                lcc_dp_init(&dp, &m, comm, 1, 16 << 20) == 0,
            "%s", lcc_last_error());
  lcc_ckpt_state st = {.step = 3, .world_size = 1, .zero = 1};
  snprintf(st.run_config, sizeof st.run_config, "model = %s\nfreeze = \nsteps = 3\n", TINY);
  LCC_CHECK(lcc_ckpt_save(dir, &m, &dp, &st, 0) == 0, "%s", lcc_last_error());
  lcc_dp_free(&dp);
  lcc_model_destroy(&m);
  comm->destroy(comm);
  be->destroy(be);
}

static void test_checkpoint(void) {
  mkdir(TMP("run"), 0755);
  save_checkpoint(TMP("run/checkpoints"));
  // the export takes the fp32 masters, not the checkpoint's bf16 HF files: byte for byte the fp32 fixture's
  CHECKF(convert(TMP("run/checkpoints"), TMP("ckpt_hf"), "hf", "fp32", NULL) == 0, "checkpoint export");
  const char *files[] = {"config.json", "model-00001-of-00001.safetensors", "model.safetensors.index.json", "tokenizer_config.json"};
  for (int i = 0; i < 4; i++)
    CHECKF(same_bytes(path_in(TMP("ckpt_hf"), files[i]), path_in(TMP("hf32"), files[i])), "checkpoint export: %s differs", files[i]);
  // GGUF from the run: general.name is the run's directory name
  CHECKF(convert(TMP("run/checkpoints"), TMP("ckpt_gguf"), "gguf", "fp16", NULL) == 0, "checkpoint -> gguf");
  lcc_gguf_file *g = lcc_gguf_open(TMP("ckpt_gguf/model-fp16.gguf"));
  const char *name = "";
  CHECKF(g && !lcc_gguf_get_str(g, "general.name", &name) && !strcmp(name, "run"), "general.name '%s'", name);
  lcc_gguf_close(g);
}

// ---- 5. bad inputs ----

static void corrupt_name(const char *path, const char *name) {   // renames one tensor in place (same length)
  size_t len;
  char *s = slurp(path, &len);
  char *hit = s ? memmem(s, len, name, strlen(name)) : NULL;
  LCC_CHECK(hit, "%s: no '%s'", path, name);
  hit[strlen(name) - 1] = 'X';
  write_file(path, s, len);
  free(s);
}

static void test_errors(void) {
  make_checkpoint(TMP("ckpt_v2"), 2, "livecc-checkpoint");
  expect_error(convert(TMP("ckpt_v2"), TMP("e1"), "hf", "fp32", NULL), "checkpoint version 2", "state.json",
               "version 2 is not supported", "reads version 1", NULL);
  make_checkpoint(TMP("ckpt_fmt"), 1, "other-checkpoint");
  expect_error(convert(TMP("ckpt_fmt"), TMP("e1"), "hf", "fp32", NULL), "other checkpoint format", "state.json",
               "not a livecc checkpoint", NULL);
  make_checkpoint(TMP("ckpt_bad"), 1, "livecc-checkpoint");
  write_text(TMP("ckpt_bad/config.json"), "{}");
  expect_error(convert(TMP("ckpt_bad"), TMP("e1"), "hf", "fp32", NULL), "damaged checkpoint file",
               "ckpt_bad/config.json", "damaged", NULL);

  expect_error(convert(TINY, TMP("e2"), "hf", "fp32", TMP("no-such-tokenizer.json")), "missing --tokenizer",
               "--tokenizer=", "no-such-tokenizer.json", "No such file", NULL);
  // a model that no tokenizer at hand fits: its image token id is not the tiny tokenizer's
  mkdir(TMP("other"), 0755);
  size_t len;
  char *cfg = slurp("tests/fixtures/tiny_b/config.json", &len);
  char *hit = strstr(cfg, "\"image_token_id\": 1012");
  LCC_CHECK(hit, "tiny_b config");
  memcpy(hit + 18, "1020", 4);
  write_file(TMP("other/config.json"), cfg, len);
  free(cfg);
  copy_file("tests/fixtures/tiny_b/model.safetensors", TMP("other/model.safetensors"));
  expect_error(convert(TMP("other"), TMP("e2"), "hf", "fp32", NULL), "no tokenizer fits", "no tokenizer for",
               "--tokenizer=PATH", NULL);
  expect_error(convert(TMP("other"), TMP("e2"), "hf", "fp32", "configs/tokenizer/tiny"), "tokenizer does not fit",
               "does not fit this model", "<|image_pad|> is token 1012", "image_token_id is 1020", NULL);

  // GGUF pairs missing a tensor (renamed in place, so the file stays well formed)
  const char *cases[][3] = {{"model-fp32.gguf", "blk.1.ffn_up.weight", "model-fp32.gguf: missing tensor 'blk.1.ffn_up.weight'"},
                            {"mmproj-fp32.gguf", "v.patch_embd.weight.1", "mmproj-fp32.gguf: missing tensor 'v.patch_embd.weight.1'"}};
  for (int i = 0; i < 2; i++) {
    mkdir(TMP("gmiss"), 0755);
    copy_file(TMP("gguf32/model-fp32.gguf"), TMP("gmiss/model-fp32.gguf"));
    copy_file(TMP("gguf32/mmproj-fp32.gguf"), TMP("gmiss/mmproj-fp32.gguf"));
    corrupt_name(path_in(TMP("gmiss"), cases[i][0]), cases[i][1]);
    expect_error(convert(TMP("gmiss"), TMP("e3"), "hf", "fp32", NULL), "GGUF without a tensor", cases[i][2], NULL);
  }
  // truncated: inside the tensor data, and inside the metadata
  const size_t cuts[] = {2000000, 5000};
  for (int i = 0; i < 2; i++) {
    mkdir(TMP("gtrunc"), 0755);
    char *s = slurp(TMP("gguf32/model-fp32.gguf"), &len);
    write_file(TMP("gtrunc/model-fp32.gguf"), s, cuts[i]);
    free(s);
    copy_file(TMP("gguf32/mmproj-fp32.gguf"), TMP("gtrunc/mmproj-fp32.gguf"));
    expect_error(convert(TMP("gtrunc"), TMP("e4"), "hf", "fp32", NULL), "truncated GGUF",
                 "gtrunc/model-fp32.gguf: truncated", NULL);
  }
  mkdir(TMP("gtwo"), 0755);
  copy_file(TMP("gguf32/model-fp32.gguf"), TMP("gtwo/model-a.gguf"));
  copy_file(TMP("gguf32/model-fp32.gguf"), TMP("gtwo/model-b.gguf"));
  copy_file(TMP("gguf32/mmproj-fp32.gguf"), TMP("gtwo/mmproj-a.gguf"));
  expect_error(convert(TMP("gtwo"), TMP("e4"), "hf", "fp32", NULL), "two text-model GGUFs",
               "expected one text-model .gguf and one mmproj*.gguf", "found 2 text-model .gguf and 1 mmproj*.gguf files", NULL);
  expect_error(convert(TINY, TMP("hf32"), "hf", "fp32", NULL), "non-empty output", "hf32 is not empty", NULL);
  expect_error(convert(TINY, TMP("e5"), "hf", "q8_0", NULL), "q8_0 HF export", "--dtype must be bf16, fp16 or fp32", NULL);
  expect_error(convert(TINY, TMP("e5"), "onnx", "fp32", NULL), "unknown format", "--format must be hf or gguf", NULL);
  expect_error(convert(TMP("nothing-here"), TMP("e5"), "hf", "fp32", NULL), "missing input", "--input=", "No such file", NULL);
  expect_error(convert(TINY, TINY, "hf", "fp32", NULL), "output = input", "--output is the input directory", NULL);
}

// ---- 6. the GGUF reader and writer on their own ----

static void test_half_floats(void) {
  const float in[] = {0.0f, -0.0f, 1.0f, -2.5f, 65504.0f, 65519.0f, 65520.0f, 1e9f, 0x1p-14f, 0x1p-24f, 0x1p-25f, 0x1.8p-25f,
                      0.1f, INFINITY, NAN, 1.00048828125f /* 1 + 2^-11: a tie, to even = 1 */};
  const float want[] = {0.0f, -0.0f, 1.0f, -2.5f, 65504.0f, 65504.0f, INFINITY, INFINITY, 0x1p-14f, 0x1p-24f, 0.0f,
                        0x1p-24f, 0.0999755859375f, INFINITY, NAN, 1.0f};
  const int n = (int)(sizeof in / sizeof in[0]);
  uint16_t h[16];
  float back[16];
  lcc_ggml_from_f32(LCC_GGML_F16, in, n, h);
  lcc_ggml_to_f32(LCC_GGML_F16, h, n, back);
  for (int i = 0; i < n; i++)
    CHECKF(isnan(want[i]) ? isnan(back[i]) : back[i] == want[i] && signbit(back[i]) == signbit(want[i]),
           "f16(%g) = %g, want %g", in[i], back[i], want[i]);
  float q[32], qb[32];
  unsigned char blk[34];
  for (int i = 0; i < 32; i++) q[i] = (float)(i - 16) / 4;   // max |x| = 4: scale 4/127
  lcc_ggml_from_f32(LCC_GGML_Q8_0, q, 32, blk);
  lcc_ggml_to_f32(LCC_GGML_Q8_0, blk, 32, qb);
  for (int i = 0; i < 32; i++) CHECKF(fabsf(qb[i] - q[i]) <= 4.0f / 254 + 1e-6f, "q8_0 %g -> %g", q[i], qb[i]);
  CHECKF((int8_t)blk[2] == -127, "q8_0 code of -4: %d", (int8_t)blk[2]);
}

static void test_reader_writer(void) {
  lcc_gguf_writer *w = lcc_gguf_writer_new();
  lcc_gguf_set_str(w, "general.architecture", "test");
  lcc_gguf_set_u32(w, "a.u32", 4000000000u);
  lcc_gguf_set_f32(w, "a.f32", 0.25f);
  lcc_gguf_set_bool(w, "a.bool", 1);
  const int32_t ints[3] = {-1, 0, 7};
  const float floats[2] = {1.5f, -3};
  const char *strs[3] = {"", "x y", "\xC4\xA0hi"};
  lcc_gguf_set_arr_i32(w, "a.ints", ints, 3);
  lcc_gguf_set_arr_f32(w, "a.floats", floats, 2);
  lcc_gguf_set_arr_str(w, "a.strs", strs, 3);
  const int64_t ne1[1] = {3}, ne2[2] = {32, 2};
  lcc_gguf_add_tensor(w, "t.f32", LCC_GGML_F32, 1, ne1);
  lcc_gguf_add_tensor(w, "t.q8", LCC_GGML_Q8_0, 2, ne2);
  const char *path = TMP("rw.gguf");
  const float f3[3] = {1, 2, 3};
  unsigned char q[68] = {0};
  int rc = lcc_gguf_write_begin(w, path) || lcc_gguf_write_tensor(w, f3, 12) || lcc_gguf_write_tensor(w, q, 68) ||
           lcc_gguf_write_end(w);
  lcc_gguf_writer_free(w);
  CHECKF(!rc, "write: %s", lcc_last_error());
  lcc_gguf_file *f = lcc_gguf_open(path);
  CHECKF(f, "read back: %s", lcc_last_error());
  if (!f) return;
  int64_t i;
  double d;
  const lcc_gguf_kv *kv;
  CHECKF(f->version == 3 && f->n_kv == 7 && f->n_tensors == 2, "counts");
  CHECKF(!lcc_gguf_get_int(f, "a.u32", &i) && i == 4000000000LL, "u32");
  CHECKF(!lcc_gguf_get_float(f, "a.f32", &d) && d == 0.25, "f32");
  CHECKF(lcc_gguf_find(f, "a.bool")->type == LCC_GGUF_BOOL && lcc_gguf_find(f, "a.bool")->i == 1, "bool");
  CHECKF(!lcc_gguf_get_arr(f, "a.ints", LCC_GGUF_INT32, 3, &kv) && lcc_gguf_arr_int(kv, 0) == -1 && lcc_gguf_arr_int(kv, 2) == 7, "ints");
  CHECKF(!lcc_gguf_get_arr(f, "a.floats", LCC_GGUF_FLOAT32, 2, &kv) && lcc_gguf_arr_float(kv, 1) == -3, "floats");
  CHECKF(!lcc_gguf_get_arr(f, "a.strs", LCC_GGUF_STRING, 3, &kv) && !strcmp(kv->strs[0], "") && !strcmp(kv->strs[1], "x y") &&
            !strcmp(kv->strs[2], "\xC4\xA0hi"), "strings");
  CHECKF(lcc_gguf_get_int(f, "a.f32", &i) && strstr(lcc_last_error(), "key 'a.f32': expected an integer (got FLOAT32)"), "type error");
  CHECKF(lcc_gguf_get_str(f, "nope", NULL) && strstr(lcc_last_error(), "key 'nope': missing"), "missing key");
  const lcc_gguf_tensor *t = lcc_gguf_find_tensor(f, "t.q8");
  CHECKF(t && t->offset == 32 && t->nbytes == 68 && t->numel == 64, "q8 tensor at the next 32-byte boundary");
  float got[3];
  lcc_ggml_to_f32(LCC_GGML_F32, lcc_gguf_data(f, lcc_gguf_find_tensor(f, "t.f32")), 3, got);
  CHECKF(got[0] == 1 && got[2] == 3, "f32 data");
  lcc_gguf_close(f);
}

typedef struct {
  unsigned char b[512];
  size_t n;
} bytes;
static void b_put(bytes *b, const void *p, size_t n) { memcpy(b->b + b->n, p, n), b->n += n; }
static void b_u32(bytes *b, uint32_t v) { b_put(b, &v, 4); }
static void b_u64(bytes *b, uint64_t v) { b_put(b, &v, 8); }
static void b_str(bytes *b, const char *s) { b_u64(b, strlen(s)), b_put(b, s, strlen(s)); }

// A header with n_kv pairs "k.<i>" = u32 and the given tensor infos (name, type, ne0, offset), data after.
static bytes hand_made(uint32_t version, const char *key2, int n_t, const char *const *names, const uint64_t *offsets) {
  bytes b = {0};
  b_put(&b, "GGUF", 4);
  b_u32(&b, version);
  b_u64(&b, (uint64_t)n_t);
  b_u64(&b, 2);
  b_str(&b, "general.alignment"), b_u32(&b, LCC_GGUF_UINT32), b_u32(&b, 32);
  b_str(&b, key2), b_u32(&b, LCC_GGUF_UINT32), b_u32(&b, 7);
  for (int i = 0; i < n_t; i++) b_str(&b, names[i]), b_u32(&b, 1), b_u64(&b, 8), b_u32(&b, LCC_GGML_F32), b_u64(&b, offsets[i]);
  while (b.n % 32) b.b[b.n++] = 0;
  b.n += 64;   // room for two 32-byte tensors
  return b;
}

static void expect_bad(bytes b, const char *frag) {
  lcc_gguf_file *f = lcc_gguf_parse(b.b, b.n, "hand-made.gguf");
  CHECKF(!f, "accepted a file that should fail with '%s'", frag);
  if (f) lcc_gguf_close(f);
  else CHECK(error_has(frag, NULL));
}

static void test_damaged_headers(void) {
  const char *two[2] = {"a", "b"};
  const uint64_t good[2] = {0, 32};
  bytes ok = hand_made(3, "k", 2, two, good);
  lcc_gguf_file *f = lcc_gguf_parse(ok.b, ok.n, "hand-made.gguf");
  CHECKF(f && f->n_tensors == 2, "the good hand-made file: %s", lcc_last_error());
  lcc_gguf_close(f);
  bytes b = ok;
  memcpy(b.b, "GGUG", 4);
  expect_bad(b, "not a GGUF file");
  expect_bad(hand_made(1, "k", 2, two, good), "GGUF version 1 is not supported");
  expect_bad(hand_made(0x03000000, "k", 2, two, good), "big-endian");
  expect_bad(hand_made(3, "general.alignment", 2, two, good), "key 'general.alignment' appears twice");
  const char *dup[2] = {"a", "a"};
  expect_bad(hand_made(3, "k", 2, dup, good), "tensor 'a' appears twice");
  const uint64_t overlap[2] = {0, 0}, unaligned[2] = {0, 16}, past[2] = {0, 64};
  expect_bad(hand_made(3, "k", 2, two, overlap), "overlap");
  expect_bad(hand_made(3, "k", 2, two, unaligned), "not a multiple of the alignment 32");
  expect_bad(hand_made(3, "k", 2, two, past), "tensor 'b' (32 bytes at data offset 64) runs past the end");
  b = ok;
  b.n = 30;
  expect_bad(b, "truncated or damaged");
  b = ok;
  memset(b.b + 16, 0xff, 8);   // KV count 2^64 - 1
  expect_bad(b, "cannot fit");
}

int main(void) {
  tmp = test_fresh_dir("convert");
  be = lcc_cpu_backend(1);
  lcc_model tiny = {0};
  LCC_CHECK(!load_model(&tiny, TINY), "tiny_b");
  test_half_floats();
  test_reader_writer();
  test_damaged_headers();
  test_hf_fp32(&tiny);
  test_hf_half(&tiny, "bf16", LCC_BF16, 1.0 / 256, "bfloat16");
  test_hf_half(&tiny, "fp16", LCC_F16, 1.0 / 2048, "float16");
  test_gguf(&tiny);
  test_checkpoint();
  test_preprocessor();
  test_errors();
  lcc_model_destroy(&tiny);
  be->destroy(be);
  return test_finish("test_convert");
}
