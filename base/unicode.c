// Lookups over the generated tables (binary searches) and NFC: canonical decomposition, canonical ordering,
// canonical composition (UAX #15), with the Hangul syllables done algorithmically. Text that passes the quick
// check (no code point with a nonzero combining class or NFC_Quick_Check No/Maybe) is returned as it is.
#include "unicode.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

// Hangul syllable arithmetic (Unicode chapter 3.12).
#define HANGUL_S 0xAC00u
#define HANGUL_L 0x1100u
#define HANGUL_V 0x1161u
#define HANGUL_T 0x11A7u
#define HANGUL_L_COUNT 19u
#define HANGUL_V_COUNT 21u
#define HANGUL_T_COUNT 28u
#define HANGUL_S_COUNT (HANGUL_L_COUNT * HANGUL_V_COUNT * HANGUL_T_COUNT)
#define MAX_DECOMP 4   // longest full canonical decomposition (e.g. U+1F82; the generator asserts it)
#define FIRST_UNSTABLE 0x300u   // every code point below passes the NFC quick check

static int range_value(const lcc_uni_range *t, int n, uint32_t cp) {
  int lo = 0, hi = n - 1;
  while (lo <= hi) {
    int mid = (lo + hi) / 2;
    if (cp < t[mid].lo) hi = mid - 1;
    else if (cp > t[mid].hi) lo = mid + 1;
    else return t[mid].v;
  }
  return 0;
}

int lcc_uni_class_of(uint32_t cp) {
  if (cp < 0x80) {
    if ((cp | 0x20) - 'a' < 26) return LCC_UNI_LETTER;
    if (cp - '0' < 10) return LCC_UNI_NUMBER;
    if (cp == ' ' || cp - '\t' < 5) return LCC_UNI_SPACE;
    return LCC_UNI_OTHER;
  }
  return range_value(lcc_uni_class, lcc_uni_class_n, cp);
}

int lcc_uni_ccc_of(uint32_t cp) { return cp < FIRST_UNSTABLE ? 0 : range_value(lcc_uni_ccc, lcc_uni_ccc_n, cp); }

static int nfc_unstable(uint32_t cp) {
  return cp >= FIRST_UNSTABLE && range_value(lcc_uni_nfc_qc, lcc_uni_nfc_qc_n, cp);
}

size_t lcc_utf8_valid_prefix(const char *str, size_t len) {
  const unsigned char *s = (const unsigned char *)str;
  size_t i = 0;
  while (i < len) {
    uint64_t w;
    if (i + 8 <= len && (memcpy(&w, s + i, 8), !(w & 0x8080808080808080ull))) {   // 8 ASCII bytes at once
      i += 8;
      continue;
    }
    unsigned c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t n = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (n == 0 || i + n > len) return i;
    for (size_t k = 1; k < n; k++)
      if ((s[i + k] & 0xC0) != 0x80) return i;
    unsigned c1 = s[i + 1];   // overlong 3/4-byte forms, surrogates, beyond U+10FFFF
    if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 > 0x9F) || (c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 > 0x8F))
      return i;
    i += n;
  }
  return i;
}

