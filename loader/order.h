// The global sample order of the loader: one permutation of [0, n) per epoch, drawn from (seed, epoch)
// alone, so every rank computes the same one whatever the world size.
#ifndef LCC_ORDER_H
#define LCC_ORDER_H

#include <stdint.h>

// perm[0..n) = a permutation of [0, n): Fisher-Yates driven by splitmix64 seeded with a hash of
// (seed, epoch). n < 2^32.
void lcc_order_permutation(uint64_t seed, int64_t epoch, uint32_t *perm, int64_t n);
// The shard holding global index i: the s with starts[s] <= i < starts[s + 1] (starts has n_shards + 1
// non-decreasing entries, empty shards allowed; 0 <= i < starts[n_shards]).
int lcc_order_shard_of(const int64_t *starts, int n_shards, int64_t i);
// splitmix64's finalizer: a bijection of 64-bit words that mixes every bit (the mixture's block shuffles).
uint64_t lcc_order_hash(uint64_t z);

#endif
