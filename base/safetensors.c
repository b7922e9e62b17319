// safetensors reader (mmap + full header validation) and writer.
// Messages name the file (f->path, or "safetensors header" when a caller parses a header without one)
// and, when the problem is in one entry, the tensor.
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "half.h"
#include "json.h"
#include "util.h"

#define MAX_HEADER (100u * 1000 * 1000)   // the limit of the reference (Rust) implementation

static const struct { const char *name; size_t size; } dtypes[] = {
    [LCC_F32] = {"F32", 4}, [LCC_F16] = {"F16", 2}, [LCC_BF16] = {"BF16", 2}, [LCC_I32] = {"I32", 4},
    [LCC_I64] = {"I64", 8}, [LCC_U8] = {"U8", 1},   [LCC_F64] = {"F64", 8},   [LCC_I8] = {"I8", 1},
    [LCC_I16] = {"I16", 2}, [LCC_BOOL] = {"BOOL", 1},
};
#define N_DTYPES (int)(sizeof dtypes / sizeof dtypes[0])

size_t lcc_dtype_size(lcc_dtype t) { return dtypes[t].size; }
const char *lcc_dtype_name(lcc_dtype t) { return dtypes[t].name; }

static const char *file_name(const lcc_st_file *f) { return f->path ? f->path : "safetensors header"; }

// "[2, 3]" for messages.
static const char *shape_str(char *buf, size_t n, int ndim, const int64_t *shape) {
  size_t k = (size_t)snprintf(buf, n, "[");
  for (int d = 0; d < ndim && k < n; d++) k += (size_t)snprintf(buf + k, n - k, d ? ", %lld" : "%lld", (long long)shape[d]);
  if (k < n) snprintf(buf + k, n - k, "]");
  return buf;
}

