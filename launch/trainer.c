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

// The settings that change a run's trajectory: a resumed run must have the checkpoint's, or name the
// differences in `override` (a new seed, for one, silently reorders the data behind `consumed`).
static const char *const trajectory_keys[] = {
    "model", "steps", "global_batch", "lr", "warmup_ratio", "weight_decay", "beta1", "beta2", "adam_eps", "clip",
    "loss", "positions", "seed", "data", "blank_frames", "batch_file", "synthetic.chunks", "synthetic.grid_h",
    "synthetic.grid_w", "synthetic.words", "synthetic.fixed", "skip_grad_norm"};

static int listed(const char *list, const char *key) {   // key is an item of a comma-separated list
  const size_t k = strlen(key);
  for (const char *p = list; *p; p += strcspn(p, ",") + (p[strcspn(p, ",")] == ',')) {
    while (*p == ' ') p++;
    const size_t n = strcspn(p, ", ");
    if (n == k && !strncmp(p, key, k)) return 1;
  }
  return 0;
}

static int check_resumed_settings(lcc_trainer *t, const char *path, const lcc_ckpt_state *st) {
  char differ[4096] = "", unaccepted[1024] = "";
  size_t nd = 0, nu = 0;
  t->override_log[0] = 0;
  size_t nl = 0;
  for (size_t i = 0; i < sizeof trajectory_keys / sizeof *trajectory_keys; i++) {
    const char *key = trajectory_keys[i];
    char was[LCC_OPT_STR], now[LCC_OPT_STR];
    if (lcc_ckpt_run_value(st->run_config, key, was, sizeof was) || lcc_ckpt_run_value(t->run_config, key, now, sizeof now) ||
        !strcmp(was, now))
      continue;
    nd += (size_t)snprintf(differ + nd, nd < sizeof differ ? sizeof differ - nd : 0, "%s%s '%s' -> '%s'", nd ? ", " : "", key,
                           was, now);
    if (!listed(t->o.override, key))
      nu += (size_t)snprintf(unaccepted + nu, nu < sizeof unaccepted ? sizeof unaccepted - nu : 0, "%s%s", nu ? "," : "", key);
    nl += (size_t)snprintf(t->override_log + nl, nl < sizeof t->override_log ? sizeof t->override_log - nl : 0,
                           "%s\"%s\": {\"from\": \"%s\", \"to\": \"%s\"}", nl ? ", " : "", key, was, now);
  }
  if (nu)
    return lcc_error("%s: this run's settings differ from the checkpoint's: %s. They change the training trajectory; "
                     "restore them, or accept the change with --override=%s", path, differ, unaccepted);
  if (nd && t->comm->rank == 0) printf("# resuming with changed settings (accepted by override): %s\n", differ);
  return 0;
}

// A list of several datasets: per-dataset counts for the metrics, and (rank 0) the list with its weights and
// how far each dataset is into its epochs at the start of this run.
static void open_data_counts(lcc_trainer *t) {
  const int n = lcc_source_datasets(t->src);
  if (n < 2) return;
  t->n_data = n;
  t->data_step = lcc_calloc((size_t)n, sizeof(int64_t));
  t->data_run = lcc_calloc((size_t)n, sizeof(int64_t));
  if (t->comm->rank) return;
  printf("# data: %d datasets:", n);
  for (int d = 0; d < n; d++) {
    const lcc_source_dataset ds = lcc_source_dataset_info(t->src, d, t->consumed);
    printf("%s %s (weight %.4f, %lld samples, %.3f epochs drawn)", d ? "," : "", ds.name, ds.weight,
           (long long)ds.samples, (double)ds.drawn / (double)ds.samples);
  }
  printf("\n");
}