int lcc_utf8_encode(uint32_t cp, char out[4]) {
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (char)(0xC0 | cp >> 6), out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (char)(0xE0 | cp >> 12), out[1] = (char)(0x80 | (cp >> 6 & 0x3F)), out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (char)(0xF0 | cp >> 18), out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
  out[2] = (char)(0x80 | (cp >> 6 & 0x3F)), out[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

// Writes the full canonical decomposition of cp to out (at most MAX_DECOMP); returns its length.
static int decompose(uint32_t cp, uint32_t *out) {
  if (cp - HANGUL_S < HANGUL_S_COUNT) {
    uint32_t s = cp - HANGUL_S, t = s % HANGUL_T_COUNT;
    out[0] = HANGUL_L + s / (HANGUL_V_COUNT * HANGUL_T_COUNT);
    out[1] = HANGUL_V + s % (HANGUL_V_COUNT * HANGUL_T_COUNT) / HANGUL_T_COUNT;
    if (t == 0) return 2;
    out[2] = HANGUL_T + t;
    return 3;
  }
  int lo = 0, hi = cp < 0xC0 ? -1 : lcc_uni_decomps_n - 1;   // nothing below U+00C0 decomposes
  while (lo <= hi) {
    int mid = (lo + hi) / 2;
    const lcc_uni_decomp *d = &lcc_uni_decomps[mid];
    if (cp < d->cp) hi = mid - 1;
    else if (cp > d->cp) lo = mid + 1;
    else {
      memcpy(out, &lcc_uni_decomp_pool[d->off], d->len * sizeof(uint32_t));
      return d->len;
    }
  }
  out[0] = cp;
  return 1;
}

// The primary composite of (a, b), or 0 when there is none.
static uint32_t compose(uint32_t a, uint32_t b) {
  if (a - HANGUL_L < HANGUL_L_COUNT && b - HANGUL_V < HANGUL_V_COUNT)
    return HANGUL_S + ((a - HANGUL_L) * HANGUL_V_COUNT + (b - HANGUL_V)) * HANGUL_T_COUNT;
  if (a - HANGUL_S < HANGUL_S_COUNT && (a - HANGUL_S) % HANGUL_T_COUNT == 0 && b - HANGUL_T - 1 < HANGUL_T_COUNT - 1)
    return a + (b - HANGUL_T);
  int lo = 0, hi = lcc_uni_comps_n - 1;
  while (lo <= hi) {
    int mid = (lo + hi) / 2;
    const lcc_uni_comp *c = &lcc_uni_comps[mid];
    if (a < c->first || (a == c->first && b < c->second)) hi = mid - 1;
    else if (a > c->first || b > c->second) lo = mid + 1;
    else return c->composite;
  }
  return 0;
}

// Entries of buf->cps pack a code point (21 bits) with its combining class (bits 24-31).
#define CP(e) ((e) & 0x1FFFFFu)
#define CCC(e) ((e) >> 24)

// Decomposes s[0..len) into cps in canonical order; returns the count.
static size_t decompose_ordered(const unsigned char *s, size_t len, uint32_t *cps) {
  size_t n = 0;
  for (size_t i = 0; i < len;) {
    uint32_t cp, d[MAX_DECOMP];
    i += (size_t)lcc_utf8_decode(s + i, &cp);
    int nd = cp < 0xC0 ? (d[0] = cp, 1) : decompose(cp, d);
    for (int k = 0; k < nd; k++) {
      uint32_t ccc = (uint32_t)lcc_uni_ccc_of(d[k]), e = d[k] | ccc << 24;
      size_t j = n++;
      // Canonical ordering: a mark moves before the marks of higher class (stable: equal classes keep order).
      while (ccc && j > 0 && CCC(cps[j - 1]) > ccc) {
        cps[j] = cps[j - 1];
        j--;
      }
      cps[j] = e;
    }
  }
  return n;
}

// Canonical composition in place; returns the new count.
static size_t compose_all(uint32_t *cps, size_t n) {
  size_t out = 0;
  long starter = -1;      // index in the output of the last starter (ccc 0), -1 before the first
  uint32_t last_ccc = 0;  // class of the last character output
  for (size_t i = 0; i < n; i++) {
    uint32_t cp = CP(cps[i]), ccc = CCC(cps[i]);
    // Not blocked: directly after the starter, or every character between has a lower nonzero class.
    if (starter >= 0 && ((long)out - 1 == starter || (last_ccc != 0 && last_ccc < ccc))) {
      uint32_t c = compose(CP(cps[starter]), cp);
      if (c) {
        cps[starter] = c;   // a composite of a starter is a starter (ccc 0)
        continue;
      }
    }
    if (ccc == 0) starter = (long)out;
    cps[out++] = cps[i];
    last_ccc = ccc;
  }
  return out;
}

// Index of the first character at or after i that fails the quick check (len when none); *prev is the start of
// the character before it (i when it is the character at i).
static size_t next_unstable(const unsigned char *s, size_t i, size_t len, size_t *prev) {
  *prev = i;
  while (i < len) {
    if (s[i] < 0x80) {
      *prev = i++;
      continue;
    }
    uint32_t cp;
    int n = lcc_utf8_decode(s + i, &cp);
    if (nfc_unstable(cp)) return i;
    *prev = i;
    i += (size_t)n;
  }
  return len;
}

static void reserve_out(lcc_nfc_buf *buf, size_t n) {
  if (buf->cap_out >= n) return;
  buf->cap_out = n > 2 * buf->cap_out ? n : 2 * buf->cap_out;
  buf->out = lcc_realloc(buf->out, buf->cap_out);
}

// Appends NFC of s[0..len) to buf->out at o; returns the new end.
static size_t nfc_region(const unsigned char *s, size_t len, lcc_nfc_buf *buf, size_t o) {
  if (buf->cap_cps < len * MAX_DECOMP) {
    buf->cap_cps = len * MAX_DECOMP;
    buf->cps = lcc_realloc(buf->cps, buf->cap_cps * sizeof(uint32_t));
  }
  size_t n = compose_all(buf->cps, decompose_ordered(s, len, buf->cps));
  reserve_out(buf, o + 4 * n);
  for (size_t k = 0; k < n; k++) o += (size_t)lcc_utf8_encode(CP(buf->cps[k]), buf->out + o);
  return o;
}

// A character that passes the quick check (ccc 0, NFC_QC Yes) composes with nothing before it, so the text
// splits before each such character into parts normalized independently. Only the parts holding a character
// that fails the check (with the character before it, which it may compose with) go through nfc_region.
size_t lcc_nfc(const char *str, size_t len, lcc_nfc_buf *buf, const char **out) {
  const unsigned char *s = (const unsigned char *)str;
  size_t i;   // s[0..i) is done
  if (next_unstable(s, 0, len, &i) == len) {
    *out = str;
    return len;
  }
  reserve_out(buf, i);
  memcpy(buf->out, s, i);
  size_t o = i;
  while (i < len) {
    uint32_t cp;
    size_t j = i + (size_t)lcc_utf8_decode(s + i, &cp), prev;   // the part: s[i], then every unstable character
    while (j < len && nfc_unstable((lcc_utf8_decode(s + j, &cp), cp))) j += (size_t)lcc_utf8_decode(s + j, &cp);
    o = nfc_region(s + i, j - i, buf, o);
    size_t k = next_unstable(s, j, len, &prev);   // then the stable run up to the character before the next one
    size_t stable_end = k == len ? len : prev;
    reserve_out(buf, o + (stable_end - j));
    memcpy(buf->out + o, s + j, stable_end - j);
    o += stable_end - j;
    i = stable_end;
  }
  *out = buf->out;
  return o;
}

void lcc_nfc_buf_free(lcc_nfc_buf *buf) {
  free(buf->cps);
  free(buf->out);
  *buf = (lcc_nfc_buf){0};
}
