// Small HDF5 helpers for the shard writer and reader: growable chunked datasets, row reads, attributes.
#include <string.h>

#include "shard_io.h"
#include "util.h"

const lcc_shard_dataset lcc_shard_datasets[LCC_DS_COUNT] = {
    [LCC_DS_TOKENS] = {"tokens", H5T_INTEGER, 0, 16384, 4},   // int32, 64 KB chunks
    [LCC_DS_LOSS_MASK] = {"loss_mask", H5T_INTEGER, 0, 16384, 4},
    [LCC_DS_TOKEN_OFFSET] = {"token_offset", H5T_INTEGER, 0, 4096, 4},
    [LCC_DS_ITEMS] = {"items", H5T_INTEGER, LCC_ITEM_COLS, 1024, 4},
    [LCC_DS_ITEM_OFFSET] = {"item_offset", H5T_INTEGER, 0, 4096, 4},
    [LCC_DS_FRAMES] = {"frames", H5T_INTEGER, 0, 1 << 18, 1},   // bytes, 256 KB chunks
    [LCC_DS_FRAME_OFFSET] = {"frame_offset", H5T_INTEGER, 0, 4096, 4},
    [LCC_DS_SAMPLE_FRAME_OFFSET] = {"sample_frame_offset", H5T_INTEGER, 0, 4096, 4},
    [LCC_DS_SOURCE] = {"source", H5T_STRING, 0, 1024, 4},
    [LCC_DS_CLIP] = {"clip", H5T_FLOAT, 2, 1024, 4},
    [LCC_DS_SOURCE_LINE] = {"source_line", H5T_INTEGER, 0, 1024, 4},
};

typedef struct {
  char *buf;
  size_t n;
} text_buf;

static herr_t innermost(unsigned n, const H5E_error2_t *e, void *data) {
  text_buf *t = data;
  if (n == 0 && e->desc && e->desc[0]) snprintf(t->buf, t->n, "%s", e->desc);
  return 0;
}

void lcc_h5_reason(char *buf, size_t n) {
  snprintf(buf, n, "unknown HDF5 error");
  text_buf t = {buf, n};
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost, &t);
}

// Records "<path>: <what> /<name>: <HDF5's reason>"; call right after the failing call (later calls clear
// the error stack).
static int h5_fail(const char *path, const char *what, const char *name) {
  char why[256];
  lcc_h5_reason(why, sizeof why);
  return lcc_error("%s: %s %s: %s", path, what, name, why);
}

static void close_space(hid_t s) {
  if (s >= 0) LCC_CHECK(H5Sclose(s) >= 0, "H5Sclose failed");
}

