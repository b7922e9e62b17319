// Reading checkpoints without a communicator: what livecc-train's resume, livecc-convert, livecc-stream and
// livecc-eval share (resolve `latest`, the format version, state.sum and every file's CRC-64). No MPI.
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ckpt_read.h"
#include "util.h"

int lcc_ckpt_resolve(const char *input, char *out, size_t cap) {
  char p[4200];
  struct stat st;
  lcc_pathf(p, sizeof p, "%s/latest", input);
  char *latest = stat(p, &st) || !S_ISREG(st.st_mode) ? NULL : lcc_read_file(p, NULL);
  if (latest) {   // a run's checkpoints directory: its latest checkpoint
    latest[strcspn(latest, "\r\n")] = 0;
    lcc_pathf(out, cap, "%s/%s", input, latest);
    free(latest);
  } else {
    lcc_pathf(out, cap, "%s", input);
  }
  lcc_pathf(p, sizeof p, "%s/state.json", out);
  return stat(p, &st) == 0;
}

lcc_json_doc *lcc_ckpt_read_state(const char *path) {
  char file[4200];
  lcc_pathf(file, sizeof file, "%s/state.json", path);
  size_t len;
  char *text = lcc_read_file(file, &len);
  if (!text) return NULL;
  lcc_json_doc *doc = lcc_json_parse(text, len, file);
  free(text);
  if (!doc) return NULL;
  const lcc_json *root = lcc_json_root(doc), *fmt = lcc_json_get(root, "format"), *ver = lcc_json_get(root, "version");
  if (!fmt || fmt->type != LCC_JSON_STRING || strcmp(fmt->str, "livecc-checkpoint")) {
    lcc_error("%s: not a livecc checkpoint (format must be \"livecc-checkpoint\")", file);
  } else if (!ver || !ver->is_integer || ver->integer != LCC_CKPT_VERSION) {
    lcc_error("%s: checkpoint format version %lld is not supported (this build reads version %d)", file,
              ver && ver->is_integer ? (long long)ver->integer : -1LL, LCC_CKPT_VERSION);
  } else {
    return doc;
  }
  lcc_json_free(doc);
  return NULL;
}


static int verify_state_sum(const char *dir) {
  char path[4200];
  lcc_pathf(path, sizeof path, "%s/state.sum", dir);
  char *text = lcc_read_file(path, NULL);
  if (!text) return lcc_error("%s: missing: state.json is unchecked (damaged checkpoint, or written before state sums)", path);
  long long want_bytes = -1;
  char want_crc[32] = "";
  const int fields = sscanf(text, "%lld %31s", &want_bytes, want_crc);
  free(text);
  if (fields != 2) return lcc_error("%s: damaged (expected \"<bytes> <crc64>\")", path);
  lcc_pathf(path, sizeof path, "%s/state.json", dir);
  uint64_t crc;
  int64_t bytes;
  if (lcc_file_crc64(path, &crc, &bytes)) return -1;
  if (bytes != want_bytes || crc != strtoull(want_crc, NULL, 16))
    return lcc_error("%s: checksum mismatch (state.sum records %lld bytes with CRC-64 %s, found %lld bytes with %016" PRIx64
                     "): the file was edited or is damaged", path, want_bytes, want_crc, (long long)bytes, crc);
  return 0;
}

int lcc_ckpt_verify(const char *path) {
  lcc_json_doc *doc = lcc_ckpt_read_state(path);
  if (!doc) return -1;
  if (verify_state_sum(path)) {
    lcc_json_free(doc);
    return -1;
  }
  const lcc_json *files = lcc_json_get(lcc_json_root(doc), "files");
  int rc = files && files->type == LCC_JSON_ARRAY ? 0 : lcc_error("%s/state.json: no \"files\" list", path);
  for (const lcc_json *f = files ? files->child : NULL; f && !rc; f = f->next) {
    const lcc_json *name = lcc_json_get(f, "name"), *bytes = lcc_json_get(f, "bytes"), *crc = lcc_json_get(f, "crc64");
    if (!name || name->type != LCC_JSON_STRING || !bytes || !bytes->is_integer || !crc || crc->type != LCC_JSON_STRING) {
      rc = lcc_error("%s/state.json: a \"files\" entry needs name, bytes and crc64", path);
      break;
    }
    char file[4400];
    lcc_pathf(file, sizeof file, "%s/%s", path, name->str);
    uint64_t got;
    int64_t size;
    rc = lcc_file_crc64(file, &got, &size);
    if (!rc && (size != bytes->integer || got != strtoull(crc->str, NULL, 16)))
      rc = lcc_error("%s: checksum mismatch (expected %lld bytes with CRC-64 %s, found %lld bytes with %016" PRIx64 "): "
                     "the file is damaged", file, (long long)bytes->integer, crc->str, (long long)size, got);
  }
  lcc_json_free(doc);
  return rc;
}

int lcc_ckpt_run_value(const char *run_config, const char *key, char *out, size_t cap) {
  const size_t k = strlen(key);
  for (const char *line = run_config; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
    if (strncmp(line, key, k) || strncmp(line + k, " = ", 3)) continue;
    const char *v = line + k + 3, *end = strchr(v, '\n');
    snprintf(out, cap, "%.*s", (int)(end ? end - v : (ptrdiff_t)strlen(v)), v);
    return 0;
  }
  return -1;
}

