// MPI communicator on host memory. Queued operations run on a communication thread, in order, so that
// gradient buckets reduce while the main thread computes the next layers' backward.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "mpi_host.h"
#include "watchdog.h"

// MPI counts are int: every collective runs over slabs of at most this many elements.
#define SLAB ((size_t)1 << 28)
#define QUEUE_CAP 1024   // pending operations; submit waits for room beyond that

typedef struct {
  lcc_backend *be;
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t changed;
  lcc_comm_op queue[QUEUE_CAP];   // ring of pending operations
  int head, count, stop;
  double busy_s;
} mpi_impl;

static void allreduce_slabs(float *buf, size_t n) {
  for (size_t i = 0; i < n; i += SLAB) {
    int k = (int)(n - i < SLAB ? n - i : SLAB);
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, buf + i, k, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD));
  }
}

static void mpi_allreduce(lcc_comm *c, float *buf, size_t n) {
  lcc_watchdog_begin(c->watchdog, LCC_COLL_ALLREDUCE, -1, n * sizeof(float));
  allreduce_slabs(buf, n);
  lcc_watchdog_end(c->watchdog);
}

// Per-rank counts of the parts inside the slab [s0, s1) of a buffer split by counts.
static void slab_counts(const size_t *counts, int world, size_t s0, size_t s1, int *out) {
  size_t off = 0;
  for (int r = 0; r < world; r++) {
    size_t a = off > s0 ? off : s0, b = off + counts[r] < s1 ? off + counts[r] : s1;
    out[r] = b > a ? (int)(b - a) : 0;
    off += counts[r];
  }
}

static void mpi_reduce_scatter(lcc_comm *c, const float *send, float *recv, const size_t *counts) {
  const size_t total = lcc_comm_offset(counts, c->world), mine = lcc_comm_offset(counts, c->rank);
  int *k = lcc_malloc((size_t)c->world * sizeof(int));
  lcc_watchdog_begin(c->watchdog, LCC_COLL_REDUCE_SCATTER, -1, total * sizeof(float));
  for (size_t s0 = 0; s0 < total; s0 += SLAB) {
    const size_t s1 = total - s0 < SLAB ? total : s0 + SLAB;
    slab_counts(counts, c->world, s0, s1, k);
    // this rank's part of the slab starts at max(mine, s0), which is recv + (that - mine)
    float *dst = recv + ((mine > s0 ? mine : s0) - mine);
    MPI_CHECK(MPI_Reduce_scatter(send + s0, k[c->rank] ? dst : NULL, k, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD));
  }
  lcc_watchdog_end(c->watchdog);
  free(k);
}

static void mpi_allgather(lcc_comm *c, void *buf, const size_t *counts, size_t elem_bytes) {
  const size_t total = lcc_comm_offset(counts, c->world);
  int *k = lcc_malloc(2 * (size_t)c->world * sizeof(int)), *displ = k + c->world;
  MPI_Datatype type;   // elements of elem_bytes bytes
  MPI_CHECK(MPI_Type_contiguous((int)elem_bytes, MPI_BYTE, &type));
  MPI_CHECK(MPI_Type_commit(&type));
  lcc_watchdog_begin(c->watchdog, LCC_COLL_ALLGATHER, -1, total * elem_bytes);
  for (size_t s0 = 0; s0 < total; s0 += SLAB) {
    const size_t s1 = total - s0 < SLAB ? total : s0 + SLAB;
    slab_counts(counts, c->world, s0, s1, k);
    for (int r = 0, d = 0; r < c->world; d += k[r], r++) displ[r] = d;
    MPI_CHECK(MPI_Allgatherv(MPI_IN_PLACE, 0, type, (char *)buf + s0 * elem_bytes, k, displ, type, MPI_COMM_WORLD));
  }
  lcc_watchdog_end(c->watchdog);
  MPI_CHECK(MPI_Type_free(&type));
  free(k);
}

// ---- the communication thread ----

