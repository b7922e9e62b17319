// The processes of one prep job (mpirun -n N livecc-prep, or srun): what they must share goes through these
// calls, which launch/prep_mpi.c fills with MPI, so the data path itself knows nothing of MPI. A NULL group
// is one process.
#ifndef LCC_PREP_GROUP_H
#define LCC_PREP_GROUP_H

#include <stddef.h>
#include <stdint.h>

typedef struct lcc_prep_group lcc_prep_group;
struct lcc_prep_group {
  int rank, world;
  void *ctx;
  // buf[0..bytes) of rank `root` to every rank
  void (*bcast)(const lcc_prep_group *g, void *buf, size_t bytes, int root);
  // every rank's n bytes at `mine`, in rank order, into all[0..sum(counts)); counts[r]: rank r's n (known to all)
  void (*allgather)(const lcc_prep_group *g, const void *mine, int64_t n, void *all, const int64_t *counts);
  void (*barrier)(const lcc_prep_group *g);
  // a barrier to wait for while doing other things: ibarrier starts it, test says whether every rank arrived
  // (then the request is done)
  void *(*ibarrier)(const lcc_prep_group *g);
  int (*test)(const lcc_prep_group *g, void *request);
  // ends every rank with this exit code (one rank's error must not leave the others waiting)
  void (*abort)(const lcc_prep_group *g, int code);
};

static inline int lcc_group_rank(const lcc_prep_group *g) { return g ? g->rank : 0; }
static inline int lcc_group_world(const lcc_prep_group *g) { return g ? g->world : 1; }

#endif
