// GGUF v3, the model file format of ggml / llama.cpp (ggml docs/gguf.md). Little-endian throughout:
//   "GGUF" | u32 version | u64 tensor count | u64 KV count
//   KV pairs:     string key | u32 value type | value       (string = u64 byte length + UTF-8, no NUL;
//                                                            array = u32 element type + u64 count + elements)
//   tensor infos: string name | u32 n_dims | u64 ne[n_dims] | u32 ggml type | u64 offset
//   zero padding to `general.alignment` (u32 KV, default 32), then the data section: each tensor at its
//   offset (relative to the section, a multiple of the alignment), zero padding between tensors.
// ne is the ggml shape, fastest dimension first: the reverse of the numpy/PyTorch shape.
//
// The writer streams: describe every KV and tensor first, then write the tensors' data one after another,
// so a converter holds one converted tensor at a time. The reader maps the file and validates every count,
// length, type, shape and offset before anything is used (a damaged or hostile file gives one message).
#ifndef LCC_GGUF_H
#define LCC_GGUF_H

#include <stddef.h>
#include <stdint.h>

#define LCC_GGUF_VERSION 3
#define LCC_GGUF_DEFAULT_ALIGNMENT 32
#define LCC_GGUF_MAX_DIMS 4

typedef enum {
  LCC_GGUF_UINT8 = 0, LCC_GGUF_INT8 = 1, LCC_GGUF_UINT16 = 2, LCC_GGUF_INT16 = 3, LCC_GGUF_UINT32 = 4,
  LCC_GGUF_INT32 = 5, LCC_GGUF_FLOAT32 = 6, LCC_GGUF_BOOL = 7, LCC_GGUF_STRING = 8, LCC_GGUF_ARRAY = 9,
  LCC_GGUF_UINT64 = 10, LCC_GGUF_INT64 = 11, LCC_GGUF_FLOAT64 = 12,
} lcc_gguf_vtype;

// ggml tensor types this code converts to and from fp32 (others are parsed, named, and refused on read).
enum { LCC_GGML_F32 = 0, LCC_GGML_F16 = 1, LCC_GGML_Q8_0 = 8, LCC_GGML_BF16 = 30 };

const char *lcc_ggml_type_name(int type);   // "F32", "Q8_0", ...; NULL for a type unknown here
// Bytes of n elements (n a multiple of the type's block size); 0 for an unknown type.
size_t lcc_ggml_nbytes(int type, int64_t n);
// fp32 <-> F32/F16/BF16/Q8_0 (round to nearest even; Q8_0: blocks of 32 with one F16 scale, as ggml).
// n must be a multiple of the block size. from_f32 may narrow in place (dst == src) for F32, F16 and BF16.
// Returns 0, or -1 for a type not in that list.
int lcc_ggml_from_f32(int type, const float *src, int64_t n, void *dst);
int lcc_ggml_to_f32(int type, const void *src, int64_t n, float *dst);

// ---- reading ----

typedef struct {
  const char *key;
  lcc_gguf_vtype type;
  lcc_gguf_vtype elem_type;   // ARRAY: the elements' type (arrays of arrays are refused)
  uint64_t n;                 // ARRAY: element count
  int64_t i;                  // integer and BOOL scalars (UINT64 above INT64_MAX is refused)
  double f;                   // FLOAT32 / FLOAT64 scalars
  const char *str;            // STRING: NUL-terminated copy (str_len bytes, which may include NULs)
  size_t str_len;
  const char **strs;          // ARRAY of STRING: n NUL-terminated copies
  const void *raw;            // ARRAY of numbers: n packed little-endian elements inside the file
} lcc_gguf_kv;

typedef struct {
  const char *name;
  int type;                          // ggml type
  int ndim;
  int64_t ne[LCC_GGUF_MAX_DIMS];     // ggml order (ne[0] fastest); unused dims are 1
  int64_t numel;
  uint64_t offset;                   // inside the data section
  size_t nbytes;
} lcc_gguf_tensor;

