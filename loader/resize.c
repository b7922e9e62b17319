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
#if defined(__SSE4_1__) || defined(__FMA__) || defined(__AVX__)
#include <immintrin.h>
#endif

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

// The torchvision resize as a plan made once per clip (taps and scratch rows reused for every frame; a
// fresh 3 MB float buffer per frame cost more in page faults than the arithmetic). Output rows are made one
// at a time: each needs the width-pass rows lo[y] .. lo[y] + n[y] - 1, made on first use (they stay cached
// for the neighbouring output rows), then its height-pass row, then round and clamp. Every value is the
// same float operation in the same order as ATen's two passes, so the bytes do not depend on this order.
struct lcc_resizer {
  int h, w, oh, ow;
  taps tx, ty;      // tx when w != ow, ty when h != oh
  float *line;      // [w * 3 + pad] one source row as float, zero padded
  float *mid;       // [h, ow * 3 + 4] width-pass rows (w != ow)
  float *acc;       // [ow * 3 + 4] one height-pass row
  int mid_done;     // width-pass rows made for the current frame
  size_t mid_row;   // floats per mid row
};

lcc_resizer *lcc_resizer_new(int h, int w, int oh, int ow) {
  lcc_resizer *r = lcc_calloc(1, sizeof(*r));
  r->h = h, r->w = w, r->oh = oh, r->ow = ow;
  r->mid_row = (size_t)ow * 3 + 4;
  if (w != ow) {
    taps_torch(w, ow, &r->tx);
    // The vector width pass reads 4 floats per tap (one past the pixel) and runs both pixels of a pair over
    // the longer of their windows: pad by k pixels and more, zeros, so every read is inside and finite.
    r->line = lcc_calloc((size_t)(w + r->tx.k + 2) * 3, sizeof(float));
    r->mid = lcc_malloc(sizeof(float) * r->mid_row * (h ? h : 1));
  }
  if (h != oh) taps_torch(h, oh, &r->ty);
  r->acc = lcc_calloc(r->mid_row, sizeof(float));
  return r;
}

void lcc_resizer_free(lcc_resizer *r) {
  if (!r) return;
  if (r->w != r->ow) taps_free(&r->tx);
  if (r->h != r->oh) taps_free(&r->ty);
  free(r->line);
  free(r->mid);
  free(r->acc);
  free(r);
}

// Width pass of one row: [w, 3] uint8 -> [ow, 3] float (+ 1 float of scratch past the end). Each sum runs
// in tap order, a product first and then fused multiply-adds, as ATen's compiled loop does (this makes us
// bit-exact with torchvision on x86-64; see tests/loader). The vector form keeps a pixel's r, g, b (and one
// lane of scratch) in one register: the same three chains.
static void width_row(lcc_resizer *r, const uint8_t *in, float *o) {
  const taps *t = &r->tx;
  float *restrict line = r->line;
  const int w = r->w, ow = r->ow, k = t->k;
  const int *restrict lo = t->lo, *restrict n = t->n;
  const float *restrict wf = t->wf;
  for (int i = 0; i < w * 3; i++) line[i] = in[i];
  int x = 0;
#if defined(__AVX__) && defined(__FMA__)
  // Two pixels per register, [r g b . | r g b .]; the shorter window of a pair runs on with its weights past
  // n, which are 0: fma(s, 0, a) adds a signed zero, which leaves a nonzero sum as it is (and a zero sum
  // rounds to 0 either way), so the bytes are those of the scalar loop below.
  for (; x + 1 < ow; x += 2) {
    const float *w0 = wf + (size_t)x * k, *w1 = w0 + k;
    const float *s0 = line + (size_t)lo[x] * 3, *s1 = line + (size_t)lo[x + 1] * 3;
    int m = n[x] > n[x + 1] ? n[x] : n[x + 1];
    __m256 a = _mm256_mul_ps(_mm256_loadu2_m128(s1, s0),
                             _mm256_set_m128(_mm_broadcast_ss(w1), _mm_broadcast_ss(w0)));
    for (int j = 1; j < m; j++)
      a = _mm256_fmadd_ps(_mm256_loadu2_m128(s1 + 3 * j, s0 + 3 * j),
                          _mm256_set_m128(_mm_broadcast_ss(w1 + j), _mm_broadcast_ss(w0 + j)), a);
    _mm_storeu_ps(o + 3 * x, _mm256_castps256_ps128(a));
    _mm_storeu_ps(o + 3 * x + 3, _mm256_extractf128_ps(a, 1));
  }
#endif
#if defined(__FMA__)
  for (; x < ow; x++) {
    const float *wt = wf + (size_t)x * k;
    const float *s = line + (size_t)lo[x] * 3;
    __m128 a = _mm_mul_ps(_mm_loadu_ps(s), _mm_set1_ps(wt[0]));
    for (int j = 1; j < n[x]; j++) a = _mm_fmadd_ps(_mm_loadu_ps(s + 3 * j), _mm_set1_ps(wt[j]), a);
    _mm_storeu_ps(o + 3 * x, a);
  }
#else
  for (; x < ow; x++) {
    const float *wt = wf + (size_t)x * k;
    const float *s = line + (size_t)lo[x] * 3;
    float rr = s[0] * wt[0], g = s[1] * wt[0], b = s[2] * wt[0];   // three independent chains
    for (int j = 1; j < n[x]; j++) {
      rr = fmaf(s[j * 3], wt[j], rr);
      g = fmaf(s[j * 3 + 1], wt[j], g);
      b = fmaf(s[j * 3 + 2], wt[j], b);
    }
    o[x * 3] = rr, o[x * 3 + 1] = g, o[x * 3 + 2] = b;
  }
#endif
}