static int tensor_error(const lcc_st_file *f, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int tensor_error(const lcc_st_file *f, const char *name, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return lcc_error("%s: tensor '%.200s': %s", file_name(f), name, msg);
}

// A non-negative JSON integer, or -1.
static int64_t nonneg_int(const lcc_json *v) { return v && v->type == LCC_JSON_NUMBER && v->is_integer && v->integer >= 0 ? v->integer : -1; }

static int parse_dtype(const lcc_st_file *f, const char *name, const lcc_json *v, lcc_dtype *out) {
  if (!v || v->type != LCC_JSON_STRING) return tensor_error(f, name, "\"dtype\" must be a string");
  for (int i = 0; i < N_DTYPES; i++)
    if (!strcmp(v->str, dtypes[i].name)) {
      *out = (lcc_dtype)i;
      return 0;
    }
  return tensor_error(f, name, "unsupported dtype \"%.20s\"", v->str);
}

// Fills dtype, shape, numel, offset and nbytes from one header entry; data_size bounds the offsets.
static int parse_tensor(const lcc_st_file *f, const lcc_json *e, size_t data_size, lcc_st_tensor *t) {
  const char *name = e->key;
  if (e->type != LCC_JSON_OBJECT) return tensor_error(f, name, "entry must be an object");
  if (parse_dtype(f, name, lcc_json_get(e, "dtype"), &t->dtype)) return -1;
  const lcc_json *shape = lcc_json_get(e, "shape");
  if (!shape || shape->type != LCC_JSON_ARRAY) return tensor_error(f, name, "\"shape\" must be an array");
  if (shape->count > LCC_MAX_DIMS) return tensor_error(f, name, "shape has %zu dimensions (at most %d)", shape->count, LCC_MAX_DIMS);
  t->ndim = (int)shape->count;
  size_t numel = 1;
  int overflow = 0;
  const lcc_json *d = shape->child;
  for (int i = 0; i < t->ndim; i++, d = d->next) {
    if ((t->shape[i] = nonneg_int(d)) < 0) return tensor_error(f, name, "shape entries must be non-negative integers");
    if (t->shape[i] && numel > SIZE_MAX / (uint64_t)t->shape[i]) overflow = 1;
    else numel *= (size_t)t->shape[i];
  }
  char sh[200];
  shape_str(sh, sizeof sh, t->ndim, t->shape);
  size_t esize = dtypes[t->dtype].size;
  if (overflow || numel > SIZE_MAX / esize) return tensor_error(f, name, "shape %s is too large", sh);
  t->numel = numel;
  t->nbytes = numel * esize;
  const lcc_json *off = lcc_json_get(e, "data_offsets");
  int64_t begin = -1, end = -1;
  if (off && off->type == LCC_JSON_ARRAY && off->count == 2) begin = nonneg_int(off->child), end = nonneg_int(off->child->next);
  if (begin < 0 || end < 0) return tensor_error(f, name, "\"data_offsets\" must be [begin, end] with non-negative integers");
  if (begin > end) return tensor_error(f, name, "data_offsets [%lld, %lld) end before they begin", (long long)begin, (long long)end);
  if ((uint64_t)end > data_size)
    return tensor_error(f, name, "data_offsets [%lld, %lld) run past the end of the data (%zu bytes; file truncated?)",
                        (long long)begin, (long long)end, data_size);
  if ((uint64_t)(end - begin) != t->nbytes)
    return tensor_error(f, name, "data_offsets [%lld, %lld) hold %lld bytes but %s %s needs %zu", (long long)begin,
                        (long long)end, (long long)(end - begin), dtypes[t->dtype].name, sh, t->nbytes);
  t->offset = (size_t)begin;
  return 0;
}

static int parse_metadata(lcc_st_file *f, const lcc_json *m) {
  if (f->meta_keys) return lcc_error("%s: \"__metadata__\" appears twice", file_name(f));
  if (m->type != LCC_JSON_OBJECT) return lcc_error("%s: \"__metadata__\" must be an object", file_name(f));
  f->meta_keys = lcc_calloc(m->count, sizeof(char *));
  f->meta_values = lcc_calloc(m->count, sizeof(char *));
  for (const lcc_json *e = m->child; e; e = e->next) {
    if (e->type != LCC_JSON_STRING)
      return lcc_error("%s: \"__metadata__\" value of '%.200s' must be a string", file_name(f), e->key);
    f->meta_keys[f->n_meta] = lcc_strdup(e->key);
    f->meta_values[f->n_meta++] = lcc_strdup(e->str);
  }
  return 0;
}

static int by_name(const void *a, const void *b) {
  return strcmp(((const lcc_st_tensor *)a)->name, ((const lcc_st_tensor *)b)->name);
}

static int by_offset(const void *a, const void *b) {
  const lcc_st_tensor *x = *(const lcc_st_tensor *const *)a, *y = *(const lcc_st_tensor *const *)b;
  if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
  return (x->nbytes > y->nbytes) - (x->nbytes < y->nbytes);   // empty tensors first at a shared offset
}

// Names must be unique (sorted order puts duplicates side by side) and byte ranges must not overlap.
static int check_layout(lcc_st_file *f) {
  qsort(f->tensors, (size_t)f->n, sizeof *f->tensors, by_name);
  for (int i = 1; i < f->n; i++)
    if (!strcmp(f->tensors[i - 1].name, f->tensors[i].name)) return tensor_error(f, f->tensors[i].name, "appears twice");
  if (f->n == 0) return 0;
  lcc_st_tensor **order = lcc_malloc((size_t)f->n * sizeof *order);
  for (int i = 0; i < f->n; i++) order[i] = &f->tensors[i];
  qsort(order, (size_t)f->n, sizeof *order, by_offset);
  int rc = 0;
  const lcc_st_tensor *last = order[0];   // the tensor reaching furthest so far
  for (int i = 1; i < f->n && !rc; i++) {
    const lcc_st_tensor *b = order[i];
    if (b->offset < last->offset + last->nbytes)
      rc = tensor_error(f, b->name, "data_offsets [%zu, %zu) overlap tensor '%.200s' [%zu, %zu)", b->offset,
                        b->offset + b->nbytes, last->name, last->offset, last->offset + last->nbytes);
    if (b->offset + b->nbytes > last->offset + last->nbytes) last = b;
  }
  free(order);
  return rc;
}

int lcc_st_parse_header(lcc_st_file *f, const char *header, size_t header_len, size_t file_size) {
  const char *fname = file_name(f);
  if (file_size < 8 || header_len > file_size - 8)
    return lcc_error("%s: header length %zu exceeds the file (%zu bytes)", fname, header_len, file_size);
  f->data_start = 8 + header_len;
  f->file_size = file_size;
  char what[4096];
  snprintf(what, sizeof what, "%s: header", fname);
  lcc_json_doc *doc = lcc_json_parse(header, header_len, what);
  if (!doc) return -1;
  const lcc_json *root = lcc_json_root(doc);
  int rc = 0;
  if (root->type != LCC_JSON_OBJECT) rc = lcc_error("%s: header must be a JSON object", fname);
  else f->tensors = lcc_calloc(root->count, sizeof *f->tensors);
  for (const lcc_json *e = rc ? NULL : root->child; e && !rc; e = e->next) {
    if (!strcmp(e->key, "__metadata__")) {
      rc = parse_metadata(f, e);
    } else {
      lcc_st_tensor *t = &f->tensors[f->n];
      rc = parse_tensor(f, e, file_size - f->data_start, t);
      if (!rc) t->name = lcc_strdup(e->key), f->n++;
    }
  }
  if (!rc) rc = check_layout(f);
  lcc_json_free(doc);
  return rc ? -1 : 0;
}

lcc_st_file *lcc_st_open(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return lcc_error("%s: %s", path, strerror(errno)), NULL;
  struct stat st;
  void *map = MAP_FAILED;
  int rc = 0;
  if (fstat(fd, &st) != 0) rc = lcc_error("%s: %s", path, strerror(errno));
  else if (!S_ISREG(st.st_mode)) rc = lcc_error("%s: not a regular file", path);
  else if (st.st_size < 8)
    rc = lcc_error("%s: %lld bytes is too short for a safetensors file (needs an 8-byte header length)", path,
                   (long long)st.st_size);
  else if ((map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0)) == MAP_FAILED)
    rc = lcc_error("%s: mmap: %s", path, strerror(errno));
  close(fd);   // the mapping keeps the file open
  if (rc) return NULL;
  lcc_st_file *f = lcc_calloc(1, sizeof *f);
  f->path = lcc_strdup(path);
  f->map = map;
  f->file_size = (size_t)st.st_size;
  const unsigned char *b = map;
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; i--) header_len = header_len << 8 | b[i];   // little-endian
  if (header_len > MAX_HEADER)
    rc = lcc_error("%s: header length %llu exceeds the %u-byte limit (not a safetensors file?)", path,
                   (unsigned long long)header_len, MAX_HEADER);
  else
    rc = lcc_st_parse_header(f, (const char *)b + 8, (size_t)header_len, f->file_size);
  if (rc) {
    lcc_st_close(f);
    return NULL;
  }
  return f;
}

