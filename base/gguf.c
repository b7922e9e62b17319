// GGUF v3 reader and writer (format summary in gguf.h).
#include "gguf.h"
#include "half.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#define GGML_MAX_NAME 64   // ggml keeps tensor names in char[64]: longer ones cannot load there

// ---- ggml types ----

typedef struct {
  const char *name;
  int block;   // elements per block
  int bytes;   // bytes per block
} type_info;

static const type_info ggml_types[] = {
    [0] = {"F32", 1, 4},       [1] = {"F16", 1, 2},       [2] = {"Q4_0", 32, 18},    [3] = {"Q4_1", 32, 20},
    [6] = {"Q5_0", 32, 22},    [7] = {"Q5_1", 32, 24},    [8] = {"Q8_0", 32, 34},    [9] = {"Q8_1", 32, 36},
    [10] = {"Q2_K", 256, 84},  [11] = {"Q3_K", 256, 110}, [12] = {"Q4_K", 256, 144}, [13] = {"Q5_K", 256, 176},
    [14] = {"Q6_K", 256, 210}, [15] = {"Q8_K", 256, 292}, [24] = {"I8", 1, 1},       [25] = {"I16", 1, 2},
    [26] = {"I32", 1, 4},      [27] = {"I64", 1, 8},      [28] = {"F64", 1, 8},      [30] = {"BF16", 1, 2},
};

static const type_info *type_of(int type) {
  if (type < 0 || type >= (int)(sizeof ggml_types / sizeof ggml_types[0]) || !ggml_types[type].name) return NULL;
  return &ggml_types[type];
}

const char *lcc_ggml_type_name(int type) {
  const type_info *t = type_of(type);
  return t ? t->name : NULL;
}

size_t lcc_ggml_nbytes(int type, int64_t n) {
  const type_info *t = type_of(type);
  return t ? (size_t)(n / t->block) * (size_t)t->bytes : 0;
}

// Q8_0 block: F16 scale d = max|x| / 127, then 32 int8 q = round(x / d) (half away from zero, as ggml).
static void q8_0_from_f32(const float *x, unsigned char *blk) {
  float amax = 0;
  for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
  const float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
  const uint16_t dh = lcc_f32_to_f16(d);
  memcpy(blk, &dh, 2);
  for (int j = 0; j < 32; j++) blk[2 + j] = (unsigned char)(int8_t)roundf(x[j] * id);
}

int lcc_ggml_from_f32(int type, const float *src, int64_t n, void *dst) {
  unsigned char *out = dst;
  switch (type) {
    case LCC_GGML_F32: memmove(out, src, (size_t)n * 4); return 0;
    case LCC_GGML_F16:
    case LCC_GGML_BF16:   // element i is read before bytes [2i, 2i + 2) are written: safe in place
      for (int64_t i = 0; i < n; i++) {
        const uint16_t h = type == LCC_GGML_F16 ? lcc_f32_to_f16(src[i]) : lcc_f32_to_bf16(src[i]);
        memcpy(out + 2 * i, &h, 2);
      }
      return 0;
    case LCC_GGML_Q8_0:
      for (int64_t b = 0; b < n / 32; b++) q8_0_from_f32(src + 32 * b, out + 34 * b);
      return 0;
  }
  return -1;
}

int lcc_ggml_to_f32(int type, const void *src, int64_t n, float *dst) {
  const unsigned char *in = src;   // unaligned: every load goes through memcpy
  uint16_t h;
  switch (type) {
    case LCC_GGML_F32: memcpy(dst, in, (size_t)n * 4); return 0;
    case LCC_GGML_F16:
    case LCC_GGML_BF16:
      for (int64_t i = 0; i < n; i++) {
        memcpy(&h, in + 2 * i, 2);
        dst[i] = type == LCC_GGML_F16 ? lcc_f16_to_f32(h) : lcc_bf16_to_f32(h);
      }
      return 0;
    case LCC_GGML_Q8_0:
      for (int64_t b = 0; b < n / 32; b++) {
        memcpy(&h, in + 34 * b, 2);
        const float d = lcc_f16_to_f32(h);
        for (int j = 0; j < 32; j++) dst[32 * b + j] = d * (float)(int8_t)in[34 * b + 2 + j];
      }
      return 0;
  }
  return -1;
}

