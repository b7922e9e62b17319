// Datasets with weights: the `data` list and the block schedule (mix.h).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mix.h"
#include "order.h"
#include "util.h"

// ---- the list ----

static int blank(char c) { return c == ' ' || c == '\t'; }

// A new string of [b, e) without the blanks at its ends.
static char *trimmed(const char *b, const char *e) {
  while (b < e && blank(*b)) b++;
  while (e > b && blank(e[-1])) e--;
  char *s = lcc_malloc((size_t)(e - b) + 1);
  memcpy(s, b, (size_t)(e - b));
  s[e - b] = 0;
  return s;
}

// One trimmed, non-empty entry "PATH" or "PATH:WEIGHT" into *out.
static int parse_entry(const char *item, lcc_mix_entry *out) {
  const char *colon = strrchr(item, ':');
  out->weight = 1.0;
  if (colon && colon[1]) {
    char *end;
    const double w = strtod(colon + 1, &end);
    if (end != colon + 1 && !*end) {   // the whole text after the ':' is a number: a weight
      if (!(w > 0 && isfinite(w))) return lcc_error("data entry '%s': the weight must be a positive number", item);
      out->path = trimmed(item, colon);
      if (!out->path[0]) return lcc_error("data entry '%s': no dataset before the weight", item);
      out->weight = w;
      return 0;
    }
  }
  out->path = lcc_strdup(item);
  return 0;
}

void lcc_mix_entries_free(lcc_mix_entry *entries, int n) {
  for (int i = 0; entries && i < n; i++) free(entries[i].path);
  free(entries);
}

int lcc_mix_parse(const char *spec, lcc_mix_entry **entries, int *n) {
  *entries = NULL, *n = 0;
  lcc_mix_entry *e = lcc_calloc(LCC_MIX_MAX + 1, sizeof *e);   // + 1: the entry being parsed when it fails
  int count = 0, rc = 0;
  for (const char *p = spec;; p++) {
    const char *end = p + strcspn(p, ",");
    char *item = trimmed(p, end);
    if (!item[0]) rc = lcc_error("data '%s': entry %d is empty", spec, count + 1);
    else if (count == LCC_MIX_MAX) rc = lcc_error("data '%s': more than %d datasets", spec, LCC_MIX_MAX);
    else rc = parse_entry(item, &e[count++]);
    free(item);
    if (rc || !*end) break;
    p = end;
  }
  if (rc) {
    lcc_mix_entries_free(e, count);
    return -1;
  }
  *entries = e, *n = count;
  return 0;
}

// ---- the schedule ----

int lcc_mix_init(lcc_mix *m, const lcc_mix_entry *entries, int n, uint64_t seed) {
  if (n < 1 || n > LCC_MIX_MAX) return lcc_error("data: %d datasets; a list holds 1 to %d", n, LCC_MIX_MAX);
  memset(m, 0, sizeof *m);
  m->n = n, m->seed = seed;
  double sum = 0;
  for (int d = 0; d < n; d++) sum += entries[d].weight;
  if (!isfinite(sum)) return lcc_error("data: the weights' sum overflows");
  for (int d = 0; d < n; d++) {
    const double share = round(entries[d].weight / sum * LCC_MIX_ONE);   // IEEE: the same on every machine
    if (!(share >= 1))
      return lcc_error("data entry '%s': weight %g is below 2^-30 of the weights' sum %g", entries[d].path,
                       entries[d].weight, sum);
    m->share[d] = (uint32_t)share;
    m->total += m->share[d];
  }
  return 0;
}

// floor(x * a / b) without overflow, for x >= 0 and a <= b < 2^32.
static int64_t scale(int64_t x, uint64_t a, uint64_t b) {
  return (int64_t)((uint64_t)x / b * a + (uint64_t)x % b * a / b);
}

// count[0..n) of the first p positions: dataset 0 takes floor(p * share_0 / total), dataset 1 the same
// fraction share_1 / (total - share_0) of what is left, and so on; the last takes the rest. Every count grows
// with p (a floor of a growing left-over), so a block's share of each dataset is never negative.
static void split(const lcc_mix *m, int64_t p, int64_t *count) {
  uint64_t rest = m->total;
  int64_t left = p;
  for (int d = 0; d < m->n - 1; d++) {
    count[d] = scale(left, m->share[d], rest);
    left -= count[d], rest -= m->share[d];
  }
  count[m->n - 1] = left;
}

void lcc_mix_build(const lcc_mix *m, int64_t k, lcc_mix_block *b) {
  int64_t end[LCC_MIX_MAX];   // [n] positions before the next block that each dataset took
  split(m, k * LCC_MIX_BLOCK, b->base);
  split(m, (k + 1) * LCC_MIX_BLOCK, end);
  int j = 0;
  for (int d = 0; d < m->n; d++)
    for (int64_t c = b->base[d]; c < end[d]; c++) b->label[j++] = (uint8_t)d;
  // Fisher-Yates from (seed, k); the constant keeps these streams apart from the epoch permutations'
  uint64_t state = lcc_order_hash(m->seed ^ lcc_order_hash((uint64_t)k + 0x243F6A8885A308D3ull));
  for (int i = LCC_MIX_BLOCK - 1; i > 0; i--) {
    const int r = (int)(lcc_order_hash(state += 0x9E3779B97F4A7C15ull) % (uint64_t)(i + 1));
    const uint8_t t = b->label[i];
    b->label[i] = b->label[r], b->label[r] = t;
  }
  uint32_t seen[LCC_MIX_MAX] = {0};   // [n] positions of the block so far with each dataset
  for (int i = 0; i < LCC_MIX_BLOCK; i++) b->rank[i] = seen[b->label[i]]++;
  b->k = k;
}

void lcc_mix_counts(const lcc_mix *m, int64_t p, int64_t *count) {
  lcc_mix_block b;
  lcc_mix_build(m, p / LCC_MIX_BLOCK, &b);
  memcpy(count, b.base, (size_t)m->n * sizeof(int64_t));
  for (int j = 0; j < p % LCC_MIX_BLOCK; j++) count[b.label[j]]++;
}
