// The single-process communicator: world size 1, every collective is the identity, queued operations run
// at once. Used when livecc-train runs without MPI.
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "comm.h"
#include "util.h"

size_t lcc_comm_offset(const size_t *counts, int rank) {
  size_t off = 0;
  for (int r = 0; r < rank; r++) off += counts[r];
  return off;
}

typedef struct {
  lcc_backend *be;
  double busy_s;
} self_impl;

static void self_allreduce(lcc_comm *c, float *buf, size_t n) {}

static void self_reduce_scatter(lcc_comm *c, const float *send, float *recv, const size_t *counts) {
  self_impl *im = c->impl;
  if (recv != send) im->be->copy(im->be, recv, send, counts[0] * sizeof(float));
}

static void self_allgather(lcc_comm *c, void *buf, const size_t *counts, size_t elem_bytes) {}
static double self_sum_f64(lcc_comm *c, double x) { return x; }
static int64_t self_max_i64(lcc_comm *c, int64_t x) { return x; }
static void self_bcast(lcc_comm *c, void *buf, size_t bytes, int root) {}
static void self_barrier(lcc_comm *c) {}

static void self_submit(lcc_comm *c, const lcc_comm_op *op) {
  self_impl *im = c->impl;
  double t0 = lcc_now();
  if (op->kind == LCC_OP_REDUCE_SCATTER) {
    const size_t n = op->counts[0];
    if (op->accumulate) im->be->add_f32(im->be, op->recv, op->buf, n);
    else self_reduce_scatter(c, op->buf, op->recv, op->counts);
    if (op->release_send) im->be->release(im->be, op->buf, n * sizeof(float));
  }
  im->busy_s += lcc_now() - t0;
}

static void self_wait(lcc_comm *c) {}
static double self_busy_seconds(lcc_comm *c) { return ((self_impl *)c->impl)->busy_s; }

static void self_abort(lcc_comm *c, int code) { exit(code); }

static void self_destroy(lcc_comm *c) {
  free(c->impl);
  free(c);
}

lcc_comm *lcc_comm_self(lcc_backend *be) {
  lcc_comm *c = lcc_calloc(1, sizeof *c);
  self_impl *im = lcc_calloc(1, sizeof *im);
  im->be = be;
  *c = (lcc_comm){.name = "self", .rank = 0, .world = 1, .local_rank = 0, .local_world = 1, .impl = im,
                  .allreduce = self_allreduce, .reduce_scatter = self_reduce_scatter, .allgather = self_allgather,
                  .sum_f64 = self_sum_f64, .max_i64 = self_max_i64, .bcast = self_bcast, .barrier = self_barrier,
                  .submit = self_submit, .wait = self_wait, .busy_seconds = self_busy_seconds, .abort = self_abort,
                  .destroy = self_destroy};
  return c;
}