// ---- reading ----

typedef struct chunk {
  struct chunk *next;
  size_t used, cap;
  char data[];
} chunk;

// Bump allocation for the string copies of one file (a vocabulary is ~150K strings).
static void *arena_alloc(lcc_gguf_file *f, size_t n) {
  n = (n + 7) & ~(size_t)7;
  chunk *c = f->arena;
  if (!c || c->cap - c->used < n) {
    size_t cap = n > (1u << 20) ? n : (1u << 20);
    chunk *nc = lcc_malloc(sizeof(chunk) + cap);
    nc->next = c, nc->used = 0, nc->cap = cap;
    f->arena = c = nc;
  }
  void *p = c->data + c->used;
  c->used += n;
  return p;
}

typedef struct {
  lcc_gguf_file *f;
  size_t pos;
} cursor;

static size_t left(const cursor *c) { return c->f->size - c->pos; }

static int truncated(const cursor *c, const char *item) {
  return lcc_error("%s: truncated or damaged: %s at byte %zu runs past the end of the file (%zu bytes)", c->f->path, item,
                   c->pos, c->f->size);
}

static int rd(cursor *c, void *out, size_t n, const char *item) {
  if (left(c) < n) return truncated(c, item);
  memcpy(out, c->f->base + c->pos, n);
  c->pos += n;
  return 0;
}

// A string: u64 length + bytes, copied NUL-terminated into the arena.
static int rd_str(cursor *c, const char **out, size_t *len, const char *item) {
  uint64_t n = 0;
  if (rd(c, &n, 8, item)) return -1;
  if (n > left(c)) return truncated(c, item);
  char *s = arena_alloc(c->f, (size_t)n + 1);
  memcpy(s, c->f->base + c->pos, (size_t)n);
  s[n] = 0;
  c->pos += (size_t)n;
  *out = s;
  if (len) *len = (size_t)n;
  return 0;
}

static size_t vtype_size(lcc_gguf_vtype t) {
  switch (t) {
    case LCC_GGUF_UINT8: case LCC_GGUF_INT8: case LCC_GGUF_BOOL: return 1;
    case LCC_GGUF_UINT16: case LCC_GGUF_INT16: return 2;
    case LCC_GGUF_UINT32: case LCC_GGUF_INT32: case LCC_GGUF_FLOAT32: return 4;
    case LCC_GGUF_UINT64: case LCC_GGUF_INT64: case LCC_GGUF_FLOAT64: return 8;
    default: return 0;   // STRING, ARRAY: variable
  }
}

static int64_t load_int(lcc_gguf_vtype t, const unsigned char *p) {
  uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32; uint64_t u64; int64_t i64;
  switch (t) {
    case LCC_GGUF_UINT8: case LCC_GGUF_BOOL: memcpy(&u8, p, 1); return u8;
    case LCC_GGUF_INT8: memcpy(&i8, p, 1); return i8;
    case LCC_GGUF_UINT16: memcpy(&u16, p, 2); return u16;
    case LCC_GGUF_INT16: memcpy(&i16, p, 2); return i16;
    case LCC_GGUF_UINT32: memcpy(&u32, p, 4); return u32;
    case LCC_GGUF_INT32: memcpy(&i32, p, 4); return i32;
    case LCC_GGUF_UINT64: memcpy(&u64, p, 8); return (int64_t)u64;   // callers refuse u64 > INT64_MAX first
    case LCC_GGUF_INT64: memcpy(&i64, p, 8); return i64;
    default: return 0;
  }
}

static double load_float(lcc_gguf_vtype t, const unsigned char *p) {
  float f;
  double d;
  if (t == LCC_GGUF_FLOAT32) {
    memcpy(&f, p, 4);
    return f;
  }
  if (t == LCC_GGUF_FLOAT64) {
    memcpy(&d, p, 8);
    return d;
  }
  return (double)load_int(t, p);
}

