// manifest.json: the list of a dataset's shards with their sample counts, sizes and checksums.
//   {"format": "livecc-manifest", "version": 1, "tokenizer_hash": "<16 hex>", "total_samples": N,
//    "shards": [{"file": "shard-00000.h5", "samples": n, "bytes": b, "crc64": "<16 hex>"}, ...]}
// Loading checks every key but not the shard files: the loader opens them (and finds a missing one) lazily.
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "shard.h"
#include "util.h"

#define MANIFEST_VERSION 1

void lcc_manifest_free(lcc_manifest *m) {
  for (int i = 0; i < m->n; i++) free(m->shards[i].file);
  free(m->shards);
  free(m->dir);
  memset(m, 0, sizeof *m);
}

// Parses 1..max_digits hex digits (the whole string) into *out.
static int parse_hex(const lcc_json *v, int min_digits, int max_digits, uint64_t *out) {
  if (!v || v->type != LCC_JSON_STRING || v->str_len < (size_t)min_digits || v->str_len > (size_t)max_digits) return -1;
  uint64_t x = 0;
  for (size_t i = 0; i < v->str_len; i++) {
    const char c = v->str[i];
    const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (d < 0) return -1;
    x = x << 4 | (uint64_t)d;
  }
  *out = x;
  return 0;
}

static int get_count(const lcc_json *v, int64_t *out) {
  if (!v || v->type != LCC_JSON_NUMBER || !v->is_integer || v->integer < 0) return -1;
  *out = v->integer;
  return 0;
}

// One element of "shards"; `key` names it for messages ("shards[3]").
static int load_entry(const char *path, const lcc_json *e, const char *key, lcc_manifest_entry *out) {
  if (!e || e->type != LCC_JSON_OBJECT) return lcc_error("%s: key '%s': must be an object", path, key);
  const lcc_json *file = lcc_json_get(e, "file");
  if (!file || file->type != LCC_JSON_STRING || !file->str_len || strlen(file->str) != file->str_len || file->str[0] == '/')
    return lcc_error("%s: key '%s.file': must be a non-empty path relative to the manifest's directory", path, key);
  if (get_count(lcc_json_get(e, "samples"), &out->n_samples))
    return lcc_error("%s: key '%s.samples': must be a non-negative integer", path, key);
  if (get_count(lcc_json_get(e, "bytes"), &out->bytes))
    return lcc_error("%s: key '%s.bytes': must be a non-negative integer", path, key);
  if (parse_hex(lcc_json_get(e, "crc64"), 16, 16, &out->checksum))
    return lcc_error("%s: key '%s.crc64': must be 16 hex digits", path, key);
  out->file = lcc_strdup(file->str);
  return 0;
}

static int load_root(const char *path, const lcc_json *r, lcc_manifest *m) {
  if (!r || r->type != LCC_JSON_OBJECT) return lcc_error("%s: must be a JSON object", path);
  const lcc_json *format = lcc_json_get(r, "format"), *version = lcc_json_get(r, "version");
  const lcc_json *shards = lcc_json_get(r, "shards");
  if (!format || format->type != LCC_JSON_STRING || strcmp(format->str, "livecc-manifest"))
    return lcc_error("%s: key 'format': must be \"livecc-manifest\"", path);
  if (!version || version->type != LCC_JSON_NUMBER || !version->is_integer)
    return lcc_error("%s: key 'version': must be an integer", path);
  if (version->integer != MANIFEST_VERSION)
    return lcc_error("%s: key 'version': %lld is not supported (this build reads %d)", path, (long long)version->integer,
                     MANIFEST_VERSION);
  if (parse_hex(lcc_json_get(r, "tokenizer_hash"), 1, 16, &m->tokenizer_hash))
    return lcc_error("%s: key 'tokenizer_hash': must be 1 to 16 hex digits", path);
  if (get_count(lcc_json_get(r, "total_samples"), &m->total_samples))
    return lcc_error("%s: key 'total_samples': must be a non-negative integer", path);
  if (!shards || shards->type != LCC_JSON_ARRAY) return lcc_error("%s: key 'shards': must be an array", path);
  if (shards->count > (size_t)1 << 30) return lcc_error("%s: key 'shards': too many entries", path);
  m->shards = lcc_calloc(shards->count, sizeof(lcc_manifest_entry));
  int64_t sum = 0;
  int i = 0;
  for (const lcc_json *e = shards->child; e; e = e->next, i++) {
    char key[32];
    snprintf(key, sizeof key, "shards[%d]", i);
    m->n = i + 1;   // entry i is freed with the manifest, even half-filled
    if (load_entry(path, e, key, &m->shards[i])) return -1;
    if (m->shards[i].n_samples > INT64_MAX - sum) return lcc_error("%s: key '%s.samples': the sum overflows", path, key);
    sum += m->shards[i].n_samples;
  }
  if (sum != m->total_samples)
    return lcc_error("%s: key 'total_samples': %lld, but the shards hold %lld samples", path, (long long)m->total_samples,
                     (long long)sum);
  return 0;
}