static void run_op(lcc_comm *c, const lcc_comm_op *op) {
  mpi_impl *im = c->impl;
  if (op->kind == LCC_OP_ALLREDUCE) {
    lcc_watchdog_begin(c->watchdog, LCC_COLL_ALLREDUCE, op->bucket, op->n * sizeof(float));
    allreduce_slabs(op->buf, op->n);
    lcc_watchdog_end(c->watchdog);
    return;
  }
  // A bucket is all-reduced in place and this rank's part taken from it: Open MPI's MPI_Allreduce over shared
  // memory beats its MPI_Reduce_scatter although it moves twice the bytes (64 MiB on 2 ranks: 22 ms against
  // 48 ms; ZeRO-1 buckets in bench_comm: 4x). The send buffer holds the sum afterwards.
  const size_t total = lcc_comm_offset(op->counts, c->world), at = lcc_comm_offset(op->counts, c->rank);
  const size_t mine = op->counts[c->rank];
  lcc_watchdog_begin(c->watchdog, LCC_COLL_REDUCE_SCATTER, op->bucket, total * sizeof(float));
  allreduce_slabs(op->buf, total);
  lcc_watchdog_end(c->watchdog);
  if (op->accumulate) im->be->add_f32(im->be, op->recv, op->buf + at, mine);
  else memcpy(op->recv, op->buf + at, mine * sizeof(float));
  if (op->release_send) im->be->release(im->be, op->buf, total * sizeof(float));
}

static void *comm_thread(void *arg) {
  lcc_comm *c = arg;
  mpi_impl *im = c->impl;
  pthread_mutex_lock(&im->lock);
  for (;;) {
    while (!im->count && !im->stop) pthread_cond_wait(&im->changed, &im->lock);
    if (!im->count) break;
    lcc_comm_op op = im->queue[im->head];
    pthread_mutex_unlock(&im->lock);
    double t0 = lcc_now();
    run_op(c, &op);
    double dt = lcc_now() - t0;
    pthread_mutex_lock(&im->lock);
    im->busy_s += dt;
    im->head = (im->head + 1) % QUEUE_CAP;
    im->count--;   // the op counts as pending until it is done, so wait() returns only after it
    pthread_cond_broadcast(&im->changed);
  }
  pthread_mutex_unlock(&im->lock);
  return NULL;
}

static void mpi_submit(lcc_comm *c, const lcc_comm_op *op) {
  mpi_impl *im = c->impl;
  pthread_mutex_lock(&im->lock);
  while (im->count == QUEUE_CAP) pthread_cond_wait(&im->changed, &im->lock);
  im->queue[(im->head + im->count) % QUEUE_CAP] = *op;
  im->count++;
  pthread_cond_broadcast(&im->changed);
  pthread_mutex_unlock(&im->lock);
}

static void mpi_wait(lcc_comm *c) {
  mpi_impl *im = c->impl;
  pthread_mutex_lock(&im->lock);
  while (im->count) pthread_cond_wait(&im->changed, &im->lock);
  pthread_mutex_unlock(&im->lock);
}

static double mpi_busy_seconds(lcc_comm *c) {
  mpi_impl *im = c->impl;
  pthread_mutex_lock(&im->lock);
  double s = im->busy_s;
  pthread_mutex_unlock(&im->lock);
  return s;
}

static void mpi_destroy(lcc_comm *c) {
  mpi_impl *im = c->impl;
  lcc_watchdog_stop(c->watchdog);
  pthread_mutex_lock(&im->lock);
  im->stop = 1;
  pthread_cond_broadcast(&im->changed);
  pthread_mutex_unlock(&im->lock);
  pthread_join(im->thread, NULL);
  pthread_mutex_destroy(&im->lock);
  pthread_cond_destroy(&im->changed);
  free(im);
  free(c);
  lcc_mpi_end();
}

lcc_comm *lcc_comm_mpi(lcc_backend *be) {
  lcc_comm *c = lcc_calloc(1, sizeof *c);
  // the main thread's blocking calls and the communication thread's queued ones never overlap (comm.h)
  if (lcc_mpi_start(c, MPI_THREAD_SERIALIZED, "MPI_THREAD_SERIALIZED")) {
    free(c);
    return NULL;
  }
  mpi_impl *im = lcc_calloc(1, sizeof *im);
  c->name = "mpi";
  c->impl = im;
  im->be = be;
  c->allreduce = mpi_allreduce;
  c->reduce_scatter = mpi_reduce_scatter;
  c->allgather = mpi_allgather;
  c->sum_f64 = lcc_mpi_sum_f64;
  c->max_i64 = lcc_mpi_max_i64;
  c->bcast = lcc_mpi_bcast;
  c->barrier = lcc_mpi_barrier;
  c->submit = mpi_submit;
  c->wait = mpi_wait;
  c->busy_seconds = mpi_busy_seconds;
  c->abort = lcc_mpi_abort;
  c->destroy = mpi_destroy;
  pthread_mutex_init(&im->lock, NULL);
  pthread_cond_init(&im->changed, NULL);
  LCC_CHECK(pthread_create(&im->thread, NULL, comm_thread, c) == 0, "cannot start the communication thread");
  return c;
}
