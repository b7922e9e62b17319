// Shard reader. Opening checks the root attributes, that every dataset exists with the right type and shape,
// and that the offset arrays cover their datasets exactly (their last entries); everything else about a
// sample (offsets in order and in range, items and frames consistent) is checked when it is read, so
// opening costs a few small reads however large the shard is.
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "shard_io.h"
#include "util.h"

struct lcc_shard {
  char *path;
  hid_t file;
  hid_t ds[LCC_DS_COUNT];
  hsize_t rows[LCC_DS_COUNT];   // first-axis length of each dataset
  hid_t str_type;               // variable-length string, the memory type of /source
  lcc_shard_meta meta;
  int64_t n;                    // samples
};

void lcc_sample_free(lcc_sample *s) {
  free(s->ids), free(s->mask), free(s->items), free(s->frame_data), free(s->frame_off), free(s->source);
  memset(s, 0, sizeof *s);
}

void lcc_shard_close(lcc_shard *s) {
  if (!s) return;
  for (int d = 0; d < LCC_DS_COUNT; d++)
    if (s->ds[d] >= 0) LCC_CHECK(H5Dclose(s->ds[d]) >= 0, "H5Dclose failed");
  if (s->file >= 0) LCC_CHECK(H5Fclose(s->file) >= 0, "H5Fclose failed");
  LCC_CHECK(H5Tclose(s->str_type) >= 0, "H5Tclose failed");
  free(s->path);
  free(s);
}

const lcc_shard_meta *lcc_shard_meta_of(const lcc_shard *s) { return &s->meta; }
int64_t lcc_shard_count(const lcc_shard *s) { return s->n; }

// The root attributes: format and version first, so a foreign file is named as such.
static int read_meta(lcc_shard *s) {
  const char *p = s->path;
  const hid_t f = s->file;
  lcc_shard_meta *m = &s->meta;
  char text[64];
  if (H5Aexists(f, "format") <= 0) return lcc_error("%s: not a livecc shard (no 'format' attribute)", p);
  if (lcc_h5_attr_read_str(p, f, "format", text, sizeof text)) return -1;
  if (strcmp(text, "livecc-shard")) return lcc_error("%s: not a livecc shard (format is '%s')", p, text);
  int32_t version, patch, merge, temporal, quality;
  if (lcc_h5_attr_read(p, f, "version", H5T_INTEGER, H5T_NATIVE_INT32, 0, &version)) return -1;
  if (version != LCC_SHARD_VERSION)
    return lcc_error("%s: shard version %d is not supported (this build reads version %d)", p, version, LCC_SHARD_VERSION);
  if (lcc_h5_attr_read(p, f, "tokenizer_hash", H5T_INTEGER, H5T_NATIVE_UINT64, 0, &m->tokenizer_hash) ||
      lcc_h5_attr_read(p, f, "patch_size", H5T_INTEGER, H5T_NATIVE_INT32, 0, &patch) ||
      lcc_h5_attr_read(p, f, "merge_size", H5T_INTEGER, H5T_NATIVE_INT32, 0, &merge) ||
      lcc_h5_attr_read(p, f, "temporal_patch_size", H5T_INTEGER, H5T_NATIVE_INT32, 0, &temporal) ||
      lcc_h5_attr_read(p, f, "fps", H5T_FLOAT, H5T_NATIVE_DOUBLE, 0, &m->fps) ||
      lcc_h5_attr_read(p, f, "image_mean", H5T_FLOAT, H5T_NATIVE_FLOAT, 3, m->image_mean) ||
      lcc_h5_attr_read(p, f, "image_std", H5T_FLOAT, H5T_NATIVE_FLOAT, 3, m->image_std) ||
      lcc_h5_attr_read(p, f, "jpeg_quality", H5T_INTEGER, H5T_NATIVE_INT32, 0, &quality) ||
      lcc_h5_attr_read(p, f, "n_samples", H5T_INTEGER, H5T_NATIVE_INT64, 0, &s->n) ||
      lcc_h5_attr_read_str(p, f, "frame_codec", text, sizeof text))
    return -1;
  m->patch_size = patch, m->merge_size = merge, m->temporal_patch_size = temporal, m->jpeg_quality = quality;
  int32_t vocab = 0;
  if (H5Aexists(f, "vocab_size") > 0 && lcc_h5_attr_read(p, f, "vocab_size", H5T_INTEGER, H5T_NATIVE_INT32, 0, &vocab)) return -1;
  m->vocab_size = vocab;
  if (!strcmp(text, "jpeg")) m->frame_codec = LCC_CODEC_JPEG;
  else if (!strcmp(text, "raw")) m->frame_codec = LCC_CODEC_RAW;
  else return lcc_error("%s: unknown frame_codec '%s' (expected jpeg or raw)", p, text);
  char why[256];
  if (lcc_shard_meta_check(m, why, sizeof why)) return lcc_error("%s: %s", p, why);
  if (s->n < 0) return lcc_error("%s: n_samples is %lld", p, (long long)s->n);
  return 0;
}

