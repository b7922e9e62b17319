// Sizes (Qwen's smart_resize, the per-clip pixel budget) and the antialiased bicubic resize of RGB24
// pictures: Keys cubic with a = -0.5; when shrinking, the kernel widens by the scale factor and the taps of
// each output sample are normalized to sum 1. Two flavours, as LiveCC meets them:
//
// - lcc_resize_bicubic: torchvision `resize(uint8 tensor, BICUBIC, antialias=True)`, LiveCC's video path.
//   torchvision casts to float32, runs ATen's separable antialiased kernel (float32 weights and sums, width
//   pass then height pass, no rounding between them, a pass skipped when its size does not change), then
//   clamps to [0, 255] and rounds half to even. We follow it operation by operation, including where
//   PyTorch's x86-64 build fuses multiply-adds, and match it bit for bit there.
// - lcc_resize_bicubic_pil: PIL `Image.resize(BICUBIC)`, what qwen_vl_utils' fetch_image and HF's slow
//   Qwen2-VL processor use for still images. PIL computes the weights in double, converts them to 22-bit
//   fixed point, and rounds and clips to 8 bits after the width pass and again after the height pass.
//   Bit-exact with Pillow 11 (LiveCC used 10.2); Pillow 13 runs the height pass first for some shapes.
//
// The two differ where the cubic overshoots (PIL clips the intermediate): a few levels on sharp edges, up to
// ~20 on random noise.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "media.h"
#include "util.h"

// One axis: output i reads n[i] input samples starting at lo[i], with weights w[i*k .. i*k + n[i]).
typedef struct {
  int k;          // taps per output sample (room for the widest window)
  int *lo, *n;    // [out]
  float *wf;      // [out, k] torchvision weights (float32), or NULL
  int32_t *wi;    // [out, k] PIL weights in fixed point with PIL_BITS fraction bits, or NULL
} taps;

enum { PIL_BITS = 22 };   // PIL's PRECISION_BITS = 32 - 8 - 2

static void taps_free(taps *t) {
  free(t->lo);
  free(t->n);
  free(t->wf);
  free(t->wi);
}

// ATen's aa_filter for bicubic in float. PyTorch's x86 builds compile it with FMA contraction, so the
// products-plus-sums below are fused exactly where the compiler fuses them there; with plain multiply-adds
// about 1 weight in 3 differs in the last bit.
static float cubic_f(float x) {
  const float a = -0.5f;
  x = fabsf(x);
  if (x < 1.0f) return fmaf(fmaf(a + 2, x, -(a + 3)) * x, x, 1.0f);   // ((a+2)x - (a+3)) x x + 1
  if (x < 2.0f) return fmaf(fmaf(fmaf(a, x, -5 * a), x, 8 * a), x, -4 * a);   // ((a x - 5a) x + 8a) x - 4a
  return 0.0f;
}

