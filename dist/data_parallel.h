// Data parallelism over a communicator: gradient buckets reduced while backward runs, and AdamW on the
// fp32 master weights, optionally sharded across ranks (ZeRO).
//
//   stage 0: plain data parallel. Buckets are all-reduced; every rank updates every parameter.
//   stage 1: ZeRO-1. Rank r owns part r of the trainable range (AdamW moments for it only); buckets are
//            reduce-scattered so each rank receives the summed gradient of its part; each rank updates its
//            part; the parameters are all-gathered.
//   stage 2: ZeRO-2. As stage 1, and the gradients are sharded too: every micro-batch's buckets are
//            reduce-scattered into the rank's gradient part as soon as they are final, and the bucket's
//            memory is given back (backend release), so only buckets in flight hold full-size gradients.
// With gradient accumulation, stages 0 and 1 communicate only during the last micro-batch's backward.
// Buckets are whole backward stages (see lcc_grad_hook) merged until they reach bucket_bytes.
#ifndef LCC_DATA_PARALLEL_H
#define LCC_DATA_PARALLEL_H

#include "comm.h"
#include "model.h"

typedef struct {
  lcc_model *m;
  lcc_comm *comm;
  int stage;
  size_t bucket_elems;
  size_t *counts;            // [world] the partition of the trainable range [0, n_grad) into rank parts
  size_t my_begin, my_n;     // this rank's part
  size_t state_begin, state_n;   // the range this rank keeps optimizer moments for: its part (ZeRO), all (stage 0)
  float *grad_shard;         // [my_n] summed gradient of this rank's part (ZeRO); NULL for stage 0
  float *adam_m, *adam_v;    // [state_n] AdamW moments
  size_t *bucket_counts;     // [max_buckets][world] counts of each bucket in flight (valid until wait)
  int max_buckets, n_buckets;
  size_t open_begin, open_end;   // the bucket being collected (ready ranges arrive in decreasing order)
  int communicate;           // this backward pass reduces its buckets
  double wait_s;             // main-thread time spent waiting for communication (exposed, not hidden)
  double busy_at_begin;      // comm busy seconds when the last step began
} lcc_dp;

// stage 0, 1 or 2; bucket_bytes: minimum bucket size. Returns 0, or -1 with lcc_error().
int lcc_dp_init(lcc_dp *dp, lcc_model *m, lcc_comm *comm, int stage, size_t bucket_bytes);
void lcc_dp_free(lcc_dp *dp);
// Before the first micro-batch of an optimizer step: clears the gradients (stage 0, 1) or this rank's
// gradient part (stage 2).
void lcc_dp_begin_step(lcc_dp *dp);
// Around each micro-batch's lcc_model_backward: last = 1 for the last micro-batch of the step.
void lcc_dp_begin_backward(lcc_dp *dp, int last);
void lcc_dp_end_backward(lcc_dp *dp);
// Global L2 norm of the summed gradient (after the last micro-batch).
double lcc_dp_grad_norm(lcc_dp *dp);
// AdamW on this rank's parameters (grad_scale applied to the gradients first), then the all-gather.
void lcc_dp_step(lcc_dp *dp, float lr, float beta1, float beta2, float eps, float weight_decay, int step,
                 float grad_scale);
// Communication time of the last step: total inside the collectives, and the part the main thread waited
// for (the rest was hidden behind backward).
void lcc_dp_comm_times(const lcc_dp *dp, double *busy_s, double *exposed_s);

#endif
