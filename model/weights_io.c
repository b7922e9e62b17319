// Model weights in and out of Hugging Face safetensors (single file or sharded with an index).
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "half.h"
#include "json.h"
#include "model.h"
#include "safetensors.h"
#include "util.h"

// transformers >= 4.52 may save model.language_model.* and model.visual.*; map both to the legacy names.
static void legacy_name(const char *in, char *out, size_t n) {
  if (strncmp(in, "model.language_model.", 21) == 0) snprintf(out, n, "model.%s", in + 21);
  else if (strncmp(in, "model.visual.", 13) == 0) snprintf(out, n, "visual.%s", in + 13);
  else snprintf(out, n, "%s", in);
}

static int is_dir(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int exists(const char *p) { return access(p, F_OK) == 0; }

static int ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && strcmp(s + a - b, suffix) == 0;
}

typedef struct {
  char **paths;
  int n;
} file_list;

static void file_list_add(file_list *fl, const char *path) {
  for (int i = 0; i < fl->n; i++)
    if (strcmp(fl->paths[i], path) == 0) return;
  fl->paths = lcc_realloc(fl->paths, (size_t)(fl->n + 1) * sizeof(char *));
  fl->paths[fl->n++] = lcc_strdup(path);
}

static void file_list_free(file_list *fl) {
  for (int i = 0; i < fl->n; i++) free(fl->paths[i]);
  free(fl->paths);
}

// The shard files named by model.safetensors.index.json, resolved next to it.
static int read_index(const char *index_path, file_list *fl) {
  size_t len;
  char *text = lcc_read_file(index_path, &len);
  if (!text) return -1;
  lcc_json_doc *doc = lcc_json_parse(text, len, index_path);
  free(text);
  if (!doc) return -1;
  const lcc_json *map = lcc_json_get(lcc_json_root(doc), "weight_map");
  int rc = 0;
  if (!map || map->type != LCC_JSON_OBJECT) rc = lcc_error("%s: no \"weight_map\" object", index_path);
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", index_path);
  char *slash = strrchr(dir, '/');
  if (slash) slash[1] = 0;
  else dir[0] = 0;
  for (const lcc_json *e = map && !rc ? map->child : NULL; e; e = e->next) {
    if (e->type != LCC_JSON_STRING || strchr(e->str, '/')) {
      rc = lcc_error("%s: weight_map entry '%s' must be a file name", index_path, e->key);
      break;
    }
    char path[8192];
    snprintf(path, sizeof path, "%s%s", dir, e->str);
    file_list_add(fl, path);
  }
  lcc_json_free(doc);
  if (!rc && fl->n == 0) rc = lcc_error("%s: weight_map is empty", index_path);
  return rc;
}

static int list_weight_files(const char *path, file_list *fl) {
  char p[4096];
  if (is_dir(path)) {
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", path);
    if (exists(p)) return read_index(p, fl);
    snprintf(p, sizeof p, "%s/model.safetensors", path);
    if (exists(p)) {
      file_list_add(fl, p);
      return 0;
    }
    return lcc_error("%s: no model.safetensors or model.safetensors.index.json in this directory", path);
  }
  if (!exists(path)) return lcc_error("%s: %s", path, strerror(ENOENT));
  if (ends_with(path, ".json")) return read_index(path, fl);
  file_list_add(fl, path);
  return 0;
}

static int shape_matches(const lcc_param *p, const lcc_st_tensor *t) {
  if (p->ndim != t->ndim) return 0;
  for (int d = 0; d < p->ndim; d++)
    if (p->shape[d] != t->shape[d]) return 0;
  return 1;
}

static void shape_str(char *out, size_t n, int ndim, const int64_t *shape) {
  size_t k = (size_t)snprintf(out, n, "[");
  for (int d = 0; d < ndim && k < n; d++) k += (size_t)snprintf(out + k, n - k, d ? ", %lld" : "%lld", (long long)shape[d]);
  if (k < n) snprintf(out + k, n - k, "]");
}

static int load_file(lcc_model *m, const char *path, char *loaded) {
  lcc_st_file *f = lcc_st_open(path);
  if (!f) return -1;
  int rc = 0;
  for (int k = 0; k < f->n && !rc; k++) {
    const lcc_st_tensor *t = &f->tensors[k];
    char name[256];
    legacy_name(t->name, name, sizeof name);
    int i = lcc_model_find(m, name);
    if (i < 0) {
      if (m->cfg.tie_word_embeddings && strcmp(name, "lm_head.weight") == 0) continue;   // tied copy
      rc = lcc_error("%s: unexpected tensor '%s': not a parameter of this Qwen2-VL config", path, t->name);
      break;
    }
    const lcc_param *p = &m->params[i];
    if (loaded[i]) {
      rc = lcc_error("%s: tensor '%s' is stored twice", path, t->name);
      break;
    }
    if (!shape_matches(p, t)) {
      char want[128], got[128];
      shape_str(want, sizeof want, p->ndim, p->shape);
      shape_str(got, sizeof got, t->ndim, t->shape);
      rc = lcc_error("%s: tensor '%s' has shape %s but the config needs %s", path, t->name, got, want);
      break;
    }
    float *buf = lcc_malloc(p->numel * sizeof(float));
    if (lcc_st_read_f32(f, t, buf) == 0) {
      m->be->upload(m->be, m->master + p->offset, buf, p->numel * sizeof(float));
      loaded[i] = 1;
    } else {
      rc = -1;
    }
    free(buf);
  }
  lcc_st_close(f);
  return rc;
}

