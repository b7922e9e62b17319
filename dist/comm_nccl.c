// NCCL communicator on device memory, for the CUDA backend: one rank per GPU (the local rank's), NCCL's id
// made by rank 0 and broadcast over MPI. Builds without MPI get a single-rank NCCL communicator (world size
// 1, no bootstrap), so a GPU machine without an MPI library runs the same code path.
//
// Every collective runs on the communicator's own stream, ordered against the backend's compute stream with
// events: an operation starts after everything queued on the compute stream before it; the wait slot makes
// the compute stream wait for every queued operation (the host does not block). The blocking collectives
// are a submit followed by a wait: later backend work sees their results. Per-rank counts may differ, so
// reduce-scatter is one ncclReduce per owner and all-gather one ncclBroadcast per owner, grouped.
#include <cuda_runtime.h>
#include <nccl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef LCC_HAVE_MPI
#include "mpi_host.h"
#endif

#include "backend.h"
#include "comm.h"
#include "cuda/backend_cuda.h"
#include "cuda/cuda_check.h"
#include "util.h"
#include "watchdog.h"

#define NCCL_CHECK(call)                                                                                        \
  do {                                                                                                          \
    ncclResult_t r_ = (call);                                                                                   \
    if (r_ != ncclSuccess) lcc_fatal("%s failed: %s (%s)", #call, ncclGetErrorString(r_), ncclGetLastError(NULL)); \
  } while (0)

// comm_nccl_add.cu: out[0..n) += a[0..n) on stream s.
void lcc_nccl_add_f32(float *out, const float *a, size_t n, cudaStream_t s);

typedef struct {
  lcc_backend *be;
  ncclComm_t nccl;
  cudaStream_t compute;      // the backend's stream
  cudaStream_t stream;       // ours: every collective
  cudaEvent_t ready, done;   // compute -> communication, communication -> compute
  cudaEvent_t *marks;        // start and stop of each operation not yet timed: marks[2i], marks[2i + 1]
  int n_marks, cap_marks;
  cudaEvent_t *spare;        // timing events to reuse
  int n_spare;
  float *temp;               // accumulate: the reduced part before it is added
  size_t temp_n;
  double busy_s;             // time inside timed operations
} nccl_impl;

static cudaEvent_t timing_event(nccl_impl *im) {
  if (im->n_spare) return im->spare[--im->n_spare];
  cudaEvent_t e;
  CUDA_CHECK(cudaEventCreate(&e));
  return e;
}

// Space for this rank's reduced part; the old buffer may still be used by queued operations.
static float *temp_for(nccl_impl *im, size_t n) {
  if (n > im->temp_n) {
    if (im->temp) {
      CUDA_CHECK(cudaStreamSynchronize(im->stream));
      CUDA_CHECK(cudaFree(im->temp));
    }
    CUDA_CHECK(cudaMalloc((void **)&im->temp, n * sizeof(float)));
    im->temp_n = n;
  }
  return im->temp;
}

// The collectives, queued on the communication stream.

static void run_reduce_scatter(lcc_comm *c, const float *send, float *recv, const size_t *counts, int accumulate) {
  nccl_impl *im = c->impl;
  const size_t mine = counts[c->rank];
  float *dst = accumulate && mine ? temp_for(im, mine) : recv;
  NCCL_CHECK(ncclGroupStart());
  for (size_t r = 0, at = 0; r < (size_t)c->world; at += counts[r], r++)   // at: rank r's part of send
    if (counts[r])
      NCCL_CHECK(ncclReduce(send + at, (int)r == c->rank ? dst : NULL, counts[r], ncclFloat, ncclSum, (int)r, im->nccl,
                            im->stream));
  NCCL_CHECK(ncclGroupEnd());
  if (accumulate && mine) lcc_nccl_add_f32(recv, dst, mine, im->stream);
}

static void run_allgather(lcc_comm *c, void *buf, const size_t *counts, size_t elem_bytes) {
  nccl_impl *im = c->impl;
  NCCL_CHECK(ncclGroupStart());
  char *part = buf;   // rank r's part
  for (int r = 0; r < c->world; part += counts[r] * elem_bytes, r++)
    if (counts[r]) NCCL_CHECK(ncclBroadcast(part, part, counts[r] * elem_bytes, ncclUint8, r, im->nccl, im->stream));
  NCCL_CHECK(ncclGroupEnd());
}

// Queues one operation behind the compute stream's work, between two timing events.
static void enqueue_begin(nccl_impl *im) {
  CUDA_CHECK(cudaEventRecord(im->ready, im->compute));
  CUDA_CHECK(cudaStreamWaitEvent(im->stream, im->ready, 0));
  if (im->n_marks + 2 > im->cap_marks) {
    im->cap_marks = im->cap_marks ? 2 * im->cap_marks : 64;
    im->marks = lcc_realloc(im->marks, (size_t)im->cap_marks * sizeof(cudaEvent_t));
    im->spare = lcc_realloc(im->spare, (size_t)im->cap_marks * sizeof(cudaEvent_t));
  }
  im->marks[im->n_marks] = timing_event(im);
  CUDA_CHECK(cudaEventRecord(im->marks[im->n_marks++], im->stream));
}

static void enqueue_end(nccl_impl *im) {
  im->marks[im->n_marks] = timing_event(im);
  CUDA_CHECK(cudaEventRecord(im->marks[im->n_marks++], im->stream));
}

static void nccl_submit(lcc_comm *c, const lcc_comm_op *op) {
  nccl_impl *im = c->impl;
  enqueue_begin(im);
  if (op->kind == LCC_OP_ALLREDUCE) {
    if (op->n) NCCL_CHECK(ncclAllReduce(op->buf, op->buf, op->n, ncclFloat, ncclSum, im->nccl, im->stream));
  } else {
    run_reduce_scatter(c, op->buf, op->recv, op->counts, op->accumulate);
    const size_t total = lcc_comm_offset(op->counts, c->world);
    if (op->release_send && total) CUDA_CHECK(cudaMemsetAsync(op->buf, 0, total * sizeof(float), im->stream));
  }
  enqueue_end(im);
}

static void nccl_wait(lcc_comm *c) {
  nccl_impl *im = c->impl;
  CUDA_CHECK(cudaEventRecord(im->done, im->stream));
  CUDA_CHECK(cudaStreamWaitEvent(im->compute, im->done, 0));
}

static void nccl_allreduce(lcc_comm *c, float *buf, size_t n) {
  nccl_submit(c, &(lcc_comm_op){.kind = LCC_OP_ALLREDUCE, .buf = buf, .n = n});
  nccl_wait(c);
}

static void nccl_reduce_scatter(lcc_comm *c, const float *send, float *recv, const size_t *counts) {
  nccl_submit(c, &(lcc_comm_op){.kind = LCC_OP_REDUCE_SCATTER, .buf = (float *)send, .recv = recv, .counts = counts});
  nccl_wait(c);
}

static void nccl_allgather(lcc_comm *c, void *buf, const size_t *counts, size_t elem_bytes) {
  nccl_impl *im = c->impl;
  enqueue_begin(im);
  run_allgather(c, buf, counts, elem_bytes);
  enqueue_end(im);
  nccl_wait(c);
}

// Adds the durations of the operations timed so far (waits for them: they are usually long done).
static double nccl_busy_seconds(lcc_comm *c) {
  nccl_impl *im = c->impl;
  for (int i = 0; i < im->n_marks; i += 2) {
    float ms = 0.0f;
    CUDA_CHECK(cudaEventSynchronize(im->marks[i + 1]));
    CUDA_CHECK(cudaEventElapsedTime(&ms, im->marks[i], im->marks[i + 1]));
    im->busy_s += ms * 1e-3;
    im->spare[im->n_spare++] = im->marks[i];
    im->spare[im->n_spare++] = im->marks[i + 1];
  }
  im->n_marks = 0;
  return im->busy_s;
}

// ---- host values: MPI across ranks (mpi_host.c), the identity for one rank without MPI ----

#ifndef LCC_HAVE_MPI
static double one_sum_f64(lcc_comm *c, double x) { return x; }
static int64_t one_max_i64(lcc_comm *c, int64_t x) { return x; }
static void one_bcast(lcc_comm *c, void *buf, size_t bytes, int root) {}
static void one_barrier(lcc_comm *c) {}
static void one_abort(lcc_comm *c, int code) {
  fflush(stdout);
  fflush(stderr);
  exit(code);
}
#endif

static void nccl_destroy(lcc_comm *c) {
  nccl_impl *im = c->impl;
  lcc_watchdog_stop(c->watchdog);   // the deadline of the host values (mpi_host.c)
  CUDA_CHECK(cudaStreamSynchronize(im->stream));
  nccl_busy_seconds(c);   // returns the timing events to the spares
  NCCL_CHECK(ncclCommFinalize(im->nccl));
  NCCL_CHECK(ncclCommDestroy(im->nccl));
  for (int i = 0; i < im->n_spare; i++) CUDA_CHECK(cudaEventDestroy(im->spare[i]));
  CUDA_CHECK(cudaEventDestroy(im->ready));
  CUDA_CHECK(cudaEventDestroy(im->done));
  CUDA_CHECK(cudaStreamDestroy(im->stream));
  if (im->temp) CUDA_CHECK(cudaFree(im->temp));
  free(im->marks);
  free(im->spare);
  free(im);
  free(c);
#ifdef LCC_HAVE_MPI
  lcc_mpi_end();
#endif
}

// The NCCL communicator of the ranks: rank 0's id broadcast over MPI, or one rank on `device`.
static void join(lcc_comm *c, nccl_impl *im, int device) {
#ifdef LCC_HAVE_MPI
  ncclUniqueId id;
  if (c->rank == 0) NCCL_CHECK(ncclGetUniqueId(&id));
  MPI_CHECK(MPI_Bcast(&id, (int)sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD));
  NCCL_CHECK(ncclCommInitRank(&im->nccl, c->world, id, c->rank));
#else
  NCCL_CHECK(ncclCommInitAll(&im->nccl, 1, &device));
#endif
}

// Rank, world and local rank. Returns -1 with lcc_error().
static int find_ranks(lcc_comm *c) {
#ifdef LCC_HAVE_MPI
  return lcc_mpi_start(c, MPI_THREAD_FUNNELED, "MPI_THREAD_FUNNELED");   // only the calling thread uses MPI
#else
  c->rank = c->local_rank = 0;
  c->world = c->local_world = 1;
  return 0;
#endif
}

// 1 when `failed` is nonzero on any rank.
static int any_rank(int failed) {
#ifdef LCC_HAVE_MPI
  int any = 0;
  MPI_CHECK(MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
  return any;
#else
  return failed;
#endif
}

lcc_comm *lcc_comm_nccl(lcc_backend *be) {
  if (strcmp(be->name, "cuda")) {
    lcc_error("the NCCL communicator needs the CUDA backend (this one is '%s')", be->name);
    return NULL;
  }
  lcc_comm *c = lcc_calloc(1, sizeof *c);
  nccl_impl *im = lcc_calloc(1, sizeof *im);
  c->name = "nccl";
  c->impl = im;
  im->be = be;
  im->compute = lcc_cuda_stream(be);
  int n_dev = 0, device = -1;
  if (find_ranks(c) < 0) goto fail;
  CUDA_CHECK(cudaGetDeviceCount(&n_dev));
  CUDA_CHECK(cudaStreamGetDevice(im->compute, &device));
  int failed = 0;
  if (c->local_world > n_dev)
    failed = lcc_error("%d ranks on this node but %d GPU(s): NCCL needs one GPU per rank", c->local_world, n_dev);
  else if (device != c->local_rank)
    failed = lcc_error("rank %d is local rank %d, so it must use GPU %d, but its CUDA backend was made on GPU %d "
                       "(make the backend with lcc_cuda_backend(local rank))", c->rank, c->local_rank, c->local_rank, device);
  if (any_rank(failed)) {   // all ranks give up together: none is left waiting for the id in join()
    if (!failed) lcc_error("another rank could not take its GPU (its message says why)");
    goto fail;
  }
  CUDA_CHECK(cudaSetDevice(device));
  join(c, im, device);
  CUDA_CHECK(cudaStreamCreateWithFlags(&im->stream, cudaStreamNonBlocking));
  CUDA_CHECK(cudaEventCreateWithFlags(&im->ready, cudaEventDisableTiming));
  CUDA_CHECK(cudaEventCreateWithFlags(&im->done, cudaEventDisableTiming));
  c->allreduce = nccl_allreduce;
  c->reduce_scatter = nccl_reduce_scatter;
  c->allgather = nccl_allgather;
#ifdef LCC_HAVE_MPI
  c->sum_f64 = lcc_mpi_sum_f64;
  c->max_i64 = lcc_mpi_max_i64;
  c->bcast = lcc_mpi_bcast;
  c->barrier = lcc_mpi_barrier;
  c->abort = lcc_mpi_abort;   // ends every rank, including those waiting inside NCCL kernels
#else
  c->sum_f64 = one_sum_f64;
  c->max_i64 = one_max_i64;
  c->bcast = one_bcast;
  c->barrier = one_barrier;
  c->abort = one_abort;
#endif
  c->submit = nccl_submit;
  c->wait = nccl_wait;
  c->busy_seconds = nccl_busy_seconds;
  c->destroy = nccl_destroy;
  return c;
fail:
  free(im);
  free(c);
  return NULL;
}
