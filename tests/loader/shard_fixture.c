#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "media.h"
#include "model.h"
#include "shard_fixture.h"
#include "util.h"

void fx_meta(lcc_shard_meta *m, int codec) {
  *m = (lcc_shard_meta){.tokenizer_hash = 0x0123456789abcdefull, .vocab_size = FX_VIDEO_PAD + 1, .patch_size = 14, .merge_size = 2,
                        .temporal_patch_size = 2, .fps = 2.0, .frame_codec = codec, .jpeg_quality = 90};
  memcpy(m->image_mean, lcc_clip_mean, sizeof m->image_mean);
  memcpy(m->image_std, lcc_clip_std, sizeof m->image_std);
}

void fx_frame(int64_t tag, int frame, int H, int W, uint8_t *rgb) {
  uint32_t h = (uint32_t)(tag * 2654435761u + (uint32_t)frame * 40503u);
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++)
      for (int c = 0; c < 3; c++) {
        h = h * 1103515245u + 12345u;
        const int v = (int)(tag * 7 + frame * 13 + y * 3 + x * 2 + c * 60) % 256 + (int)(h >> 28) - 8;
        rgb[((size_t)y * W + x) * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
      }
}

// Appends one token to the sample's arrays (sized by the caller).
static void tok(lcc_sample *s, int32_t id, int trained) {
  s->ids[s->n_tokens] = id;
  s->mask[s->n_tokens++] = (uint8_t)trained;
}

void fx_sample(lcc_sample *s, const lcc_shard_meta *m, int64_t tag, int grid) {
  const int g = grid, kind = (int)(tag % 3);
  lcc_shard_item items[2];
  int n_items = 0;
  if (kind == 0) items[n_items++] = (lcc_shard_item){LCC_IMAGE, 1, g, g, 0}, items[n_items++] = (lcc_shard_item){LCC_VIDEO, 1, g, 2 * g, 0};
  if (kind == 1) items[n_items++] = (lcc_shard_item){LCC_VIDEO, 2, g, g, 0};
  const int unit = m->merge_size * m->merge_size;
  int max_tokens = 16;
  for (int k = 0; k < n_items; k++) max_tokens += 2 + items[k].t * items[k].h * items[k].w / unit;
  memset(s, 0, sizeof *s);
  s->ids = lcc_malloc((size_t)max_tokens * sizeof(int32_t));
  s->mask = lcc_malloc((size_t)max_tokens);
  tok(s, (int32_t)tag, 0);   // the tag that identifies the sample
  for (int i = 0; i < 3; i++) tok(s, 1000 + (int32_t)((tag * 31 + i) % 5000), 0);
  lcc_bytes frames = {0};
  int n_frames = 0;
  for (int k = 0; k < n_items; k++) {
    tok(s, 151652, 0);   // <|vision_start|>
    items[k].first_pad = s->n_tokens;
    for (int i = 0; i < items[k].t * items[k].h * items[k].w / unit; i++) tok(s, items[k].kind == LCC_VIDEO ? FX_VIDEO_PAD : FX_IMAGE_PAD, 0);
    tok(s, 151653, 0);   // <|vision_end|>
    n_frames += items[k].kind == LCC_VIDEO ? m->temporal_patch_size * items[k].t : 1;
  }
  for (int i = 0; i < 2; i++) tok(s, 2000 + (int32_t)((tag + i) % 3000), 1);
  tok(s, 151645, 1);   // <|im_end|>
  s->n_items = n_items;
  s->items = lcc_malloc((size_t)(n_items + 1) * sizeof(lcc_shard_item));
  memcpy(s->items, items, (size_t)n_items * sizeof(lcc_shard_item));
  s->n_frames = n_frames;
  s->frame_off = lcc_malloc(((size_t)n_frames + 1) * sizeof(int64_t));
  s->frame_off[0] = 0;
  for (int k = 0, f = 0; k < n_items; k++) {
    const int H = items[k].h * m->patch_size, W = items[k].w * m->patch_size;
    const int nf = items[k].kind == LCC_VIDEO ? m->temporal_patch_size * items[k].t : 1;
    uint8_t *rgb = lcc_malloc((size_t)H * W * 3);
    for (int j = 0; j < nf; j++, f++) {
      fx_frame(tag, f, H, W, rgb);
      if (m->frame_codec == LCC_CODEC_RAW) {
        if (frames.n + (size_t)H * W * 3 > frames.cap) frames.data = lcc_realloc(frames.data, frames.cap = 2 * (frames.n + (size_t)H * W * 3));
        memcpy(frames.data + frames.n, rgb, (size_t)H * W * 3);
        frames.n += (size_t)H * W * 3;
      } else {
        LCC_CHECK(!lcc_jpeg_encode(rgb, H, W, m->jpeg_quality, &frames), "%s", lcc_last_error());
      }
      s->frame_off[f + 1] = (int64_t)frames.n;
    }
    free(rgb);
  }
  s->frame_data = frames.data ? frames.data : lcc_malloc(1);
  char source[64];
  snprintf(source, sizeof source, "videos/clip_%05lld.mp4", (long long)tag);
  s->source = lcc_strdup(source);
  s->clip_start = 0.5 * (double)tag, s->clip_end = 0.5 * (double)tag + 2.0;
  s->source_line = tag + 1;
}

int fx_dataset(const char *dir, const int *counts, int n_shards, const lcc_shard_meta *m, int grid) {
  lcc_manifest man = {.dir = lcc_strdup(dir), .n = n_shards, .tokenizer_hash = m->tokenizer_hash};
  man.shards = lcc_calloc((size_t)n_shards, sizeof(lcc_manifest_entry));
  int64_t tag = 0;
  int rc = 0;
  for (int i = 0; i < n_shards && !rc; i++) {
    char name[32], path[4096];
    snprintf(name, sizeof name, "shard-%05d.h5", i);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    lcc_shard_writer *w = lcc_shard_create(path, m);
    if (!w) {
      rc = -1;
      break;
    }
    for (int j = 0; j < counts[i] && !rc; j++, tag++) {
      lcc_sample s;
      fx_sample(&s, m, tag, grid);
      rc = lcc_shard_add(w, &s);
      lcc_sample_free(&s);
    }
    if (lcc_shard_finish(w) && !rc) rc = -1;
    lcc_manifest_entry *e = &man.shards[i];
    e->file = lcc_strdup(name);
    e->n_samples = counts[i];
    if (lcc_file_crc64(path, &e->checksum, &e->bytes) && !rc) rc = -1;
  }
  if (!rc) rc = lcc_manifest_write(&man);
  lcc_manifest_free(&man);
  return rc;
}
