#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "trainer.h"
#include "util.h"

double lcc_lr_at(double peak, int step, int warmup, int total) {
  if (step < warmup) return peak * (double)step / (double)(warmup > 1 ? warmup : 1);
  double progress = (double)(step - warmup) / (double)(total - warmup > 1 ? total - warmup : 1);
  double f = 0.5 * (1.0 + cos(M_PI * progress));
  return peak * (f > 0.0 ? f : 0.0);
}

static int mkdir_p(const char *path) {
  char p[LCC_OPT_STR];
  snprintf(p, sizeof p, "%s", path);
  for (char *s = p + 1; *s; s++)
    if (*s == '/') {
      *s = 0;
      mkdir(p, 0755);
      *s = '/';
    }
  if (mkdir(p, 0755) && errno != EEXIST) return lcc_error("%s: cannot create directory: %s", p, strerror(errno));
  if (access(p, W_OK)) return lcc_error("%s: directory is not writable: %s", p, strerror(errno));
  return 0;
}

// `init` may name a run's checkpoints directory (then its latest checkpoint), a checkpoint, or HF weights.
static void resolve_init(const char *init, char *out, size_t cap) {
  char latest[LCC_OPT_STR + 16];
  snprintf(latest, sizeof latest, "%s/latest", init);
  char *name = lcc_read_file(latest, NULL);
  if (name) {
    name[strcspn(name, "\r\n")] = 0;
    snprintf(out, cap, "%s/%s", init, name);
    free(name);
  } else {
    snprintf(out, cap, "%s", init);
  }
}

static long rss_mb(void) {
  long pages = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    fclose(f);
  }
  return resident * (sysconf(_SC_PAGESIZE) / 1024) / 1024;
}

int lcc_trainer_init(lcc_trainer *t, const lcc_train_opts *o, lcc_backend *be, lcc_comm *comm) {
  memset(t, 0, sizeof *t);
  t->o = *o;
  t->comm = comm;
  t->be = be;
  lcc_train_opts *op = &t->o;
  if (lcc_train_opts_check(op, comm->world)) return -1;
  char *run_config = lcc_opts_text(op, lcc_train_opt_table, lcc_train_opt_count);
  snprintf(t->run_config, sizeof t->run_config, "%s", run_config);
  free(run_config);
  if (lcc_config_load(&t->cfg, op->model)) return -1;
  if (lcc_model_create(&t->model, &t->cfg, t->be, op->freeze)) return -1;
  if (!t->model.n_grad) return lcc_error("freeze '%s' leaves nothing to train", op->freeze);
  t->model.pos_mode = strcmp(op->positions, "1d") == 0 ? LCC_POS_1D : LCC_POS_MROPE;
  t->model.recompute = op->recompute;
  t->model.fuse_head_grad = 1;   // every training forward is followed by its backward (evaluation turns it off)
  if (lcc_dp_init(&t->dp, &t->model, comm, op->zero, (size_t)op->bucket_mb << 20)) return -1;
  snprintf(t->ckpt_dir, sizeof t->ckpt_dir, "%s/checkpoints", op->out);
  int rc = comm->rank == 0 ? mkdir_p(op->out) : 0;
  if (comm->max_i64(comm, rc != 0)) return rc ? rc : lcc_error("%s: rank 0 cannot use the run directory", op->out);
  if (comm->rank == 0) lcc_ckpt_clean(t->ckpt_dir);

  char path[2 * LCC_OPT_STR];
  if (strcmp(op->resume, "auto") == 0 && lcc_ckpt_find(t->ckpt_dir, comm, path, sizeof path)) {
    lcc_ckpt_state st;
    if (lcc_ckpt_load(path, &t->model, &t->dp, &st)) return -1;
    t->step = (int)st.step;
    t->consumed = st.consumed;
    if (comm->rank == 0)
      printf("# resuming from %s: step %d, %lld samples consumed (written by %d ranks, ZeRO-%d)\n", path, t->step,
             (long long)t->consumed, st.world_size, st.zero);
  } else if (op->init[0]) {
    resolve_init(op->init, path, sizeof path);
    char state[sizeof path + 16];
    snprintf(state, sizeof state, "%s/state.json", path);
    const int ckpt = access(state, F_OK) == 0;   // a checkpoint: its trained tensors from the fp32 masters
    if (lcc_model_load_hf(&t->model, path) || (ckpt && lcc_ckpt_load_master(path, &t->model))) return -1;
    if (comm->rank == 0)
      printf("# initial weights: %s%s (fresh optimizer and schedule)\n", path, ckpt ? ", trained tensors from its fp32 masters" : "");
  } else {
    lcc_model_init_random(&t->model, (uint64_t)op->seed);
  }
  t->warmup_steps = (int)ceil(op->warmup_ratio * op->steps);
  lcc_ckpt_fault_kill_in_save(op->fault_kill_in_save);
  t->loss_log = lcc_calloc((size_t)op->steps, sizeof(double));
  t->grad_norm_log = lcc_calloc((size_t)op->steps, sizeof(double));
  t->src = lcc_source_open(t, op->data, 1, comm->world, comm->rank, op->micro_batch, op->grad_accum, t->consumed);
  if (!t->src) return -1;
  if (comm->rank == 0 && !(t->metrics = lcc_metrics_open(op->out, t->step))) return -1;
  return 0;
}

