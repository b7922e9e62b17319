// livecc-convert's flow: find out what the input is, read its config, tokenizer and weights into a model,
// write the requested format.
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"
#include "convert.h"
#include "util.h"

#define OPT(key, type, field, def, help) {key, type, offsetof(lcc_convert_opts, field), def, help}
const lcc_opt lcc_convert_opt_table[] = {
    OPT("input", LCC_OPT_STRING, input, "", "a checkpoint, a run's checkpoints directory (its latest), an HF Qwen2-VL folder, "
        "a directory holding one text-model .gguf and one mmproj*.gguf, or a text-model .gguf"),
    OPT("output", LCC_OPT_STRING, output, "", "directory to write (created): the HF folder, or model-<dtype>.gguf + mmproj-<dtype>.gguf"),
    OPT("format", LCC_OPT_STRING, format, "hf", "hf (transformers, vLLM) or gguf (llama.cpp)"),
    OPT("dtype", LCC_OPT_STRING, dtype, "bf16", "weights: bf16, fp16 or fp32; gguf also q8_0 (norms and biases stay fp32 in GGUF)"),
    OPT("tokenizer", LCC_OPT_STRING, tokenizer, "", "tokenizer.json or its folder (default: next to the input, or the tiny "
        "tokenizer when the model is a tiny one)"),
    OPT("mmproj", LCC_OPT_STRING, mmproj, "", "with a text-model .gguf input: its projector (default: the mmproj*.gguf next to it)"),
    OPT("name", LCC_OPT_STRING, name, "", "general.name in GGUF (default: the input's directory name)"),
    OPT("shard_mb", LCC_OPT_INT, shard_mb, "5000", "HF output: safetensors shards of at most this many MB (10^6 bytes)"),
    OPT("untie", LCC_OPT_BOOL, untie, "false", "GGUF input without output.weight: write an untied model whose lm_head copies "
        "the embedding (default: tie_word_embeddings)"),
};
const int lcc_convert_opt_count = sizeof lcc_convert_opt_table / sizeof lcc_convert_opt_table[0];

enum { SRC_HF, SRC_GGUF, SRC_CHECKPOINT };   // a checkpoint is an HF folder plus fp32 master weights

typedef struct {
  int kind;
  const char *what;               // for the log: "HF folder", "checkpoint", ...
  char dir[2 * LCC_OPT_STR];      // SRC_HF, SRC_CHECKPOINT: config.json and the weights
  char text[2 * LCC_OPT_STR], mmproj[2 * LCC_OPT_STR];   // SRC_GGUF
  char near[2 * LCC_OPT_STR];     // where a tokenizer.json next to the input would be
} source;

static int is_dir(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && !strcmp(s + a - b, suffix);
}

// The one text-model .gguf and/or the one mmproj*.gguf of a directory.
static int find_gguf(const char *dir, source *s, int need_text, int need_mmproj) {
  DIR *d = opendir(dir);
  if (!d) return lcc_error("%s: %s", dir, strerror(errno));
  int n_text = 0, n_mmproj = 0;
  for (struct dirent *e; (e = readdir(d));) {
    if (!ends_with(e->d_name, ".gguf")) continue;
    if (!strncmp(e->d_name, "mmproj", 6)) n_mmproj++, lcc_pathf(s->mmproj, sizeof s->mmproj, "%s/%s", dir, e->d_name);
    else n_text++, lcc_pathf(s->text, sizeof s->text, "%s/%s", dir, e->d_name);
  }
  closedir(d);
  if ((need_text && n_text != 1) || (need_mmproj && n_mmproj != 1))
    return lcc_error("%s: expected %s; found %d text-model .gguf and %d mmproj*.gguf files", dir,
                     !need_mmproj ? "one text-model .gguf"
                     : need_text  ? "one text-model .gguf and one mmproj*.gguf (the vision projector)"
                                  : "one mmproj*.gguf (or name the projector with --mmproj)",
                     n_text, n_mmproj);
  return 0;
}