int lcc_trainer_init(lcc_trainer *t, const lcc_train_opts *o, lcc_backend *be, lcc_comm *comm) {
  memset(t, 0, sizeof *t);
  t->o = *o;
  t->comm = comm;
  t->be = be;
  lcc_train_opts *op = &t->o;
  if (lcc_train_opts_check(op, comm->world)) return -1;
  lcc_comm_set_timeout(comm, op->collective_timeout);   // before the first collective
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
  int refused = 0;
  const int found = strcmp(op->resume, "auto") == 0 && lcc_ckpt_find(t->ckpt_dir, comm, path, sizeof path, &refused);
  if (!found && refused && !op->fresh)
    return lcc_error("%s: no checkpoint passes its checks (%d refused, kept as refused-step-*): not starting from "
                     "scratch on top of them. Restore a good checkpoint, or pass --fresh to start over beside them",
                     t->ckpt_dir, refused);
  if (found) {
    lcc_ckpt_state st;
    if (lcc_ckpt_load(path, &t->model, &t->dp, &st) || check_resumed_settings(t, path, &st)) return -1;
    t->step = (int)st.step;
    t->consumed = st.consumed;
    if (comm->rank == 0)
      printf("# resuming from %s: step %d, %lld samples consumed (written by %d ranks, ZeRO-%d)\n", path, t->step,
             (long long)t->consumed, st.world_size, st.zero);
  } else if (op->init[0]) {
    // a run's checkpoints directory (its latest), a checkpoint (its trained tensors from the fp32 masters), or HF
    const int ckpt = lcc_ckpt_resolve(op->init, path, sizeof path);
    if ((ckpt && lcc_ckpt_verify(path)) || lcc_model_load_hf(&t->model, path) || (ckpt && lcc_ckpt_load_master(path, &t->model)))
      return -1;
    if (comm->rank == 0)
      printf("# initial weights: %s%s (fresh optimizer and schedule)\n", path, ckpt ? ", trained tensors from its fp32 masters" : "");
  } else {
    lcc_model_init_random(&t->model, (uint64_t)op->seed);
  }
  t->warmup_steps = (int)ceil(op->warmup_ratio * op->steps);
  lcc_ckpt_fault_kill_in_save(op->fault_kill_in_save);
  t->loss_log = lcc_calloc((size_t)op->steps, sizeof(double));
  t->grad_norm_log = lcc_calloc((size_t)op->steps, sizeof(double));
  t->batch_ids = lcc_calloc((size_t)op->micro_batch * op->grad_accum, sizeof(int64_t));
  t->src = lcc_source_open(t, op->data, 1, comm->world, comm->rank, op->micro_batch, op->grad_accum, t->consumed);
  if (!t->src) return -1;
  open_data_counts(t);
  if (!op->data[0] && !op->batch_file[0] && comm->rank == 0)
    fprintf(stderr, "livecc-train: warning: data is empty: training on synthetic LiveCC-shaped samples (random tokens "
                    "and pixels); set data = DIR (livecc-prep's output) to train on shards\n");
  if (comm->rank == 0 && !(t->metrics = lcc_metrics_open(op->out, t->step))) return -1;
  if (comm->rank == 0 && t->override_log[0]) {
    fprintf(t->metrics, "{\"step\": %d, \"override\": {%s}}\n", t->step, t->override_log);
    fflush(t->metrics);
  }
  return 0;
}