int lcc_manifest_load(const char *path, lcc_manifest *m) {
  memset(m, 0, sizeof *m);
  struct stat st;
  char *file;
  if (!stat(path, &st) && S_ISDIR(st.st_mode)) {
    m->dir = lcc_strdup(path);
    file = lcc_malloc(strlen(path) + sizeof "/manifest.json");
    sprintf(file, "%s/manifest.json", path);
  } else {
    file = lcc_strdup(path);
    const char *slash = strrchr(path, '/');
    m->dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : lcc_strdup(".");
    LCC_CHECK(m->dir, "out of memory");
  }
  size_t len;
  char *text = lcc_read_file(file, &len);
  lcc_json_doc *doc = text ? lcc_json_parse(text, len, file) : NULL;
  int rc = doc ? load_root(file, lcc_json_root(doc), m) : -1;
  lcc_json_free(doc);
  free(text);
  free(file);
  if (rc) lcc_manifest_free(m);
  return rc;
}

// Writes s as a JSON string: quotes, backslashes and control characters escaped, other bytes (UTF-8) as is.
static void put_json_string(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    const unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
    else if (c < 0x20) fprintf(f, "\\u%04x", c);
    else fputc(c, f);
  }
  fputc('"', f);
}

// fsyncs the directory so that a rename inside it survives a crash.
static int sync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY);
  if (fd < 0) return lcc_error("%s: %s", dir, strerror(errno));
  int rc = fsync(fd) ? lcc_error("%s: fsync: %s", dir, strerror(errno)) : 0;
  close(fd);
  return rc;
}

int lcc_manifest_write(const lcc_manifest *m) {
  const size_t n = strlen(m->dir) + 64;
  char *path = lcc_malloc(n), *tmp = lcc_malloc(n);
  snprintf(path, n, "%s/manifest.json", m->dir);
  snprintf(tmp, n, "%s/.manifest.json.tmp.%ld", m->dir, (long)getpid());
  int64_t total = 0;   // written as the sum of the entries
  for (int i = 0; i < m->n; i++) total += m->shards[i].n_samples;
  int rc = 0;
  FILE *f = fopen(tmp, "w");
  if (!f) {
    rc = lcc_error("%s: %s", tmp, strerror(errno));
  } else {
    fprintf(f, "{\n  \"format\": \"livecc-manifest\",\n  \"version\": %d,\n  \"tokenizer_hash\": \"%016" PRIx64 "\",\n",
            MANIFEST_VERSION, m->tokenizer_hash);
    fprintf(f, "  \"total_samples\": %" PRId64 ",\n  \"shards\": [", total);
    for (int i = 0; i < m->n; i++) {
      const lcc_manifest_entry *e = &m->shards[i];
      fprintf(f, "%s\n    {\"file\": ", i ? "," : "");
      put_json_string(f, e->file);
      fprintf(f, ", \"samples\": %" PRId64 ", \"bytes\": %" PRId64 ", \"crc64\": \"%016" PRIx64 "\"}", e->n_samples, e->bytes,
              e->checksum);
    }
    fprintf(f, "%s]\n}\n", m->n ? "\n  " : "");
    if (fflush(f) || ferror(f) || fsync(fileno(f))) rc = lcc_error("%s: write failed: %s", tmp, strerror(errno));
    if (fclose(f) && !rc) rc = lcc_error("%s: close failed: %s", tmp, strerror(errno));
    if (!rc && rename(tmp, path)) rc = lcc_error("%s: cannot rename to %s: %s", tmp, path, strerror(errno));
    if (rc) unlink(tmp);
  }
  if (!rc) rc = sync_dir(m->dir);
  free(path), free(tmp);
  return rc;
}
