// The training loop of livecc-train: options, AdamW with warmup + cosine, optional clipping, gradient
// accumulation, per-step log.
#ifndef LCC_TRAINER_H
#define LCC_TRAINER_H

#include <stdio.h>

#include "batch.h"
#include "model.h"
#include "runconfig.h"

typedef struct {
  char model[LCC_OPT_STR];      // HF folder or config.json of the architecture
  char init[LCC_OPT_STR];       // weights to start from; "" = random init from seed
  char freeze[LCC_OPT_STR];     // comma-separated module prefixes
  char backend[LCC_OPT_STR];
  int threads;
  int steps, micro_batch, grad_accum;
  double lr, warmup_ratio, weight_decay, beta1, beta2, adam_eps, clip;
  char loss[LCC_OPT_STR];       // "sample" (LiveCC) or "token"
  char positions[LCC_OPT_STR];  // "mrope" or "1d"
  int seed;
  int synth_chunks, synth_grid_h, synth_grid_w, synth_words, synth_fixed;
  char batch_file[LCC_OPT_STR]; // train on this one batch (safetensors) instead of synthetic data
  char dump_batch[LCC_OPT_STR]; // write the first synthetic batch here
  int log_every;
} lcc_train_opts;

extern const lcc_opt lcc_train_opt_table[];
extern const int lcc_train_opt_count;

typedef struct {
  lcc_train_opts o;
  lcc_config cfg;
  lcc_backend *be;
  lcc_model model;
  float *adam_m, *adam_v;       // [n_grad] AdamW moments (backend memory)
  int warmup_steps;
  int step;                     // optimizer steps done
  double *loss_log;             // [steps] global-batch loss of each step
  double *grad_norm_log;        // [steps]
} lcc_trainer;

int lcc_trainer_init(lcc_trainer *t, const lcc_train_opts *o);
// Runs o.steps optimizer steps, printing one line per log_every steps to `log` (NULL: silent).
int lcc_trainer_run(lcc_trainer *t, FILE *log);
void lcc_trainer_free(lcc_trainer *t);
// Learning rate for optimizer step `step` (0-based), as HF's get_cosine_schedule_with_warmup.
double lcc_lr_at(double peak, int step, int warmup, int total);

#endif