// The storage of dataset d is like the writer's: chunks of at most the writer's rows, no filters but
// shuffle and deflate, so a damaged file cannot make HDF5 allocate absurd chunks or run unknown filters.
static int check_storage(lcc_shard *s, int d) {
  const lcc_shard_dataset *L = &lcc_shard_datasets[d];
  hid_t dcpl = H5Dget_create_plist(s->ds[d]);
  LCC_CHECK(dcpl >= 0, "H5Dget_create_plist failed");
  hsize_t chunk[2] = {0, 0};
  const int rank = L->cols ? 2 : 1;
  int rc = 0;
  if (H5Pget_layout(dcpl) != H5D_CHUNKED || H5Pget_chunk(dcpl, 2, chunk) != rank || chunk[0] < 1 ||
      chunk[0] > L->chunk_rows || (L->cols && chunk[1] != (hsize_t)L->cols))
    rc = lcc_error("%s: dataset /%s is not stored in chunks of 1 to %llu rows", s->path, L->name,
                   (unsigned long long)L->chunk_rows);
  const int n = rc ? 0 : H5Pget_nfilters(dcpl);
  for (int i = 0; i < n && !rc; i++) {
    unsigned flags, cd[8];
    size_t n_cd = 8;
    char name[64];
    const H5Z_filter_t f = H5Pget_filter2(dcpl, (unsigned)i, &flags, &n_cd, cd, sizeof name, name, NULL);
    if (f != H5Z_FILTER_SHUFFLE && f != H5Z_FILTER_DEFLATE)
      rc = lcc_error("%s: dataset /%s uses filter %d (only shuffle and deflate are allowed)", s->path, L->name, (int)f);
  }
  if (n < 0) rc = lcc_error("%s: dataset /%s has an unreadable filter pipeline", s->path, L->name);
  LCC_CHECK(H5Pclose(dcpl) >= 0, "H5Pclose failed");
  return rc;
}

// Opens dataset d and checks its type class, shape and storage; records its length in s->rows[d].
static int open_dataset(lcc_shard *s, int d) {
  const lcc_shard_dataset *L = &lcc_shard_datasets[d];
  if (H5Lexists(s->file, L->name, H5P_DEFAULT) <= 0) return lcc_error("%s: missing dataset /%s", s->path, L->name);
  s->ds[d] = H5Dopen2(s->file, L->name, H5P_DEFAULT);
  if (s->ds[d] < 0) {
    char why[256];
    lcc_h5_reason(why, sizeof why);
    return lcc_error("%s: cannot open dataset /%s: %s", s->path, L->name, why);
  }
  hid_t type = H5Dget_type(s->ds[d]), space = H5Dget_space(s->ds[d]);
  LCC_CHECK(type >= 0 && space >= 0, "H5Dget_type / H5Dget_space failed");
  const int rank = L->cols ? 2 : 1;
  hsize_t dims[2] = {0, 0};
  const int got_rank = H5Sget_simple_extent_ndims(space);
  if (got_rank == rank) LCC_CHECK(H5Sget_simple_extent_dims(space, dims, NULL) == rank, "H5Sget_simple_extent_dims failed");
  const int type_ok = L->cls == H5T_STRING ? H5Tis_variable_str(type) > 0 : lcc_h5_plain_number(type);
  int rc = 0;
  if (H5Tget_class(type) != L->cls || !type_ok)
    rc = lcc_error("%s: dataset /%s has the wrong element type", s->path, L->name);
  else if (got_rank != rank || (L->cols && dims[1] != (hsize_t)L->cols))
    rc = L->cols ? lcc_error("%s: dataset /%s must be [n, %d]", s->path, L->name, L->cols)
                 : lcc_error("%s: dataset /%s must be one-dimensional", s->path, L->name);
  s->rows[d] = dims[0];
  if (!rc && L->cls == H5T_STRING) {   // read as stored: HDF5 does not convert between ASCII and UTF-8
    const H5T_cset_t cset = H5Tget_cset(type);
    if (cset < 0 || H5Tset_cset(s->str_type, cset) < 0)
      rc = lcc_error("%s: dataset /%s has an unknown character set", s->path, L->name);
  }
  LCC_CHECK(H5Tclose(type) >= 0 && H5Sclose(space) >= 0, "H5Tclose / H5Sclose failed");
  return rc ? rc : check_storage(s, d);
}

