#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "media.h"
#include "model.h"
#include "pack.h"
#include "shard_io.h"
#include "util.h"

static int patch_dim(const lcc_shard_meta *m) { return 3 * m->temporal_patch_size * m->patch_size * m->patch_size; }

// Decodes item k's frames (the sample's frames from `frame` on) into rgb [frames, H, W, 3] and writes the
// item's t*h*w patch rows to rows [t*h*w, patch_dim].
static int item_rows(const lcc_pack_input *in, int k, int frame, uint8_t *rgb, float *rows) {
  const lcc_shard_item *it = &in->s.items[k];
  const lcc_shard_meta *m = &in->meta;
  const int nf = lcc_item_frames(it, m), H = it->h * m->patch_size, W = it->w * m->patch_size;
  const size_t frame_bytes = (size_t)H * W * 3;
  for (int j = 0; j < nf; j++) {
    const int64_t *off = in->s.frame_off + frame + j;
    const uint8_t *data = in->s.frame_data + off[0];
    if (m->frame_codec == LCC_CODEC_RAW) {
      memcpy(rgb + j * frame_bytes, data, frame_bytes);   // the reader checked the size
    } else if (lcc_jpeg_decode(data, (size_t)(off[1] - off[0]), H, W, rgb + j * frame_bytes)) {
      char why[768];
      snprintf(why, sizeof why, "%s", lcc_last_error());
      return lcc_error("%s: sample %lld: item %d frame %d: %s", in->shard, (long long)in->index, k, j, why);
    }
  }
  lcc_patchify(rgb, nf, H, W, m->patch_size, m->merge_size, m->temporal_patch_size, m->image_mean, m->image_std, rows);
  return 0;
}

// Writes all patch rows of sample `in` at rows; returns the number of rows, or -1 when a frame fails.
static int64_t sample_rows(const lcc_pack_input *in, uint8_t *rgb, float *rows) {
  const int P = patch_dim(&in->meta);
  int64_t n = 0;
  for (int k = 0, frame = 0; k < in->s.n_items; k++) {
    const lcc_shard_item *it = &in->s.items[k];
    if (item_rows(in, k, frame, rgb, rows + n * P)) return -1;
    frame += lcc_item_frames(it, &in->meta);
    n += (int64_t)it->t * it->h * it->w;
  }
  return n;
}

int lcc_pack_batch(lcc_pack_input *in, int n, int skip_corrupt, lcc_owned_batch *out, int64_t *skipped) {
  int64_t tokens = 0, items = 0, patches = 0;   // upper bounds: every readable sample
  size_t scratch = 0;                            // bytes of the largest item's frames
  int P = 0;
  for (int j = 0; j < n; j++) {
    if (!in[j].ok) continue;
    const lcc_sample *s = &in[j].s;
    const lcc_shard_meta *m = &in[j].meta;
    LCC_CHECK(!P || P == patch_dim(m), "samples of one batch differ in patch size");   // the loader checks shards
    P = patch_dim(m);
    tokens += s->n_tokens, items += s->n_items;
    for (int k = 0; k < s->n_items; k++) {
      const lcc_shard_item *it = &s->items[k];
      const size_t bytes = (size_t)lcc_item_frames(it, m) * it->h * it->w * m->patch_size * m->patch_size * 3;
      patches += (int64_t)it->t * it->h * it->w;
      if (bytes > scratch) scratch = bytes;
    }
  }
  memset(out, 0, sizeof *out);
  if (tokens > INT_MAX || patches > INT_MAX)
    return lcc_error("a micro-batch of %lld tokens and %lld patch rows is too large (limit %d each)", (long long)tokens,
                     (long long)patches, INT_MAX);
  out->ids = lcc_malloc((size_t)tokens * sizeof(int32_t));
  out->labels = lcc_malloc((size_t)tokens * sizeof(int32_t));
  out->sample_start = lcc_malloc(((size_t)n + 1) * sizeof(int32_t));
  out->items = lcc_malloc((size_t)items * sizeof(lcc_vision_item));
  out->pixels = lcc_malloc((size_t)patches * (size_t)P * sizeof(float));   // [patches, P]
  uint8_t *rgb = lcc_malloc(scratch);                                        // [frames, H, W, 3] of one item
  int ns = 0, nt = 0, ni = 0, rc = 0;
  int64_t np = 0;
  for (int j = 0; j < n && !rc; j++) {
    if (!in[j].ok) continue;
    const lcc_sample *s = &in[j].s;
    const int64_t rows = sample_rows(&in[j], rgb, out->pixels + np * P);
    if (rows < 0 && skip_corrupt) {   // the caller replaces it
      fprintf(stderr, "loader: skipped %s; replaced by the next sample\n", lcc_last_error());
      in[j].ok = 0;
      (*skipped)++;
      continue;
    }
    if (rows < 0) {
      rc = -1;
      break;
    }
    out->sample_start[ns++] = nt;
    for (int i = 0; i < s->n_tokens; i++) {
      out->ids[nt + i] = s->ids[i];
      out->labels[nt + i] = s->mask[i] ? s->ids[i] : -100;
    }
    for (int k = 0; k < s->n_items; k++)
      out->items[ni + k] = (lcc_vision_item){s->items[k].kind, s->items[k].t, s->items[k].h, s->items[k].w};
    nt += s->n_tokens, ni += s->n_items, np += rows;
  }
  out->sample_start[ns] = nt;
  free(rgb);
  if (rc) {
    lcc_batch_free(out);
    return -1;
  }
  lcc_batch_bind(out, ns, nt, ni, (int)np);
  return 0;
}
