// livecc-train's keys: defaults follow LiveCC's recipe (LIVECC.md 5.1) where it has one.
#include <float.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "trainer.h"
#include "util.h"

#define OPT(key, type, field, def, help) {key, type, offsetof(lcc_train_opts, field), def, help}
const lcc_opt lcc_train_opt_table[] = {
    OPT("model", LCC_OPT_STRING, model, "configs/model/tiny.json", "model architecture: HF folder or config.json"),
    OPT("init", LCC_OPT_STRING, init, "", "start from these weights: HF folder, .safetensors, or a checkpoint directory (fresh optimizer)"),
    OPT("freeze", LCC_OPT_STRING, freeze, "visual", "comma-separated module prefixes to freeze (LiveCC: visual)"),
    OPT("backend", LCC_OPT_STRING, backend, "cpu", "compute backend: cpu, cuda (bf16; one GPU per rank), or cpu-bf16 (CUDA's storage types on the CPU)"),
    OPT("dist", LCC_OPT_STRING, dist, "auto", "auto: MPI when started by mpirun/srun; mpi; none"),
    OPT("threads", LCC_OPT_INT, threads, "0", "CPU threads per rank (0: OpenMP default)"),
    OPT("steps", LCC_OPT_INT, steps, "100", "optimizer steps"),
    OPT("micro_batch", LCC_OPT_INT, micro_batch, "1", "samples per forward/backward on each rank"),
    OPT("grad_accum", LCC_OPT_INT, grad_accum, "1", "micro-batches per optimizer step (ignored when global_batch is set)"),
    OPT("global_batch", LCC_OPT_INT, global_batch, "0", "samples per optimizer step over all ranks (0: micro_batch x grad_accum x ranks)"),
    OPT("lr", LCC_OPT_FLOAT, lr, "2e-5", "peak learning rate"),
    OPT("warmup_ratio", LCC_OPT_FLOAT, warmup_ratio, "0.03", "linear warmup over ceil(ratio * steps), then cosine to 0"),
    OPT("weight_decay", LCC_OPT_FLOAT, weight_decay, "0", "AdamW decoupled weight decay"),
    OPT("beta1", LCC_OPT_FLOAT, beta1, "0.9", "AdamW beta1"),
    OPT("beta2", LCC_OPT_FLOAT, beta2, "0.999", "AdamW beta2"),
    OPT("adam_eps", LCC_OPT_FLOAT, adam_eps, "1e-8", "AdamW epsilon"),
    OPT("clip", LCC_OPT_FLOAT, clip, "0", "clip the global gradient norm to this (0: off, as LiveCC)"),
    OPT("nonfinite", LCC_OPT_STRING, nonfinite, "skip", "a step whose gradient norm is not finite (or above skip_grad_norm): skip (no update, logged with its samples) or stop"),
    OPT("max_skips", LCC_OPT_INT, max_skips, "5", "skipped steps in a row before the run stops"),
    OPT("skip_grad_norm", LCC_OPT_FLOAT, skip_grad_norm, "0", "a gradient norm above this counts as exploding: handled as nonfinite says (0: off)"),
    OPT("collective_timeout", LCC_OPT_INT, collective_timeout, "600", "seconds a collective may wait for the other ranks; then each live rank reports and exits with code 98 (0: off)"),
    OPT("loss", LCC_OPT_STRING, loss, "sample", "sample: mean per sample, then over the global batch (LiveCC); token: mean per token"),
    OPT("positions", LCC_OPT_STRING, positions, "mrope", "mrope: 3-D get_rope_index positions; 1d: 0..T-1 on every axis"),
    OPT("seed", LCC_OPT_INT, seed, "42", "seed of the init, the data order and the synthetic data"),
    OPT("zero", LCC_OPT_INT, zero, "1", "0: plain data parallel; 1: shard optimizer state (ZeRO-1); 2: and gradients (ZeRO-2)"),
    OPT("bucket_mb", LCC_OPT_INT, bucket_mb, "16", "gradient bucket size, MiB (a bucket holds at least one backward stage)"),
    OPT("data", LCC_OPT_STRING, data, "", "training shards: manifest.json or its directory, or datasets with weights 'DIR_A:0.7, DIR_B:0.3' (empty: synthetic samples)"),
    OPT("heldout", LCC_OPT_STRING, heldout, "", "held-out shards for the evaluation loss"),
    OPT("tokenizer", LCC_OPT_STRING, tokenizer, "", "tokenizer.json (or its folder) the model uses: the shards' tokenizer hash must match it (empty: tokenizer.json of the HF folder of model or init if there is one, else not compared)"),
    OPT("eval_every", LCC_OPT_INT, eval_every, "0", "held-out loss every N steps (0: at the end only, when heldout is set)"),
    OPT("eval_samples", LCC_OPT_INT, eval_samples, "0", "held-out samples per evaluation (0: all)"),
    OPT("data_threads", LCC_OPT_INT, data_threads, "2", "loader threads per rank"),
    OPT("prefetch", LCC_OPT_INT, prefetch, "4", "micro-batches prepared ahead"),
    OPT("skip_corrupt", LCC_OPT_BOOL, skip_corrupt, "true", "skip (and count) samples that fail to read, instead of stopping"),
    OPT("blank_frames", LCC_OPT_BOOL, blank_frames, "false", "train without pictures: every patch row at the mean colour (ablation)"),
    OPT("out", LCC_OPT_STRING, out, "runs/default", "run directory: metrics.jsonl, loss.png, checkpoints/"),
    OPT("save_every", LCC_OPT_INT, save_every, "0", "checkpoint every N steps (0: only at the end)"),
    OPT("keep_last", LCC_OPT_INT, keep_last, "3", "checkpoints kept (older ones are removed)"),
    OPT("resume", LCC_OPT_STRING, resume, "auto", "auto: continue from <out>/checkpoints when one exists; never"),
    OPT("override", LCC_OPT_STRING, override, "", "comma-separated settings that may differ from the resumed checkpoint's (seed, lr, data, ...)"),
    OPT("fresh", LCC_OPT_BOOL, fresh, "false", "start from scratch when every checkpoint under <out> is refused (they are kept)"),
    OPT("synthetic.chunks", LCC_OPT_INT, synth_chunks, "4", "synthetic samples: video chunks (seconds - 2) per sample"),
    OPT("synthetic.grid_h", LCC_OPT_INT, synth_grid_h, "4", "synthetic samples: patch rows per frame"),
    OPT("synthetic.grid_w", LCC_OPT_INT, synth_grid_w, "4", "synthetic samples: patch columns per frame"),
    OPT("synthetic.words", LCC_OPT_INT, synth_words, "4", "synthetic samples: words per assistant turn"),
    OPT("synthetic.fixed", LCC_OPT_BOOL, synth_fixed, "false", "reuse one synthetic micro-batch every step (overfit check)"),
    OPT("batch_file", LCC_OPT_STRING, batch_file, "", "train on this one batch (safetensors) every micro-batch"),
    OPT("dump_batch", LCC_OPT_STRING, dump_batch, "", "write the first micro-batch to this safetensors file"),
    OPT("log_every", LCC_OPT_INT, log_every, "1", "print a step line every N steps"),
    OPT("plot", LCC_OPT_BOOL, plot, "true", "draw <out>/loss.png with gnuplot at the end"),
    OPT("dry_run", LCC_OPT_BOOL, dry_run, "false", "print the per-rank memory plan (and write dump_batch, if set) and exit"),
    OPT("plan.world_size", LCC_OPT_INT, plan_world, "8", "dry run: ranks"),
    OPT("plan.tokens", LCC_OPT_INT, plan_tokens, "32768", "dry run: tokens per sample"),
    OPT("plan.device_gib", LCC_OPT_FLOAT, plan_device_gib, "80", "dry run: memory of one GPU, GiB (H100 80, H200 141): a plan above it is a warning"),
    OPT("recompute", LCC_OPT_BOOL, recompute, "false", "keep only each decoder layer's input; backward recomputes the rest"),
    OPT("fault.kill_after", LCC_OPT_INT, fault_kill_after, "0", "testing: SIGKILL this process after step N (its checkpoint included)"),
    OPT("fault.kill_in_save", LCC_OPT_INT, fault_kill_in_save, "0", "testing: SIGKILL this process while checkpoint N is half written"),
    OPT("fault.wait_after", LCC_OPT_INT, fault_wait_after, "0", "testing: after step N, wait for SIGTERM/SIGUSR1 (up to 5 min)"),
    OPT("fault.nan_at", LCC_OPT_INT, fault_nan_at, "0", "testing: the gradients of step N (1-based) are NaN on rank fault.rank"),
    OPT("fault.stop_after", LCC_OPT_INT, fault_stop_after, "0", "testing: rank fault.rank stops itself (SIGSTOP) after step N"),
    OPT("fault.rank", LCC_OPT_INT, fault_rank, "0", "testing: the rank the nan_at and stop_after faults hit"),
};
const int lcc_train_opt_count = sizeof lcc_train_opt_table / sizeof lcc_train_opt_table[0];