int lcc_model_load_hf(lcc_model *m, const char *path) {
  file_list fl = {0};
  int rc = list_weight_files(path, &fl);
  char *loaded = lcc_calloc((size_t)m->n_params, 1);
  for (int i = 0; i < fl.n && !rc; i++) rc = load_file(m, fl.paths[i], loaded);
  if (!rc) {
    int missing = 0, first = -1;
    for (int i = 0; i < m->n_params; i++)
      if (!loaded[i]) missing++, first = first < 0 ? i : first;
    if (missing)
      rc = lcc_error("%s: missing tensor '%s'%s (%d missing in all)", path, m->params[first].name,
                     missing > 1 ? " and others" : "", missing);
  }
  free(loaded);
  file_list_free(&fl);
  if (!rc) lcc_model_sync_weights(m);
  return rc;
}

// ---- save ----

static int write_index(const lcc_model *m, const char *dir, const int *shard_of, int n_shards, size_t total) {
  char path[4096];
  snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
  FILE *f = fopen(path, "w");
  if (!f) return lcc_error("%s: %s", path, strerror(errno));
  fprintf(f, "{\n  \"metadata\": {\"total_size\": %zu},\n  \"weight_map\": {\n", total);
  for (int i = 0; i < m->n_params; i++)
    fprintf(f, "    \"%s\": \"model-%05d-of-%05d.safetensors\"%s\n", m->params[i].name, shard_of[i] + 1, n_shards,
            i + 1 < m->n_params ? "," : "");
  fprintf(f, "  }\n}\n");
  int bad = ferror(f) | fflush(f) | fsync(fileno(f));
  bad |= fclose(f);
  return bad ? lcc_error("%s: write failed: %s", path, strerror(errno)) : 0;
}

int lcc_model_save_hf(const lcc_model *m, const char *dir, int bf16, size_t shard_bytes) {
  return lcc_model_save_hf_dtype(m, dir, bf16 ? LCC_BF16 : LCC_F32, shard_bytes);
}

// One tensor's current values as fp32 on the host. Where the compute copy is not the fp32 master (the CUDA
// backend's bf16 weights), it is the one to read: with ZeRO each rank's master holds only its own part fresh,
// while the all-gathered compute copy is whole on every rank.
static void download_weights(const lcc_model *m, const lcc_param *p, float *host) {
  lcc_backend *be = m->be;
  if (m->weights == (void *)m->master) {
    be->download(be, host, m->master + p->offset, p->numel * sizeof(float));
    return;
  }
  float *stage = be->alloc(be, p->numel * sizeof(float));
  be->from_act(be, stage, (const char *)m->weights + p->offset * be->act_bytes, p->numel);
  be->download(be, host, stage, p->numel * sizeof(float));
  be->free(be, stage);
}

// n fp32 values narrowed to 16-bit dtype (bf16 or fp16) in place: value i moves to bytes [2i, 2i + 2), which
// only overwrites values already read.
static void narrow_in_place(float *x, size_t n, lcc_dtype dtype) {
  for (size_t i = 0; i < n; i++) {
    float v;
    memcpy(&v, (char *)x + 4 * i, 4);
    const uint16_t h = dtype == LCC_BF16 ? lcc_f32_to_bf16(v) : lcc_f32_to_f16(v);
    memcpy((char *)x + 2 * i, &h, 2);
  }
}

int lcc_model_save_hf_dtype(const lcc_model *m, const char *dir, lcc_dtype dtype, size_t shard_bytes) {
  LCC_CHECK(dtype == LCC_F32 || dtype == LCC_BF16 || dtype == LCC_F16, "lcc_model_save_hf: dtype %s", lcc_dtype_name(dtype));
  if (mkdir(dir, 0755) != 0 && errno != EEXIST) return lcc_error("%s: cannot create directory: %s", dir, strerror(errno));
  size_t esize = lcc_dtype_size(dtype), total = 0, in_shard = 0;
  int *shard_of = lcc_malloc((size_t)m->n_params * sizeof(int)), n_shards = 0;
  for (int i = 0; i < m->n_params; i++) {   // greedy shards in table order, each at most shard_bytes
    size_t bytes = m->params[i].numel * esize;
    if (n_shards == 0 || (in_shard > 0 && in_shard + bytes > shard_bytes)) n_shards++, in_shard = 0;
    shard_of[i] = n_shards - 1;
    in_shard += bytes;
    total += bytes;
  }
  const char *meta[] = {"format", "pt"};
  int rc = 0;
  for (int s = 0; s < n_shards && !rc; s++) {
    int n = 0;
    lcc_st_entry *entries = lcc_calloc((size_t)m->n_params, sizeof *entries);
    void **bufs = lcc_calloc((size_t)m->n_params, sizeof(void *));
    for (int i = 0; i < m->n_params; i++) {
      if (shard_of[i] != s) continue;
      const lcc_param *p = &m->params[i];
      float *host = lcc_malloc(p->numel * sizeof(float));
      download_weights(m, p, host);
      if (dtype != LCC_F32) narrow_in_place(host, p->numel, dtype);
      bufs[n] = host;
      entries[n] = (lcc_st_entry){.name = p->name, .dtype = dtype, .ndim = p->ndim, .data = host};
      memcpy(entries[n].shape, p->shape, sizeof(int64_t) * (size_t)p->ndim);
      n++;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/model-%05d-of-%05d.safetensors", dir, s + 1, n_shards);
    rc = lcc_st_write(path, entries, n, meta, 1, 1);
    for (int k = 0; k < n; k++) free(bufs[k]);
    free(bufs);
    free(entries);
  }
  if (!rc) rc = write_index(m, dir, shard_of, n_shards, total);
  if (!rc) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    rc = lcc_config_save(&m->cfg, path);
  }
  free(shard_of);
  return rc;
}
