// Gradient synchronization benchmark (run under mpirun with 2+ ranks):
//   1. raw MPI_Allreduce of the whole trainable gradient in one call, and in a loop of calls of each bucket
//      size over the same bytes (Open MPI's speed depends on the message size, so the loop is the like-for-like
//      baseline of a bucket size), against the bucketed synchronization of the same bytes (plain data
//      parallel: all-reduce per bucket, on the communication thread): ratios to both;
//   2. ZeRO-1 reduce-scatter buckets, same bytes;
//   3. real training steps: time inside the collectives, the part the main thread waited for, and so the
//      share of communication hidden behind backward.
//   mpirun -np 2 build/bin/bench_comm [config.json] [steps]
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#include "batch.h"
#include "data_parallel.h"
#include "util.h"

#define REPS 10

// The ready ranges one real backward reports (whole stages, decreasing), replayed without computing.
static size_t ranges[4096][2];
static int n_ranges;

static void capture(void *ctx, size_t begin, size_t end) {
  ranges[n_ranges][0] = begin, ranges[n_ranges][1] = end;
  n_ranges++;
}

static void replay_stages(lcc_dp *dp, const lcc_model *m) {
  lcc_dp_begin_backward(dp, 1);
  for (int i = 0; i < n_ranges; i++) m->grad_hook.ready(m->grad_hook.ctx, ranges[i][0], ranges[i][1]);
  lcc_dp_end_backward(dp);
}

