#include "order.h"

uint64_t lcc_order_hash(uint64_t z) {   // splitmix64's finalizer
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void lcc_order_permutation(uint64_t seed, int64_t epoch, uint32_t *perm, int64_t n) {
  uint64_t state = lcc_order_hash(seed ^ lcc_order_hash((uint64_t)epoch + 0x9E3779B97F4A7C15ull));
  for (int64_t i = 0; i < n; i++) perm[i] = (uint32_t)i;
  for (int64_t i = n - 1; i > 0; i--) {
    // j uniform in [0, i]: the modulo bias is below (i + 1) / 2^64, far under 2^-32 for any n < 2^32
    const uint64_t j = lcc_order_hash(state += 0x9E3779B97F4A7C15ull) % (uint64_t)(i + 1);
    const uint32_t t = perm[i];
    perm[i] = perm[j], perm[j] = t;
  }
}

int lcc_order_shard_of(const int64_t *starts, int n_shards, int64_t i) {
  int lo = 0, hi = n_shards;   // invariant: starts[lo] <= i < starts[hi]
  while (hi - lo > 1) {
    const int mid = lo + (hi - lo) / 2;
    if (starts[mid] <= i) lo = mid;
    else hi = mid;
  }
  return lo;
}
