#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"
#include "json.h"
#include "safetensors.h"
#include "util.h"

#define HF_SHARD_BYTES ((size_t)2 << 30)

static int64_t kill_in_save = 0;
void lcc_ckpt_fault_kill_in_save(int64_t step) { kill_in_save = step; }

// ---- small file-system helpers ----

static int fsync_path(const char *path) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return lcc_error("%s: %s", path, strerror(errno));
  int rc = fsync(fd);
  close(fd);
  return rc ? lcc_error("%s: fsync failed: %s", path, strerror(errno)) : 0;
}

static void remove_tree(const char *path) {
  DIR *d = opendir(path);
  if (!d) {
    unlink(path);
    return;
  }
  struct dirent *e;
  char sub[4096];
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    lcc_pathf(sub, sizeof sub, "%s/%s", path, e->d_name);
    remove_tree(sub);
  }
  closedir(d);
  rmdir(path);
}

static int mkdirs(const char *path) {
  char p[4096];
  lcc_pathf(p, sizeof p, "%s", path);
  for (char *s = p + 1; *s; s++)
    if (*s == '/') {
      *s = 0;
      if (mkdir(p, 0755) && errno != EEXIST) return lcc_error("%s: cannot create directory: %s", p, strerror(errno));
      *s = '/';
    }
  if (mkdir(p, 0755) && errno != EEXIST) return lcc_error("%s: cannot create directory: %s", p, strerror(errno));
  return 0;
}

// Writes text to path through path.tmp, fsync and rename: readers see the old content or the new.
static int write_atomic(const char *path, const char *text) {
  char tmp[4200];
  lcc_pathf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f) return lcc_error("%s: %s", tmp, strerror(errno));
  int bad = fputs(text, f) < 0;
  bad |= fflush(f) != 0 || fsync(fileno(f)) != 0;
  bad |= fclose(f) != 0;
  if (bad) return lcc_error("%s: write failed: %s", tmp, strerror(errno));
  if (rename(tmp, path)) return lcc_error("%s: rename failed: %s", path, strerror(errno));
  return 0;
}

// Every rank learns whether any rank failed.
static int agree(lcc_comm *c, int rc) { return c->max_i64(c, rc != 0) ? -1 : 0; }

static void json_string(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
    else if (ch == '\n') fputs("\\n", f);
    else if (ch < 0x20) fprintf(f, "\\u%04x", ch);
    else fputc(ch, f);
  }
  fputc('"', f);
}

// ---- this rank's optimizer part ----

static int write_optim(const char *dir, lcc_model *m, lcc_dp *dp, char *name, size_t name_cap) {
  lcc_backend *be = m->be;
  const lcc_comm *c = dp->comm;
  const size_t n = dp->my_n, at = dp->my_begin - dp->state_begin;   // my part inside the moment buffers
  float *host = lcc_malloc((3 * n + 1) * sizeof(float));
  be->download(be, host, m->master + m->train_begin + dp->my_begin, n * sizeof(float));
  be->download(be, host + n, dp->adam_m + at, n * sizeof(float));
  be->download(be, host + 2 * n, dp->adam_v + at, n * sizeof(float));
  char begin[32], end[32], total[32];
  snprintf(begin, sizeof begin, "%zu", dp->my_begin);
  snprintf(end, sizeof end, "%zu", dp->my_begin + n);
  snprintf(total, sizeof total, "%zu", m->n_grad);
  const char *meta[] = {"format", "pt", "begin", begin, "end", end, "n_grad", total};
  lcc_st_entry e[3] = {{"master", LCC_F32, 1, {(int64_t)n}, host},
                       {"exp_avg", LCC_F32, 1, {(int64_t)n}, host + n},
                       {"exp_avg_sq", LCC_F32, 1, {(int64_t)n}, host + 2 * n}};
  snprintf(name, name_cap, "optim-%05d-of-%05d.safetensors", c->rank, c->world);
  char path[4400];
  lcc_pathf(path, sizeof path, "%s/%s", dir, name);
  int rc = lcc_st_write(path, e, 3, meta, 4, 1);
  free(host);
  return rc;
}

