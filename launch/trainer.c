#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "trainer.h"
#include "util.h"

#define OPT(key, type, field, def, help) {key, type, offsetof(lcc_train_opts, field), def, help}
const lcc_opt lcc_train_opt_table[] = {
    OPT("model", LCC_OPT_STRING, model, "configs/model/tiny.json", "model architecture: HF folder or config.json"),
    OPT("init", LCC_OPT_STRING, init, "", "start from these weights (HF folder or .safetensors); empty: random init"),
    OPT("freeze", LCC_OPT_STRING, freeze, "visual", "comma-separated module prefixes to freeze (LiveCC: visual)"),
    OPT("backend", LCC_OPT_STRING, backend, "cpu", "compute backend: cpu"),
    OPT("threads", LCC_OPT_INT, threads, "0", "CPU threads (0: OpenMP default)"),
    OPT("steps", LCC_OPT_INT, steps, "100", "optimizer steps"),
    OPT("micro_batch", LCC_OPT_INT, micro_batch, "1", "samples per forward/backward"),
    OPT("grad_accum", LCC_OPT_INT, grad_accum, "1", "micro-batches per optimizer step"),
    OPT("lr", LCC_OPT_FLOAT, lr, "2e-5", "peak learning rate"),
    OPT("warmup_ratio", LCC_OPT_FLOAT, warmup_ratio, "0.03", "linear warmup over ceil(ratio * steps), then cosine to 0"),
    OPT("weight_decay", LCC_OPT_FLOAT, weight_decay, "0", "AdamW decoupled weight decay"),
    OPT("beta1", LCC_OPT_FLOAT, beta1, "0.9", "AdamW beta1"),
    OPT("beta2", LCC_OPT_FLOAT, beta2, "0.999", "AdamW beta2"),
    OPT("adam_eps", LCC_OPT_FLOAT, adam_eps, "1e-8", "AdamW epsilon"),
    OPT("clip", LCC_OPT_FLOAT, clip, "0", "clip the global gradient norm to this (0: off, as LiveCC)"),
    OPT("loss", LCC_OPT_STRING, loss, "sample", "sample: mean per sample, then over samples (LiveCC); token: mean per token"),
    OPT("positions", LCC_OPT_STRING, positions, "mrope", "mrope: 3-D get_rope_index positions; 1d: 0..T-1 on every axis"),
    OPT("seed", LCC_OPT_INT, seed, "42", "seed of the init and the synthetic data"),
    OPT("synthetic.chunks", LCC_OPT_INT, synth_chunks, "4", "synthetic samples: video chunks (seconds - 2) per sample"),
    OPT("synthetic.grid_h", LCC_OPT_INT, synth_grid_h, "4", "synthetic samples: patch rows per frame"),
    OPT("synthetic.grid_w", LCC_OPT_INT, synth_grid_w, "4", "synthetic samples: patch columns per frame"),
    OPT("synthetic.words", LCC_OPT_INT, synth_words, "4", "synthetic samples: words per assistant turn"),
    OPT("synthetic.fixed", LCC_OPT_BOOL, synth_fixed, "false", "reuse one synthetic batch every step (overfit check)"),
    OPT("batch_file", LCC_OPT_STRING, batch_file, "", "train on this one batch (safetensors) instead of synthetic data"),
    OPT("dump_batch", LCC_OPT_STRING, dump_batch, "", "write the first synthetic batch to this safetensors file"),
    OPT("log_every", LCC_OPT_INT, log_every, "1", "print a step line every N steps"),
};
const int lcc_train_opt_count = sizeof lcc_train_opt_table / sizeof lcc_train_opt_table[0];

double lcc_lr_at(double peak, int step, int warmup, int total) {
  if (step < warmup) return peak * (double)step / (double)(warmup > 1 ? warmup : 1);
  double progress = (double)(step - warmup) / (double)(total - warmup > 1 ? total - warmup : 1);
  double f = 0.5 * (1.0 + cos(M_PI * progress));
  return peak * (f > 0.0 ? f : 0.0);
}

