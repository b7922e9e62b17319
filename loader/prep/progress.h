// Progress of a prep job over all its ranks: every rank writes its counts to <output>/.progress/rank-NNNNN
// (atomically, every few seconds); rank 0 reads them all and prints one line for the whole job, with the
// rate, the ETA and the resident memory of the largest rank. Files carry the run's id (rank 0's start time),
// so those a killed earlier run left behind are not counted. Through the output directory, which every rank
// shares anyway, rather than collectives: the ranks' loops need not meet.
#ifndef LCC_PREP_PROGRESS_H
#define LCC_PREP_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

#include "group.h"

typedef struct {
  char dir[4096];        // <output>/.progress
  const lcc_prep_group *group;
  int64_t run_id;        // rank 0's start time, microseconds
  double t0;             // this rank's start (lcc_now)
  int64_t peak_rss_mb;   // over the ranks' last reports (rank 0, after lcc_progress_finish)
} lcc_progress;

// Collective (every rank): agrees on the run id and makes the folder. 0, or -1 with lcc_error().
int lcc_progress_init(lcc_progress *p, const char *output, const lcc_prep_group *g);
// This rank's counts (samples done by this run, and to do; last: its work is over); on rank 0 also the
// job's line on `out` (NULL: report only). Cheap: one small file written, and on rank 0 one read per rank.
void lcc_progress_tick(lcc_progress *p, int64_t done, int64_t todo, int last, FILE *out);
// Collective, after this rank's last tick: waits for every rank (rank 0 printing the job's line every `every`
// seconds meanwhile), then rank 0 takes the ranks' peak memory from their last reports and removes the folder.
void lcc_progress_finish(lcc_progress *p, double every, FILE *out);

#endif