hid_t lcc_h5_create_rows(const char *path, hid_t file, const char *name, hid_t type, int cols, hsize_t chunk_rows,
                         int gzip, int shuffle) {
  const int rank = cols ? 2 : 1;
  hsize_t dims[2] = {0, (hsize_t)cols}, maxdims[2] = {H5S_UNLIMITED, (hsize_t)cols}, chunk[2] = {chunk_rows, (hsize_t)cols};
  hid_t space = H5Screate_simple(rank, dims, maxdims), dcpl = H5Pcreate(H5P_DATASET_CREATE);
  LCC_CHECK(space >= 0 && dcpl >= 0, "H5Screate_simple / H5Pcreate failed");
  LCC_CHECK(H5Pset_chunk(dcpl, rank, chunk) >= 0, "H5Pset_chunk failed for /%s", name);
  // no creation times in the file: the same samples give the same bytes (and CRC) on every run
  LCC_CHECK(H5Pset_obj_track_times(dcpl, 0) >= 0, "H5Pset_obj_track_times failed");
  if (gzip && shuffle) LCC_CHECK(H5Pset_shuffle(dcpl) >= 0, "H5Pset_shuffle failed");
  if (gzip) LCC_CHECK(H5Pset_deflate(dcpl, (unsigned)gzip) >= 0, "H5Pset_deflate failed");
  hid_t ds = H5Dcreate2(file, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  if (ds < 0) h5_fail(path, "cannot create dataset", name);
  close_space(space);
  LCC_CHECK(H5Pclose(dcpl) >= 0, "H5Pclose failed");
  return ds;
}

// Selects rows [start, start + n) of ds in a new file space and makes the matching memory space.
static int select_rows(hid_t ds, int cols, hsize_t start, hsize_t n, hid_t *fs, hid_t *ms) {
  hsize_t first[2] = {start, 0}, count[2] = {n, (hsize_t)cols};
  *ms = -1;
  *fs = H5Dget_space(ds);
  if (*fs < 0 || H5Sselect_hyperslab(*fs, H5S_SELECT_SET, first, NULL, count, NULL) < 0) return -1;
  *ms = H5Screate_simple(cols ? 2 : 1, count, NULL);
  return *ms < 0 ? -1 : 0;
}

int lcc_h5_append(const char *path, hid_t ds, const char *name, hid_t memtype, int cols, hsize_t *rows, hsize_t n,
                  const void *buf) {
  if (n == 0) return 0;
  hsize_t dims[2] = {*rows + n, (hsize_t)cols};
  hid_t fs = -1, ms = -1;
  int rc = H5Dset_extent(ds, dims) < 0 || select_rows(ds, cols, *rows, n, &fs, &ms) < 0 ||
           H5Dwrite(ds, memtype, ms, fs, H5P_DEFAULT, buf) < 0;
  if (rc) h5_fail(path, "cannot append to", name);
  close_space(fs), close_space(ms);
  if (rc) return -1;
  *rows += n;
  return 0;
}

int lcc_h5_read_rows(const char *path, hid_t ds, const char *name, hid_t memtype, int cols, hsize_t start, hsize_t n,
                     void *buf) {
  if (n == 0) return 0;
  hid_t fs = -1, ms = -1;
  int rc = select_rows(ds, cols, start, n, &fs, &ms) < 0 || H5Dread(ds, memtype, ms, fs, H5P_DEFAULT, buf) < 0;
  if (rc) h5_fail(path, "cannot read", name);
  close_space(fs), close_space(ms);
  return rc ? -1 : 0;
}

int lcc_h5_plain_number(hid_t type) {
  const hid_t plain[] = {H5T_STD_I8LE,  H5T_STD_I8BE,  H5T_STD_U8LE,  H5T_STD_U8BE,  H5T_STD_I16LE, H5T_STD_I16BE,
                         H5T_STD_U16LE, H5T_STD_U16BE, H5T_STD_I32LE, H5T_STD_I32BE, H5T_STD_U32LE, H5T_STD_U32BE,
                         H5T_STD_I64LE, H5T_STD_I64BE, H5T_STD_U64LE, H5T_STD_U64BE, H5T_IEEE_F32LE, H5T_IEEE_F32BE,
                         H5T_IEEE_F64LE, H5T_IEEE_F64BE};
  for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
    if (H5Tequal(type, plain[i]) > 0) return 1;
  return 0;
}

// ---- attributes ----

static int attr_write(const char *path, hid_t obj, const char *name, hid_t type, hid_t space, const void *v) {
  hid_t a = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
  int rc = a < 0 || H5Awrite(a, type, v) < 0;
  if (rc) h5_fail(path, "cannot write attribute", name);
  if (a >= 0) LCC_CHECK(H5Aclose(a) >= 0, "H5Aclose failed");
  close_space(space);
  return rc ? -1 : 0;
}

int lcc_h5_attr_write(const char *path, hid_t obj, const char *name, hid_t memtype, hsize_t n, const void *v) {
  hid_t space = n ? H5Screate_simple(1, &n, NULL) : H5Screate(H5S_SCALAR);
  LCC_CHECK(space >= 0, "H5Screate failed");
  return attr_write(path, obj, name, memtype, space, v);
}

int lcc_h5_attr_write_str(const char *path, hid_t obj, const char *name, const char *s) {
  hid_t type = H5Tcopy(H5T_C_S1), space = H5Screate(H5S_SCALAR);
  LCC_CHECK(type >= 0 && space >= 0 && H5Tset_size(type, strlen(s) + 1) >= 0, "H5T string type failed");
  int rc = attr_write(path, obj, name, type, space, s);
  LCC_CHECK(H5Tclose(type) >= 0, "H5Tclose failed");
  return rc;
}

// Opens attribute `name` of obj and reports its type class and number of values.
static hid_t attr_open(const char *path, hid_t obj, const char *name, H5T_class_t *cls, hssize_t *count, hid_t *type) {
  htri_t exists = H5Aexists(obj, name);
  if (exists <= 0) {
    lcc_error("%s: missing attribute '%s'", path, name);
    return -1;
  }
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  if (a < 0) {
    h5_fail(path, "cannot open attribute", name);
    return -1;
  }
  hid_t space = H5Aget_space(a);
  *type = H5Aget_type(a);
  LCC_CHECK(space >= 0 && *type >= 0, "H5Aget_space / H5Aget_type failed");
  *cls = H5Tget_class(*type);
  *count = H5Sget_simple_extent_npoints(space);
  close_space(space);
  return a;
}

static void attr_close(hid_t a, hid_t type) {
  LCC_CHECK(H5Tclose(type) >= 0 && H5Aclose(a) >= 0, "H5Tclose / H5Aclose failed");
}

int lcc_h5_attr_read(const char *path, hid_t obj, const char *name, H5T_class_t cls, hid_t memtype, hsize_t n, void *v) {
  H5T_class_t got;
  hssize_t count;
  hid_t type, a = attr_open(path, obj, name, &got, &count, &type);
  if (a < 0) return -1;
  const hssize_t want = n ? (hssize_t)n : 1;
  int rc = 0;
  if ((got != cls && !(cls == H5T_FLOAT && got == H5T_INTEGER)) || !lcc_h5_plain_number(type))
    rc = lcc_error("%s: attribute '%s' must be %s", path, name, cls == H5T_FLOAT ? "a number" : "an integer");
  else if (count != want)
    rc = lcc_error("%s: attribute '%s' has %lld values, expected %lld", path, name, (long long)count, (long long)want);
  else if (H5Aread(a, memtype, v) < 0)
    rc = h5_fail(path, "cannot read attribute", name);
  attr_close(a, type);
  return rc;
}

int lcc_h5_attr_read_str(const char *path, hid_t obj, const char *name, char *buf, size_t cap) {
  H5T_class_t cls;
  hssize_t count;
  hid_t type, a = attr_open(path, obj, name, &cls, &count, &type);
  if (a < 0) return -1;
  int rc = 0;
  htri_t vlen = cls == H5T_STRING ? H5Tis_variable_str(type) : 0;
  size_t size = H5Tget_size(type);
  if (cls != H5T_STRING || vlen < 0 || count != 1) {
    rc = lcc_error("%s: attribute '%s' must be one string", path, name);
  } else if (!vlen && size >= cap) {
    rc = lcc_error("%s: attribute '%s' is longer than %zu bytes", path, name, cap - 1);
  } else {
    hid_t mt = H5Tcopy(H5T_C_S1);
    LCC_CHECK(mt >= 0 && H5Tset_size(mt, vlen ? H5T_VARIABLE : size) >= 0, "H5T string type failed");
    char *p = NULL;
    if (H5Aread(a, mt, vlen ? (void *)&p : (void *)buf) < 0) {
      rc = h5_fail(path, "cannot read attribute", name);
    } else if (vlen) {
      snprintf(buf, cap, "%s", p ? p : "");
      LCC_CHECK(H5free_memory(p) >= 0, "H5free_memory failed");
    } else {
      buf[size] = 0;
    }
    LCC_CHECK(H5Tclose(mt) >= 0, "H5Tclose failed");
  }
  attr_close(a, type);
  return rc;
}
