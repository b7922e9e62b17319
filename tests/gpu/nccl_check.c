// The NCCL communicator (dist/comm_nccl.c) on every rank, run by tests/gpu/test_nccl.sh: one process (world
// size 1: every collective is the identity, accumulate adds) or mpirun -np 2 on two GPUs. Checks, with values
// that are exact in fp32:
//   - allreduce: rank r contributes (r + 1) * v, so every rank gets W (W + 1) / 2 * v;
//   - reduce-scatter with unequal per-rank counts (one of them 0), overwrite and accumulate, and release_send
//     (the send buffer reads 0 afterwards);
//   - all-gather in place of 4-byte and 2-byte elements with unequal counts;
//   - submit/wait order against the backend's stream: the compute stream scales the buffer right before the
//     submit and again right after the wait;
//   - host sum, max, broadcast, barrier, and busy_seconds (positive after timed work).
//   nccl_check --gpus prints the number of CUDA devices.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "comm.h"
#include "cuda/backend_cuda.h"
#include "cuda/device.h"
#include "testlib.h"
#include "util.h"

static int rank = 0;

static void expect(const char *what, const float *got, const float *want, size_t n) {
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < n; i++)
    if (got[i] != want[i] && !bad++) first = i;
  CHECKF(!bad, "rank %d: %s: %zu of %zu values wrong, first at %zu: %g, want %g", rank, what, bad, n, first, got[first],
         want[first]);
}

static float *device_floats(lcc_backend *be, const float *x, size_t n) {
  float *d = be->alloc(be, n * sizeof(float));
  be->upload(be, d, x, n * sizeof(float));
  return d;
}

static void check_allreduce(lcc_backend *be, lcc_comm *c) {
  const size_t n = 1000003;
  const float ranks = c->world * (c->world + 1) / 2.0f;
  float *x = lcc_malloc(n * sizeof(float)), *want = lcc_malloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++) x[i] = (float)(c->rank + 1) * (float)(i % 7 + 1), want[i] = ranks * (float)(i % 7 + 1);
  float *d = device_floats(be, x, n);
  c->allreduce(c, d, n);
  be->download(be, x, d, n * sizeof(float));
  expect("allreduce", x, want, n);
  be->free(be, d);
  free(x), free(want);
}

// Part sizes 0, 5, 11, ... for ranks 0, 1, 2, ... (rank 0's part is empty when there are 2 or more ranks).
static size_t *part_counts(int world, size_t base) {
  size_t *k = lcc_malloc((size_t)world * sizeof(size_t));
  for (int r = 0; r < world; r++) k[r] = world == 1 ? base : (size_t)r * (base + (size_t)r);
  return k;
}

static void check_reduce_scatter(lcc_backend *be, lcc_comm *c, int async, int accumulate) {
  size_t *k = part_counts(c->world, 5000);
  const size_t total = lcc_comm_offset(k, c->world), mine = k[c->rank], at = lcc_comm_offset(k, c->rank);
  const float ranks = c->world * (c->world + 1) / 2.0f;
  float *send = lcc_malloc((total + 1) * sizeof(float)), *recv = lcc_malloc((mine + 1) * sizeof(float));
  float *want = lcc_malloc((mine + 1) * sizeof(float));
  for (size_t i = 0; i < total; i++) send[i] = (float)(c->rank + 1) * (float)(i % 1000);
  for (size_t i = 0; i < mine; i++) recv[i] = 0.5f, want[i] = ranks * (float)((at + i) % 1000) * 2.0f + (accumulate ? 0.5f : 0.0f);
  float *d_send = device_floats(be, send, total + 1), *d_recv = device_floats(be, recv, mine + 1);
  be->scale(be, d_send, 2.0f, total);   // queued on the compute stream: the collective must see it
  if (async) {
    c->submit(c, &(lcc_comm_op){.kind = LCC_OP_REDUCE_SCATTER, .buf = d_send, .recv = d_recv, .counts = k,
                                .accumulate = accumulate, .release_send = 1});
    c->wait(c);
  } else {
    c->reduce_scatter(c, d_send, d_recv, k);
  }
  be->scale(be, d_recv, 4.0f, mine);   // after the wait, on the compute stream
  for (size_t i = 0; i < mine; i++) want[i] *= 4.0f;
  be->download(be, recv, d_recv, mine * sizeof(float));
  be->download(be, send, d_send, total * sizeof(float));
  char what[96];
  snprintf(what, sizeof what, "reduce_scatter (%s%s)", async ? "submit" : "blocking", accumulate ? ", accumulate" : "");
  expect(what, recv, want, mine);
  if (async) {   // release_send
    float *zeros = lcc_calloc(total + 1, sizeof(float));
    expect("release_send zeroes the send buffer", send, zeros, total);
    free(zeros);
  }
  be->free(be, d_send), be->free(be, d_recv);
  free(send), free(recv), free(want), free(k);
}