void lcc_trainer_free(lcc_trainer *t) {
  lcc_source_close(t->src);
  if (t->metrics) fclose(t->metrics);
  if (t->dp.m) lcc_dp_free(&t->dp);
  if (t->model.params) lcc_model_destroy(&t->model);
  free(t->loss_log);
  free(t->grad_norm_log);
  memset(t, 0, sizeof *t);
}

static int count_labelled(const lcc_batch *b) {
  int n = 0;
  for (int s = 0; s < b->n_samples; s++)
    for (int i = b->sample_start[s] + 1; i < b->sample_start[s + 1]; i++) n += b->labels[i] >= 0;
  return n;
}

int lcc_trainer_eval(lcc_trainer *t, double *loss, int64_t *samples) {
  lcc_comm *c = t->comm;
  lcc_source *src = lcc_source_open(t, t->o.heldout, 0, c->world, c->rank, 1, 1, 0);
  if (!src) return -1;
  const int64_t n = lcc_source_size(src), limit = t->o.eval_samples > 0 && t->o.eval_samples < n ? t->o.eval_samples : n;
  t->model.fuse_head_grad = 0;   // forward only: no gradients may be touched
  double sum = 0.0;
  int64_t count = 0;
  int rc = 0;
  for (int64_t p = c->rank; p - c->rank < limit && !rc; p += c->world) {   // rank r reads positions r, r + W, ...
    lcc_owned_batch *ob;
    rc = lcc_source_next(src, &ob);
    if (rc || p >= limit) continue;
    ob->b.loss_mode = LCC_LOSS_SAMPLE_MEAN;
    ob->b.norm_count = 1.0;
    rc = lcc_model_forward(&t->model, &ob->b);
    for (int s = 0; s < ob->b.n_samples && !rc; s++) sum += t->model.sample_loss[s], count++;
  }
  lcc_source_close(src);
  t->model.fuse_head_grad = 1;
  if (c->max_i64(c, rc != 0)) return rc ? rc : lcc_error("held-out evaluation failed on another rank");
  *samples = (int64_t)c->sum_f64(c, (double)count);
  *loss = *samples ? c->sum_f64(c, sum) / (double)*samples : NAN;
  return 0;
}

