// Position ids (canonical get_rope_index) and the RoPE angle tables of the decoder and the vision tower.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "util.h"

static int max3(int a, int b, int c) { return a > b ? (a > c ? a : c) : (b > c ? b : c); }

static int pad_kind(const lcc_config *cfg, int32_t id) {
  return id == cfg->image_token_id ? LCC_IMAGE : id == cfg->video_token_id ? LCC_VIDEO : -1;
}

int lcc_rope_index(const lcc_config *cfg, const int32_t *ids, int T, const lcc_vision_item *items, int n_items,
                   int32_t *pos, int *delta) {
  int32_t *pt = pos, *ph = pos + T, *pw = pos + 2 * T;
  const int ms = cfg->spatial_merge_size;
  int st = 0, next = 0;   // next unassigned token; next position (max so far + 1)
  for (int k = 0; k < n_items; k++) {
    const lcc_vision_item *it = &items[k];
    int ed = st;
    while (ed < T && pad_kind(cfg, ids[ed]) < 0) ed++;
    if (ed == T) return lcc_error("vision item %d (%s) has no pad tokens left in the sample", k, it->kind ? "video" : "image");
    if (pad_kind(cfg, ids[ed]) != it->kind)
      return lcc_error("token %d is a %s pad but vision item %d is a%s", ed, it->kind ? "image" : "video", k,
                       it->kind ? " video" : "n image");
    const int lt = it->t, lh = it->h / ms, lw = it->w / ms, n = lt * lh * lw;
    for (int i = st; i < ed; i++) pt[i] = ph[i] = pw[i] = next + (i - st);
    const int base = next + (ed - st);
    if (ed + n > T) return lcc_error("vision item %d needs %d pad tokens from token %d, past the sample end %d", k, n, ed, T);
    for (int j = 0; j < n; j++) {
      if (pad_kind(cfg, ids[ed + j]) != it->kind)
        return lcc_error("vision item %d needs %d contiguous pad tokens from token %d; token %d is not one", k, n, ed, ed + j);
      pt[ed + j] = base + j / (lh * lw);
      ph[ed + j] = base + (j / lw) % lh;
      pw[ed + j] = base + j % lw;
    }
    next = base + max3(lt - 1, lh - 1, lw - 1) + 1;
    st = ed + n;
  }
  for (int i = st; i < T; i++) {
    if (pad_kind(cfg, ids[i]) >= 0) return lcc_error("token %d is a vision pad token but every vision item is placed", i);
    pt[i] = ph[i] = pw[i] = next + (i - st);
  }
  *delta = (T > st ? next + (T - st) : next) - T;
  return 0;
}

void lcc_mrope_table(const lcc_config *cfg, const int32_t *pos, int T, float *cos_out, float *sin_out) {
  const int half = cfg->head_dim / 2, s0 = cfg->mrope_section[0], s1 = cfg->mrope_section[1];
  float *inv_freq = lcc_malloc((size_t)half * sizeof(float));
  for (int k = 0; k < half; k++) inv_freq[k] = (float)(1.0 / pow(cfg->rope_theta, 2.0 * k / cfg->head_dim));
  for (int t = 0; t < T; t++)
    for (int k = 0; k < half; k++) {
      const int axis = k < s0 ? 0 : k < s0 + s1 ? 1 : 2;
      const float angle = (float)pos[axis * T + t] * inv_freq[k];   // fp32 product, as HF
      cos_out[(size_t)t * half + k] = cosf(angle);
      sin_out[(size_t)t * half + k] = sinf(angle);
    }
  free(inv_freq);
}

void lcc_vision_rope_table(const lcc_config *cfg, const lcc_vision_item *items, int n_items, float *cos_out,
                           float *sin_out) {
  const int half = cfg->vit_head_dim / 2, quarter = half / 2, ms = cfg->spatial_merge_size;
  float *inv_freq = lcc_malloc((size_t)quarter * sizeof(float));
  for (int j = 0; j < quarter; j++) inv_freq[j] = (float)(1.0 / pow(cfg->vit_rope_theta, 2.0 * j / half));
  size_t row = 0;
  for (int k = 0; k < n_items; k++) {
    const int bh = items[k].h / ms, bw = items[k].w / ms;
    for (int tt = 0; tt < items[k].t; tt++)   // patch rows: (t, block row, block col, dy, dx)
      for (int by = 0; by < bh; by++)
        for (int bx = 0; bx < bw; bx++)
          for (int dy = 0; dy < ms; dy++)
            for (int dx = 0; dx < ms; dx++, row++) {
              const float y = (float)(by * ms + dy), x = (float)(bx * ms + dx);
              for (int i = 0; i < half; i++) {
                const float angle = i < quarter ? y * inv_freq[i] : x * inv_freq[i - quarter];
                cos_out[row * half + i] = cosf(angle);
                sin_out[row * half + i] = sinf(angle);
              }
            }
  }
  free(inv_freq);
}
