// Qwen2-VL patch rows (QWEN2VL.md 1.2): frames [T, h, w, 3] uint8 -> normalized rows in the exact order of
// HF's Qwen2VLImageProcessor, so that the 4 patches of each merge window are consecutive rows.
#include "media.h"

const float lcc_clip_mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
const float lcc_clip_std[3] = {0.26862954f, 0.26130258f, 0.27577711f};

// value = (pixel/255 - mean) / std, rounded as HF does it: the rescale multiplies by 1/255 in double and
// casts to float32, then the normalization subtracts and divides in float32. 256 values per channel.
static void norm_table(const float mean[3], const float std[3], float lut[3][256]) {
  for (int c = 0; c < 3; c++)
    for (int p = 0; p < 256; p++) {
      float x = (float)((double)p * (1.0 / 255.0));
      lut[c][p] = (x - mean[c]) / std[c];
    }
}

void lcc_patchify(const uint8_t *rgb, int T, int h, int w, int patch, int merge, int temporal,
                  const float mean[3], const float std[3], float *out) {
  float lut[3][256];
  norm_table(mean, std, lut);
  int gt = (T + temporal - 1) / temporal;   // T = 1 (a still image) gives one temporal slot group
  int bh = h / (patch * merge), bw = w / (patch * merge);   // merge windows down and across
  size_t cols = (size_t)3 * temporal * patch * patch;
  size_t frame = (size_t)h * w * 3;
  float *row = out;
  for (int tt = 0; tt < gt; tt++)
    for (int by = 0; by < bh; by++)
      for (int bx = 0; bx < bw; bx++)
        for (int dy = 0; dy < merge; dy++)
          for (int dx = 0; dx < merge; dx++, row += cols) {
            int y0 = (by * merge + dy) * patch, x0 = (bx * merge + dx) * patch;
            float *o = row;   // column k = ((c*temporal + ti)*patch + py)*patch + px
            for (int c = 0; c < 3; c++)
              for (int ti = 0; ti < temporal; ti++) {
                int t = tt * temporal + ti;
                if (t > T - 1) t = T - 1;   // HF repeats the last frame to fill the temporal patch
                const uint8_t *src = rgb + t * frame + c;
                for (int py = 0; py < patch; py++) {
                  const uint8_t *line = src + ((size_t)(y0 + py) * w + x0) * 3;
                  for (int px = 0; px < patch; px++) *o++ = lut[c][line[px * 3]];
                }
              }
          }
}
