// The MPI pieces both communicators share (comm_mpi.c on host memory, comm_nccl.c for its bootstrap and host
// values): start-up with rank and node-local rank, the host-value collectives of lcc_comm, abort and finalize.
#ifndef LCC_MPI_HOST_H
#define LCC_MPI_HOST_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "comm.h"
#include "util.h"

// A failed MPI call is a broken run, not a user error: stop with MPI's own message.
#define MPI_CHECK(call)                                                            \
  do {                                                                             \
    int err_ = (call);                                                             \
    if (err_ != MPI_SUCCESS) {                                                     \
      char msg_[MPI_MAX_ERROR_STRING];                                             \
      int len_ = 0;                                                                \
      MPI_Error_string(err_, msg_, &len_);                                         \
      lcc_fatal("%s failed: %s", #call, msg_);                                     \
    }                                                                              \
  } while (0)

// MPI_Init_thread (MPI_THREAD_MULTIPLE asked) unless MPI runs already; fills c->rank, world, local_rank and
// local_world (ranks sharing this node). Returns -1 with lcc_error() when MPI gives less than `min_level`
// (named min_name in the message).
int lcc_mpi_start(lcc_comm *c, int min_level, const char *min_name);
// MPI_Finalize unless it was done.
void lcc_mpi_end(void);

// lcc_comm's host-value collectives over MPI_COMM_WORLD.
double lcc_mpi_sum_f64(lcc_comm *c, double x);
int64_t lcc_mpi_max_i64(lcc_comm *c, int64_t x);
void lcc_mpi_bcast(lcc_comm *c, void *buf, size_t bytes, int root);
void lcc_mpi_barrier(lcc_comm *c);
// Ends every rank (also those waiting in a collective or a GPU kernel) with exit code `code`.
void lcc_mpi_abort(lcc_comm *c, int code);

#endif