static void check_allgather(lcc_backend *be, lcc_comm *c, size_t elem_bytes) {
  size_t *k = part_counts(c->world, 3001);
  const size_t total = lcc_comm_offset(k, c->world), at = lcc_comm_offset(k, c->rank);
  // element i is worth its owner's rank * 1000 + (i mod 1000); 2-byte elements are the fp32 values' high halves
  float *x = lcc_malloc((total + 1) * sizeof(float)), *want = lcc_malloc((total + 1) * sizeof(float));
  for (int r = 0; r < c->world; r++)
    for (size_t i = lcc_comm_offset(k, r); i < lcc_comm_offset(k, r) + k[r]; i++) want[i] = (float)(r * 1000 + i % 1000);
  for (size_t i = 0; i < total; i++) x[i] = i >= at && i < at + k[c->rank] ? want[i] : -1.0f;
  char *bytes = lcc_malloc((total + 1) * elem_bytes);
  for (size_t i = 0; i < total; i++) memcpy(bytes + i * elem_bytes, (char *)&x[i] + (4 - elem_bytes), elem_bytes);
  void *d = be->alloc(be, (total + 1) * elem_bytes);
  be->upload(be, d, bytes, total * elem_bytes);
  c->allgather(c, d, k, elem_bytes);
  be->download(be, bytes, d, total * elem_bytes);
  for (size_t i = 0; i < total; i++) {   // back to floats; 2-byte: the low half was dropped (values stay exact)
    uint32_t u = 0;
    memcpy((char *)&u + (4 - elem_bytes), bytes + i * elem_bytes, elem_bytes);
    memcpy(&x[i], &u, 4);
    uint32_t w;
    memcpy(&w, &want[i], 4);
    if (elem_bytes == 2) w &= 0xffff0000u;
    memcpy(&want[i], &w, 4);
  }
  expect(elem_bytes == 4 ? "allgather (4-byte)" : "allgather (2-byte)", x, want, total);
  be->free(be, d);
  free(x), free(want), free(bytes), free(k);
}

static void check_host(lcc_comm *c) {
  const int W = c->world;
  double s = c->sum_f64(c, c->rank + 1.0);
  int64_t m = c->max_i64(c, c->rank);
  char msg[16] = "";
  if (c->rank == 0) strcpy(msg, "from rank 0");
  c->bcast(c, msg, sizeof msg, 0);
  c->barrier(c);
  CHECKF(s == W * (W + 1) / 2.0 && m == W - 1 && !strcmp(msg, "from rank 0"),
         "rank %d: host collectives: sum %g max %lld bcast '%s'", c->rank, s, (long long)m, msg);
}

int main(int argc, char **argv) {
  char why[256] = "";
  const int n_gpu = lcc_cuda_device_count(why, sizeof why);
  if (argc > 1 && !strcmp(argv[1], "--gpus")) {
    printf("%d\n", n_gpu);
    return 0;
  }
  if (n_gpu == 0) {
    printf("SKIP: no CUDA device: %s\n", why);
    return 77;
  }
  // the local rank from the launcher (Open MPI, Slurm), before the communicator exists: the backend must be on it
  const char *local = getenv("OMPI_COMM_WORLD_LOCAL_RANK");
  if (!local) local = getenv("SLURM_LOCALID");
  lcc_backend *be = lcc_cuda_backend(local ? atoi(local) % n_gpu : 0);
  lcc_comm *c = lcc_comm_nccl(be);
  if (!c) {
    printf("error: %s\n", lcc_last_error());
    return 1;
  }
  rank = c->rank;
  check_allreduce(be, c);
  check_reduce_scatter(be, c, 0, 0);
  check_reduce_scatter(be, c, 1, 0);
  check_reduce_scatter(be, c, 1, 1);
  check_allgather(be, c, 4);
  check_allgather(be, c, 2);
  check_host(c);
  double busy = c->busy_seconds(c);
  CHECKF(busy > 0.0 && busy < 60.0, "rank %d: busy_seconds %g after timed collectives", rank, busy);
  printf("rank %d of %d: %s (communicator busy %.3f ms)\n", c->rank, c->world, test_failures ? "FAILED" : "ok", busy * 1e3);
  c->destroy(c);
  be->destroy(be);
  return test_failures ? 1 : 0;
}