// Copies [want0, want1) of the trainable range out of the optimizer files of a checkpoint written by
// `world` ranks: master into the model, the moments into the dp buffers (which start at state_begin).
// Reads elements [want0, want1) of the trainable range from the optimizer parts a checkpoint of `world` ranks
// holds: master weights to master[0 ..), and the AdamW moments to exp_avg / exp_avg_sq (skipped when NULL),
// copied with be->upload (backend memory).
static int read_optim(const char *dir, int world, lcc_backend *be, float *master, float *exp_avg, float *exp_avg_sq,
                      size_t want0, size_t want1) {
  float *dst[3] = {master, exp_avg, exp_avg_sq};
  int rc = 0;
  size_t covered = 0;
  for (int r = 0; r < world && !rc; r++) {
    char path[4400];
    lcc_pathf(path, sizeof path, "%s/optim-%05d-of-%05d.safetensors", dir, r, world);
    lcc_st_file *f = lcc_st_open(path);
    if (!f) return -1;
    const char *b = lcc_st_meta(f, "begin"), *e = lcc_st_meta(f, "end");
    const lcc_st_tensor *t[3] = {lcc_st_find(f, "master"), lcc_st_find(f, "exp_avg"), lcc_st_find(f, "exp_avg_sq")};
    if (!b || !e || !t[0] || !t[1] || !t[2]) {
      rc = lcc_error("%s: not an optimizer part (needs begin/end metadata and master, exp_avg, exp_avg_sq)", path);
    } else {
      const size_t f0 = strtoull(b, NULL, 10), f1 = strtoull(e, NULL, 10);
      const size_t a = f0 > want0 ? f0 : want0, z = f1 < want1 ? f1 : want1;
      for (int k = 0; k < 3 && !rc; k++)
        if (t[k]->dtype != LCC_F32 || t[k]->numel != f1 - f0)
          rc = lcc_error("%s: tensor '%s' must be F32 [%zu]", path, t[k]->name, f1 - f0);
      for (int k = 0; k < 3 && !rc && z > a; k++)
        if (dst[k]) be->upload(be, dst[k] + (a - want0), (const float *)lcc_st_data(f, t[k]) + (a - f0), (z - a) * sizeof(float));
      if (!rc && z > a) covered += z - a;
    }
    lcc_st_close(f);
  }
  if (!rc && covered != want1 - want0)
    rc = lcc_error("%s: the optimizer parts cover %zu of the %zu elements [%zu, %zu)", dir, covered, want1 - want0, want0, want1);
  return rc;
}

// ---- save ----

typedef struct {
  char name[64];
  int64_t bytes;
  uint64_t crc;
} file_sum;

static int write_state(const char *dir, const lcc_model *m, const lcc_ckpt_state *st, const file_sum *files, int n) {
  char path[4200];
  lcc_pathf(path, sizeof path, "%s/state.json", dir);
  FILE *f = fopen(path, "w");
  if (!f) return lcc_error("%s: %s", path, strerror(errno));
  fprintf(f, "{\n  \"format\": \"livecc-checkpoint\",\n  \"version\": %d,\n  \"step\": %" PRId64 ",\n", LCC_CKPT_VERSION, st->step);
  fprintf(f, "  \"consumed\": %" PRId64 ",\n  \"world_size\": %d,\n  \"zero\": %d,\n", st->consumed, st->world_size, st->zero);
  fprintf(f, "  \"n_grad\": %zu,\n  \"layout\": \"%016" PRIx64 "\",\n  \"files\": [\n", m->n_grad, lcc_model_layout_hash(m));
  for (int i = 0; i < n; i++)
    fprintf(f, "    {\"name\": \"%s\", \"bytes\": %" PRId64 ", \"crc64\": \"%016" PRIx64 "\"}%s\n", files[i].name, files[i].bytes,
            files[i].crc, i + 1 < n ? "," : "");
  fprintf(f, "  ],\n  \"run_config\": ");
  json_string(f, st->run_config);
  fprintf(f, "\n}\n");
  int bad = ferror(f) | fflush(f) | fsync(fileno(f));
  bad |= fclose(f);
  return bad ? lcc_error("%s: write failed: %s", path, strerror(errno)) : 0;
}

// state.sum: the size and CRC-64 of state.json, so an edited or damaged state (step, consumed, run
// configuration) is refused like any other damaged file.
static int write_state_sum(const char *dir) {
  char path[4200], text[96];
  lcc_pathf(path, sizeof path, "%s/state.json", dir);
  uint64_t crc;
  int64_t bytes;
  if (lcc_file_crc64(path, &crc, &bytes)) return -1;
  snprintf(text, sizeof text, "%" PRId64 " %016" PRIx64 "\n", bytes, crc);
  lcc_pathf(path, sizeof path, "%s/state.sum", dir);
  return write_atomic(path, text);
}

