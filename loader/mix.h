// Datasets with weights (`data = DIR_A:0.7, DIR_B:0.3`): the list's syntax and the schedule that says which
// dataset each global stream position draws from.
//
// Schedule: the stream is cut into blocks of LCC_MIX_BLOCK positions. The first P = k*B positions give dataset
// d exactly split(P)[d] of them, an integer function of P and the weights (each count grows with P and stays
// within n of P * weight_d), so block k holds each dataset's share of it; the block's order of those shares is
// a Fisher-Yates shuffle drawn from (seed, k). A position's dataset and its place q in that dataset's own
// stream come from its block alone: O(B + n) at any position, however far into the run.
#ifndef LCC_MIX_H
#define LCC_MIX_H

#include <stdint.h>

#define LCC_MIX_MAX 64        // datasets in one list
#define LCC_MIX_BLOCK 256     // positions per block: part of the order's definition (changing it reorders runs)
#define LCC_MIX_ONE (1u << 30)   // fixed-point scale of the weights

typedef struct {
  char *path;             // manifest.json or its directory, as written
  double weight;          // as written; 1 when the entry has none
} lcc_mix_entry;

// Parses "DIR" or "DIR_A:0.7, DIR_B:0.3" (entries separated by commas, blanks around them ignored) into
// entries[n] (owned: lcc_mix_entries_free). The text after an entry's last ':' is its weight when it reads as a
// number (then it must be positive and finite); otherwise the ':' belongs to the path and the weight is 1.
// 0, or -1 with lcc_error() naming the bad entry.
int lcc_mix_parse(const char *spec, lcc_mix_entry **entries, int *n);
void lcc_mix_entries_free(lcc_mix_entry *entries, int n);

typedef struct {
  int n;                  // datasets
  uint32_t share[LCC_MIX_MAX];   // [n] weights in fixed point: round(weight / sum * LCC_MIX_ONE), each >= 1
  uint64_t total;         // sum of share
  uint64_t seed;          // of the block shuffles
} lcc_mix;

// The schedule of the n weighted entries. 0, or -1 with lcc_error() naming an entry whose weight is too small.
int lcc_mix_init(lcc_mix *m, const lcc_mix_entry *entries, int n, uint64_t seed);

typedef struct {
  int64_t k;                       // block index; -1: not built
  int64_t base[LCC_MIX_MAX];       // [n] positions before the block that each dataset took
  uint8_t label[LCC_MIX_BLOCK];    // [B] dataset of each position of the block
  uint32_t rank[LCC_MIX_BLOCK];    // [B] positions of the block before this one with the same dataset
} lcc_mix_block;

// Block k of the schedule into b: position k*B + j draws dataset label[j], at its stream position base[label[j]]
// + rank[j].
void lcc_mix_build(const lcc_mix *m, int64_t k, lcc_mix_block *b);
// count[0..n): positions of [0, p) that each dataset takes.
void lcc_mix_counts(const lcc_mix *m, int64_t p, int64_t *count);

#endif
