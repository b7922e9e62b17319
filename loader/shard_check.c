// What a shard's metadata and each sample must satisfy. The writer runs these before storing anything and
// the reader after reading, so a damaged file is reported with a reason instead of reaching the decoder.
#include <math.h>
#include <stdio.h>

#include "model.h"
#include "shard_io.h"

#define WHY(...) (snprintf(why, n, __VA_ARGS__), -1)

int lcc_shard_meta_check(const lcc_shard_meta *m, char *why, size_t n) {
  if (m->vocab_size < 0) return WHY("vocab_size %d is negative", m->vocab_size);
  if (m->patch_size < 1 || m->patch_size > 64) return WHY("patch_size %d outside 1..64", m->patch_size);
  if (m->merge_size < 1 || m->merge_size > 8) return WHY("merge_size %d outside 1..8", m->merge_size);
  if (m->temporal_patch_size < 1 || m->temporal_patch_size > 8)
    return WHY("temporal_patch_size %d outside 1..8", m->temporal_patch_size);
  if (!(m->fps > 0) || !isfinite(m->fps)) return WHY("fps %g is not a positive number", m->fps);
  for (int c = 0; c < 3; c++) {
    if (!isfinite(m->image_mean[c])) return WHY("image_mean[%d] is not finite", c);
    if (!(m->image_std[c] > 0) || !isfinite(m->image_std[c])) return WHY("image_std[%d] is not a positive number", c);
  }
  if (m->frame_codec != LCC_CODEC_JPEG && m->frame_codec != LCC_CODEC_RAW) return WHY("unknown frame codec %d", m->frame_codec);
  if (m->frame_codec == LCC_CODEC_JPEG && (m->jpeg_quality < 1 || m->jpeg_quality > 100))
    return WHY("jpeg_quality %d outside 1..100", m->jpeg_quality);
  return 0;
}

int lcc_item_frames(const lcc_shard_item *it, const lcc_shard_meta *m) {
  return it->kind == LCC_VIDEO ? m->temporal_patch_size * it->t : 1;
}

// One item: kind, grid within limits and divisible by the merge size, its pad tokens inside the sample and
// after the previous item's (*pad_end is where the previous item's pads end).
static int check_item(const lcc_shard_item *it, int k, const lcc_shard_meta *m, int n_tokens, int64_t *pad_end,
                      char *why, size_t n) {
  if (it->kind != LCC_IMAGE && it->kind != LCC_VIDEO) return WHY("item %d: unknown kind %d", k, it->kind);
  if (it->t < 1 || it->h < 1 || it->w < 1 || it->t > LCC_SHARD_MAX_GRID || it->h > LCC_SHARD_MAX_GRID ||
      it->w > LCC_SHARD_MAX_GRID)
    return WHY("item %d: grid %dx%dx%d outside 1..%d", k, it->t, it->h, it->w, LCC_SHARD_MAX_GRID);
  if (it->kind == LCC_IMAGE && it->t != 1) return WHY("item %d: an image has grid t = %d, not 1", k, it->t);
  if (it->h % m->merge_size || it->w % m->merge_size)
    return WHY("item %d: grid %dx%d is not a multiple of merge_size %d", k, it->h, it->w, m->merge_size);
  const int64_t pads = (int64_t)it->t * it->h * it->w / (m->merge_size * m->merge_size);
  if (it->first_pad < *pad_end || it->first_pad + pads > n_tokens)
    return WHY("item %d: pad tokens [%d, %lld) outside [%lld, %d)", k, it->first_pad, (long long)(it->first_pad + pads),
               (long long)*pad_end, n_tokens);
  *pad_end = it->first_pad + pads;
  return 0;
}

int lcc_sample_check(const lcc_sample *s, const lcc_shard_meta *m, char *why, size_t n) {
  if (s->n_tokens < 0 || s->n_tokens > LCC_SHARD_MAX_TOKENS) return WHY("%d tokens outside 0..%d", s->n_tokens, LCC_SHARD_MAX_TOKENS);
  if (s->n_items < 0 || s->n_items > LCC_SHARD_MAX_ITEMS) return WHY("%d items outside 0..%d", s->n_items, LCC_SHARD_MAX_ITEMS);
  if (s->n_frames < 0 || s->n_frames > LCC_SHARD_MAX_FRAMES) return WHY("%d frames outside 0..%d", s->n_frames, LCC_SHARD_MAX_FRAMES);
  for (int i = 0; i < s->n_tokens; i++)
    if (s->mask[i] > 1) return WHY("loss mask %d at token %d (must be 0 or 1)", s->mask[i], i);
  if (s->frame_off[0] != 0) return WHY("frame offsets start at %lld, not 0", (long long)s->frame_off[0]);
  for (int f = 0; f < s->n_frames; f++)
    if (s->frame_off[f + 1] <= s->frame_off[f]) return WHY("frame %d is empty or its offsets decrease", f);
  if (s->frame_off[s->n_frames] > LCC_SHARD_MAX_FRAME_BYTES)
    return WHY("%lld bytes of frames (limit %lld)", (long long)s->frame_off[s->n_frames], LCC_SHARD_MAX_FRAME_BYTES);
  int64_t pad_end = 0, frame = 0;
  for (int k = 0; k < s->n_items; k++) {
    const lcc_shard_item *it = &s->items[k];
    if (check_item(it, k, m, s->n_tokens, &pad_end, why, n)) return -1;
    const int nf = lcc_item_frames(it, m);
    if (frame + nf > s->n_frames) return WHY("item %d needs frames up to %lld, the sample has %d", k, (long long)(frame + nf), s->n_frames);
    const int64_t raw = (int64_t)it->h * m->patch_size * it->w * m->patch_size * 3;   // bytes of one RGB24 frame
    for (int f = 0; f < nf; f++, frame++) {
      const int64_t bytes = s->frame_off[frame + 1] - s->frame_off[frame];
      if (m->frame_codec == LCC_CODEC_RAW && bytes != raw)
        return WHY("raw frame %lld has %lld bytes, item %d needs %lld", (long long)frame, (long long)bytes, k, (long long)raw);
    }
  }
  if (frame != s->n_frames) return WHY("the items use %lld frames, the sample has %d", (long long)frame, s->n_frames);
  return 0;
}