// Sums of the files rank 0 wrote (HF layout), plus the optimizer parts whose sums come from their ranks.
static int list_sums(const char *dir, file_sum **out, int *n) {
  DIR *d = opendir(dir);
  if (!d) return lcc_error("%s: %s", dir, strerror(errno));
  struct dirent *e;
  int cap = 16;
  *out = lcc_malloc((size_t)cap * sizeof(file_sum));
  *n = 0;
  int rc = 0;
  while ((e = readdir(d)) && !rc) {
    if (e->d_name[0] == '.' || !strncmp(e->d_name, "optim-", 6) || !strcmp(e->d_name, "state.json") ||
        !strcmp(e->d_name, "state.sum"))
      continue;
    if (*n == cap) *out = lcc_realloc(*out, (size_t)(cap *= 2) * sizeof(file_sum));
    file_sum *s = &(*out)[(*n)++];
    lcc_pathf(s->name, sizeof s->name, "%s", e->d_name);
    char path[4400];
    lcc_pathf(path, sizeof path, "%s/%s", dir, e->d_name);
    rc = lcc_file_crc64(path, &s->crc, &s->bytes);
  }
  closedir(d);
  return rc;
}

static int cmp_desc(const void *a, const void *b) { return strcmp(*(char *const *)b, *(char *const *)a); }

// Step directories under dir, newest first.
static int list_steps(const char *dir, char ***names) {
  DIR *d = opendir(dir);
  *names = NULL;
  if (!d) return 0;
  int n = 0, cap = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (strncmp(e->d_name, "step-", 5) || strlen(e->d_name) != 13) continue;
    if (n == cap) *names = lcc_realloc(*names, (size_t)(cap = cap ? 2 * cap : 16) * sizeof(char *));
    (*names)[n++] = lcc_strdup(e->d_name);
  }
  closedir(d);
  qsort(*names, (size_t)n, sizeof(char *), cmp_desc);
  return n;
}

static void free_names(char **names, int n) {
  for (int i = 0; i < n; i++) free(names[i]);
  free(names);
}

static void prune(const char *dir, int keep_last) {
  char **names;
  int n = list_steps(dir, &names);
  for (int i = keep_last; i < n; i++) {
    char path[4200];
    lcc_pathf(path, sizeof path, "%s/%s", dir, names[i]);
    remove_tree(path);
  }
  free_names(names, n);
}

int lcc_ckpt_save(const char *dir, lcc_model *m, lcc_dp *dp, const lcc_ckpt_state *st, int keep_last) {
  lcc_comm *c = dp->comm;
  char tmp[4200], final[4200], name[64];
  lcc_pathf(tmp, sizeof tmp, "%s/.tmp-step-%08" PRId64, dir, st->step);
  lcc_pathf(final, sizeof final, "%s/step-%08" PRId64, dir, st->step);
  int rc = 0;
  if (c->rank == 0) {
    rc = mkdirs(dir);
    if (!rc) remove_tree(tmp);
    if (!rc && mkdir(tmp, 0755)) rc = lcc_error("%s: cannot create directory: %s", tmp, strerror(errno));
  }
  if (agree(c, rc)) return rc ? rc : lcc_error("checkpoint %s: rank 0 could not create it", tmp);
  if (c->rank == 0) rc = lcc_model_save_hf(m, tmp, m->be->act_bytes == 2, HF_SHARD_BYTES);
  if (!rc) rc = write_optim(tmp, m, dp, name, sizeof name);
  file_sum mine = {{0}, 0, 0};
  if (!rc) {
    char path[4400];
    lcc_pathf(path, sizeof path, "%s/%s", tmp, name);
    lcc_pathf(mine.name, sizeof mine.name, "%s", name);
    rc = lcc_file_crc64(path, &mine.crc, &mine.bytes);
  }
  if (agree(c, rc)) return rc ? rc : lcc_error("checkpoint %s: another rank failed to write its part", tmp);

  file_sum *files = NULL;
  int n = 0;
  if (c->rank == 0) rc = list_sums(tmp, &files, &n);
  if (c->rank == 0) files = lcc_realloc(files, (size_t)(n + c->world) * sizeof(file_sum));
  for (int r = 0; r < c->world; r++) {   // each rank's optimizer part: its own name, size and sum
    file_sum s = mine;
    c->bcast(c, &s, sizeof s, r);
    if (c->rank == 0) files[n++] = s;
  }
  if (kill_in_save == st->step) raise(SIGKILL);   // test hook: every file written, nothing committed
  if (c->rank == 0 && !rc) {
    rc = write_state(tmp, m, st, files, n);
    if (!rc) rc = write_state_sum(tmp);
    if (!rc) rc = fsync_path(tmp);
    char replaced[4200];   // a run that starts over (resume=never) writes the same step again: swap it in
    lcc_pathf(replaced, sizeof replaced, "%s/.old-step-%08" PRId64, dir, st->step);
    int had = !rc && access(final, F_OK) == 0;
    if (had && rename(final, replaced)) rc = lcc_error("%s: rename to %s failed: %s", final, replaced, strerror(errno));
    if (!rc && rename(tmp, final)) rc = lcc_error("%s: rename to %s failed: %s", tmp, final, strerror(errno));
    if (!rc && had) remove_tree(replaced);
    if (!rc) rc = fsync_path(dir);
    char latest[4200], text[64];
    lcc_pathf(latest, sizeof latest, "%s/latest", dir);
    snprintf(text, sizeof text, "step-%08" PRId64 "\n", st->step);
    if (!rc) rc = write_atomic(latest, text);
    if (!rc) rc = fsync_path(dir);
    if (!rc && keep_last > 0) prune(dir, keep_last);
  }
  free(files);
  if (agree(c, rc)) return rc ? rc : lcc_error("checkpoint %s: rank 0 failed to finish it", final);
  return 0;
}