static uint8_t round_clamp(float v) {
  if (v < 0.0f) v = 0.0f;
  if (v > 255.0f) v = 255.0f;
  return (uint8_t)nearbyintf(v);   // round half to even, as torch.round
}

// Clamp to [0, 255] and round half to even (cvtps rounds to nearest even under the default MXCSR, as
// nearbyintf does), n values.
static void round_row(const float *v, size_t n, uint8_t *dst) {
  size_t i = 0;
#if defined(__SSE4_1__)
  const __m128 lo = _mm_setzero_ps(), hi = _mm_set1_ps(255.0f);
  for (; i + 16 <= n; i += 16) {
    __m128i q[4];
    for (int k = 0; k < 4; k++)
      q[k] = _mm_cvtps_epi32(_mm_min_ps(_mm_max_ps(_mm_loadu_ps(v + i + 4 * k), lo), hi));
    __m128i w = _mm_packus_epi16(_mm_packus_epi32(q[0], q[1]), _mm_packus_epi32(q[2], q[3]));
    _mm_storeu_si128((__m128i *)(dst + i), w);
  }
#endif
  for (; i < n; i++) dst[i] = round_clamp(v[i]);
}

// Height pass of output row y over rows of `row` values: width-pass rows, or with no width pass the uint8
// source rows. Tap-outer loops keep the rows contiguous; each element still sums in tap order.
static void height_row(lcc_resizer *r, const uint8_t *src, size_t stride, int y, float *o) {
  const taps *t = &r->ty;
  const float *wt = t->wf + (size_t)y * t->k;
  size_t row = (size_t)r->ow * 3;
  for (int j = 0; j < t->n[y]; j++) {
    int sy = t->lo[y] + j;
    if (r->mid) {
      const float *s = r->mid + (size_t)sy * r->mid_row;
      if (j == 0) for (size_t i = 0; i < row; i++) o[i] = s[i] * wt[0];
      else for (size_t i = 0; i < row; i++) o[i] = fmaf(s[i], wt[j], o[i]);
    } else {
      const uint8_t *s = src + (size_t)sy * stride;
      if (j == 0) for (size_t i = 0; i < row; i++) o[i] = (float)s[i] * wt[0];
      else for (size_t i = 0; i < row; i++) o[i] = fmaf((float)s[i], wt[j], o[i]);
    }
  }
}

// Width-pass rows up to (not including) `upto`.
static void make_mid(lcc_resizer *r, const uint8_t *src, size_t stride, int upto) {
  for (; r->mid_done < upto; r->mid_done++)
    width_row(r, src + (size_t)r->mid_done * stride, r->mid + (size_t)r->mid_done * r->mid_row);
}

void lcc_resizer_run(lcc_resizer *r, const uint8_t *src, size_t src_stride, uint8_t *dst) {
  size_t row = (size_t)r->ow * 3;
  if (r->h == r->oh && r->w == r->ow) {
    for (int y = 0; y < r->h; y++) memcpy(dst + y * row, src + y * src_stride, row);
    return;
  }
  r->mid_done = 0;
  for (int y = 0; y < r->oh; y++) {
    const float *v = r->acc;
    if (r->h != r->oh) {
      if (r->mid) make_mid(r, src, src_stride, r->ty.lo[y] + r->ty.n[y]);
      height_row(r, src, src_stride, y, r->acc);
    } else {
      make_mid(r, src, src_stride, y + 1);
      v = r->mid + (size_t)y * r->mid_row;
    }
    round_row(v, row, dst + y * row);
  }
}

void lcc_resize_bicubic(const uint8_t *src, int h, int w, uint8_t *dst, int oh, int ow) {
  lcc_resizer *r = lcc_resizer_new(h, w, oh, ow);
  lcc_resizer_run(r, src, (size_t)w * 3, dst);
  lcc_resizer_free(r);
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
