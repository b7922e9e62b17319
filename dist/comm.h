// Collective communication among data-parallel ranks.
//
// Implementations: MPI on host memory (the CPU backend), NCCL on device memory (the CUDA backend, its id
// broadcast over MPI), and a single-process one for builds without MPI. Buffers live in the memory of the
// backend the communicator serves.
//
// Collectives over a flat buffer split into consecutive per-rank parts (counts[r] elements for rank r, in
// rank order) are what ZeRO needs: reduce-scatter the gradients so each rank holds the sum of its part,
// all-gather the updated parameters so every rank holds them all.
//
// Asynchronous work: the submit slot queues an operation that runs in order behind the caller's compute
// (a communication thread for MPI, a communication stream for NCCL); the wait slot orders what follows
// after every queued operation: MPI blocks the caller until they are done, NCCL makes the backend's stream
// wait for them (the host goes on, so the exposed time it reports is ~0: read it from GPU events instead).
// Blocking calls must not be made while operations are queued.
#ifndef LCC_COMM_H
#define LCC_COMM_H

#include <stddef.h>
#include <stdint.h>

typedef struct lcc_comm lcc_comm;

typedef enum {
  LCC_OP_ALLREDUCE,        // buf[0..n) = sum over ranks (in place)
  LCC_OP_REDUCE_SCATTER,   // recv[0..counts[rank]) (=, or += when accumulate) sum over ranks of rank's part of send
} lcc_comm_op_kind;

typedef struct {
  lcc_comm_op_kind kind;
  float *buf;              // ALLREDUCE: the buffer; REDUCE_SCATTER: the send buffer (sum(counts) elements; its
                           // contents afterwards are unspecified: a communicator may reduce in place)
  size_t n;                // ALLREDUCE: elements
  float *recv;             // REDUCE_SCATTER: this rank's part (counts[rank] elements)
  const size_t *counts;    // REDUCE_SCATTER: [world]; must stay valid until wait returns
  int accumulate;          // REDUCE_SCATTER: add to recv instead of overwriting
  int release_send;        // after the operation, give the send buffer's whole pages back (they read as 0)
  int bucket;              // the gradient bucket's index within its backward pass (for deadline reports)
} lcc_comm_op;

// Exit code of a rank whose collective passed its deadline (lcc_comm_set_timeout): a stalled or lost rank.
// The Slurm scripts do not requeue it blindly (a requeue lands on the same broken node as often as not).
#define LCC_EXIT_COLLECTIVE_TIMEOUT 98

struct lcc_watchdog;

struct lcc_comm {
  const char *name;        // "mpi", "nccl", "self"
  int rank, world;
  int local_rank, local_world;   // within this node
  void *impl;
  struct lcc_watchdog *watchdog;   // the collectives' deadline (dist/watchdog.h); NULL: none

  // blocking collectives on backend memory (sum over ranks)
  void (*allreduce)(lcc_comm *c, float *buf, size_t n);
  void (*reduce_scatter)(lcc_comm *c, const float *send, float *recv, const size_t *counts);
  // in place: rank r's part sits at offset sum(counts[0..r)) of buf and reaches every rank; elem_bytes is
  // the element size (4: fp32 parameters, 2: bf16 compute weights)
  void (*allgather)(lcc_comm *c, void *buf, const size_t *counts, size_t elem_bytes);
  // host scalars and bytes
  double (*sum_f64)(lcc_comm *c, double x);
  int64_t (*max_i64)(lcc_comm *c, int64_t x);
  void (*bcast)(lcc_comm *c, void *host_buf, size_t bytes, int root);
  void (*barrier)(lcc_comm *c);
  // asynchronous work
  void (*submit)(lcc_comm *c, const lcc_comm_op *op);
  void (*wait)(lcc_comm *c);
  double (*busy_seconds)(lcc_comm *c);   // time spent inside queued operations so far
  // Ends every rank at once with this exit code: a rank that fails alone must not leave the others
  // waiting in a collective.
  void (*abort)(lcc_comm *c, int code);   // does not return
  void (*destroy)(lcc_comm *c);
};

struct lcc_backend;
// MPI communicator over MPI_COMM_WORLD (calls MPI_Init_thread; MPI_Finalize at destroy). Returns NULL with
// lcc_error() when this build has no MPI. release_send uses be->release.
lcc_comm *lcc_comm_mpi(struct lcc_backend *be);
// NCCL communicator on the CUDA backend's device memory (dist/comm_nccl.c; builds with CUDA only): MPI
// bootstrap, one GPU per rank, and the backend must run on GPU `local rank`. Without MPI it is one rank.
// Returns NULL with lcc_error() when it cannot start.
lcc_comm *lcc_comm_nccl(struct lcc_backend *be);
// One process, no communication: every collective is the identity.
lcc_comm *lcc_comm_self(struct lcc_backend *be);
// Gives every collective of c a deadline of `seconds` (0: none; one rank: nothing to wait for): past it, each
// live rank prints its step, its last and pending collectives, its batch's sample ids and which ranks have not
// arrived, then exits with LCC_EXIT_COLLECTIVE_TIMEOUT. A collective call itself (every rank, nothing queued).
// MPI's collectives and NCCL's host values (mpi_host.c) are watched; NCCL's device collectives are not (they
// run on a stream the host only syncs with: watching them needs an event per operation that the watchdog
// thread queries, and ncclCommAbort to end them).
void lcc_comm_set_timeout(lcc_comm *c, int seconds);
// What this rank is doing, for the deadline report: the (1-based) step it began and its batch's sample ids
// (n of them, -1: unknown). Cheap; a no-op without a deadline.
void lcc_comm_set_context(lcc_comm *c, int step, const int64_t *sample_ids, int n);
// Offsets of per-rank parts: displs[r] = sum(counts[0..r)).
size_t lcc_comm_offset(const size_t *counts, int rank);

#endif