// ---- find, load (the reader, lcc_ckpt_verify and friends: ckpt_read.c) ----

// Moves a refused checkpoint out of the way, so no later save of the same step overwrites it and no prune
// removes it: <dir>/refused-step-NNNNNNNN (-2, -3, ... when that exists).
static void set_aside(const char *dir, const char *name) {
  char from[4200], to[4300];
  lcc_pathf(from, sizeof from, "%s/%s", dir, name);
  for (int k = 1; k < 1000; k++) {
    if (k == 1) lcc_pathf(to, sizeof to, "%s/refused-%s", dir, name);
    else lcc_pathf(to, sizeof to, "%s/refused-%s-%d", dir, name, k);
    if (access(to, F_OK) == 0) continue;
    if (rename(from, to) == 0) fprintf(stderr, "livecc: kept the refused checkpoint as %s\n", to);
    else fprintf(stderr, "livecc: could not move the refused checkpoint %s aside: %s\n", from, strerror(errno));
    return;
  }
}

static int64_t count_refused(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return 0;
  int64_t n = 0;
  struct dirent *e;
  while ((e = readdir(d))) n += strncmp(e->d_name, "refused-step-", 13) == 0;
  closedir(d);
  return n;
}

int lcc_ckpt_find(const char *dir, lcc_comm *comm, char *path, size_t cap, int *refused) {
  char found[4200] = "";
  int64_t n_refused = 0;
  if (comm->rank == 0) {
    char latest[4200];
    lcc_pathf(latest, sizeof latest, "%s/latest", dir);
    char *text = lcc_read_file(latest, NULL);
    if (text) text[strcspn(text, "\r\n")] = 0;
    char **names;
    int n = list_steps(dir, &names);
    // candidates: the one `latest` names, then every other step directory, newest first
    for (int i = -1; i < n && !found[0]; i++) {
      const char *name = i < 0 ? text : names[i];
      if (!name || (i >= 0 && text && !strcmp(name, text))) continue;
      char cand[4200];
      lcc_pathf(cand, sizeof cand, "%s/%s", dir, name);
      if (i < 0 && access(cand, F_OK)) continue;   // `latest` names one already set aside
      if (lcc_ckpt_verify(cand) == 0) {
        lcc_pathf(found, sizeof found, "%s", cand);
        break;
      }
      fprintf(stderr, "livecc: checkpoint %s refused: %s; trying the one before\n", cand, lcc_last_error());
      set_aside(dir, name);
    }
    free(text);
    free_names(names, n);
    n_refused = count_refused(dir);
  }
  comm->bcast(comm, found, sizeof found, 0);
  comm->bcast(comm, &n_refused, sizeof n_refused, 0);
  lcc_pathf(path, cap, "%s", found);
  if (refused) *refused = (int)n_refused;
  return found[0] ? 1 : 0;
}

static int64_t get_int(const lcc_json *root, const char *key, int *rc, const char *path) {
  const lcc_json *v = lcc_json_get(root, key);
  if (!v || !v->is_integer) {
    if (!*rc) *rc = lcc_error("%s/state.json: key '%s' must be an integer", path, key);
    return 0;
  }
  return v->integer;
}