static int is_float(lcc_gguf_vtype t) { return t == LCC_GGUF_FLOAT32 || t == LCC_GGUF_FLOAT64; }

// A scalar of a numeric type (checked by the caller) at p: range and boolean checks, then into kv.
static int set_scalar(const cursor *c, lcc_gguf_kv *kv, const unsigned char *p) {
  uint64_t u64;
  if (kv->type == LCC_GGUF_UINT64 && (memcpy(&u64, p, 8), u64 > INT64_MAX))
    return lcc_error("%s: key '%s': value %llu is too large", c->f->path, kv->key, (unsigned long long)u64);
  if (kv->type == LCC_GGUF_BOOL && *p > 1) return lcc_error("%s: key '%s': boolean byte %u is not 0 or 1", c->f->path, kv->key, *p);
  if (is_float(kv->type)) kv->f = load_float(kv->type, p);
  else kv->i = load_int(kv->type, p), kv->f = (double)kv->i;
  return 0;
}

static int rd_array(cursor *c, lcc_gguf_kv *kv) {
  uint32_t et = 0;
  uint64_t n = 0;
  if (rd(c, &et, 4, "an array's element type") || rd(c, &n, 8, "an array's length")) return -1;
  kv->elem_type = (lcc_gguf_vtype)et;
  kv->n = n;
  if (et == LCC_GGUF_ARRAY) return lcc_error("%s: key '%s': arrays of arrays are not supported", c->f->path, kv->key);
  if (et == LCC_GGUF_STRING) {
    if (n > left(c) / 8) return truncated(c, "a string array");   // every string takes at least 8 bytes
    const char **strs = arena_alloc(c->f, (size_t)n * sizeof(char *) + 1);
    for (uint64_t k = 0; k < n; k++)
      if (rd_str(c, &strs[k], NULL, "a string array element")) return -1;
    kv->strs = strs;
    return 0;
  }
  const size_t es = vtype_size((lcc_gguf_vtype)et);
  if (!es) return lcc_error("%s: key '%s': unknown array element type %u", c->f->path, kv->key, et);
  if (n > left(c) / es) return truncated(c, "an array");
  const unsigned char *p = c->f->base + c->pos;
  if (et == LCC_GGUF_UINT64)
    for (uint64_t k = 0; k < n; k++) {
      uint64_t u;
      memcpy(&u, p + 8 * k, 8);
      if (u > INT64_MAX) return lcc_error("%s: key '%s': element %llu is too large", c->f->path, kv->key, (unsigned long long)k);
    }
  if (et == LCC_GGUF_BOOL)
    for (uint64_t k = 0; k < n; k++)
      if (p[k] > 1) return lcc_error("%s: key '%s': element %llu is not a boolean 0 or 1", c->f->path, kv->key, (unsigned long long)k);
  kv->raw = p;
  c->pos += (size_t)(n * es);
  return 0;
}

static int rd_kv(cursor *c, lcc_gguf_kv *kv) {
  uint32_t t = 0;
  if (rd_str(c, &kv->key, NULL, "a metadata key") || rd(c, &t, 4, "a metadata value type")) return -1;
  kv->type = (lcc_gguf_vtype)t;
  kv->n = 1;
  if (t == LCC_GGUF_STRING) return rd_str(c, &kv->str, &kv->str_len, "a string value");
  if (t == LCC_GGUF_ARRAY) return rd_array(c, kv);
  const size_t es = vtype_size(kv->type);
  if (!es) return lcc_error("%s: key '%s': unknown value type %u", c->f->path, kv->key, t);
  if (left(c) < es) return truncated(c, "a metadata value");
  int rc = set_scalar(c, kv, c->f->base + c->pos);
  c->pos += es;
  return rc;
}