// PIL's bicubic_filter, in double.
static double cubic_d(double x) {
  const double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

// torchvision/ATen (_compute_indices_min_size_weights_aa with scalar_t = float): the scale is
// float(in)/out, centre and support are float, the mixed float/double expressions are kept as written there.
static void taps_torch(int in, int out, taps *t) {
  float scale = (float)in / (float)out;
  float support = scale >= 1.0f ? (float)(2.0 * scale) : 2.0f;
  float invscale = scale >= 1.0f ? (float)(1.0 / scale) : 1.0f;
  t->k = (int)ceil(support) * 2 + 1;
  t->lo = lcc_malloc(sizeof(int) * out);
  t->n = lcc_malloc(sizeof(int) * out);
  t->wf = lcc_calloc((size_t)out * t->k, sizeof(float));
  t->wi = NULL;
  for (int i = 0; i < out; i++) {
    float center = (float)(scale * (i + 0.5));
    long lo = (long)(center - support + 0.5);
    long hi = (long)(center + support + 0.5);
    if (lo < 0) lo = 0;
    if (hi > in) hi = in;
    if (hi - lo > t->k) hi = lo + t->k;   // float rounding can add one tap; ATen clamps it the same way
    float *w = t->wf + (size_t)i * t->k, total = 0.0f;
    for (long j = 0; j < hi - lo; j++) {
      w[j] = cubic_f((float)(((double)((float)(j + lo) - center) + 0.5) * invscale));
      total += w[j];
    }
    if (total != 0.0f)
      for (long j = 0; j < hi - lo; j++) w[j] /= total;
    t->lo[i] = (int)lo;
    t->n[i] = (int)(hi - lo);
  }
}

// PIL's precompute_coeffs + normalize_coeffs_8bpc.
static void taps_pil(int in, int out, taps *t) {
  double scale = (double)in / out;
  double filterscale = scale < 1.0 ? 1.0 : scale;
  double support = 2.0 * filterscale;
  t->k = (int)ceil(support) * 2 + 1;
  t->lo = lcc_malloc(sizeof(int) * out);
  t->n = lcc_malloc(sizeof(int) * out);
  t->wf = NULL;
  t->wi = lcc_calloc((size_t)out * t->k, sizeof(int32_t));
  double *w = lcc_malloc(sizeof(double) * t->k);
  for (int i = 0; i < out; i++) {
    double center = (i + 0.5) * scale, total = 0.0;
    int lo = (int)(center - support + 0.5);
    int hi = (int)(center + support + 0.5);
    if (lo < 0) lo = 0;
    if (hi > in) hi = in;
    for (int j = 0; j < hi - lo; j++) {
      w[j] = cubic_d((j + lo - center + 0.5) / filterscale);
      total += w[j];
    }
    int32_t *wi = t->wi + (size_t)i * t->k;
    for (int j = 0; j < hi - lo; j++) {
      double v = total != 0.0 ? w[j] / total : w[j];
      wi[j] = (int32_t)(v < 0 ? -0.5 + v * (1 << PIL_BITS) : 0.5 + v * (1 << PIL_BITS));
    }
    t->lo[i] = lo;
    t->n[i] = hi - lo;
  }
  free(w);
}

// Width pass: [h, w, 3] uint8 -> [h, ow, 3] float. Each sum runs in tap order with fused multiply-adds, as
// ATen's compiled loop does (this makes us bit-exact with torchvision on x86-64; see tests/loader).
static void pass_u8_to_f(const uint8_t *src, int h, int w, const taps *t, int ow, float *dst) {
  float *line = lcc_malloc(sizeof(float) * w * 3);   // [w, 3] one source row as float
  for (int y = 0; y < h; y++) {
    const uint8_t *in = src + (size_t)y * w * 3;
    for (int i = 0; i < w * 3; i++) line[i] = in[i];
    float *o = dst + (size_t)y * ow * 3;
    for (int x = 0; x < ow; x++) {
      const float *wt = t->wf + (size_t)x * t->k;
      const float *s = line + (size_t)t->lo[x] * 3;
      float r = s[0] * wt[0], g = s[1] * wt[0], b = s[2] * wt[0];   // three independent chains
      for (int j = 1; j < t->n[x]; j++) {
        r = fmaf(s[j * 3], wt[j], r);
        g = fmaf(s[j * 3 + 1], wt[j], g);
        b = fmaf(s[j * 3 + 2], wt[j], b);
      }
      o[x * 3] = r, o[x * 3 + 1] = g, o[x * 3 + 2] = b;
    }
  }
  free(line);
}

// Height pass over rows of `row` values: float rows (the width pass's output) or, with no width pass, the
// uint8 source. Tap-outer loops keep the rows contiguous; each element still sums in tap order.
static void pass_rows_f(const float *src, const uint8_t *src8, size_t row, const taps *t, int oh, float *dst) {
  for (int y = 0; y < oh; y++) {
    const float *wt = t->wf + (size_t)y * t->k;
    float *o = dst + (size_t)y * row;
    for (int j = 0; j < t->n[y]; j++) {
      size_t base = (size_t)(t->lo[y] + j) * row;
      if (src) {
        const float *s = src + base;
        if (j == 0) for (size_t i = 0; i < row; i++) o[i] = s[i] * wt[0];
        else for (size_t i = 0; i < row; i++) o[i] = fmaf(s[i], wt[j], o[i]);
      } else {
        const uint8_t *s = src8 + base;
        if (j == 0) for (size_t i = 0; i < row; i++) o[i] = (float)s[i] * wt[0];
        else for (size_t i = 0; i < row; i++) o[i] = fmaf((float)s[i], wt[j], o[i]);
      }
    }
  }
}

static uint8_t round_clamp(float v) {
  if (v < 0.0f) v = 0.0f;
  if (v > 255.0f) v = 255.0f;
  return (uint8_t)nearbyintf(v);   // round half to even, as torch.round
}

void lcc_resize_bicubic(const uint8_t *src, int h, int w, uint8_t *dst, int oh, int ow) {
  size_t n = (size_t)oh * ow * 3;
  if (h == oh && w == ow) {
    memcpy(dst, src, n);
    return;
  }
  float *mid = NULL;   // [h, ow, 3] after the width pass
  if (w != ow) {
    taps tx;
    taps_torch(w, ow, &tx);
    mid = lcc_malloc(sizeof(float) * (size_t)h * ow * 3);
    pass_u8_to_f(src, h, w, &tx, ow, mid);
    taps_free(&tx);
  }
  float *out = mid;   // [oh, ow, 3]
  if (h != oh) {
    taps ty;
    taps_torch(h, oh, &ty);
    out = lcc_malloc(sizeof(float) * n);
    pass_rows_f(mid, mid ? NULL : src, (size_t)ow * 3, &ty, oh, out);
    taps_free(&ty);
  }
  for (size_t i = 0; i < n; i++) dst[i] = round_clamp(out[i]);
  if (out != mid) free(out);
  free(mid);
}

// PIL's clip8: drop the fraction bits (the accumulator started at one half), clamp to 0..255.
static uint8_t clip8(int64_t acc) {
  int64_t v = acc >> PIL_BITS;
  return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

static void pil_pass_x(const uint8_t *src, int h, int w, const taps *t, int ow, uint8_t *dst) {
  for (int y = 0; y < h; y++) {
    const uint8_t *line = src + (size_t)y * w * 3;
    for (int x = 0; x < ow; x++) {
      const int32_t *wt = t->wi + (size_t)x * t->k;
      const uint8_t *s = line + (size_t)t->lo[x] * 3;
      for (int c = 0; c < 3; c++) {
        int64_t acc = 1 << (PIL_BITS - 1);
        for (int j = 0; j < t->n[x]; j++) acc += (int64_t)s[j * 3 + c] * wt[j];
        dst[((size_t)y * ow + x) * 3 + c] = clip8(acc);
      }
    }
  }
}

static void pil_pass_y(const uint8_t *src, size_t row, const taps *t, int oh, uint8_t *dst) {
  for (int y = 0; y < oh; y++) {
    const int32_t *wt = t->wi + (size_t)y * t->k;
    const uint8_t *s = src + (size_t)t->lo[y] * row;
    for (size_t i = 0; i < row; i++) {
      int64_t acc = 1 << (PIL_BITS - 1);
      for (int j = 0; j < t->n[y]; j++) acc += (int64_t)s[(size_t)j * row + i] * wt[j];
      dst[(size_t)y * row + i] = clip8(acc);
    }
  }
}

void lcc_resize_bicubic_pil(const uint8_t *src, int h, int w, uint8_t *dst, int oh, int ow) {
  if (h == oh && w == ow) {
    memcpy(dst, src, (size_t)oh * ow * 3);
    return;
  }
  const uint8_t *cur = src;
  uint8_t *mid = NULL;   // [h, ow, 3] after the width pass
  if (w != ow) {
    taps tx;
    taps_pil(w, ow, &tx);
    mid = h != oh ? lcc_malloc((size_t)h * ow * 3) : dst;
    pil_pass_x(src, h, w, &tx, ow, mid);
    taps_free(&tx);
    cur = mid;
  }
  if (h != oh) {
    taps ty;
    taps_pil(h, oh, &ty);
    pil_pass_y(cur, (size_t)ow * 3, &ty, oh, dst);
    taps_free(&ty);
  }
  if (mid != dst) free(mid);
}

// Qwen's smart_resize (QWEN2VL.md 1.2), with the pixel bounds as doubles: qwen_vl_utils passes the video cap
// as total/nframes*2, a float, and beta = sqrt(h*w/max) sees its fraction.
static int smart_resize(int h, int w, int factor, double min_pixels, double max_pixels, int *oh, int *ow) {
  if (h <= 0 || w <= 0) return lcc_error("smart_resize: picture size %dx%d has a zero side", w, h);
  int lo = h < w ? h : w, hi = h < w ? w : h;
  if ((double)hi / lo > 200) return lcc_error("smart_resize: aspect ratio of %dx%d exceeds 200", w, h);
  double area = (double)h * w;
  int hb = (int)nearbyint((double)h / factor) * factor;   // Python round(): half to even
  int wb = (int)nearbyint((double)w / factor) * factor;
  if (hb < factor) hb = factor;
  if (wb < factor) wb = factor;
  if ((double)hb * wb > max_pixels) {
    double beta = sqrt(area / max_pixels);
    hb = (int)floor(h / beta / factor) * factor;
    wb = (int)floor(w / beta / factor) * factor;
    if (hb < factor) hb = factor;   // HF keeps a side of at least one factor; the floor may end below min_pixels
    if (wb < factor) wb = factor;
  } else if ((double)hb * wb < min_pixels) {
    double beta = sqrt(min_pixels / area);
    hb = (int)ceil(h * beta / factor) * factor;
    wb = (int)ceil(w * beta / factor) * factor;
  }
  *oh = hb;
  *ow = wb;
  return 0;
}

int lcc_smart_resize(int h, int w, int factor, long min_pixels, long max_pixels, int *oh, int *ow) {
  return smart_resize(h, w, factor, (double)min_pixels, (double)max_pixels, oh, ow);
}

// max(min(max_pixels, total_pixels / nframes * 2), int(min_pixels * 1.05)), in qwen_vl_utils' float.
static double clip_max_pixels(const lcc_video_budget *b, int nframes) {
  double cap = (double)b->total_pixels / nframes * 2;
  if (cap > (double)b->max_pixels) cap = (double)b->max_pixels;
  double floor_px = (double)(long)(b->min_pixels * 1.05);
  return cap > floor_px ? cap : floor_px;
}

long lcc_video_max_pixels(const lcc_video_budget *b, int nframes) {
  return (long)clip_max_pixels(b, nframes);
}

int lcc_video_clip_size(const lcc_video_budget *b, int h, int w, int nframes, int *oh, int *ow) {
  return smart_resize(h, w, b->factor, (double)b->min_pixels, clip_max_pixels(b, nframes), oh, ow);
}
