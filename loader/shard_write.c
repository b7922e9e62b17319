// Shard writer: every sample is appended to growable chunked datasets as it arrives, so memory stays at
// one sample plus the offset arrays (8 bytes per sample and per frame), which are written at the end with
// the root attributes. A file without the attributes (a writer that died) is rejected by the reader.
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "shard_io.h"
#include "util.h"

// A growable int64 array: the offsets, kept in memory until finish.
typedef struct {
  int64_t *v;
  size_t n, cap;
} i64_list;

static void push(i64_list *l, int64_t x) {
  if (l->n == l->cap) l->v = lcc_realloc(l->v, (l->cap = l->cap ? 2 * l->cap : 1024) * sizeof(int64_t));
  l->v[l->n++] = x;
}

struct lcc_shard_writer {
  char *path;
  lcc_shard_meta meta;
  hid_t file;
  hid_t ds[LCC_DS_COUNT];
  hsize_t rows[LCC_DS_COUNT];     // rows written to each dataset
  hid_t str_type;                 // variable-length UTF-8 string
  i64_list token_off, item_off, sample_frame_off;   // [samples + 1]
  i64_list frame_off;                               // [frames + 1] byte offsets into /frames
  int failed;                     // an append failed: the datasets no longer agree
};

// The memory type of each dataset's elements.
static hid_t mem_type(const lcc_shard_writer *w, int d) {
  switch (d) {
  case LCC_DS_TOKENS: case LCC_DS_ITEMS: return H5T_NATIVE_INT32;
  case LCC_DS_LOSS_MASK: case LCC_DS_FRAMES: return H5T_NATIVE_UINT8;
  case LCC_DS_SOURCE: return w->str_type;
  case LCC_DS_CLIP: return H5T_NATIVE_DOUBLE;
  default: return H5T_NATIVE_INT64;   // offsets, source_line
  }
}

// Closes the datasets and the file and frees w. Closing flushes the last chunks, which fails on a full disk:
// that becomes the error when none was recorded yet (rc = 0). Returns rc or -1.
static int writer_close(lcc_shard_writer *w, int rc) {
  char why[256];
  for (int d = 0; d < LCC_DS_COUNT; d++)
    if (w->ds[d] >= 0 && H5Dclose(w->ds[d]) < 0 && !rc) {
      lcc_h5_reason(why, sizeof why);
      rc = lcc_error("%s: cannot close /%s: %s", w->path, lcc_shard_datasets[d].name, why);
    }
  if (w->file >= 0 && H5Fclose(w->file) < 0 && !rc) {
    lcc_h5_reason(why, sizeof why);
    rc = lcc_error("%s: cannot close: %s", w->path, why);
  }
  LCC_CHECK(H5Tclose(w->str_type) >= 0, "H5Tclose failed");
  free(w->token_off.v), free(w->item_off.v), free(w->sample_frame_off.v), free(w->frame_off.v);
  free(w->path);
  free(w);
  return rc;
}

lcc_shard_writer *lcc_shard_create(const char *path, const lcc_shard_meta *meta) {
  char why[256];
  if (lcc_shard_meta_check(meta, why, sizeof why)) {
    lcc_error("%s: bad shard metadata: %s", path, why);
    return NULL;
  }
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);   // per thread; we report our own messages
  lcc_shard_writer *w = lcc_calloc(1, sizeof *w);
  w->file = -1;
  w->path = lcc_strdup(path);
  w->meta = *meta;
  for (int d = 0; d < LCC_DS_COUNT; d++) w->ds[d] = -1;
  w->str_type = H5Tcopy(H5T_C_S1);
  LCC_CHECK(w->str_type >= 0 && H5Tset_size(w->str_type, H5T_VARIABLE) >= 0 &&
            H5Tset_cset(w->str_type, H5T_CSET_UTF8) >= 0, "H5T string type failed");
  w->file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (w->file < 0) {
    lcc_h5_reason(why, sizeof why);
    writer_close(w, lcc_error("%s: cannot create: %s", path, why));
    return NULL;
  }
  for (int d = 0; d < LCC_DS_COUNT; d++) {
    const lcc_shard_dataset *L = &lcc_shard_datasets[d];
    // JPEG bytes do not compress; raw RGB does, a little, at the fastest level.
    const int gzip = d == LCC_DS_FRAMES && meta->frame_codec == LCC_CODEC_JPEG ? 0 : L->gzip;
    w->ds[d] = lcc_h5_create_rows(path, w->file, L->name, mem_type(w, d), L->cols, L->chunk_rows, gzip, 1);
    if (w->ds[d] < 0) {
      writer_close(w, -1);
      return NULL;
    }
  }
  push(&w->token_off, 0), push(&w->item_off, 0), push(&w->sample_frame_off, 0), push(&w->frame_off, 0);
  return w;
}

static int append(lcc_shard_writer *w, int d, hsize_t n, const void *buf) {
  return lcc_h5_append(w->path, w->ds[d], lcc_shard_datasets[d].name, mem_type(w, d), lcc_shard_datasets[d].cols,
                       &w->rows[d], n, buf);
}

