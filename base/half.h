// fp16 (IEEE binary16) and bf16 to and from fp32: round to nearest even, NaN stays NaN, overflow to
// infinity. The one definition for the formats (GGUF, safetensors, the HF export) and the bf16 CPU backend;
// inline because the backend converts every activation it touches.
#ifndef LCC_HALF_H
#define LCC_HALF_H

#include <stdint.h>
#include <string.h>

static inline uint16_t lcc_f32_to_bf16(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);   // NaN: keep sign, set quiet bit
  u += 0x7fffu + ((u >> 16) & 1u);                                              // round to nearest even
  return (uint16_t)(u >> 16);
}

static inline float lcc_bf16_to_f32(uint16_t b) {
  const uint32_t u = (uint32_t)b << 16;
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

static inline uint16_t lcc_f32_to_f16(float f) {
  uint32_t x;
  memcpy(&x, &f, sizeof x);
  const uint32_t sign = (x >> 16) & 0x8000u, a = x & 0x7fffffffu;
  if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u);     // NaN
  if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);    // >= 65520 rounds to infinity
  if (a >= 0x38800000u) {                                      // normal half: rebias 127 -> 15, round 23 -> 10 bits
    uint32_t h = ((a >> 23) - 112) << 10 | (a & 0x7fffffu) >> 13, rem = a & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++;    // a carry into the exponent is still right
    return (uint16_t)(sign | h);
  }
  const int shift = 126 - (int)(a >> 23);                      // subnormal half: value * 2^24, rounded
  if (shift > 24) return (uint16_t)sign;
  const uint32_t m = (a & 0x7fffffu) | 0x800000u, half = 1u << (shift - 1);
  uint32_t q = m >> shift, rem = m & ((1u << shift) - 1);
  if (rem > half || (rem == half && (q & 1))) q++;
  return (uint16_t)(sign | q);
}

static inline float lcc_f16_to_f32(uint16_t h) {
  const uint32_t sign = (uint32_t)(h >> 15) << 31, exp = h >> 10 & 0x1f, mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {   // zero or subnormal: mant * 2^-24, exact in fp32
    float v = (float)mant * 0x1p-24f;
    memcpy(&bits, &v, sizeof bits);
    bits |= sign;
  } else if (exp == 31) {   // inf, NaN (payload kept)
    bits = sign | 0x7f800000u | mant << 13;
  } else {
    bits = sign | (exp + 112) << 23 | mant << 13;
  }
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

#endif