static int rd_tensor_info(cursor *c, lcc_gguf_tensor *t) {
  uint32_t ndim = 0, type = 0;
  size_t len = 0;
  if (rd_str(c, &t->name, &len, "a tensor name") || rd(c, &ndim, 4, "a tensor's dimension count")) return -1;
  const char *path = c->f->path;
  if (len >= GGML_MAX_NAME) return lcc_error("%s: tensor name '%.64s...' is longer than ggml's %d bytes", path, t->name, GGML_MAX_NAME - 1);
  if (strlen(t->name) != len) return lcc_error("%s: a tensor name contains a NUL byte", path);
  if (ndim < 1 || ndim > LCC_GGUF_MAX_DIMS)
    return lcc_error("%s: tensor '%s': %u dimensions (GGUF allows 1 to %d)", path, t->name, ndim, LCC_GGUF_MAX_DIMS);
  t->ndim = (int)ndim;
  t->numel = 1;
  for (int d = 0; d < LCC_GGUF_MAX_DIMS; d++) {
    uint64_t ne = 1;
    if (d < t->ndim && rd(c, &ne, 8, "a tensor dimension")) return -1;
    if (ne > INT64_MAX || (ne && (uint64_t)t->numel > INT64_MAX / ne))
      return lcc_error("%s: tensor '%s': dimensions too large", path, t->name);
    t->ne[d] = (int64_t)ne;
    t->numel *= (int64_t)ne;
  }
  if (rd(c, &type, 4, "a tensor type") || rd(c, &t->offset, 8, "a tensor offset")) return -1;
  const type_info *ti = type_of((int)type);
  if (!ti) return lcc_error("%s: tensor '%s': unknown ggml type %u", path, t->name, type);
  t->type = (int)type;
  if (t->ne[0] % ti->block)
    return lcc_error("%s: tensor '%s': row length %lld is not a multiple of the %s block size %d", path, t->name,
                     (long long)t->ne[0], ti->name, ti->block);
  if ((uint64_t)(t->numel / ti->block) > SIZE_MAX / (uint64_t)ti->bytes) return lcc_error("%s: tensor '%s': too large", path, t->name);
  t->nbytes = lcc_ggml_nbytes(t->type, t->numel);
  return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

// No name twice (keys or tensor names): sort a copy of the pointers and compare neighbours.
static int check_unique(const lcc_gguf_file *f, const char **names, int n, const char *what) {
  qsort(names, (size_t)n, sizeof *names, cmp_str);
  for (int i = 1; i < n; i++)
    if (!strcmp(names[i - 1], names[i])) return lcc_error("%s: %s '%s' appears twice", f->path, what, names[i]);
  return 0;
}

static int cmp_offset(const void *a, const void *b) {
  const lcc_gguf_tensor *x = *(const lcc_gguf_tensor *const *)a, *y = *(const lcc_gguf_tensor *const *)b;
  return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int check_alignment(lcc_gguf_file *f) {
  f->alignment = LCC_GGUF_DEFAULT_ALIGNMENT;
  const lcc_gguf_kv *kv = lcc_gguf_find(f, "general.alignment");
  if (!kv) return 0;
  if (kv->type != LCC_GGUF_UINT32 || kv->i == 0 || (kv->i & (kv->i - 1)))
    return lcc_error("%s: key 'general.alignment': must be a UINT32 power of two", f->path);
  f->alignment = (size_t)kv->i;
  return 0;
}

// Every tensor inside the data section, aligned, and no two overlapping.
static int check_layout(lcc_gguf_file *f) {
  if (f->n_tensors == 0) return 0;
  if (f->data_start > f->size) return lcc_error("%s: truncated: the data section is missing", f->path);
  const uint64_t data_size = f->size - f->data_start;
  const lcc_gguf_tensor **order = lcc_malloc((size_t)f->n_tensors * sizeof *order);
  int rc = 0;
  for (int i = 0; i < f->n_tensors && !rc; i++) {
    const lcc_gguf_tensor *t = &f->tensors[i];
    order[i] = t;
    if (t->offset % f->alignment)
      rc = lcc_error("%s: tensor '%s': offset %llu is not a multiple of the alignment %zu", f->path, t->name,
                     (unsigned long long)t->offset, f->alignment);
    else if (t->offset > data_size || t->nbytes > data_size - t->offset)
      rc = lcc_error("%s: truncated or damaged: tensor '%s' (%zu bytes at data offset %llu) runs past the end of the file "
                     "(%llu data bytes)", f->path, t->name, t->nbytes, (unsigned long long)t->offset, (unsigned long long)data_size);
  }
  if (!rc) qsort(order, (size_t)f->n_tensors, sizeof *order, cmp_offset);
  for (int i = 1; i < f->n_tensors && !rc; i++)
    if (order[i - 1]->offset + order[i - 1]->nbytes > order[i]->offset)
      rc = lcc_error("%s: tensors '%s' and '%s' overlap", f->path, order[i - 1]->name, order[i]->name);
  free(order);
  return rc;
}

static int parse(lcc_gguf_file *f) {
  cursor c = {f, 0};
  char magic[4];
  uint64_t n_tensors = 0, n_kv = 0;
  if (rd(&c, magic, 4, "the magic")) return -1;
  if (memcmp(magic, "GGUF", 4)) return lcc_error("%s: not a GGUF file (it does not start with \"GGUF\")", f->path);
  if (rd(&c, &f->version, 4, "the version")) return -1;
  const uint32_t swapped = __builtin_bswap32(f->version);
  if (swapped == 2 || swapped == 3) return lcc_error("%s: a big-endian GGUF file: not supported", f->path);
  if (f->version != 2 && f->version != 3)
    return lcc_error("%s: GGUF version %u is not supported (this reader takes versions 2 and 3)", f->path, f->version);
  if (rd(&c, &n_tensors, 8, "the tensor count") || rd(&c, &n_kv, 8, "the metadata count")) return -1;
  // Each KV pair takes at least 13 bytes and each tensor info 24: bound the counts before allocating.
  if (n_kv > left(&c) / 13 || n_tensors > left(&c) / 24 || (n_kv * 13 + n_tensors * 24) > left(&c))
    return lcc_error("%s: truncated or damaged: %llu metadata pairs and %llu tensors cannot fit in %zu bytes", f->path,
                     (unsigned long long)n_kv, (unsigned long long)n_tensors, f->size);
  f->kv = lcc_calloc((size_t)n_kv + 1, sizeof *f->kv);
  for (uint64_t i = 0; i < n_kv; i++, f->n_kv++)
    if (rd_kv(&c, &f->kv[i])) return -1;
  f->tensors = lcc_calloc((size_t)n_tensors + 1, sizeof *f->tensors);
  for (uint64_t i = 0; i < n_tensors; i++, f->n_tensors++)
    if (rd_tensor_info(&c, &f->tensors[i])) return -1;
  const char **names = lcc_malloc(((size_t)(n_kv > n_tensors ? n_kv : n_tensors) + 1) * sizeof *names);
  for (int i = 0; i < f->n_kv; i++) names[i] = f->kv[i].key;
  int rc = check_unique(f, names, f->n_kv, "key");
  for (int i = 0; i < f->n_tensors && !rc; i++) names[i] = f->tensors[i].name;
  if (!rc) rc = check_unique(f, names, f->n_tensors, "tensor");
  free(names);
  if (rc || check_alignment(f)) return -1;
  f->data_start = c.pos + (f->alignment - c.pos % f->alignment) % f->alignment;
  return check_layout(f);
}

lcc_gguf_file *lcc_gguf_parse(const void *data, size_t size, const char *what) {
  lcc_gguf_file *f = lcc_calloc(1, sizeof *f);
  f->path = lcc_strdup(what);
  f->base = data;
  f->size = size;
  if (parse(f)) {
    lcc_gguf_close(f);
    return NULL;
  }
  return f;
}

lcc_gguf_file *lcc_gguf_open(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    lcc_error("%s: %s", path, strerror(errno));
    return NULL;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    lcc_error("%s: not a regular file", path);
    close(fd);
    return NULL;
  }
  const size_t size = (size_t)st.st_size;
  void *map = size ? mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
  int err = errno;
  close(fd);
  if (map == MAP_FAILED) {
    lcc_error("%s: cannot map the file: %s", path, strerror(err));
    return NULL;
  }
  lcc_gguf_file *f = lcc_gguf_parse(map, size, path);
  if (!f) {
    if (map) munmap(map, size);
    return NULL;
  }
  f->mapped = 1;
  return f;
}

void lcc_gguf_close(lcc_gguf_file *f) {
  if (!f) return;
  if (f->mapped && f->base) munmap((void *)f->base, f->size);
  for (chunk *c = f->arena; c;) {
    chunk *next = c->next;
    free(c);
    c = next;
  }
  free(f->kv);
  free(f->tensors);
  free(f->path);
  free(f);
}

const lcc_gguf_kv *lcc_gguf_find(const lcc_gguf_file *f, const char *key) {
  for (int i = 0; i < f->n_kv; i++)
    if (!strcmp(f->kv[i].key, key)) return &f->kv[i];
  return NULL;
}

const lcc_gguf_tensor *lcc_gguf_find_tensor(const lcc_gguf_file *f, const char *name) {
  for (int i = 0; i < f->n_tensors; i++)
    if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
  return NULL;
}

const void *lcc_gguf_data(const lcc_gguf_file *f, const lcc_gguf_tensor *t) { return f->base + f->data_start + t->offset; }

int64_t lcc_gguf_arr_int(const lcc_gguf_kv *kv, uint64_t i) {
  return load_int(kv->elem_type, (const unsigned char *)kv->raw + i * vtype_size(kv->elem_type));
}

double lcc_gguf_arr_float(const lcc_gguf_kv *kv, uint64_t i) {
  return load_float(kv->elem_type, (const unsigned char *)kv->raw + i * vtype_size(kv->elem_type));
}

static const char *vtype_name(lcc_gguf_vtype t) {
  static const char *names[] = {"UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "FLOAT32",
                                "BOOL", "STRING", "ARRAY", "UINT64", "INT64", "FLOAT64"};
  return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

static const lcc_gguf_kv *need_key(const lcc_gguf_file *f, const char *key) {
  const lcc_gguf_kv *kv = lcc_gguf_find(f, key);
  if (!kv) lcc_error("%s: key '%s': missing", f->path, key);
  return kv;
}

int lcc_gguf_get_int(const lcc_gguf_file *f, const char *key, int64_t *out) {
  const lcc_gguf_kv *kv = need_key(f, key);
  if (!kv) return -1;
  if (!vtype_size(kv->type) || is_float(kv->type) || kv->type == LCC_GGUF_BOOL)
    return lcc_error("%s: key '%s': expected an integer (got %s)", f->path, key, vtype_name(kv->type));
  *out = kv->i;
  return 0;
}

int lcc_gguf_get_float(const lcc_gguf_file *f, const char *key, double *out) {
  const lcc_gguf_kv *kv = need_key(f, key);
  if (!kv) return -1;
  if (!is_float(kv->type)) return lcc_error("%s: key '%s': expected a float (got %s)", f->path, key, vtype_name(kv->type));
  *out = kv->f;
  return 0;
}

int lcc_gguf_get_str(const lcc_gguf_file *f, const char *key, const char **out) {
  const lcc_gguf_kv *kv = need_key(f, key);
  if (!kv) return -1;
  if (kv->type != LCC_GGUF_STRING) return lcc_error("%s: key '%s': expected a string (got %s)", f->path, key, vtype_name(kv->type));
  *out = kv->str;
  return 0;
}

int lcc_gguf_get_arr(const lcc_gguf_file *f, const char *key, lcc_gguf_vtype elem, uint64_t n_want, const lcc_gguf_kv **out) {
  const lcc_gguf_kv *kv = need_key(f, key);
  if (!kv) return -1;
  if (kv->type != LCC_GGUF_ARRAY || kv->elem_type != elem)
    return lcc_error("%s: key '%s': expected an array of %s", f->path, key, vtype_name(elem));
  if (n_want && kv->n != n_want)
    return lcc_error("%s: key '%s': expected %llu elements (got %llu)", f->path, key, (unsigned long long)n_want,
                     (unsigned long long)kv->n);
  *out = kv;
  return 0;
}

// ---- writing ----

typedef struct {
  char *p;
  size_t len, cap;
} bytes;

static void put(bytes *b, const void *data, size_t n) {
  if (b->len + n > b->cap) {
    b->cap = (b->len + n) * 2 + 4096;
    b->p = lcc_realloc(b->p, b->cap);
  }
  memcpy(b->p + b->len, data, n);
  b->len += n;
}

static void put_u32(bytes *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(bytes *b, uint64_t v) { put(b, &v, 8); }
static void put_str(bytes *b, const char *s) {
  const size_t n = strlen(s);
  put_u64(b, n);
  put(b, s, n);
}

typedef struct {
  char name[GGML_MAX_NAME];
  int type, ndim;
  int64_t ne[LCC_GGUF_MAX_DIMS];
  size_t nbytes;
  uint64_t offset;
} tensor_desc;

struct lcc_gguf_writer {
  bytes kv;             // serialized metadata pairs
  int n_kv;
  char **keys;          // [n_kv] to refuse a key set twice
  tensor_desc *tensors;
  int n_tensors, next;  // next: the tensor whose data comes next
  uint64_t data_size;   // running size of the data section
  FILE *f;
  char *path, *tmp;     // final name, and the name written until write_end renames it
};

lcc_gguf_writer *lcc_gguf_writer_new(void) { return lcc_calloc(1, sizeof(lcc_gguf_writer)); }

void lcc_gguf_writer_free(lcc_gguf_writer *w) {
  if (!w) return;
  if (w->f) {
    fclose(w->f);
    unlink(w->tmp);
  }
  for (int i = 0; i < w->n_kv; i++) free(w->keys[i]);
  free(w->keys);
  free(w->kv.p);
  free(w->tensors);
  free(w->path);
  free(w->tmp);
  free(w);
}

static void put_key(lcc_gguf_writer *w, const char *key, lcc_gguf_vtype type) {
  for (int i = 0; i < w->n_kv; i++) LCC_CHECK(strcmp(w->keys[i], key), "gguf writer: key '%s' set twice", key);
  w->keys = lcc_realloc(w->keys, (size_t)(w->n_kv + 1) * sizeof *w->keys);
  w->keys[w->n_kv++] = lcc_strdup(key);
  put_str(&w->kv, key);
  put_u32(&w->kv, type);
}

void lcc_gguf_set_u32(lcc_gguf_writer *w, const char *key, uint32_t v) {
  put_key(w, key, LCC_GGUF_UINT32);
  put_u32(&w->kv, v);
}

void lcc_gguf_set_f32(lcc_gguf_writer *w, const char *key, float v) {
  put_key(w, key, LCC_GGUF_FLOAT32);
  put(&w->kv, &v, 4);
}

void lcc_gguf_set_bool(lcc_gguf_writer *w, const char *key, int v) {
  const uint8_t b = v != 0;
  put_key(w, key, LCC_GGUF_BOOL);
  put(&w->kv, &b, 1);
}

void lcc_gguf_set_str(lcc_gguf_writer *w, const char *key, const char *v) {
  put_key(w, key, LCC_GGUF_STRING);
  put_str(&w->kv, v);
}

static void put_arr_head(lcc_gguf_writer *w, const char *key, lcc_gguf_vtype elem, size_t n) {
  put_key(w, key, LCC_GGUF_ARRAY);
  put_u32(&w->kv, elem);
  put_u64(&w->kv, n);
}

void lcc_gguf_set_arr_i32(lcc_gguf_writer *w, const char *key, const int32_t *v, size_t n) {
  put_arr_head(w, key, LCC_GGUF_INT32, n);
  put(&w->kv, v, n * 4);
}

void lcc_gguf_set_arr_f32(lcc_gguf_writer *w, const char *key, const float *v, size_t n) {
  put_arr_head(w, key, LCC_GGUF_FLOAT32, n);
  put(&w->kv, v, n * 4);
}

void lcc_gguf_set_arr_str(lcc_gguf_writer *w, const char *key, const char *const *v, size_t n) {
  put_arr_head(w, key, LCC_GGUF_STRING, n);
  for (size_t i = 0; i < n; i++) put_str(&w->kv, v[i]);
}

static uint64_t pad_to(uint64_t n, uint64_t align) { return (n + align - 1) / align * align; }

void lcc_gguf_add_tensor(lcc_gguf_writer *w, const char *name, int type, int ndim, const int64_t *ne) {
  LCC_CHECK(strlen(name) < GGML_MAX_NAME && ndim >= 1 && ndim <= LCC_GGUF_MAX_DIMS && type_of(type) && !w->f,
            "gguf writer: bad tensor '%s'", name);
  w->tensors = lcc_realloc(w->tensors, (size_t)(w->n_tensors + 1) * sizeof *w->tensors);
  tensor_desc *t = &w->tensors[w->n_tensors++];
  memset(t, 0, sizeof *t);
  snprintf(t->name, sizeof t->name, "%s", name);
  t->type = type, t->ndim = ndim;
  int64_t numel = 1;
  for (int d = 0; d < ndim; d++) t->ne[d] = ne[d], numel *= ne[d];
  LCC_CHECK(ne[0] % type_of(type)->block == 0, "gguf writer: tensor '%s': row of %lld is not whole %s blocks", name,
            (long long)ne[0], type_of(type)->name);
  t->nbytes = lcc_ggml_nbytes(type, numel);
  t->offset = w->data_size;
  w->data_size = pad_to(w->data_size + t->nbytes, LCC_GGUF_DEFAULT_ALIGNMENT);
}

static int write_zeros(FILE *f, size_t n) {
  static const char zeros[LCC_GGUF_DEFAULT_ALIGNMENT];
  return n && fwrite(zeros, 1, n, f) != n;
}

int lcc_gguf_write_begin(lcc_gguf_writer *w, const char *path) {
  bytes h = {0};
  put(&h, "GGUF", 4);
  put_u32(&h, LCC_GGUF_VERSION);
  put_u64(&h, (uint64_t)w->n_tensors);
  put_u64(&h, (uint64_t)w->n_kv);
  put(&h, w->kv.p, w->kv.len);
  for (int i = 0; i < w->n_tensors; i++) {
    const tensor_desc *t = &w->tensors[i];
    put_str(&h, t->name);
    put_u32(&h, (uint32_t)t->ndim);
    for (int d = 0; d < t->ndim; d++) put_u64(&h, (uint64_t)t->ne[d]);
    put_u32(&h, (uint32_t)t->type);
    put_u64(&h, t->offset);
  }
  w->path = lcc_strdup(path);
  w->tmp = lcc_malloc(strlen(path) + 8);
  sprintf(w->tmp, "%s.tmp", path);
  w->f = fopen(w->tmp, "wb");
  int rc = 0;
  if (!w->f) rc = lcc_error("%s: %s", w->tmp, strerror(errno));
  else if (fwrite(h.p, 1, h.len, w->f) != h.len || write_zeros(w->f, pad_to(h.len, LCC_GGUF_DEFAULT_ALIGNMENT) - h.len))
    rc = lcc_error("%s: write failed: %s", w->tmp, strerror(errno));
  free(h.p);
  return rc;
}

int lcc_gguf_write_tensor(lcc_gguf_writer *w, const void *data, size_t nbytes) {
  LCC_CHECK(w->f && w->next < w->n_tensors && w->tensors[w->next].nbytes == nbytes,
            "gguf writer: tensor %d written out of order or with %zu bytes", w->next, nbytes);
  w->next++;
  if (fwrite(data, 1, nbytes, w->f) != nbytes || write_zeros(w->f, pad_to(nbytes, LCC_GGUF_DEFAULT_ALIGNMENT) - nbytes))
    return lcc_error("%s: write failed: %s", w->tmp, strerror(errno));
  return 0;
}

int lcc_gguf_write_end(lcc_gguf_writer *w) {
  LCC_CHECK(w->f && w->next == w->n_tensors, "gguf writer: %d of %d tensors written", w->next, w->n_tensors);
  int bad = ferror(w->f) | fflush(w->f) | fsync(fileno(w->f));
  int err = errno;
  bad |= fclose(w->f);
  w->f = NULL;
  if (!bad && rename(w->tmp, w->path) != 0) bad = 1, err = errno;
  if (bad) {
    unlink(w->tmp);
    return lcc_error("%s: write failed: %s", w->path, strerror(err));
  }
  return 0;
}