int lcc_train_opts_check(lcc_train_opts *o, int world) {
  if (strcmp(o->backend, "cpu") && strcmp(o->backend, "cpu-bf16") && strcmp(o->backend, "cuda"))
    return lcc_error("backend must be cpu, cpu-bf16 or cuda, got '%s'", o->backend);
  if (o->steps < 1 || o->micro_batch < 1 || o->grad_accum < 1 || o->global_batch < 0)
    return lcc_error("steps, micro_batch and grad_accum must be >= 1, global_batch >= 0");
  if (o->global_batch) {
    const int per_step = o->micro_batch * world;
    if (o->global_batch % per_step)
      return lcc_error("global_batch %d is not divisible by micro_batch %d x world size %d: choose a global batch that "
                       "is a multiple of %d, or another number of ranks", o->global_batch, o->micro_batch, world, per_step);
    o->grad_accum = o->global_batch / per_step;
  }
  o->global_batch = o->micro_batch * o->grad_accum * world;
  if (strcmp(o->loss, "sample") && strcmp(o->loss, "token")) return lcc_error("loss must be 'sample' or 'token', got '%s'", o->loss);
  if (strcmp(o->positions, "mrope") && strcmp(o->positions, "1d"))
    return lcc_error("positions must be 'mrope' or '1d', got '%s'", o->positions);
  if (strcmp(o->resume, "auto") && strcmp(o->resume, "never")) return lcc_error("resume must be 'auto' or 'never', got '%s'", o->resume);
  // Each value's valid range, named: a bad one otherwise surfaces steps later as a NaN with a misleading hint.
  if (!(o->lr >= 0 && o->lr <= FLT_MAX)) return lcc_error("lr must be in [0, %g] (fp32), got %g", FLT_MAX, o->lr);
  if (!(o->warmup_ratio >= 0 && o->warmup_ratio <= 1)) return lcc_error("warmup_ratio must be in [0, 1], got %g", o->warmup_ratio);
  if (!(o->beta1 >= 0 && o->beta1 < 1)) return lcc_error("beta1 must be in [0, 1), got %g", o->beta1);
  if (!(o->beta2 >= 0 && o->beta2 < 1)) return lcc_error("beta2 must be in [0, 1), got %g", o->beta2);
  if (!(o->adam_eps > 0 && o->adam_eps <= 1)) return lcc_error("adam_eps must be in (0, 1], got %g", o->adam_eps);
  if (!(o->weight_decay >= 0 && o->weight_decay <= FLT_MAX)) return lcc_error("weight_decay must be >= 0, got %g", o->weight_decay);
  if (!(o->clip >= 0 && o->clip <= FLT_MAX)) return lcc_error("clip must be >= 0 (0: off), got %g", o->clip);
  if (!(o->skip_grad_norm >= 0)) return lcc_error("skip_grad_norm must be >= 0 (0: off), got %g", o->skip_grad_norm);
  if (strcmp(o->nonfinite, "skip") && strcmp(o->nonfinite, "stop"))
    return lcc_error("nonfinite must be 'skip' or 'stop', got '%s'", o->nonfinite);
  if (o->max_skips < 0) return lcc_error("max_skips must be >= 0, got %d", o->max_skips);
  if (o->collective_timeout < 0) return lcc_error("collective_timeout must be >= 0 seconds (0: off), got %d", o->collective_timeout);
  if (o->plan_world < 1 || o->plan_tokens < 1)
    return lcc_error("plan.world_size and plan.tokens must be >= 1, got %d and %d", o->plan_world, o->plan_tokens);
  if (!(o->plan_device_gib > 0)) return lcc_error("plan.device_gib must be > 0, got %g", o->plan_device_gib);
  if (o->lr >= 1.0)
    fprintf(stderr, "livecc-train: warning: lr = %g is far above any fine-tuning rate (LiveCC: 2e-5)\n", o->lr);
  if (o->zero < 0 || o->zero > 2) return lcc_error("zero must be 0, 1 or 2, got %d", o->zero);
  if (o->bucket_mb < 1 || o->keep_last < 0 || o->save_every < 0 || o->log_every < 1)
    return lcc_error("bucket_mb and log_every must be >= 1, keep_last and save_every >= 0");
  return 0;
}