static int check_opts(const lcc_train_opts *o) {
  if (strcmp(o->backend, "cpu") != 0) return lcc_error("backend '%s' is not available (this build has: cpu)", o->backend);
  if (o->steps < 1 || o->micro_batch < 1 || o->grad_accum < 1)
    return lcc_error("steps, micro_batch and grad_accum must be >= 1");
  if (strcmp(o->loss, "sample") && strcmp(o->loss, "token")) return lcc_error("loss must be 'sample' or 'token', got '%s'", o->loss);
  if (strcmp(o->positions, "mrope") && strcmp(o->positions, "1d"))
    return lcc_error("positions must be 'mrope' or '1d', got '%s'", o->positions);
  if (o->lr < 0 || o->warmup_ratio < 0 || o->warmup_ratio > 1 || o->clip < 0)
    return lcc_error("lr and clip must be >= 0 and warmup_ratio in [0, 1]");
  return 0;
}

int lcc_trainer_init(lcc_trainer *t, const lcc_train_opts *o) {
  memset(t, 0, sizeof *t);
  t->o = *o;
  if (check_opts(o) || lcc_config_load(&t->cfg, o->model)) return -1;
  t->be = lcc_cpu_backend(o->threads);
  if (lcc_model_create(&t->model, &t->cfg, t->be, o->freeze)) return -1;
  t->model.pos_mode = strcmp(o->positions, "1d") == 0 ? LCC_POS_1D : LCC_POS_MROPE;
  if (o->init[0]) {
    if (lcc_model_load_hf(&t->model, o->init)) return -1;
  } else {
    lcc_model_init_random(&t->model, (uint64_t)o->seed);
  }
  if (!t->model.n_grad) return lcc_error("freeze '%s' leaves nothing to train", o->freeze);
  t->adam_m = t->be->alloc(t->be, t->model.n_grad * sizeof(float));
  t->adam_v = t->be->alloc(t->be, t->model.n_grad * sizeof(float));
  t->warmup_steps = (int)ceil(o->warmup_ratio * o->steps);
  t->loss_log = lcc_calloc((size_t)o->steps, sizeof(double));
  t->grad_norm_log = lcc_calloc((size_t)o->steps, sizeof(double));
  return 0;
}

void lcc_trainer_free(lcc_trainer *t) {
  if (t->be) {
    if (t->adam_m) t->be->free(t->be, t->adam_m);
    if (t->adam_v) t->be->free(t->be, t->adam_v);
    if (t->model.params) lcc_model_destroy(&t->model);
    t->be->destroy(t->be);
  }
  free(t->loss_log);
  free(t->grad_norm_log);
  memset(t, 0, sizeof *t);
}

// The micro-batch for (step, micro): a fixed batch file or synthetic batch (made once, then reused), or a
// fresh synthetic one.
static int next_batch(lcc_trainer *t, lcc_owned_batch *ob, int step, int micro) {
  const lcc_train_opts *o = &t->o;
  if ((o->batch_file[0] || o->synth_fixed) && ob->ids) return 0;
  lcc_batch_free(ob);
  if (o->batch_file[0]) return lcc_batch_load(ob, o->batch_file, lcc_patch_dim(&t->cfg));
  uint64_t seed = (uint64_t)o->seed * 1000003ull + (o->synth_fixed ? 0 : (uint64_t)step * (uint64_t)o->grad_accum + (uint64_t)micro + 1);
  lcc_batch_synthetic(ob, &t->cfg, o->micro_batch, o->synth_chunks, o->synth_grid_h, o->synth_grid_w, o->synth_words, seed);
  if (step == 0 && micro == 0 && o->dump_batch[0] && lcc_batch_save(ob, o->dump_batch, lcc_patch_dim(&t->cfg))) return -1;
  return 0;
}

