// The training loop of livecc-train: data-parallel ranks over a communicator, batches from HDF5 shards
// (or synthetic LiveCC-shaped samples), AdamW with warmup + cosine, optional clipping, gradient
// accumulation, held-out loss, metrics, checkpoints that resume exactly, and a stop on SIGTERM/SIGUSR1.
#ifndef LCC_TRAINER_H
#define LCC_TRAINER_H

#include <signal.h>
#include <stdio.h>

#include "batch.h"
#include "checkpoint.h"
#include "data_parallel.h"
#include "model.h"
#include "runconfig.h"

// Exit code of a run that stopped on a signal after saving a checkpoint: the Slurm scripts requeue it.
#define LCC_EXIT_REQUEUE 99
// LCC_EXIT_COLLECTIVE_TIMEOUT (98, dist/comm.h): a rank whose collective passed its deadline (collective_timeout).

typedef struct {
  char model[LCC_OPT_STR];      // HF folder or config.json of the architecture
  char init[LCC_OPT_STR];       // weights to start from (HF folder, safetensors, or a checkpoint directory)
  char freeze[LCC_OPT_STR];     // comma-separated module prefixes
  char backend[LCC_OPT_STR];
  char dist[LCC_OPT_STR];       // auto, mpi, none
  int threads;
  int steps, micro_batch, grad_accum, global_batch;
  double lr, warmup_ratio, weight_decay, beta1, beta2, adam_eps, clip;
  char nonfinite[LCC_OPT_STR];  // skip or stop: what a step with a non-finite (or too large) gradient norm does
  int max_skips;                // skipped steps in a row before the run stops
  double skip_grad_norm;        // a gradient norm above this counts as exploding (0: off)
  int collective_timeout;       // seconds any collective may take before every live rank reports and exits (0: off)
  char loss[LCC_OPT_STR];       // "sample" (LiveCC) or "token"
  char positions[LCC_OPT_STR];  // "mrope" or "1d"
  int seed;
  int zero, bucket_mb;
  char data[LCC_OPT_STR];       // shards manifest (or its directory), or "DIR:WEIGHT, ..."; empty: synthetic samples
  char heldout[LCC_OPT_STR];    // held-out shards for the evaluation loss
  char tokenizer[LCC_OPT_STR];  // the model's tokenizer, compared with the shards' (empty: the model folder's)
  int eval_every, eval_samples;
  int data_threads, prefetch, skip_corrupt, blank_frames;
  char out[LCC_OPT_STR];        // run directory: metrics.jsonl, loss.png, checkpoints/
  int save_every, keep_last;
  char resume[LCC_OPT_STR];     // auto: continue from <out>/checkpoints when there is one; never
  char override[LCC_OPT_STR];   // comma-separated run settings allowed to differ from the resumed checkpoint's
  int fresh;                    // start from scratch although every checkpoint under <out> was refused
  int synth_chunks, synth_grid_h, synth_grid_w, synth_words, synth_fixed;
  char batch_file[LCC_OPT_STR]; // train on this one batch (safetensors) instead of a data stream
  char dump_batch[LCC_OPT_STR]; // write the first batch here
  int log_every, plot;
  int dry_run, plan_world, plan_tokens, recompute;
  double plan_device_gib;
  int fault_kill_after, fault_kill_in_save;   // testing: SIGKILL after a step's checkpoint / in its middle
  int fault_wait_after;                       // testing: wait for a stop signal after this step
  int fault_nan_at;                           // testing: this step's gradients are NaN on rank fault_rank
  int fault_stop_after, fault_rank;           // testing: rank fault_rank stops itself (SIGSTOP) after this step
} lcc_train_opts;

extern const lcc_opt lcc_train_opt_table[];
extern const int lcc_train_opt_count;

typedef struct lcc_source lcc_source;   // where micro-batches come from (train_data.c)