// what: the prefix of an error message ("<path>" or "<path>: sample <i>").
static int read_i64(lcc_shard *s, const char *what, int d, hsize_t start, hsize_t n, int64_t *out) {
  return lcc_h5_read_rows(what, s->ds[d], lcc_shard_datasets[d].name, H5T_NATIVE_INT64, 0, start, n, out);
}

// Dataset lengths agree with n_samples, and each offset array ends at its dataset's length.
static int check_lengths(lcc_shard *s) {
  const hsize_t n = (hsize_t)s->n;
  static const int per_sample[] = {LCC_DS_SOURCE, LCC_DS_CLIP, LCC_DS_SOURCE_LINE};
  static const int offsets[] = {LCC_DS_TOKEN_OFFSET, LCC_DS_ITEM_OFFSET, LCC_DS_SAMPLE_FRAME_OFFSET};
  for (int k = 0; k < 3; k++) {
    if (s->rows[per_sample[k]] != n)
      return lcc_error("%s: /%s has %llu entries, n_samples is %llu", s->path, lcc_shard_datasets[per_sample[k]].name,
                       (unsigned long long)s->rows[per_sample[k]], (unsigned long long)n);
    if (s->rows[offsets[k]] != n + 1)
      return lcc_error("%s: /%s has %llu entries, expected n_samples + 1 = %llu", s->path, lcc_shard_datasets[offsets[k]].name,
                       (unsigned long long)s->rows[offsets[k]], (unsigned long long)n + 1);
  }
  if (s->rows[LCC_DS_LOSS_MASK] != s->rows[LCC_DS_TOKENS])
    return lcc_error("%s: /loss_mask has %llu entries, /tokens %llu", s->path, (unsigned long long)s->rows[LCC_DS_LOSS_MASK],
                     (unsigned long long)s->rows[LCC_DS_TOKENS]);
  if (s->rows[LCC_DS_FRAME_OFFSET] < 1) return lcc_error("%s: /frame_offset is empty", s->path);
  // (offset dataset, the dataset it indexes, the length that its last entry must equal)
  const struct { int off, target; hsize_t end; } ends[] = {
      {LCC_DS_TOKEN_OFFSET, LCC_DS_TOKENS, s->rows[LCC_DS_TOKENS]},
      {LCC_DS_ITEM_OFFSET, LCC_DS_ITEMS, s->rows[LCC_DS_ITEMS]},
      {LCC_DS_SAMPLE_FRAME_OFFSET, LCC_DS_FRAME_OFFSET, s->rows[LCC_DS_FRAME_OFFSET] - 1},
      {LCC_DS_FRAME_OFFSET, LCC_DS_FRAMES, s->rows[LCC_DS_FRAMES]},
  };
  for (int k = 0; k < 4; k++) {
    int64_t last;
    if (read_i64(s, s->path, ends[k].off, s->rows[ends[k].off] - 1, 1, &last)) return -1;
    if (last < 0 || (hsize_t)last != ends[k].end)
      return lcc_error("%s: the last entry of /%s is %lld, but /%s has %llu", s->path, lcc_shard_datasets[ends[k].off].name,
                       (long long)last, lcc_shard_datasets[ends[k].target].name, (unsigned long long)ends[k].end);
  }
  return 0;
}