static int resolve_input(const lcc_convert_opts *o, source *s) {
  memset(s, 0, sizeof *s);
  const char *in = o->input;
  char p[2 * LCC_OPT_STR];
  if (is_file(in) && ends_with(in, ".gguf")) {
    s->kind = SRC_GGUF, s->what = "GGUF pair";
    const char *slash = strrchr(in, '/');
    lcc_pathf(s->near, sizeof s->near, "%.*s", slash ? (int)(slash - in) + (slash == in) : 1, slash ? in : ".");
    if (!o->mmproj[0] && find_gguf(s->near, s, 0, 1)) return -1;
    lcc_pathf(s->text, sizeof s->text, "%s", in);
    if (o->mmproj[0]) lcc_pathf(s->mmproj, sizeof s->mmproj, "%s", o->mmproj);
    return 0;
  }
  if (!is_dir(in)) return lcc_error("--input=%s: %s", in, access(in, F_OK) ? strerror(errno) : "not a directory or a .gguf file");
  if (lcc_ckpt_resolve(in, s->dir, sizeof s->dir)) {   // a checkpoint, or a run's checkpoints directory
    s->kind = SRC_CHECKPOINT, s->what = strcmp(s->dir, in) ? "checkpoint (the latest of a run)" : "checkpoint";
    lcc_pathf(s->near, sizeof s->near, "%s", s->dir);
    return lcc_ckpt_verify(s->dir);
  }
  lcc_pathf(s->dir, sizeof s->dir, "%s", in);
  lcc_pathf(s->near, sizeof s->near, "%s", in);
  s->kind = SRC_HF;
  lcc_pathf(p, sizeof p, "%s/config.json", in);
  if (is_file(p)) {
    s->what = "HF folder";
    return 0;
  }
  s->kind = SRC_GGUF, s->what = "GGUF pair";
  if (find_gguf(in, s, 1, !o->mmproj[0])) {
    char why[1024];
    snprintf(why, sizeof why, "%s", lcc_last_error());   // lcc_error below reuses the message buffer
    return lcc_error("--input=%s: not a checkpoint (state.json), a run's checkpoints directory (latest), an HF folder "
                     "(config.json) or a directory of GGUF files (%s)", in, why);
  }
  if (o->mmproj[0]) lcc_pathf(s->mmproj, sizeof s->mmproj, "%s", o->mmproj);
  return 0;
}

// --tokenizer, else tokenizer.json next to the input, else the tiny tokenizer when it fits the model.
static int load_tokenizer(const lcc_convert_opts *o, const source *s, const lcc_config *cfg, lcc_tok_files *tok) {
  char p[4 * LCC_OPT_STR];
  if (o->tokenizer[0]) {
    if (access(o->tokenizer, F_OK))
      return lcc_error("--tokenizer=%s: %s (give a tokenizer.json or a folder holding one)", o->tokenizer, strerror(errno));
    return lcc_tok_files_load(tok, o->tokenizer) || lcc_tok_files_check(tok, cfg) ? -1 : 0;
  }
  lcc_pathf(p, sizeof p, "%s/tokenizer.json", s->near);
  if (is_file(p)) return lcc_tok_files_load(tok, p) || lcc_tok_files_check(tok, cfg) ? -1 : 0;
  char why[1024] = "it is missing";
  if (is_file(LCC_TINY_TOKENIZER)) {
    if (!lcc_tok_files_load(tok, LCC_TINY_TOKENIZER) && !lcc_tok_files_check(tok, cfg)) return 0;
    snprintf(why, sizeof why, "%s", lcc_last_error());
  }
  lcc_tok_files_free(tok);
  return lcc_error("no tokenizer for %s: none given (--tokenizer=PATH), no tokenizer.json in %s, and the tiny tokenizer "
                   "is no fallback (%s)", o->input, s->near, why);
}

