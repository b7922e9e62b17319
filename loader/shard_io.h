// Internal to the shard writer and reader: small HDF5 helpers and the checks every sample and every shard's
// metadata must pass. Helpers return 0 or -1 with lcc_error() naming `path` and the dataset or attribute.
// The caller holds whatever lock serializes its HDF5 use.
#ifndef LCC_SHARD_IO_H
#define LCC_SHARD_IO_H

#include <hdf5.h>

#include "shard.h"

// Per-sample limits that keep a damaged file from asking for absurd allocations.
#define LCC_SHARD_MAX_TOKENS (1 << 24)
#define LCC_SHARD_MAX_ITEMS (1 << 16)
#define LCC_SHARD_MAX_FRAMES (1 << 16)
#define LCC_SHARD_MAX_FRAME_BYTES (1ll << 30)
#define LCC_SHARD_MAX_GRID 8192   // grid t, h or w of one item, in patches

// The datasets of a shard (layout in shard.h) and how the writer stores them: chunks sized so one sample
// reads few of them; deflate + shuffle where it helps (gzip = 0: stored as is).
enum {
  LCC_DS_TOKENS, LCC_DS_LOSS_MASK, LCC_DS_TOKEN_OFFSET, LCC_DS_ITEMS, LCC_DS_ITEM_OFFSET, LCC_DS_FRAMES,
  LCC_DS_FRAME_OFFSET, LCC_DS_SAMPLE_FRAME_OFFSET, LCC_DS_SOURCE, LCC_DS_CLIP, LCC_DS_SOURCE_LINE, LCC_DS_COUNT
};
typedef struct {
  const char *name;
  H5T_class_t cls;      // type class the reader requires
  int cols;             // 0: one-dimensional, else [rows, cols]
  hsize_t chunk_rows;
  int gzip;             // deflate level (frames: only for raw frames, see the writer)
} lcc_shard_dataset;
extern const lcc_shard_dataset lcc_shard_datasets[LCC_DS_COUNT];
#define LCC_ITEM_COLS 5   // kind, grid t, grid h, grid w, first pad

// The innermost description on this thread's HDF5 error stack, or "unknown HDF5 error".
void lcc_h5_reason(char *buf, size_t n);

// Whether type is a standard integer (8 to 64 bits, signed or not) or IEEE float, either byte order: the
// reader refuses anything else (a damaged file may declare odd sizes that HDF5 1.10 converts unsafely).
int lcc_h5_plain_number(hid_t type);

// A chunked dataset that grows along its first axis: `cols` columns (0: one-dimensional), no rows yet.
// gzip: deflate level 1-9 or 0 for none; shuffle only applies with gzip.
hid_t lcc_h5_create_rows(const char *path, hid_t file, const char *name, hid_t type, int cols, hsize_t chunk_rows,
                         int gzip, int shuffle);
// Appends n rows (of `cols` columns) from buf at row *rows and advances *rows.
int lcc_h5_append(const char *path, hid_t ds, const char *name, hid_t memtype, int cols, hsize_t *rows, hsize_t n,
                  const void *buf);
// Reads rows [start, start + n) (of `cols` columns) into buf.
int lcc_h5_read_rows(const char *path, hid_t ds, const char *name, hid_t memtype, int cols, hsize_t start, hsize_t n,
                     void *buf);

// Attributes of an object: numeric arrays of n values (n = 0: a scalar) and strings.
int lcc_h5_attr_write(const char *path, hid_t obj, const char *name, hid_t memtype, hsize_t n, const void *v);
int lcc_h5_attr_write_str(const char *path, hid_t obj, const char *name, const char *s);
// Reads a numeric attribute of exactly max(n, 1) values (integer or float as `cls` says) converted to memtype.
int lcc_h5_attr_read(const char *path, hid_t obj, const char *name, H5T_class_t cls, hid_t memtype, hsize_t n, void *v);
// Reads a string attribute (fixed-length or variable-length) into buf[cap], NUL-terminated.
int lcc_h5_attr_read_str(const char *path, hid_t obj, const char *name, char *buf, size_t cap);

// Whether meta describes a geometry and codec this code handles; on failure `why` says what is wrong.
int lcc_shard_meta_check(const lcc_shard_meta *m, char *why, size_t n);
// A sample's internal consistency: item grids, pad positions, frame counts and sizes, loss mask values.
int lcc_sample_check(const lcc_sample *s, const lcc_shard_meta *m, char *why, size_t n);
// Frames that an item holds: temporal_patch_size * t for a video, 1 for an image.
int lcc_item_frames(const lcc_shard_item *it, const lcc_shard_meta *m);

#endif