typedef struct {
  char *path;                  // for messages
  uint32_t version;
  int n_kv;
  lcc_gguf_kv *kv;             // in file order
  int n_tensors;
  lcc_gguf_tensor *tensors;    // in file order
  size_t alignment;
  size_t data_start;           // file offset of the data section
  size_t size;
  const unsigned char *base;   // the whole file (mapped by lcc_gguf_open, or the caller's buffer)
  int mapped;
  void *arena;                 // string copies (freed with the file)
} lcc_gguf_file;

// Opens and validates a file. NULL with lcc_error() naming the file and what is wrong.
lcc_gguf_file *lcc_gguf_open(const char *path);
// Validates a GGUF image held in memory (the fuzz target uses it); data must outlive the result.
lcc_gguf_file *lcc_gguf_parse(const void *data, size_t size, const char *what);
void lcc_gguf_close(lcc_gguf_file *f);

const lcc_gguf_kv *lcc_gguf_find(const lcc_gguf_file *f, const char *key);   // NULL when absent
const lcc_gguf_tensor *lcc_gguf_find_tensor(const lcc_gguf_file *f, const char *name);
const void *lcc_gguf_data(const lcc_gguf_file *f, const lcc_gguf_tensor *t);
// Element i of a numeric ARRAY as int64 / double.
int64_t lcc_gguf_arr_int(const lcc_gguf_kv *kv, uint64_t i);
double lcc_gguf_arr_float(const lcc_gguf_kv *kv, uint64_t i);

// Typed getters: 0, or -1 with lcc_error() "<file>: key '<key>': missing | expected ...".
// get_int takes any integer type; get_float FLOAT32 or FLOAT64.
int lcc_gguf_get_int(const lcc_gguf_file *f, const char *key, int64_t *out);
int lcc_gguf_get_float(const lcc_gguf_file *f, const char *key, double *out);
int lcc_gguf_get_str(const lcc_gguf_file *f, const char *key, const char **out);
// An array of `elem` elements (n_want > 0: exactly that many).
int lcc_gguf_get_arr(const lcc_gguf_file *f, const char *key, lcc_gguf_vtype elem, uint64_t n_want,
                     const lcc_gguf_kv **out);

// ---- writing ----

typedef struct lcc_gguf_writer lcc_gguf_writer;

lcc_gguf_writer *lcc_gguf_writer_new(void);
void lcc_gguf_writer_free(lcc_gguf_writer *w);   // also closes a file left open by an error
// Metadata, in the order it will appear. A key set twice is a programming error.
void lcc_gguf_set_u32(lcc_gguf_writer *w, const char *key, uint32_t v);
void lcc_gguf_set_f32(lcc_gguf_writer *w, const char *key, float v);
void lcc_gguf_set_bool(lcc_gguf_writer *w, const char *key, int v);
void lcc_gguf_set_str(lcc_gguf_writer *w, const char *key, const char *v);
void lcc_gguf_set_arr_i32(lcc_gguf_writer *w, const char *key, const int32_t *v, size_t n);
void lcc_gguf_set_arr_f32(lcc_gguf_writer *w, const char *key, const float *v, size_t n);
void lcc_gguf_set_arr_str(lcc_gguf_writer *w, const char *key, const char *const *v, size_t n);
// Tensor infos, in data order. ne in ggml order.
void lcc_gguf_add_tensor(lcc_gguf_writer *w, const char *name, int type, int ndim, const int64_t *ne);
// Writes header, metadata and tensor infos. Returns 0, or -1 with lcc_error() naming the file.
int lcc_gguf_write_begin(lcc_gguf_writer *w, const char *path);
// Writes the data of the next tensor (nbytes must be its size), then the padding.
int lcc_gguf_write_tensor(lcc_gguf_writer *w, const void *data, size_t nbytes);
// After every tensor: flushes, fsyncs and closes.
int lcc_gguf_write_end(lcc_gguf_writer *w);

#endif