int lcc_shard_add(lcc_shard_writer *w, const lcc_sample *s) {
  const int64_t index = (int64_t)w->token_off.n - 1;
  if (w->failed) return lcc_error("%s: an earlier write failed", w->path);
  char why[256];
  if (lcc_sample_check(s, &w->meta, why, sizeof why))
    return lcc_error("%s: sample %lld: %s", w->path, (long long)index, why);
  int32_t *items = lcc_malloc((size_t)s->n_items * LCC_ITEM_COLS * sizeof(int32_t));   // [n_items, 5]
  for (int k = 0; k < s->n_items; k++) {
    const lcc_shard_item *it = &s->items[k];
    int32_t *row = items + (size_t)k * LCC_ITEM_COLS;
    row[0] = it->kind, row[1] = it->t, row[2] = it->h, row[3] = it->w, row[4] = it->first_pad;
  }
  const char *source = s->source ? s->source : "";
  const double clip[2] = {s->clip_start, s->clip_end};
  const int64_t frame_bytes = s->frame_off[s->n_frames];
  int rc = append(w, LCC_DS_TOKENS, (hsize_t)s->n_tokens, s->ids) || append(w, LCC_DS_LOSS_MASK, (hsize_t)s->n_tokens, s->mask) ||
           append(w, LCC_DS_ITEMS, (hsize_t)s->n_items, items) || append(w, LCC_DS_FRAMES, (hsize_t)frame_bytes, s->frame_data) ||
           append(w, LCC_DS_SOURCE, 1, &source) || append(w, LCC_DS_CLIP, 1, clip) ||
           append(w, LCC_DS_SOURCE_LINE, 1, &s->source_line);
  free(items);
  if (rc) {
    w->failed = 1;
    return -1;
  }
  const int64_t frame_base = w->frame_off.v[w->frame_off.n - 1];
  for (int f = 1; f <= s->n_frames; f++) push(&w->frame_off, frame_base + s->frame_off[f]);
  push(&w->token_off, (int64_t)w->rows[LCC_DS_TOKENS]);
  push(&w->item_off, (int64_t)w->rows[LCC_DS_ITEMS]);
  push(&w->sample_frame_off, (int64_t)w->frame_off.n - 1);
  return 0;
}

static int write_attributes(lcc_shard_writer *w) {
  const lcc_shard_meta *m = &w->meta;
  const char *path = w->path;
  const hid_t f = w->file;
  const int32_t version = LCC_SHARD_VERSION, patch = m->patch_size, merge = m->merge_size;
  const int32_t temporal = m->temporal_patch_size, quality = m->jpeg_quality, vocab = m->vocab_size;
  const int64_t n = (int64_t)w->token_off.n - 1;
  return lcc_h5_attr_write_str(path, f, "format", "livecc-shard") ||
         lcc_h5_attr_write(path, f, "version", H5T_NATIVE_INT32, 0, &version) ||
         lcc_h5_attr_write(path, f, "tokenizer_hash", H5T_NATIVE_UINT64, 0, &m->tokenizer_hash) ||
         lcc_h5_attr_write(path, f, "vocab_size", H5T_NATIVE_INT32, 0, &vocab) ||
         lcc_h5_attr_write(path, f, "patch_size", H5T_NATIVE_INT32, 0, &patch) ||
         lcc_h5_attr_write(path, f, "merge_size", H5T_NATIVE_INT32, 0, &merge) ||
         lcc_h5_attr_write(path, f, "temporal_patch_size", H5T_NATIVE_INT32, 0, &temporal) ||
         lcc_h5_attr_write(path, f, "fps", H5T_NATIVE_DOUBLE, 0, &m->fps) ||
         lcc_h5_attr_write(path, f, "image_mean", H5T_NATIVE_FLOAT, 3, m->image_mean) ||
         lcc_h5_attr_write(path, f, "image_std", H5T_NATIVE_FLOAT, 3, m->image_std) ||
         lcc_h5_attr_write_str(path, f, "frame_codec", m->frame_codec == LCC_CODEC_JPEG ? "jpeg" : "raw") ||
         lcc_h5_attr_write(path, f, "jpeg_quality", H5T_NATIVE_INT32, 0, &quality) ||
         lcc_h5_attr_write(path, f, "n_samples", H5T_NATIVE_INT64, 0, &n) ? -1 : 0;
}

int lcc_shard_finish(lcc_shard_writer *w) {
  int rc = w->failed ? lcc_error("%s: an earlier write failed", w->path) : 0;
  if (!rc)
    rc = append(w, LCC_DS_TOKEN_OFFSET, w->token_off.n, w->token_off.v) ||
         append(w, LCC_DS_ITEM_OFFSET, w->item_off.n, w->item_off.v) ||
         append(w, LCC_DS_FRAME_OFFSET, w->frame_off.n, w->frame_off.v) ||
         append(w, LCC_DS_SAMPLE_FRAME_OFFSET, w->sample_frame_off.n, w->sample_frame_off.v) || write_attributes(w) ? -1 : 0;
  return writer_close(w, rc);
}