void lcc_st_close(lcc_st_file *f) {
  if (!f) return;
  for (int i = 0; i < f->n; i++) free(f->tensors[i].name);
  for (int i = 0; i < f->n_meta; i++) free(f->meta_keys[i]), free(f->meta_values[i]);
  free(f->tensors);
  free(f->meta_keys);
  free(f->meta_values);
  if (f->map) munmap(f->map, f->file_size);
  free(f->path);
  free(f);
}

const lcc_st_tensor *lcc_st_find(const lcc_st_file *f, const char *name) {
  int lo = 0, hi = f->n - 1;
  while (lo <= hi) {
    int mid = lo + (hi - lo) / 2, c = strcmp(name, f->tensors[mid].name);
    if (c == 0) return &f->tensors[mid];
    if (c < 0) hi = mid - 1;
    else lo = mid + 1;
  }
  return NULL;
}

const void *lcc_st_data(const lcc_st_file *f, const lcc_st_tensor *t) {
  return (const char *)f->map + f->data_start + t->offset;
}

int lcc_st_read_f32(const lcc_st_file *f, const lcc_st_tensor *t, float *out) {
  const unsigned char *p = lcc_st_data(f, t);   // may be unaligned: read through memcpy
  switch (t->dtype) {
    case LCC_F32: memcpy(out, p, t->numel * 4); return 0;
    case LCC_F64:
      for (size_t i = 0; i < t->numel; i++) {
        double d;
        memcpy(&d, p + 8 * i, 8);
        out[i] = (float)d;
      }
      return 0;
    case LCC_F16:
    case LCC_BF16:
      for (size_t i = 0; i < t->numel; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        out[i] = t->dtype == LCC_F16 ? lcc_f16_to_f32(h) : lcc_bf16_to_f32(h);
      }
      return 0;
    default: return tensor_error(f, t->name, "dtype %s is not a floating type", dtypes[t->dtype].name);
  }
}