// One optimizer step over this rank's micro-batches. Fills the global loss and token counts.
static int train_step(lcc_trainer *t, int step, double *loss, double *norm, double *lr, long long *tokens) {
  const lcc_train_opts *o = &t->o;
  lcc_model *m = &t->model;
  lcc_comm *c = t->comm;
  const int token_mean = strcmp(o->loss, "token") == 0;
  double loss_sum = 0.0;
  long long labelled = 0, local_tokens = 0;
  lcc_dp_begin_step(&t->dp);
  for (int k = 0; k < o->grad_accum; k++) {
    lcc_owned_batch *ob;
    if (lcc_source_next(t->src, &ob)) return -1;
    lcc_batch *b = &ob->b;
    if (step == 0 && k == 0 && o->dump_batch[0] && c->rank == 0 && lcc_batch_save(ob, o->dump_batch, lcc_patch_dim(&t->cfg)))
      return -1;
    // LiveCC: each sample's token mean, averaged over the global batch. Per-token: sum now, divide by the
    // global count of labelled tokens once it is known.
    b->loss_mode = token_mean ? LCC_LOSS_TOKEN_MEAN : LCC_LOSS_SAMPLE_MEAN;
    b->norm_count = token_mean ? 1.0 : (double)o->global_batch;
    if (lcc_model_forward(m, b)) return -1;
    lcc_dp_begin_backward(&t->dp, k == o->grad_accum - 1);
    lcc_model_backward(m);
    lcc_dp_end_backward(&t->dp);
    loss_sum += m->loss;
    labelled += count_labelled(b);
    local_tokens += b->n_tokens;
  }
  const double divide = token_mean ? c->sum_f64(c, (double)labelled) : 1.0;
  *loss = c->sum_f64(c, loss_sum) / (divide > 0 ? divide : 1.0);
  *tokens = (long long)c->sum_f64(c, (double)local_tokens);
  if (!isfinite(*loss)) return lcc_error("step %d: the loss is %f; stopping before the weights change (lower lr, or "
                                         "turn on clipping with --clip=1.0)", step + 1, *loss);
  const double factor = 1.0 / (divide > 0 ? divide : 1.0);
  *norm = lcc_dp_grad_norm(&t->dp) * factor;
  const double clip = o->clip > 0 && *norm > o->clip ? o->clip / (*norm + 1e-6) : 1.0;
  *lr = lcc_lr_at(o->lr, step, t->warmup_steps, o->steps);
  lcc_dp_step(&t->dp, (float)*lr, (float)o->beta1, (float)o->beta2, (float)o->adam_eps, (float)o->weight_decay, step + 1,
              (float)(factor * clip));
  return 0;
}

static int save(lcc_trainer *t) {
  lcc_ckpt_state st = {.step = t->step, .consumed = t->consumed, .world_size = t->comm->world, .zero = t->o.zero};
  snprintf(st.run_config, sizeof st.run_config, "%s", t->run_config);
  double t0 = lcc_now();
  int rc = lcc_ckpt_save(t->ckpt_dir, &t->model, &t->dp, &st, t->o.keep_last);
  if (!rc && t->comm->rank == 0) printf("# checkpoint %s/step-%08d written in %.2f s\n", t->ckpt_dir, t->step, lcc_now() - t0);
  return rc;
}