typedef struct {
  lcc_train_opts o;
  lcc_config cfg;
  lcc_backend *be;
  lcc_comm *comm;
  lcc_model model;
  lcc_dp dp;
  lcc_source *src, *heldout;
  char ckpt_dir[LCC_OPT_STR + 16];
  char run_config[16384];       // resolved configuration text (stored in checkpoints)
  char override_log[4096];      // settings changed against the resumed checkpoint (JSON members), or ""
  FILE *metrics;                // <out>/metrics.jsonl (rank 0)
  int warmup_steps;
  int step;                     // optimizer steps done
  int64_t consumed;             // data stream positions consumed
  double *loss_log;             // [steps] global-batch loss of each step
  double *grad_norm_log;        // [steps]
  int64_t *batch_ids;           // [micro_batch * grad_accum] sample ids of this rank's current step (-1: unknown)
  int skips_in_row, skipped_steps;   // steps skipped for a non-finite or too large gradient
  int n_data;                   // datasets of a data list of several (0: one dataset, or no shards)
  int64_t *data_step;           // [n_data] samples of the current step's global batch from each dataset
  int64_t *data_run;            // [n_data] samples of this run (since start or resume) from each dataset
  volatile sig_atomic_t *stop;  // set by SIGTERM / SIGUSR1 (NULL: no signals)
} lcc_trainer;

// be and comm belong to the caller (the communicator serves that backend's memory).
int lcc_trainer_init(lcc_trainer *t, const lcc_train_opts *o, lcc_backend *be, lcc_comm *comm);
// Runs up to o.steps optimizer steps. Returns 0 when done, LCC_EXIT_REQUEUE after a signal-triggered
// checkpoint, -1 with lcc_error() on failure. Logs to `log` on rank 0 (NULL: silent).
int lcc_trainer_run(lcc_trainer *t, FILE *log);
void lcc_trainer_free(lcc_trainer *t);
// Learning rate for optimizer step `step` (0-based), as HF's get_cosine_schedule_with_warmup.
double lcc_lr_at(double peak, int step, int warmup, int total);
// Held-out loss: the mean over held-out samples of each sample's token-mean CE (every rank takes part).
int lcc_trainer_eval(lcc_trainer *t, double *loss, int64_t *samples);
// Checks the options against each other and the world size. 0, or -1 with lcc_error().
int lcc_train_opts_check(lcc_train_opts *o, int world);
// Prints the per-rank memory plan of o (dry run) for the CUDA configuration; returns its total bytes.
double lcc_memory_plan(const lcc_config *cfg, const lcc_train_opts *o, FILE *f);

// Metrics (metrics.c): <out>/metrics.jsonl, one JSON object per line, and a loss plot drawn by gnuplot.
// Opening keeps the lines of steps <= keep_steps (a resumed run rewrites what came after its checkpoint).
FILE *lcc_metrics_open(const char *out_dir, int keep_steps);
int lcc_metrics_plot(const char *out_dir);   // <out>/loss.png; 0, or -1 with lcc_error()

// Data sources (train_data.c).
lcc_source *lcc_source_open(lcc_trainer *t, const char *data, int shuffle, int world, int rank, int micro_batch,
                            int grad_accum, int64_t consumed);
// This rank's next micro-batch, owned by the source until the next call. 0, or -1 with lcc_error().
int lcc_source_next(lcc_source *s, lcc_owned_batch **out);
int64_t lcc_source_size(const lcc_source *s);   // samples per epoch (0: unbounded synthetic stream)
int64_t lcc_source_skipped(const lcc_source *s);   // corrupt samples replaced so far (this rank)
// The datasets of a shards source's data list (0 for synthetic samples and batch files).
typedef struct {
  const char *name;             // as written in the list
  double weight;                // normalized share of the stream
  int64_t samples;              // per epoch of it
  int64_t drawn;                // samples it gives stream positions [0, consumed)
} lcc_source_dataset;
int lcc_source_datasets(const lcc_source *s);
lcc_source_dataset lcc_source_dataset_info(const lcc_source *s, int d, int64_t consumed);
int lcc_source_dataset_of(const lcc_source *s, int64_t id);   // the dataset of sample id (-1: none)
void lcc_source_close(lcc_source *s);

#endif