// The image processor settings of an HF input folder that has a preprocessor_config.json.
static int read_preproc(const char *dir, lcc_preproc *pp) {
  char file[2 * LCC_OPT_STR + 32];
  lcc_pathf(file, sizeof file, "%s/preprocessor_config.json", dir);
  if (!is_file(file)) return 0;
  size_t len;
  char *text = lcc_read_file(file, &len);
  lcc_json_doc *doc = text ? lcc_json_parse(text, len, file) : NULL;
  free(text);
  if (!doc) return -1;
  const lcc_json *root = lcc_json_root(doc);
  int rc = 0;
  const char *arrays[2] = {"image_mean", "image_std"}, *ints[2] = {"min_pixels", "max_pixels"};
  double *dst[2] = {pp->mean, pp->std};
  int64_t *idst[2] = {&pp->min_pixels, &pp->max_pixels};
  for (int k = 0; k < 2 && !rc; k++) {
    const lcc_json *a = lcc_json_get(root, arrays[k]), *v = lcc_json_get(root, ints[k]);
    if (a && (a->type != LCC_JSON_ARRAY || a->count != 3)) rc = lcc_error("%s: key '%s': expected 3 numbers", file, arrays[k]);
    for (size_t c = 0; a && !rc && c < 3; c++) {
      const lcc_json *e = lcc_json_at(a, c);
      if (e->type != LCC_JSON_NUMBER || !(e->number > 0)) rc = lcc_error("%s: key '%s': expected 3 positive numbers", file, arrays[k]);
      else dst[k][c] = e->number;
    }
    if (!rc && v && (v->type != LCC_JSON_NUMBER || !v->is_integer || v->integer < 1))
      rc = lcc_error("%s: key '%s': expected a positive integer", file, ints[k]);
    else if (!rc && v) *idst[k] = v->integer;
  }
  lcc_json_free(doc);
  return rc;
}

static int mkdir_p(const char *path) {
  char p[2 * LCC_OPT_STR];
  lcc_pathf(p, sizeof p, "%s", path);
  for (char *c = p + 1;; c++) {
    const char saved = *c;
    if (saved != '/' && saved) continue;
    *c = 0;
    if (mkdir(p, 0755) != 0 && errno != EEXIST) return lcc_error("%s: cannot create directory: %s", p, strerror(errno));
    if (!(*c = saved)) break;
  }
  return is_dir(path) ? 0 : lcc_error("%s: not a directory", path);
}

// general.name: the input's last path component that is not "checkpoints", "latest" or "step-*".
static void default_name(const char *input, char *out, size_t cap) {
  char p[LCC_OPT_STR];
  lcc_pathf(p, sizeof p, "%s", input);
  for (;;) {
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/') p[--n] = 0;
    char *base = strrchr(p, '/');
    base = base ? base + 1 : p;
    if (ends_with(base, ".gguf")) base[strlen(base) - 5] = 0;
    const int skip = !strcmp(base, "checkpoints") || !strcmp(base, "latest") || !strncmp(base, "step-", 5);
    if (!skip || base == p) {
      snprintf(out, cap, "%s", *base && strcmp(base, ".") ? base : "livecc");
      return;
    }
    base[-1] = 0;
  }
}

typedef struct {
  const char *name;   // --dtype spelling
  lcc_dtype st;       // safetensors dtype (HF output)
  int ggml;           // ggml type (GGUF output)
  const char *torch;  // config.json torch_dtype
} dtype_info;

static const dtype_info dtypes[] = {
    {"fp32", LCC_F32, LCC_GGML_F32, "float32"},
    {"bf16", LCC_BF16, LCC_GGML_BF16, "bfloat16"},
    {"fp16", LCC_F16, LCC_GGML_F16, "float16"},
    {"q8_0", LCC_F32, LCC_GGML_Q8_0, NULL},
};

static int check_opts(const lcc_convert_opts *o, const dtype_info **dt) {
  if (!o->input[0] || !o->output[0]) return lcc_error("--input and --output are required (--help lists the keys)");
  if (strcmp(o->format, "hf") && strcmp(o->format, "gguf")) return lcc_error("--format must be hf or gguf, got '%s'", o->format);
  *dt = NULL;
  for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
    if (!strcmp(o->dtype, dtypes[i].name)) *dt = &dtypes[i];
  if (!*dt || (!(*dt)->torch && !strcmp(o->format, "hf")))
    return lcc_error("--dtype must be bf16, fp16 or fp32%s, got '%s'", strcmp(o->format, "gguf") ? "" : " (or q8_0)", o->dtype);
  if (o->shard_mb < 1) return lcc_error("--shard_mb must be >= 1, got %d", o->shard_mb);
  char a[PATH_MAX], b[PATH_MAX];
  if (realpath(o->input, a) && realpath(o->output, b) && !strcmp(a, b))
    return lcc_error("--output is the input directory: write the conversion somewhere else");
  DIR *d = opendir(o->output);   // no stale shards of an earlier export next to the new ones
  int empty = 1;
  for (struct dirent *e; d && empty && (e = readdir(d));) empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
  if (d) closedir(d);
  if (!empty) return lcc_error("--output=%s is not empty: write into a new or empty directory", o->output);
  return 0;
}