int lcc_ckpt_load(const char *path, lcc_model *m, lcc_dp *dp, lcc_ckpt_state *st) {
  lcc_json_doc *doc = lcc_ckpt_read_state(path);
  if (!doc) return -1;
  const lcc_json *root = lcc_json_root(doc), *layout = lcc_json_get(root, "layout"), *cfg = lcc_json_get(root, "run_config");
  int rc = 0;
  memset(st, 0, sizeof *st);
  st->step = get_int(root, "step", &rc, path);
  st->consumed = get_int(root, "consumed", &rc, path);
  st->world_size = (int)get_int(root, "world_size", &rc, path);
  st->zero = (int)get_int(root, "zero", &rc, path);
  const int64_t n_grad = get_int(root, "n_grad", &rc, path);
  if (!rc && (!layout || layout->type != LCC_JSON_STRING || strtoull(layout->str, NULL, 16) != lcc_model_layout_hash(m) ||
              (size_t)n_grad != m->n_grad))
    rc = lcc_error("%s: written for another parameter layout (model config or freeze list differ from this run)", path);
  if (!rc && cfg && cfg->type == LCC_JSON_STRING) snprintf(st->run_config, sizeof st->run_config, "%s", cfg->str);
  lcc_json_free(doc);
  if (!rc) rc = lcc_model_load_hf(m, path);
  if (!rc)
    rc = read_optim(path, st->world_size, m->be, m->master + m->train_begin + dp->state_begin, dp->adam_m, dp->adam_v,
                    dp->state_begin, dp->state_begin + dp->state_n);
  if (!rc && dp->stage)   // each rank read its own part's master weights; share them
    dp->comm->allgather(dp->comm, (char *)m->weights + m->train_begin * m->be->act_bytes, dp->counts, m->be->act_bytes);
  return agree(dp->comm, rc) ? (rc ? rc : lcc_error("%s: another rank failed to load its part", path)) : 0;
}

int lcc_ckpt_load_master(const char *path, lcc_model *m) {
  lcc_json_doc *doc = lcc_ckpt_read_state(path);
  if (!doc) return -1;
  const lcc_json *root = lcc_json_root(doc), *layout = lcc_json_get(root, "layout"), *cfg = lcc_json_get(root, "run_config");
  int rc = 0;
  const int world = (int)get_int(root, "world_size", &rc, path);
  const int64_t n_grad = get_int(root, "n_grad", &rc, path);
  char freeze[4096];
  if (!rc && (!cfg || cfg->type != LCC_JSON_STRING || lcc_ckpt_run_value(cfg->str, "freeze", freeze, sizeof freeze)))
    rc = lcc_error("%s/state.json: no run configuration with its freeze list", path);
  lcc_model run = {0};   // the run's layout: which tensors it trained, where their masters sit
  if (!rc) rc = lcc_model_create(&run, &m->cfg, NULL, freeze);
  if (!rc && (!layout || layout->type != LCC_JSON_STRING || strtoull(layout->str, NULL, 16) != lcc_model_layout_hash(&run) ||
              (size_t)n_grad != run.n_grad))
    rc = lcc_error("%s: its parameter layout is not this model config's with freeze '%s'", path, freeze);
  lcc_json_free(doc);
  lcc_backend *host = lcc_cpu_backend(0);   // the parts are read into host memory, then each tensor uploaded
  float *master = rc ? NULL : lcc_malloc((run.n_grad ? run.n_grad : 1) * sizeof(float));
  if (!rc) rc = read_optim(path, world, host, master, NULL, NULL, 0, run.n_grad);
  for (int i = 0; i < run.n_params && !rc; i++) {
    const lcc_param *p = &run.params[i];
    if (p->grad_offset < 0) continue;   // frozen in the run: the HF files hold it as loaded
    const int j = lcc_model_find(m, p->name);
    if (j < 0 || m->params[j].numel != p->numel) {
      rc = lcc_error("%s: trained tensor '%s' does not fit the model", path, p->name);
      break;
    }
    m->be->upload(m->be, m->master + m->params[j].offset, master + p->grad_offset, p->numel * sizeof(float));
  }
  if (!rc) lcc_model_sync_weights(m);
  free(master);
  host->destroy(host);
  if (run.params) lcc_model_destroy(&run);
  return rc;
}

void lcc_ckpt_clean(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  char path[4200];
  while ((e = readdir(d)))
    if (!strncmp(e->d_name, ".tmp-step-", 10) || !strncmp(e->d_name, ".old-step-", 10)) {
      lcc_pathf(path, sizeof path, "%s/%s", dir, e->d_name);
      remove_tree(path);
    }
  closedir(d);
}