lcc_shard *lcc_shard_open(const char *path) {
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);   // per thread; we report our own messages
  struct stat st;
  if (stat(path, &st)) {
    lcc_error("%s: %s", path, strerror(errno));
    return NULL;
  }
  lcc_shard *s = lcc_calloc(1, sizeof *s);
  s->path = lcc_strdup(path);
  for (int d = 0; d < LCC_DS_COUNT; d++) s->ds[d] = -1;
  s->str_type = H5Tcopy(H5T_C_S1);
  LCC_CHECK(s->str_type >= 0 && H5Tset_size(s->str_type, H5T_VARIABLE) >= 0, "H5T string type failed");
  // Shards are immutable: no file locks (which some parallel file systems do not support).
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  LCC_CHECK(fapl >= 0 && H5Pset_file_locking(fapl, 0, 1) >= 0, "H5Pset_file_locking failed");
  s->file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
  int rc = 0;
  if (s->file < 0) {
    char why[256];
    lcc_h5_reason(why, sizeof why);
    rc = lcc_error("%s: not a readable HDF5 file (truncated?): %s", path, why);
  }
  LCC_CHECK(H5Pclose(fapl) >= 0, "H5Pclose failed");
  if (!rc) rc = read_meta(s);
  for (int d = 0; d < LCC_DS_COUNT && !rc; d++) rc = open_dataset(s, d);
  if (!rc) rc = check_lengths(s);
  if (rc) {
    lcc_shard_close(s);
    return NULL;
  }
  return s;
}

// Reads [start, start + n) of the offset dataset d and checks that the values do not decrease and stay
// within [0, limit]. -1: the read failed (lcc_error set); -2: bad values (`why` says which).
static int read_offsets(lcc_shard *s, const char *what, int d, hsize_t start, hsize_t n, int64_t *out, int64_t limit,
                        char *why, size_t cap) {
  if (read_i64(s, what, d, start, n, out)) return -1;
  for (hsize_t k = 0; k < n; k++)
    if (out[k] < 0 || out[k] > limit || (k && out[k] < out[k - 1]))
      return snprintf(why, cap, "/%s[%llu] = %lld is out of order or outside [0, %lld]", lcc_shard_datasets[d].name,
                      (unsigned long long)(start + k), (long long)out[k], (long long)limit), -2;
  return 0;
}

// Reads rows [start, start + n) of dataset d.
static int read_rows(lcc_shard *s, const char *what, int d, hid_t memtype, hsize_t start, hsize_t n, void *buf) {
  return lcc_h5_read_rows(what, s->ds[d], lcc_shard_datasets[d].name, memtype, lcc_shard_datasets[d].cols, start, n, buf);
}