// The whole gradient all-reduced by a loop of raw MPI_Allreduce calls of `chunk` elements each.
static double time_raw_loop(float *buf, size_t n, size_t chunk) {
  MPI_Barrier(MPI_COMM_WORLD);
  double t0 = lcc_now();
  for (int r = 0; r < REPS; r++)
    for (size_t i = 0; i < n; i += chunk)
      MPI_Allreduce(MPI_IN_PLACE, buf + i, (int)(n - i < chunk ? n - i : chunk), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  MPI_Barrier(MPI_COMM_WORLD);
  return (lcc_now() - t0) / REPS;
}

static double time_sync(lcc_dp *dp, const lcc_model *m) {
  MPI_Barrier(MPI_COMM_WORLD);
  double t0 = lcc_now();
  for (int r = 0; r < REPS; r++) replay_stages(dp, m);
  MPI_Barrier(MPI_COMM_WORLD);
  return (lcc_now() - t0) / REPS;
}

int main(int argc, char **argv) {
  const char *config = argc > 1 ? argv[1] : "configs/model/tiny.json";
  const int steps = argc > 2 ? atoi(argv[2]) : 6;
  lcc_backend *be = lcc_cpu_backend(0);
  lcc_comm *comm = lcc_comm_mpi(be);
  LCC_CHECK(comm, "%s", lcc_last_error());
  lcc_config cfg;
  LCC_CHECK(lcc_config_load(&cfg, config) == 0, "%s", lcc_last_error());
  lcc_model m;
  LCC_CHECK(lcc_model_create(&m, &cfg, be, "visual") == 0, "%s", lcc_last_error());
  lcc_model_init_random(&m, 1);
  const double bytes = (double)m.n_grad * sizeof(float);
  lcc_owned_batch ob;
  lcc_batch_synthetic(&ob, &cfg, &(lcc_synth_shape){6, 8, 8, 6}, 5, comm->rank, 1);
  ob.b.norm_count = comm->world;
  m.grad_hook = (lcc_grad_hook){NULL, capture};
  LCC_CHECK(lcc_model_forward(&m, &ob.b) == 0, "%s", lcc_last_error());
  lcc_model_backward(&m);
  const int root = comm->rank == 0;
  if (root) printf("# %d ranks, %s: %.1f MB of fp32 gradients (%zu trainable parameters)\n", comm->world, config, bytes / 1e6, m.n_grad);

  // 1. one raw all-reduce of every gradient
  MPI_Barrier(MPI_COMM_WORLD);
  double t0 = lcc_now();
  for (int r = 0; r < REPS; r++) MPI_Allreduce(MPI_IN_PLACE, m.grads, (int)m.n_grad, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  MPI_Barrier(MPI_COMM_WORLD);
  const double raw = (lcc_now() - t0) / REPS;
  if (root) printf("%-52s %8.2f ms  %6.2f GB/s\n", "raw MPI_Allreduce, one call", 1e3 * raw, bytes / raw / 1e9);
  // 1 and 2: bucketed all-reduce (plain data parallel) and bucketed reduce-scatter (ZeRO-1, which the MPI
  // communicator also does by all-reduce) at several bucket sizes; the trainer's default is 16 MiB (bucket_mb)
  const int bucket_mb[4] = {64, 16, 4, 1};
  double loop[4];
  for (int k = 0; k < 4; k++) {
    loop[k] = time_raw_loop(m.grads, m.n_grad, ((size_t)bucket_mb[k] << 20) / sizeof(float));
    char what[64];
    snprintf(what, sizeof what, "raw MPI_Allreduce, a loop of %d MiB calls", bucket_mb[k]);
    if (root) printf("%-52s %8.2f ms  %6.2f GB/s  ratio to one call %.3f\n", what, 1e3 * loop[k], bytes / loop[k] / 1e9, raw / loop[k]);
  }
  for (int zero = 0; zero <= 1; zero++)
    for (int k = 0; k < 4; k++) {
      lcc_dp dp;
      LCC_CHECK(lcc_dp_init(&dp, &m, comm, zero, (size_t)bucket_mb[k] << 20) == 0, "%s", lcc_last_error());
      const double t = time_sync(&dp, &m);
      char what[64];
      snprintf(what, sizeof what, "bucketed %s, %d MiB buckets", zero ? "reduce-scatter (ZeRO-1)" : "all-reduce", bucket_mb[k]);
      if (root)
        printf("%-52s %8.2f ms  %6.2f GB/s  ratio to one call %.3f, to the %d MiB loop %.3f\n", what, 1e3 * t, bytes / t / 1e9,
               raw / t, bucket_mb[k], loop[k] / t);
      lcc_dp_free(&dp);
    }
  // 3. training steps: how much of the communication the backward pass hides
  lcc_dp dp;
  LCC_CHECK(lcc_dp_init(&dp, &m, comm, 0, (size_t)4 << 20) == 0, "%s", lcc_last_error());
  double busy_sum = 0, exposed_sum = 0, step_sum = 0, bwd_sum = 0;
  for (int s = 0; s < steps; s++) {
    lcc_dp_begin_step(&dp);
    double a = lcc_now();
    LCC_CHECK(lcc_model_forward(&m, &ob.b) == 0, "%s", lcc_last_error());
    double b0 = lcc_now();
    lcc_dp_begin_backward(&dp, 1);
    lcc_model_backward(&m);
    double b1 = lcc_now();
    lcc_dp_end_backward(&dp);
    lcc_dp_step(&dp, 1e-4f, 0.9f, 0.999f, 1e-8f, 0.0f, s + 1, 1.0f);
    double busy, exposed;
    lcc_dp_comm_times(&dp, &busy, &exposed);
    if (s > 0) busy_sum += busy, exposed_sum += exposed, step_sum += lcc_now() - a, bwd_sum += b1 - b0;   // skip warm-up
  }
  const double n = steps > 1 ? steps - 1 : 1;
  if (root)
    printf("training step (%d tokens): %.1f ms, backward %.1f ms; communication %.1f ms, of which exposed %.1f ms: "
           "%.0f%% hidden behind backward\n", ob.b.n_tokens, 1e3 * step_sum / n, 1e3 * bwd_sum / n, 1e3 * busy_sum / n,
           1e3 * exposed_sum / n, busy_sum > 0 ? 100.0 * (1.0 - exposed_sum / busy_sum) : 0.0);
  lcc_batch_free(&ob);
  lcc_dp_free(&dp);
  lcc_model_destroy(&m);
  comm->destroy(comm);
  be->destroy(be);
  return 0;
}