static int write_output(const lcc_convert_opts *o, const dtype_info *dt, lcc_model *m, const lcc_tok_files *tok,
                        const lcc_preproc *pp, FILE *log) {
  if (mkdir_p(o->output)) return -1;
  if (!strcmp(o->format, "hf")) {
    snprintf(m->cfg.torch_dtype, sizeof m->cfg.torch_dtype, "%s", dt->torch);
    if (lcc_model_save_hf_dtype(m, o->output, dt->st, (size_t)o->shard_mb * 1000000) || lcc_write_hf_files(o->output, &m->cfg, tok, pp))
      return -1;
    fprintf(log, "wrote an HF Qwen2-VL folder (%s weights) to %s\n", dt->name, o->output);
    return 0;
  }
  char text[2 * LCC_OPT_STR], mmproj[2 * LCC_OPT_STR], name[LCC_OPT_STR];
  lcc_pathf(text, sizeof text, "%s/model-%s.gguf", o->output, dt->name);
  lcc_pathf(mmproj, sizeof mmproj, "%s/mmproj-%s.gguf", o->output, dt->name);
  if (o->name[0]) snprintf(name, sizeof name, "%s", o->name);
  else default_name(o->input, name, sizeof name);
  if (lcc_write_gguf(m, tok, pp, dt->ggml, name, text, mmproj)) return -1;
  fprintf(log, "wrote %s and %s (general.name \"%s\")\n", text, mmproj, name);
  return 0;
}

int lcc_convert(const lcc_convert_opts *o, FILE *log) {
  const dtype_info *dt = NULL;
  source src;
  if (check_opts(o, &dt) || resolve_input(o, &src)) return -1;
  lcc_config cfg;
  lcc_preproc pp;
  lcc_preproc_default(&pp);
  lcc_gguf_pair pair = {0};
  lcc_tok_files tok = {0};
  lcc_model m = {0};
  lcc_backend *be = lcc_cpu_backend(1);
  int rc = src.kind == SRC_GGUF ? lcc_gguf_pair_open(&pair, src.text, src.mmproj) || lcc_gguf_read_config(&pair, o->untie, &cfg, &pp)
                                : lcc_config_load(&cfg, src.dir) || read_preproc(src.dir, &pp);
  if (!rc) rc = load_tokenizer(o, &src, &cfg, &tok) || (src.kind == SRC_GGUF && lcc_gguf_check_vocab(&pair, &tok));
  // Every tensor frozen: the model holds fp32 weights only, no gradients.
  if (!rc) rc = lcc_model_create(&m, &cfg, be, cfg.tie_word_embeddings ? "visual,model" : "visual,model,lm_head");
  if (!rc) rc = src.kind == SRC_GGUF ? lcc_gguf_read_weights(&pair, &m) : lcc_model_load_hf(&m, src.dir);
  if (!rc && src.kind == SRC_CHECKPOINT) rc = lcc_ckpt_load_master(src.dir, &m);   // not the bf16 compute copy
  if (!rc) {
    if (src.kind == SRC_GGUF) fprintf(log, "read %s (%s + %s)", src.what, src.text, src.mmproj);
    else fprintf(log, "read %s %s%s", src.what, src.dir, src.kind == SRC_CHECKPOINT ? " (trained tensors: fp32 masters)" : "");
    fprintf(log, ": %zu parameters, tokenizer %s\n", m.n_elems, tok.path);
    rc = write_output(o, dt, &m, &tok, &pp, log);
  }
  if (m.params) lcc_model_destroy(&m);
  lcc_tok_files_free(&tok);
  lcc_gguf_pair_close(&pair);
  be->destroy(be);
  return rc ? -1 : 0;
}