void lcc_trainer_free(lcc_trainer *t) {
  lcc_source_close(t->src);
  if (t->metrics) fclose(t->metrics);
  if (t->dp.m) lcc_dp_free(&t->dp);
  if (t->model.params) lcc_model_destroy(&t->model);
  free(t->loss_log);
  free(t->grad_norm_log);
  free(t->batch_ids);
  free(t->data_step);
  free(t->data_run);
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

// The fp32 master weights this rank updates are all finite (every rank learns the verdict of all).
static int weights_finite(lcc_trainer *t) {
  lcc_backend *be = t->be;
  const double ss = be->sum_squares(be, t->model.master + t->model.train_begin + t->dp.state_begin, t->dp.state_n);
  return !t->comm->max_i64(t->comm, !isfinite(ss));
}

// "id, id, ..." of the global batch's samples: every rank's ids of this step, in rank order (world broadcasts,
// made only for the log of a skipped step).
static void global_batch_ids(lcc_trainer *t, char *out, size_t cap) {
  lcc_comm *c = t->comm;
  const int per_rank = t->o.micro_batch * t->o.grad_accum;
  int64_t *ids = lcc_malloc((size_t)per_rank * sizeof(int64_t));
  size_t n = 0;
  out[0] = 0;
  for (int r = 0; r < c->world; r++) {
    if (r == c->rank) memcpy(ids, t->batch_ids, (size_t)per_rank * sizeof(int64_t));
    c->bcast(c, ids, (size_t)per_rank * sizeof(int64_t), r);
    for (int k = 0; k < per_rank && n < cap; k++)
      n += (size_t)snprintf(out + n, cap - n, "%s%lld", n ? ", " : "", (long long)ids[k]);
  }
  free(ids);
}

// One optimizer step over this rank's micro-batches. Fills the global loss, gradient norm and token count.
// The all-reduced gradient norm is checked before the update: a step whose norm (or loss) is not finite, or
// above skip_grad_norm, makes no update; it is skipped (*skipped = 1) or, with nonfinite = stop, an error.
static int train_step(lcc_trainer *t, int step, double *loss, double *norm, double *lr, long long *tokens, int *skipped) {
  const lcc_train_opts *o = &t->o;
  lcc_model *m = &t->model;
  lcc_comm *c = t->comm;
  const int token_mean = strcmp(o->loss, "token") == 0;
  double loss_sum = 0.0;
  long long labelled = 0, local_tokens = 0;
  *skipped = 0;
  lcc_dp_begin_step(&t->dp);
  if (o->fault_nan_at == step + 1 && c->rank == o->fault_rank) {   // testing: a poisoned gradient on one rank
    const float nan = NAN;
    t->be->upload(t->be, m->grads, &nan, sizeof nan);
  }
  for (int k = 0; k < o->grad_accum; k++) {
    lcc_owned_batch *ob;
    if (lcc_source_next(t->src, &ob)) return -1;
    lcc_batch *b = &ob->b;
    for (int s = 0; s < o->micro_batch; s++)
      t->batch_ids[k * o->micro_batch + s] = ob->sample_ids && s < b->n_samples ? ob->sample_ids[s] : -1;
    lcc_comm_set_context(c, step + 1, t->batch_ids, (k + 1) * o->micro_batch);   // for a collective timeout's report
    if (step == 0 && k == 0 && o->dump_batch[0] && c->rank == 0 && lcc_batch_save(ob, o->dump_batch, lcc_patch_dim(&t->cfg)))
      return -1;
    // LiveCC: each sample's token mean, averaged over the global batch (of global_batch samples; a batch file
    // holds its own number of samples per micro-batch). Per-token: sum now, divide by the global count of
    // labelled tokens once it is known.
    b->loss_mode = token_mean ? LCC_LOSS_TOKEN_MEAN : LCC_LOSS_SAMPLE_MEAN;
    b->norm_count = token_mean ? 1.0 : (double)o->global_batch * b->n_samples / o->micro_batch;
    if (lcc_model_forward(m, b)) return -1;
    lcc_dp_begin_backward(&t->dp, k == o->grad_accum - 1);
    lcc_model_backward(m);
    lcc_dp_end_backward(&t->dp);
    loss_sum += m->loss;
    labelled += count_labelled(b);
    local_tokens += b->n_tokens;
  }
  const double divide = token_mean ? c->sum_f64(c, (double)labelled) : 1.0;
  const double factor = 1.0 / (divide > 0 ? divide : 1.0);
  *loss = c->sum_f64(c, loss_sum) * factor;
  *tokens = (long long)c->sum_f64(c, (double)local_tokens);
  *norm = lcc_dp_grad_norm(&t->dp) * factor;
  *lr = lcc_lr_at(o->lr, step, t->warmup_steps, o->steps);
  if (!isfinite(*loss) || !isfinite(*norm) || (o->skip_grad_norm > 0 && *norm > o->skip_grad_norm)) {
    char why[160], ids[1024];
    snprintf(why, sizeof why, "gradient norm %g%s, loss %g", *norm,
             isfinite(*norm) && isfinite(*loss) ? " (above skip_grad_norm)" : "", *loss);
    global_batch_ids(t, ids, sizeof ids);
    if (!weights_finite(t))
      return lcc_error("step %d: the weights are no longer finite (%s): the update of an earlier step overflowed; "
                       "stopping without a checkpoint of them. Lower lr (now %g) or turn on clipping (--clip=1.0)",
                       step + 1, why, o->lr);
    if (strcmp(o->nonfinite, "skip"))
      return lcc_error("step %d: %s; samples %s; stopping before the weights change (nonfinite = stop)", step + 1, why, ids);
    if (t->skips_in_row + 1 > o->max_skips)
      return lcc_error("step %d: %s; samples %s; stopping: %d steps in a row failed (max_skips = %d), so the weights, not "
                       "the data, are likely broken since step %d. Resume from an earlier checkpoint with a lower lr "
                       "(now %g) or clipping (--clip=1.0)", step + 1, why, ids, t->skips_in_row + 1, o->max_skips,
                       step - t->skips_in_row, o->lr);
    *skipped = 1;
    t->skips_in_row++;
    t->skipped_steps++;
    if (c->rank == 0) {
      fprintf(stderr, "livecc-train: step %d skipped (no update): %s; samples %s; %d in a row, %d in this run\n",
              step + 1, why, ids, t->skips_in_row, t->skipped_steps);
      fprintf(t->metrics, "{\"step\": %d, \"skipped\": \"%s\", \"samples\": [%s]}\n", step + 1, why, ids);
    }
    return 0;
  }
  t->skips_in_row = 0;
  const double clip = o->clip > 0 && *norm > o->clip ? o->clip / (*norm + 1e-6) : 1.0;
  lcc_dp_step(&t->dp, (float)*lr, (float)o->beta1, (float)o->beta2, (float)o->adam_eps, (float)o->weight_decay, step + 1,
              (float)(factor * clip));
  return 0;
}

// The samples of this step's global batch from each dataset (its ids summed over ranks) into data_step, added
// to data_run. Every rank takes part.
static void count_data(lcc_trainer *t) {
  const int per_rank = t->o.micro_batch * t->o.grad_accum;
  for (int d = 0; d < t->n_data; d++) {
    int64_t mine = 0;
    for (int k = 0; k < per_rank; k++) mine += lcc_source_dataset_of(t->src, t->batch_ids[k]) == d;
    t->data_step[d] = (int64_t)t->comm->sum_f64(t->comm, (double)mine);
    t->data_run[d] += t->data_step[d];
  }
}

// ", \"samples_by_data\": [n0, n1, ...]" of data_step (empty for one dataset).
static void data_counts_json(const lcc_trainer *t, char *out, size_t cap) {
  size_t n = 0;
  out[0] = 0;
  for (int d = 0; d < t->n_data && n < cap; d++)
    n += (size_t)snprintf(out + n, cap - n, "%s%lld", d ? ", " : ", \"samples_by_data\": [", (long long)t->data_step[d]);
  if (t->n_data && n < cap) snprintf(out + n, cap - n, "]");
}

// The end-of-run line of a list of datasets: each one's samples in this run and its epoch reached.
static void log_data_counts(const lcc_trainer *t, FILE *log) {
  int64_t all = 0;
  for (int d = 0; d < t->n_data; d++) all += t->data_run[d];
  fprintf(log, "# samples by dataset in this run:");
  for (int d = 0; d < t->n_data; d++) {
    const lcc_source_dataset ds = lcc_source_dataset_info(t->src, d, t->consumed);
    fprintf(log, "%s %s %lld (%.1f%%; %.3f epochs of its %lld samples so far)", d ? "," : "", ds.name,
            (long long)t->data_run[d], all ? 100.0 * (double)t->data_run[d] / (double)all : 0.0,
            (double)ds.drawn / (double)ds.samples, (long long)ds.samples);
  }
  fprintf(log, "\n");
}

// A checkpoint is never written from non-finite weights: `latest` would point at a run every resume repeats.
static int save(lcc_trainer *t) {
  if (!weights_finite(t))
    return lcc_error("step %d: the weights are not finite; not writing a checkpoint of them (the last good one stays "
                     "latest). Lower lr or turn on clipping (--clip=1.0)", t->step);
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
  int rc = 0, save_due = 0;
  long long corrupt = 0;
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
    int skipped;
    if ((rc = train_step(t, step, &loss, &norm, &lr, &tokens, &skipped))) break;
    const double dt = lcc_now() - t0;
    step_s[step - start] = dt;
    step_tokens = tokens;
    t->loss_log[step] = loss;
    t->grad_norm_log[step] = norm;
    t->step = step + 1;
    t->consumed += o->global_batch;
    double busy, exposed;
    lcc_dp_comm_times(&t->dp, &busy, &exposed);
    corrupt = (long long)c->sum_f64(c, (double)lcc_source_skipped(t->src));   // replaced samples, all ranks, this run
    count_data(t);
    if (c->rank == 0 && !skipped) {   // a skipped step has its own line (train_step)
      char by_data[2048];   // room for the 64 datasets a list may hold
      data_counts_json(t, by_data, sizeof by_data);
      fprintf(t->metrics,
              "{\"step\": %d, \"loss\": %.6f, \"lr\": %.6e, \"grad_norm\": %.6f, \"tokens_per_s\": %.1f, "
              "\"samples_per_s\": %.3f, \"step_s\": %.4f, \"comm_s\": %.4f, \"comm_exposed_s\": %.4f, \"rss_mb\": %ld, "
              "\"skipped_samples\": %lld%s}\n",
              t->step, loss, lr, norm, (double)tokens / dt, o->global_batch / dt, dt, busy, exposed, lcc_rss_mb(), corrupt,
              by_data);
      fflush(t->metrics);
    }
    if (log && (step % o->log_every == 0 || t->step == o->steps || skipped))
      fprintf(log, "step %5d/%d | loss %.6f | lr %.3e | grad norm %.4f | %.0f tok/s | %.3f s%s\n", t->step, o->steps, loss,
              lr, norm, (double)tokens / dt, dt, skipped ? " | skipped: no update" : "");
    if (o->heldout[0] && o->eval_every && t->step % o->eval_every == 0) rc = evaluate(t, log);
    // a periodic checkpoint waits for a step that updated: it must not follow a run of skipped steps (the
    // weights may be what makes them fail)
    if (o->save_every && t->step % o->save_every == 0 && t->step < o->steps) save_due = 1;
    if (!rc && save_due && !t->skips_in_row) rc = save(t), save_due = 0;
    else if (save_due && skipped && log) fprintf(log, "# checkpoint postponed: step %d was skipped\n", t->step);
    if (!rc && o->fault_wait_after == t->step) wait_for_stop(t);
    if (!rc && o->fault_kill_after == t->step) {
      fflush(NULL);
      raise(SIGKILL);
    }
    if (!rc && o->fault_stop_after == t->step && c->rank == o->fault_rank) {
      fflush(NULL);
      raise(SIGSTOP);
    }
  }
  const int done = t->step - start;
  if (!rc && done && log) {   // the median step: robust to the first steps' page faults and cache warm-up
    qsort(step_s, (size_t)done, sizeof(double), cmp_double);
    const double med = step_s[done / 2];
    fprintf(log, "# done: %d steps | median step %.3f ms | %.0f tok/s at the median (%lld tokens per step)\n", done,
            1e3 * med, (double)step_tokens / med, step_tokens);
    if (corrupt)
      fprintf(log, "# %lld corrupt samples skipped, each replaced by the next sample of the order (see stderr)\n", corrupt);
    if (t->n_data) log_data_counts(t, log);
    if (t->skipped_steps)
      fprintf(log, "# %d of %d steps skipped without an update (non-finite or too large gradient; see metrics.jsonl)\n",
              t->skipped_steps, done);
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
