// safetensors files (https://huggingface.co/docs/safetensors): 8-byte little-endian header length, a JSON
// header {name: {"dtype", "shape", "data_offsets": [begin, end)}, "__metadata__": {...}}, then the data.
// Reading validates the whole header (offsets inside the file, sizes agree with dtype x shape, no overlap)
// before any tensor is used.
#ifndef LCC_SAFETENSORS_H
#define LCC_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

typedef enum { LCC_F32, LCC_F16, LCC_BF16, LCC_I32, LCC_I64, LCC_U8, LCC_F64, LCC_I8, LCC_I16, LCC_BOOL } lcc_dtype;

size_t lcc_dtype_size(lcc_dtype t);
const char *lcc_dtype_name(lcc_dtype t);   // safetensors spelling: "F32", "BF16", ...

#define LCC_MAX_DIMS 8

typedef struct {
  char *name;
  lcc_dtype dtype;
  int ndim;
  int64_t shape[LCC_MAX_DIMS];
  size_t numel;
  size_t offset, nbytes;   // byte range inside the data section
} lcc_st_tensor;

typedef struct {
  char *path;
  int n;                   // tensors, sorted by name
  lcc_st_tensor *tensors;
  char **meta_keys, **meta_values;   // __metadata__ string pairs
  int n_meta;
  size_t data_start;       // file offset of the data section (8 + header length)
  size_t file_size;
  void *map;               // read-only mapping of the whole file
} lcc_st_file;

// Opens and validates; NULL with lcc_error() naming the file (and the tensor) on any problem.
lcc_st_file *lcc_st_open(const char *path);
// Parses and validates a header held in memory (file_size = total size the header must fit in).
// Used by lcc_st_open and by the fuzz target. Returns 0 or -1 with lcc_error().
int lcc_st_parse_header(lcc_st_file *f, const char *header, size_t header_len, size_t file_size);
void lcc_st_close(lcc_st_file *f);

const lcc_st_tensor *lcc_st_find(const lcc_st_file *f, const char *name);
const void *lcc_st_data(const lcc_st_file *f, const lcc_st_tensor *t);
// Converts a floating tensor (F32, F16, BF16, F64) to fp32. Returns -1 with lcc_error() for other dtypes.
int lcc_st_read_f32(const lcc_st_file *f, const lcc_st_tensor *t, float *out);
const char *lcc_st_meta(const lcc_st_file *f, const char *key);

// Writer: describe tensors, then write the file in one pass. Data pointers must stay valid until write.
typedef struct {
  const char *name;
  lcc_dtype dtype;
  int ndim;
  int64_t shape[LCC_MAX_DIMS];
  const void *data;
} lcc_st_entry;

// Writes `path` (header with n_meta metadata pairs: meta_kv holds 2*n_meta strings key, value, key, value...;
// then the tensors in the order given).
// Returns 0, or -1 with lcc_error() naming the file. fsync()s the file before returning when do_fsync.
int lcc_st_write(const char *path, const lcc_st_entry *entries, int n, const char *const *meta_kv, int n_meta,
                 int do_fsync);

#endif
