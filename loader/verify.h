// Checks a prepared dataset against its manifest, as after copying it to a cluster: every shard present,
// of the recorded size and with the recorded CRC-64. A shard that passes is byte for byte what livecc-prep
// wrote, so no damaged file ever reaches HDF5 (whose 1.10 parser can crash on damaged metadata).
#ifndef LCC_VERIFY_H
#define LCC_VERIFY_H

#include <stdint.h>
#include <stdio.h>

typedef struct {
  int shards, bad;       // listed in the manifest, failing a check
  int64_t bytes;         // read
  double seconds;
} lcc_verify_stats;

// Reads the shards of the manifest (a manifest.json or its directory) on `threads` threads; a line per bad
// shard goes to `report` ("<path>: <reason>"), a progress line every 2 s to `progress` (may be NULL).
// Returns 0 when the manifest was read (st->bad says whether every shard passed), -1 with lcc_error() when not
// or when it lists no samples.
int lcc_dataset_verify(const char *manifest, int threads, FILE *report, FILE *progress, lcc_verify_stats *st);

#endif