// Reads sample i into out (zeroed). -1: an HDF5 read failed (lcc_error set, prefixed by `what`);
// -2: the data is inconsistent (`why` says how).
static int read_sample(lcc_shard *s, int64_t i, const char *what, lcc_sample *out, char *why, size_t cap) {
  int64_t tok[2], item[2], fr[2];   // [first, end) of this sample in /tokens, /items, /frame_offset
  int rc;
  if ((rc = read_offsets(s, what, LCC_DS_TOKEN_OFFSET, (hsize_t)i, 2, tok, (int64_t)s->rows[LCC_DS_TOKENS], why, cap)) ||
      (rc = read_offsets(s, what, LCC_DS_ITEM_OFFSET, (hsize_t)i, 2, item, (int64_t)s->rows[LCC_DS_ITEMS], why, cap)) ||
      (rc = read_offsets(s, what, LCC_DS_SAMPLE_FRAME_OFFSET, (hsize_t)i, 2, fr, (int64_t)s->rows[LCC_DS_FRAME_OFFSET] - 1, why, cap)))
    return rc;
  if (tok[1] - tok[0] > LCC_SHARD_MAX_TOKENS || item[1] - item[0] > LCC_SHARD_MAX_ITEMS || fr[1] - fr[0] > LCC_SHARD_MAX_FRAMES)
    return snprintf(why, cap, "%lld tokens, %lld items, %lld frames exceed the limits", (long long)(tok[1] - tok[0]),
                    (long long)(item[1] - item[0]), (long long)(fr[1] - fr[0])), -2;
  out->n_tokens = (int)(tok[1] - tok[0]), out->n_items = (int)(item[1] - item[0]), out->n_frames = (int)(fr[1] - fr[0]);
  out->frame_off = lcc_malloc(((size_t)out->n_frames + 1) * sizeof(int64_t));
  if ((rc = read_offsets(s, what, LCC_DS_FRAME_OFFSET, (hsize_t)fr[0], (hsize_t)out->n_frames + 1, out->frame_off,
                         (int64_t)s->rows[LCC_DS_FRAMES], why, cap)))
    return rc;
  const int64_t byte0 = out->frame_off[0], bytes = out->frame_off[out->n_frames] - byte0;
  if (bytes > LCC_SHARD_MAX_FRAME_BYTES) return snprintf(why, cap, "%lld bytes of frames exceed the limit", (long long)bytes), -2;
  for (int f = 0; f <= out->n_frames; f++) out->frame_off[f] -= byte0;
  out->ids = lcc_malloc((size_t)out->n_tokens * sizeof(int32_t));
  out->mask = lcc_malloc((size_t)out->n_tokens);
  out->frame_data = lcc_malloc((size_t)bytes);
  int32_t *items = lcc_calloc((size_t)out->n_items * LCC_ITEM_COLS, sizeof(int32_t));   // [n_items, 5]
  double clip[2] = {0, 0};   // start, end in seconds
  char *source = NULL;
  rc = read_rows(s, what, LCC_DS_TOKENS, H5T_NATIVE_INT32, (hsize_t)tok[0], (hsize_t)out->n_tokens, out->ids) ||
       read_rows(s, what, LCC_DS_LOSS_MASK, H5T_NATIVE_UINT8, (hsize_t)tok[0], (hsize_t)out->n_tokens, out->mask) ||
       read_rows(s, what, LCC_DS_ITEMS, H5T_NATIVE_INT32, (hsize_t)item[0], (hsize_t)out->n_items, items) ||
       read_rows(s, what, LCC_DS_FRAMES, H5T_NATIVE_UINT8, (hsize_t)byte0, (hsize_t)bytes, out->frame_data) ||
       read_rows(s, what, LCC_DS_CLIP, H5T_NATIVE_DOUBLE, (hsize_t)i, 1, clip) ||
       read_rows(s, what, LCC_DS_SOURCE_LINE, H5T_NATIVE_INT64, (hsize_t)i, 1, &out->source_line) ||
       read_rows(s, what, LCC_DS_SOURCE, s->str_type, (hsize_t)i, 1, &source) ? -1 : 0;
  out->items = lcc_malloc((size_t)out->n_items * sizeof(lcc_shard_item));
  for (int k = 0; k < out->n_items; k++) {
    const int32_t *row = items + (size_t)k * LCC_ITEM_COLS;
    out->items[k] = (lcc_shard_item){row[0], row[1], row[2], row[3], row[4]};
  }
  free(items);
  out->clip_start = clip[0], out->clip_end = clip[1];
  out->source = lcc_strdup(source ? source : "");
  if (source) LCC_CHECK(H5free_memory(source) >= 0, "H5free_memory failed");
  if (rc) return -1;
  return lcc_sample_check(out, &s->meta, why, cap) ? -2 : 0;
}

int lcc_shard_read(lcc_shard *s, int64_t i, lcc_sample *out) {
  memset(out, 0, sizeof *out);
  if (i < 0 || i >= s->n)
    return lcc_error("%s: sample %lld: out of range (the shard has %lld)", s->path, (long long)i, (long long)s->n);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);   // this thread may not be the one that opened the shard
  char what[1024], why[256];
  snprintf(what, sizeof what, "%s: sample %lld", s->path, (long long)i);
  const int rc = read_sample(s, i, what, out, why, sizeof why);
  if (rc == -2) lcc_error("%s: %s", what, why);
  if (rc) lcc_sample_free(out);
  return rc ? -1 : 0;
}
