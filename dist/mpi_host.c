#include <stdio.h>
#include <stdlib.h>

#include "mpi_host.h"
#include "watchdog.h"

#define BCAST_SLAB ((size_t)1 << 30)   // MPI counts are int

int lcc_mpi_start(lcc_comm *c, int min_level, const char *min_name) {
  int inited = 0, provided = 0;
  MPI_CHECK(MPI_Initialized(&inited));
  if (!inited) MPI_CHECK(MPI_Init_thread(NULL, NULL, MPI_THREAD_MULTIPLE, &provided));
  else MPI_CHECK(MPI_Query_thread(&provided));
  if (provided < min_level)
    return lcc_error("MPI provides thread level %d; livecc-train needs %s or better", provided, min_name);
  MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &c->rank));
  MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &c->world));
  MPI_Comm node;
  MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &node));
  MPI_CHECK(MPI_Comm_rank(node, &c->local_rank));
  MPI_CHECK(MPI_Comm_size(node, &c->local_world));
  MPI_CHECK(MPI_Comm_free(&node));
  return 0;
}

void lcc_mpi_end(void) {
  int finalized = 0;
  MPI_CHECK(MPI_Finalized(&finalized));
  if (!finalized) MPI_CHECK(MPI_Finalize());
}

double lcc_mpi_sum_f64(lcc_comm *c, double x) {
  double y;
  lcc_watchdog_begin(c->watchdog, LCC_COLL_SUM_F64, -1, sizeof x);
  MPI_CHECK(MPI_Allreduce(&x, &y, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
  lcc_watchdog_end(c->watchdog);
  return y;
}

int64_t lcc_mpi_max_i64(lcc_comm *c, int64_t x) {
  int64_t y;
  lcc_watchdog_begin(c->watchdog, LCC_COLL_MAX_I64, -1, sizeof x);
  MPI_CHECK(MPI_Allreduce(&x, &y, 1, MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD));
  lcc_watchdog_end(c->watchdog);
  return y;
}

void lcc_mpi_bcast(lcc_comm *c, void *buf, size_t bytes, int root) {
  lcc_watchdog_begin(c->watchdog, LCC_COLL_BCAST, -1, bytes);
  for (size_t i = 0; i < bytes; i += BCAST_SLAB) {
    const int k = (int)(bytes - i < BCAST_SLAB ? bytes - i : BCAST_SLAB);
    MPI_CHECK(MPI_Bcast((char *)buf + i, k, MPI_BYTE, root, MPI_COMM_WORLD));
  }
  lcc_watchdog_end(c->watchdog);
}

void lcc_mpi_barrier(lcc_comm *c) {
  lcc_watchdog_begin(c->watchdog, LCC_COLL_BARRIER, -1, 0);
  MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
  lcc_watchdog_end(c->watchdog);
}

void lcc_mpi_abort(lcc_comm *c, int code) {
  fflush(stdout);
  fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, code);
  exit(code);   // not reached
}
