#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data_parallel.h"
#include "util.h"

// Sends the bucket [b0, b1) of the gradient buffer.
static void submit_bucket(lcc_dp *dp, size_t b0, size_t b1) {
  lcc_model *m = dp->m;
  lcc_comm *c = dp->comm;
  const int bucket = dp->n_buckets++;   // its index within this backward pass
  if (dp->stage == 0) {
    c->submit(c, &(lcc_comm_op){.kind = LCC_OP_ALLREDUCE, .buf = m->grads + b0, .n = b1 - b0, .bucket = bucket});
    return;
  }
  LCC_CHECK(bucket < dp->max_buckets, "more gradient buckets than backward stages");
  size_t *k = dp->bucket_counts + (size_t)bucket * c->world;   // each rank's part of the bucket
  for (int r = 0; r < c->world; r++) {
    size_t p0 = lcc_comm_offset(dp->counts, r), p1 = p0 + dp->counts[r];
    size_t a = p0 > b0 ? p0 : b0, b = p1 < b1 ? p1 : b1;
    k[r] = b > a ? b - a : 0;
  }
  size_t mine = dp->my_begin > b0 ? dp->my_begin : b0;   // where this rank's share of the bucket lands
  c->submit(c, &(lcc_comm_op){.kind = LCC_OP_REDUCE_SCATTER, .buf = m->grads + b0, .recv = dp->grad_shard + (mine - dp->my_begin),
                              .counts = k, .accumulate = dp->stage == 2, .release_send = dp->stage == 2, .bucket = bucket});
}

static void flush_open(lcc_dp *dp) {
  if (dp->open_end > dp->open_begin) submit_bucket(dp, dp->open_begin, dp->open_end);
  dp->open_begin = dp->open_end = 0;
}

static void on_ready(void *ctx, size_t begin, size_t end) {
  lcc_dp *dp = ctx;
  if (!dp->communicate) return;
  if (dp->open_end == dp->open_begin) dp->open_begin = dp->open_end = end;   // a new bucket ends here
  LCC_CHECK(end == dp->open_begin, "gradient ranges out of order");
  dp->open_begin = begin;
  if (dp->open_end - dp->open_begin >= dp->bucket_elems) flush_open(dp);
}

int lcc_dp_init(lcc_dp *dp, lcc_model *m, lcc_comm *comm, int stage, size_t bucket_bytes) {
  memset(dp, 0, sizeof *dp);
  if (stage < 0 || stage > 2) return lcc_error("zero must be 0, 1 or 2 (got %d)", stage);
  lcc_backend *be = m->be;
  dp->m = m, dp->comm = comm, dp->stage = stage;
  dp->bucket_elems = bucket_bytes / sizeof(float) ? bucket_bytes / sizeof(float) : 1;
  dp->counts = lcc_malloc((size_t)comm->world * sizeof(size_t));
  for (int r = 0; r < comm->world; r++)   // even parts; the first n % world ranks take one more
    dp->counts[r] = m->n_grad / (size_t)comm->world + ((size_t)r < m->n_grad % (size_t)comm->world);
  dp->my_begin = lcc_comm_offset(dp->counts, comm->rank);
  dp->my_n = dp->counts[comm->rank];
  dp->state_begin = stage ? dp->my_begin : 0;
  dp->state_n = stage ? dp->my_n : m->n_grad;
  dp->adam_m = be->alloc(be, (dp->state_n ? dp->state_n : 1) * sizeof(float));
  dp->adam_v = be->alloc(be, (dp->state_n ? dp->state_n : 1) * sizeof(float));
  if (stage) dp->grad_shard = be->alloc(be, (dp->my_n ? dp->my_n : 1) * sizeof(float));
  dp->max_buckets = m->cfg.num_layers + m->cfg.vit_depth + 8;   // at most one bucket per backward stage
  dp->bucket_counts = lcc_malloc((size_t)dp->max_buckets * (size_t)comm->world * sizeof(size_t));
  m->grad_hook = (lcc_grad_hook){dp, on_ready};
  return 0;
}

void lcc_dp_free(lcc_dp *dp) {
  lcc_backend *be = dp->m ? dp->m->be : NULL;
  if (be) {
    be->free(be, dp->adam_m);
    be->free(be, dp->adam_v);
    if (dp->grad_shard) be->free(be, dp->grad_shard);
    dp->m->grad_hook = (lcc_grad_hook){0};
  }
  free(dp->counts);
  free(dp->bucket_counts);
  memset(dp, 0, sizeof *dp);
}

void lcc_dp_begin_step(lcc_dp *dp) {
  lcc_backend *be = dp->m->be;
  if (dp->stage == 2) be->zero(be, dp->grad_shard, dp->my_n * sizeof(float));   // full gradients were released
  else lcc_model_zero_grad(dp->m);
  dp->wait_s = 0.0;
  dp->busy_at_begin = dp->comm->busy_seconds(dp->comm);
}

void lcc_dp_begin_backward(lcc_dp *dp, int last) {
  dp->communicate = dp->stage == 2 || last;
  dp->open_begin = dp->open_end = 0;
  dp->n_buckets = 0;
}

void lcc_dp_end_backward(lcc_dp *dp) {
  if (!dp->communicate) return;
  flush_open(dp);
  double t0 = lcc_now();
  dp->comm->wait(dp->comm);
  dp->wait_s += lcc_now() - t0;
  dp->communicate = 0;
}

double lcc_dp_grad_norm(lcc_dp *dp) {
  lcc_backend *be = dp->m->be;
  if (dp->stage == 0) return sqrt(be->sum_squares(be, dp->m->grads, dp->m->n_grad));
  return sqrt(dp->comm->sum_f64(dp->comm, be->sum_squares(be, dp->grad_shard, dp->my_n)));
}

void lcc_dp_step(lcc_dp *dp, float lr, float beta1, float beta2, float eps, float weight_decay, int step,
                 float grad_scale) {
  lcc_model *m = dp->m;
  lcc_backend *be = m->be;
  const size_t at = m->train_begin + dp->state_begin;   // first parameter element this rank updates
  void *act = m->weights == (void *)m->master ? NULL : (char *)m->weights + at * be->act_bytes;
  const float *grad = dp->stage ? dp->grad_shard : m->grads;
  be->adamw(be, m->master + at, act, grad, dp->adam_m, dp->adam_v, dp->state_n, lr, beta1, beta2, eps, weight_decay,
            step, grad_scale);
  if (dp->stage)   // every rank gets every updated parameter (in the compute copy, = master on CPU)
    dp->comm->allgather(dp->comm, (char *)m->weights + m->train_begin * be->act_bytes, dp->counts, be->act_bytes);
  be->sync(be);
}

void lcc_dp_comm_times(const lcc_dp *dp, double *busy_s, double *exposed_s) {
  *busy_s = dp->comm->busy_seconds(dp->comm) - dp->busy_at_begin;
  *exposed_s = dp->wait_s;
}