static int count_labelled(const lcc_batch *b) {
  int n = 0;
  for (int s = 0; s < b->n_samples; s++)
    for (int i = b->sample_start[s] + 1; i < b->sample_start[s + 1]; i++) n += b->labels[i] >= 0;
  return n;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int lcc_trainer_run(lcc_trainer *t, FILE *log) {
  const lcc_train_opts *o = &t->o;
  lcc_model *m = &t->model;
  lcc_backend *be = t->be;
  lcc_owned_batch *mb = lcc_calloc((size_t)o->grad_accum, sizeof *mb);
  double *step_s = lcc_calloc((size_t)o->steps, sizeof(double));
  long long step_tokens = 0;
  int rc = 0, timed = 0;
  for (int step = t->step; step < o->steps && !rc; step++) {
    double t0 = lcc_now();
    // The whole global batch is read first: the per-token normalization needs its labelled-token count.
    long long tokens = 0, labelled = 0, samples = 0;
    for (int k = 0; k < o->grad_accum && !rc; k++) {
      rc = next_batch(t, &mb[k], step, k);
      if (!rc) tokens += mb[k].b.n_tokens, labelled += count_labelled(&mb[k].b), samples += mb[k].b.n_samples;
    }
    lcc_model_zero_grad(m);
    double loss = 0.0;
    for (int k = 0; k < o->grad_accum && !rc; k++) {
      lcc_batch *b = &mb[k].b;
      b->loss_mode = strcmp(o->loss, "token") == 0 ? LCC_LOSS_TOKEN_MEAN : LCC_LOSS_SAMPLE_MEAN;
      b->norm_count = b->loss_mode == LCC_LOSS_TOKEN_MEAN ? (double)(labelled ? labelled : 1) : (double)samples;
      rc = lcc_model_forward(m, b);
      if (rc) break;
      lcc_model_backward(m);
      loss += m->loss;
    }
    if (rc) break;
    if (!isfinite(loss)) {
      rc = lcc_error("step %d: loss is %f; stopping before the weights are updated", step + 1, loss);
      break;
    }
    const double norm = sqrt(be->sum_squares(be, m->grads, m->n_grad));
    const double scale = o->clip > 0 && norm > o->clip ? o->clip / (norm + 1e-6) : 1.0;
    const double lr = lcc_lr_at(o->lr, step, t->warmup_steps, o->steps);
    be->adamw(be, m->master + m->train_begin, m->weights == (void *)m->master ? NULL : (char *)m->weights + m->train_begin * be->act_bytes,
              m->grads, t->adam_m, t->adam_v, m->n_grad, (float)lr, (float)o->beta1, (float)o->beta2, (float)o->adam_eps,
              (float)o->weight_decay, step + 1, (float)scale);
    be->sync(be);
    t->loss_log[step] = loss;
    t->grad_norm_log[step] = norm;
    t->step = step + 1;
    const double dt = lcc_now() - t0;
    step_s[timed++] = dt;
    step_tokens = tokens;
    if (log && (step % o->log_every == 0 || step + 1 == o->steps))
      fprintf(log, "step %5d/%d | loss %.6f | lr %.3e | grad norm %.4f | %.0f tok/s | %.3f s\n", step + 1, o->steps, loss,
              lr, norm, (double)tokens / dt, dt);
  }
  if (log && timed && !rc) {   // the median step: robust to the first steps' page faults and cache warm-up
    qsort(step_s, (size_t)timed, sizeof(double), cmp_double);
    const double med = step_s[timed / 2];
    fprintf(log, "# done: %d steps | median step %.3f ms | %.0f tok/s at the median (%lld tokens per step)\n", timed,
            1e3 * med, (double)step_tokens / med, step_tokens);
  }
  for (int k = 0; k < o->grad_accum; k++) lcc_batch_free(&mb[k]);
  free(mb);
  free(step_s);
  return rc;
}