const char *lcc_st_meta(const lcc_st_file *f, const char *key) {
  for (int i = 0; i < f->n_meta; i++)
    if (!strcmp(f->meta_keys[i], key)) return f->meta_values[i];
  return NULL;
}

// ---- writer ----

typedef struct {
  char *p;
  size_t len, cap;
} buffer;

static void put(buffer *b, const char *s, size_t n) {
  if (b->len + n > b->cap) {
    b->cap = 2 * (b->len + n) + 256;
    b->p = lcc_realloc(b->p, b->cap);
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
}

static void putf(buffer *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(buffer *b, const char *fmt, ...) {
  char tmp[128];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  put(b, tmp, (size_t)n);
}

static void put_json_string(buffer *b, const char *s) {
  put(b, "\"", 1);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') put(b, "\\", 1), put(b, (const char *)&c, 1);
    else if (c < 0x20) putf(b, "\\u%04x", c);
    else put(b, (const char *)&c, 1);
  }
  put(b, "\"", 1);
}

static int write_all(int fd, const void *data, size_t n) {
  const char *p = data;
  while (n > 0) {
    ssize_t w = write(fd, p, n < (1u << 30) ? n : (1u << 30));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w, n -= (size_t)w;
  }
  return 0;
}

static size_t entry_bytes(const lcc_st_entry *e) {
  size_t n = dtypes[e->dtype].size;
  for (int d = 0; d < e->ndim; d++) n *= (size_t)e->shape[d];
  return n;
}

int lcc_st_write(const char *path, const lcc_st_entry *entries, int n, const char *const *meta_kv, int n_meta,
                 int do_fsync) {
  buffer h = {0};
  put(&h, "{", 1);
  if (n_meta > 0) {
    put(&h, "\"__metadata__\":{", 16);
    for (int i = 0; i < n_meta; i++) {
      if (i) put(&h, ",", 1);
      put_json_string(&h, meta_kv[2 * i]);
      put(&h, ":", 1);
      put_json_string(&h, meta_kv[2 * i + 1]);
    }
    put(&h, "}", 1);
  }
  size_t offset = 0;
  for (int i = 0; i < n; i++) {
    const lcc_st_entry *e = &entries[i];
    LCC_CHECK(e->ndim >= 0 && e->ndim <= LCC_MAX_DIMS, "%s: tensor '%s': bad ndim %d", path, e->name, e->ndim);
    if (i || n_meta > 0) put(&h, ",", 1);
    put_json_string(&h, e->name);
    putf(&h, ":{\"dtype\":\"%s\",\"shape\":[", dtypes[e->dtype].name);
    for (int d = 0; d < e->ndim; d++) {
      LCC_CHECK(e->shape[d] >= 0, "%s: tensor '%s': negative dimension", path, e->name);
      putf(&h, d ? ",%lld" : "%lld", (long long)e->shape[d]);
    }
    size_t nbytes = entry_bytes(e);
    putf(&h, "],\"data_offsets\":[%zu,%zu]}", offset, offset + nbytes);
    offset += nbytes;
  }
  put(&h, "}", 1);
  while (h.len % 8) put(&h, " ", 1);   // the data section starts 8-byte aligned, as the Rust writer pads it
  unsigned char len_le[8];
  for (int i = 0; i < 8; i++) len_le[i] = (unsigned char)((uint64_t)h.len >> (8 * i));

  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    free(h.p);
    return lcc_error("%s: %s", path, strerror(errno));
  }
  int bad = write_all(fd, len_le, 8) || write_all(fd, h.p, h.len);
  for (int i = 0; i < n && !bad; i++) bad = write_all(fd, entries[i].data, entry_bytes(&entries[i]));
  if (!bad && do_fsync) bad = fsync(fd) != 0;
  int err = errno;
  if (close(fd) != 0 && !bad) bad = 1, err = errno;
  free(h.p);
  return bad ? lcc_error("%s: write failed: %s", path, strerror(err)) : 0;
}