static int evaluate(lcc_trainer *t, FILE *log) {
  double loss;
  int64_t n;
  if (lcc_trainer_eval(t, &loss, &n)) return -1;
  if (t->comm->rank == 0) {
    fprintf(t->metrics, "{\"step\": %d, \"heldout_loss\": %.6f, \"heldout_samples\": %lld}\n", t->step, loss, (long long)n);
    fflush(t->metrics);
    if (log) fprintf(log, "step %5d | held-out loss %.6f over %lld samples\n", t->step, loss, (long long)n);
  }
  return 0;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

// Testing (fault.wait_after): holds every rank after a step until a stop signal reaches any of them, so a test
// signals a run at a known step instead of racing it. Goes on after 5 minutes without one.
static void wait_for_stop(lcc_trainer *t) {
  for (const double t0 = lcc_now(); t->stop && lcc_now() - t0 < 300.0;) {
    if (t->comm->max_i64(t->comm, *t->stop)) return;
    usleep(20000);
  }
}

int lcc_trainer_run(lcc_trainer *t, FILE *log) {
  const lcc_train_opts *o = &t->o;
  lcc_comm *c = t->comm;
  if (c->rank) log = NULL;
  const int start = t->step;
  double *step_s = lcc_calloc((size_t)o->steps, sizeof(double));
  long long step_tokens = 0;
  int rc = 0;
  while (t->step < o->steps && !rc) {
    if (t->stop && c->max_i64(c, *t->stop)) {   // every rank stops at the same step
      if (t->step == start) {   // stopping now would requeue forever without progress
        if (log) fprintf(log, "# signal received before the first step of this run: ignored (is the job's --signal "
                              "lead time longer than its time limit?)\n");
        *t->stop = 0;
      } else {
        if (log) fprintf(log, "# signal received: saving a checkpoint at step %d, then exiting for a requeue\n", t->step);
        free(step_s);
        return save(t) == 0 ? LCC_EXIT_REQUEUE : -1;
      }
    }
    const int step = t->step;
    double t0 = lcc_now(), loss = 0, norm = 0, lr = 0;
    long long tokens = 0;
    if ((rc = train_step(t, step, &loss, &norm, &lr, &tokens))) break;
    const double dt = lcc_now() - t0;
    step_s[step - start] = dt;
    step_tokens = tokens;
    t->loss_log[step] = loss;
    t->grad_norm_log[step] = norm;
    t->step = step + 1;
    t->consumed += o->global_batch;
    double busy, exposed;
    lcc_dp_comm_times(&t->dp, &busy, &exposed);
    if (c->rank == 0) {
      fprintf(t->metrics,
              "{\"step\": %d, \"loss\": %.6f, \"lr\": %.6e, \"grad_norm\": %.6f, \"tokens_per_s\": %.1f, "
              "\"samples_per_s\": %.3f, \"step_s\": %.4f, \"comm_s\": %.4f, \"comm_exposed_s\": %.4f, \"rss_mb\": %ld}\n",
              t->step, loss, lr, norm, (double)tokens / dt, o->global_batch / dt, dt, busy, exposed, rss_mb());
      fflush(t->metrics);
    }
    if (log && (step % o->log_every == 0 || t->step == o->steps))
      fprintf(log, "step %5d/%d | loss %.6f | lr %.3e | grad norm %.4f | %.0f tok/s | %.3f s\n", t->step, o->steps, loss,
              lr, norm, (double)tokens / dt, dt);
    if (o->heldout[0] && o->eval_every && t->step % o->eval_every == 0) rc = evaluate(t, log);
    if (!rc && o->save_every && t->step % o->save_every == 0 && t->step < o->steps) rc = save(t);
    if (!rc && o->fault_wait_after == t->step) wait_for_stop(t);
    if (!rc && o->fault_kill_after == t->step) {
      fflush(NULL);
      raise(SIGKILL);
    }
  }
  const int done = t->step - start;
  if (!rc && done && log) {   // the median step: robust to the first steps' page faults and cache warm-up
    qsort(step_s, (size_t)done, sizeof(double), cmp_double);
    const double med = step_s[done / 2];
    fprintf(log, "# done: %d steps | median step %.3f ms | %.0f tok/s at the median (%lld tokens per step)\n", done,
            1e3 * med, (double)step_tokens / med, step_tokens);
  }
  free(step_s);
  if (rc) return -1;
  if (!done) return 0;   // resumed a finished run: nothing to do
  if (o->heldout[0] && !(o->eval_every && t->step % o->eval_every == 0) && evaluate(t, log)) return -1;
  if (save(t)) return -1;
  if (c->rank == 0 && o->plot && lcc_metrics_plot(o->out))
    fprintf(stderr, "livecc-train: warning: %s\n", lcc_last_error());
  return 0;
}
