// The pictures of livecc-synth: a grey background and one antialiased shape per second.
#include <math.h>
#include <string.h>

#include "synth.h"

const char *const lcc_synth_colour_names[LCC_SYNTH_COLOURS] = {"red", "green", "blue", "yellow",
                                                               "orange", "purple", "white", "black"};
// Saturated or extreme colours: in some channel each is >= 65 away from the background's mean grey and
// >= 80 away from every other colour, so 4:2:0 chroma, compression and downscaling keep them apart.
const uint8_t lcc_synth_palette[LCC_SYNTH_COLOURS][3] = {
    {220, 30, 30}, {30, 170, 50}, {30, 60, 220}, {240, 220, 40},
    {250, 140, 20}, {140, 40, 180}, {245, 245, 245}, {20, 20, 20}};
const char *const lcc_synth_shape_names[LCC_SYNTH_SHAPES] = {"circle", "square", "triangle", "star",
                                                             "cross", "ring", "diamond", "heart"};

uint64_t lcc_synth_next(uint64_t *state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

double lcc_synth_uniform(uint64_t *state) { return (double)(lcc_synth_next(state) >> 11) * 0x1.0p-53; }

int lcc_synth_below(uint64_t *state, int n) { return (int)(lcc_synth_uniform(state) * n); }

static uint8_t clamp_u8(double v) { return v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)(v + 0.5); }

void lcc_synth_background(uint8_t *bg, int h, int w, uint64_t *rng) {
  double grey = 105 + 30 * lcc_synth_uniform(rng);   // 105..135: mid grey, far from every palette colour
  double tint[3];
  for (int c = 0; c < 3; c++) tint[c] = 12 * lcc_synth_uniform(rng) - 6;
  double angle = 2 * M_PI * lcc_synth_uniform(rng), amp = 8 + 8 * lcc_synth_uniform(rng);
  double gx = cos(angle), gy = sin(angle), half = 0.5 * sqrt((double)w * w + (double)h * h);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      double t = ((x + 0.5 - 0.5 * w) * gx + (y + 0.5 - 0.5 * h) * gy) / half;   // -1..1 along the gradient
      for (int c = 0; c < 3; c++) {
        int noise = lcc_synth_below(rng, 11) - 5;                                   // -5..5
        bg[(y * w + x) * 3 + c] = clamp_u8(grey + tint[c] + amp * t + noise);
      }
    }
}

// A five-pointed star with outer radius 1 and inner radius 0.45. The angle from the +y axis is folded onto
// [0, 36] degrees (from the nearest tip towards the next inner corner); the point is inside when it lies
// on the centre's side of the edge from the tip T = (1, 0) to the inner corner I.
static int in_star(float x, float y) {
  const float step = (float)(2 * M_PI / 5), ri = 0.45f;
  float rho = sqrtf(x * x + y * y), phi = atan2f(x, y);
  phi = fmodf(phi + 2 * (float)M_PI, step);
  float a = phi <= step / 2 ? phi : step - phi;
  float px = rho * cosf(a), py = rho * sinf(a);
  float ix = ri * cosf(step / 2), iy = ri * sinf(step / 2);
  return (ix - 1) * py - iy * (px - 1) >= 0;
}

// Shape membership in unit coordinates: centre at 0, radius 1, y pointing up.
static int inside(int shape, float x, float y) {
  float ax = fabsf(x), ay = fabsf(y), r2 = x * x + y * y;
  switch (shape) {
  case 0: return r2 <= 1;                                            // circle
  case 1: return ax <= 0.8f && ay <= 0.8f;                           // square
  case 2: return y >= -0.6f && y <= 1 - 1.75f * ax;                  // triangle, apex up
  case 3: return in_star(x, y);                                      // star
  case 4: return (ax <= 0.3f && ay <= 0.95f) || (ay <= 0.3f && ax <= 0.95f);   // cross
  case 5: return r2 <= 1 && r2 >= 0.55f * 0.55f;                     // ring
  case 6: return ax + ay <= 1;                                       // diamond
  default: {                                                         // heart: (X^2+Y^2-1)^3 <= X^2 Y^3
    float hx = 1.14f * x, hy = 1.12f * y + 0.12f, q = hx * hx + hy * hy - 1;
    return q * q * q <= hx * hx * hy * hy * hy;
  }
  }
}

void lcc_synth_draw(uint8_t *rgb, const uint8_t *bg, int h, int w, const lcc_synth_second *s, double u) {
  memcpy(rgb, bg, (size_t)h * w * 3);
  if (s->silent) return;
  float cx = s->x0 + (float)u * (s->x1 - s->x0), cy = s->y0 + (float)u * (s->y1 - s->y0), r = s->radius;
  int xa = (int)fmaxf(0, floorf(cx - r - 1)), xb = (int)fminf(w - 1, ceilf(cx + r + 1));
  int ya = (int)fmaxf(0, floorf(cy - r - 1)), yb = (int)fminf(h - 1, ceilf(cy + r + 1));
  const uint8_t *col = lcc_synth_palette[s->colour];
  for (int y = ya; y <= yb; y++)
    for (int x = xa; x <= xb; x++) {
      int cover = 0;   // 0..4 subsamples inside
      for (int sy = 0; sy < 2; sy++)
        for (int sx = 0; sx < 2; sx++)
          cover += inside(s->shape, (x + 0.25f + 0.5f * sx - cx) / r, -(y + 0.25f + 0.5f * sy - cy) / r);
      uint8_t *p = rgb + ((size_t)y * w + x) * 3;
      for (int c = 0; c < 3; c++) p[c] = (uint8_t)((p[c] * (4 - cover) + col[c] * cover + 2) / 4);
    }
}
