// The mixed-precision paths of the model on the cpu-bf16 backend (bf16 activations and compute weights, fp32
// master weights and gradients, as on CUDA), which the fp32 CPU backend never takes:
//   1. forward + backward of the tiny model (HF weights, everything trainable) against the fp32 backend:
//      loss, logits and gradients within bf16 tolerances; bit-identical for 1 and 2 threads, and with
//      activation recompute and the LM head's gradients fused into the forward;
//   2. the compute copy is bf16(master) after loading and after an AdamW step, and HF weights saved from
//      it read back as exactly those values;
//   3. incremental inference with the KV cache against a full forward of the same tokens;
//   4. training on it: the loss falls, and a second run repeats the first bit for bit; a run initialized from
//      its checkpoint (as SFT from pre-training) starts from its fp32 masters.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "gguf.h"
#include "infer.h"
#include "testlib.h"
#include "trainer.h"
#include "util.h"

#define TINY "tests/fixtures/tiny_b"

typedef struct {
  double loss;
  float *logits;   // [T, V]
  float *grads;    // [n_grad]
  size_t n_grad;
} result;

static void run_model(lcc_backend *be, const lcc_batch *b, int recompute_and_fuse, result *r) {
  lcc_config cfg;
  lcc_model m;
  LCC_CHECK(lcc_config_load(&cfg, TINY) == 0 && lcc_model_create(&m, &cfg, be, "") == 0 && lcc_model_load_hf(&m, TINY) == 0,
            "%s", lcc_last_error());
  m.recompute = m.fuse_head_grad = recompute_and_fuse;
  LCC_CHECK(lcc_model_forward(&m, b) == 0, "%s", lcc_last_error());
  lcc_model_backward(&m);
  r->logits = lcc_malloc((size_t)b->n_tokens * cfg.vocab_size * sizeof(float));
  lcc_model_logits(&m, r->logits, 0, b->n_tokens);   // fp32 on the host whatever the backend (livecc-eval's path)
  r->loss = m.loss;
  r->n_grad = m.n_grad;
  r->grads = lcc_malloc(m.n_grad * sizeof(float));
  memcpy(r->grads, m.grads, m.n_grad * sizeof(float));
  lcc_model_destroy(&m);
}

// 1. against the fp32 backend; the worst single tensor's gradient error is reported beside the whole's
static void test_forward_backward(const lcc_batch *b) {
  // one backend at a time: each sets OpenMP's (process-wide) thread count when it is made
  lcc_backend *f32 = lcc_cpu_backend(2);
  result ref, got, got1;
  run_model(f32, b, 0, &ref);
  f32->destroy(f32);
  lcc_backend *b16 = lcc_cpu_bf16_backend(2);
  run_model(b16, b, 0, &got);
  result fused;   // activation recompute and the LM head's gradients in the forward, as the trainer runs
  run_model(b16, b, 1, &fused);
  b16->destroy(b16);
  lcc_backend *b16_1 = lcc_cpu_bf16_backend(1);
  run_model(b16_1, b, 0, &got1);
  b16_1->destroy(b16_1);
  lcc_config cfg;
  LCC_CHECK(lcc_config_load(&cfg, TINY) == 0, "%s", lcc_last_error());
  const size_t n_logits = (size_t)b->n_tokens * cfg.vocab_size;
  check_tol("bf16 vs fp32: loss, relative", fabs(got.loss - ref.loss) / fabs(ref.loss), 2e-3);
  check_tol("bf16 vs fp32: logits, relative L2", rel_l2(got.logits, ref.logits, n_logits), 2e-2);
  check_tol("bf16 vs fp32: all gradients, relative L2", rel_l2(got.grads, ref.grads, ref.n_grad), 3e-2);
  lcc_model m;   // the layout, to name the worst tensor
  LCC_CHECK(lcc_model_create(&m, &cfg, NULL, "") == 0, "%s", lcc_last_error());
  double worst = 0;
  int worst_i = -1;
  for (int i = 0; i < m.n_params; i++) {
    const lcc_param *p = &m.params[i];
    if (p->grad_offset < 0 || p->numel < 64) continue;   // a handful of values has no meaningful L2 ratio
    const double e = rel_l2(got.grads + p->grad_offset, ref.grads + p->grad_offset, p->numel);
    if (!(e <= worst)) worst = e, worst_i = i;
  }
  checkf(worst <= 0.06, "bf16 vs fp32: worst tensor gradient %.3g (%s), must be <= 0.06", worst,
         worst_i >= 0 ? m.params[worst_i].name : "?");
  lcc_model_destroy(&m);
  checkf(got.loss == got1.loss && !memcmp(got.grads, got1.grads, got.n_grad * sizeof(float)),
         "bf16: 1 and 2 threads give bit-identical loss and %zu gradients", got.n_grad);
  checkf(got.loss == fused.loss && !memcmp(got.grads, fused.grads, got.n_grad * sizeof(float)),
         "bf16: recompute and the fused LM-head gradients give the same loss and gradients bit for bit");
  result *rs[4] = {&ref, &got, &got1, &fused};
  for (int k = 0; k < 4; k++) free(rs[k]->logits), free(rs[k]->grads);
}

// Whether the compute copy equals bf16(master) element for element.
static int compute_copy_is_rounded_master(const lcc_model *m) {
  uint16_t *want = lcc_malloc(m->n_elems * sizeof(uint16_t));
  lcc_ggml_from_f32(LCC_GGML_BF16, m->master, (int64_t)m->n_elems, want);
  const int same = !memcmp(want, m->weights, m->n_elems * sizeof(uint16_t));
  free(want);
  return same;
}

// 2. the compute copy through loading, an optimizer step and a bf16 HF save
static void test_weights(const lcc_batch *b) {
  lcc_backend *be = lcc_cpu_bf16_backend(2);
  lcc_config cfg;
  lcc_model m, back;
  LCC_CHECK(lcc_config_load(&cfg, TINY) == 0 && lcc_model_create(&m, &cfg, be, "") == 0 && lcc_model_load_hf(&m, TINY) == 0,
            "%s", lcc_last_error());
  check(m.weights != (void *)m.master && compute_copy_is_rounded_master(&m), "loaded: compute copy = bf16(master)");
  LCC_CHECK(lcc_model_forward(&m, b) == 0, "%s", lcc_last_error());
  lcc_model_backward(&m);
  float *mom = be->alloc(be, 2 * m.n_grad * sizeof(float));
  const size_t at = m.train_begin;
  be->adamw(be, m.master + at, (char *)m.weights + at * be->act_bytes, m.grads, mom, mom + m.n_grad, m.n_grad, 1e-3f, 0.9f,
            0.999f, 1e-8f, 0.0f, 1, 1.0f);
  check(compute_copy_is_rounded_master(&m), "after an AdamW step: compute copy = bf16(master)");
  const char *dir = test_fresh_dir("saved");
  LCC_CHECK(lcc_model_save_hf(&m, dir, 1, 1 << 20) == 0, "%s", lcc_last_error());
  lcc_backend *f32 = lcc_cpu_backend(2);
  LCC_CHECK(lcc_model_create(&back, &cfg, f32, "") == 0 && lcc_model_load_hf(&back, dir) == 0, "%s", lcc_last_error());
  float *want = lcc_malloc(m.n_elems * sizeof(float));
  be->from_act(be, want, m.weights, m.n_elems);
  checkf(!memcmp(want, back.master, m.n_elems * sizeof(float)), "bf16 HF save reads back as the compute copy (%zu values)",
         m.n_elems);
  free(want);
  be->free(be, mom);
  lcc_model_destroy(&back);
  lcc_model_destroy(&m);
  f32->destroy(f32), be->destroy(be);
}

// 3. the KV cache: the sample appended in two pieces gives the logits of one full forward over it (the
// same bf16 roundings happen in both, so only the attention's summation order differs)
static void test_infer(const lcc_owned_batch *ob) {
  lcc_backend *be = lcc_cpu_bf16_backend(2);
  lcc_config cfg;
  lcc_model m;
  LCC_CHECK(lcc_config_load(&cfg, TINY) == 0 && lcc_model_create(&m, &cfg, be, "") == 0 && lcc_model_load_hf(&m, TINY) == 0,
            "%s", lcc_last_error());
  const int T = ob->b.n_tokens, V = cfg.vocab_size, U = lcc_merge_units(&cfg), P = lcc_patch_dim(&cfg);
  float *full = lcc_malloc((size_t)V * sizeof(float)), *inc = lcc_malloc((size_t)V * sizeof(float));
  LCC_CHECK(lcc_model_forward(&m, &ob->b) == 0, "%s", lcc_last_error());
  lcc_model_logits(&m, full, T - 1, 1);

  int cut = T / 2, items = 0, patches = 0, pads = 0;   // the first piece: every vision item whose pads end before cut
  while (ob->ids[cut - 1] == cfg.video_token_id || ob->ids[cut - 1] == cfg.image_token_id) cut++;
  for (int i = 0; i < cut; i++) pads += ob->ids[i] == cfg.video_token_id || ob->ids[i] == cfg.image_token_id;
  for (int need = 0; need < pads; items++) {
    const lcc_vision_item *it = &ob->items[items];
    need += it->t * it->h * it->w / U, patches += it->t * it->h * it->w;
  }
  lcc_infer s;
  LCC_CHECK(lcc_infer_init(&s, &m, T + 8) == 0, "%s", lcc_last_error());
  LCC_CHECK(lcc_infer_append(&s, ob->ids, cut, ob->items, items, ob->pixels, patches) == 0 &&
                lcc_infer_append(&s, ob->ids + cut, T - cut, ob->items + items, ob->b.n_items - items,
                                 ob->pixels + (size_t)patches * P, ob->b.n_patches - patches) == 0,
            "%s", lcc_last_error());
  memcpy(inc, s.logits, (size_t)V * sizeof(float));
  int a = 0, g = 0;
  for (int v = 1; v < V; v++) a = full[v] > full[a] ? v : a, g = inc[v] > inc[g] ? v : g;
  check_tol("bf16 KV cache vs full forward: last logits, relative L2", rel_l2(inc, full, V), 2e-2);
  checkf(a == g, "bf16 KV cache vs full forward: the same next token (%d, %d)", a, g);
  lcc_infer_free(&s);
  free(full), free(inc);
  lcc_model_destroy(&m);
  be->destroy(be);
}

// Training options: the defaults, then flags as a command line gives them.
static void make_opts(lcc_train_opts *o, const char *const (*flags)[2], size_t n) {
  LCC_CHECK(lcc_opts_defaults(o, lcc_train_opt_table, lcc_train_opt_count) == 0, "%s", lcc_last_error());
  for (size_t i = 0; i < n; i++)
    LCC_CHECK(lcc_opts_set(o, lcc_train_opt_table, lcc_train_opt_count, flags[i][0], flags[i][1], "test") == 0, "%s",
              lcc_last_error());
}

// 4. training with the trainer (AdamW on the fp32 master, the bf16 copy refreshed every step)
static int train(const char *out, double *first, double *last, float **master, size_t *n) {
  const char *const flags[][2] = {{"model", "configs/model/tiny.json"}, {"steps", "60"}, {"lr", "2e-3"},
                                  {"warmup_ratio", "0.05"}, {"synthetic.fixed", "true"}, {"micro_batch", "2"},
                                  {"freeze", ""}, {"resume", "never"}, {"plot", "false"}, {"zero", "0"}, {"out", out},
                                  {"backend", "cpu-bf16"}};
  lcc_train_opts o;
  make_opts(&o, flags, sizeof flags / sizeof flags[0]);
  lcc_backend *be = lcc_cpu_bf16_backend(2);
  lcc_comm *comm = lcc_comm_self(be);
  lcc_trainer t;
  int rc = lcc_trainer_init(&t, &o, be, comm) || lcc_trainer_run(&t, NULL);
  if (rc) fprintf(stderr, "error: %s\n", lcc_last_error());
  else {
    *first = t.loss_log[0], *last = t.loss_log[o.steps - 1];
    *n = t.model.n_elems;
    *master = lcc_malloc(*n * sizeof(float));
    memcpy(*master, t.model.master, *n * sizeof(float));
  }
  lcc_trainer_free(&t);
  comm->destroy(comm);
  be->destroy(be);
  return rc;
}

static void test_training(void) {
  double first, last, first2, last2;
  float *w1, *w2;
  size_t n;
  if (train(tmp_path("train1"), &first, &last, &w1, &n) || train(tmp_path("train2"), &first2, &last2, &w2, &n)) {
    check(0, "bf16 training runs");
    return;
  }
  checkf(last < 0.25 * first, "bf16 training: loss %.4f -> %.4f in 60 steps (must fall under 25%%)", first, last);
  checkf(first == first2 && last == last2 && !memcmp(w1, w2, n * sizeof(float)),
         "bf16 training: a second run gives the same losses and %zu master weights bit for bit", n);
  // SFT's start: a new run initialized from the first one's checkpoint gets its fp32 masters, not the bf16 copy
  char init[4200];
  lcc_pathf(init, sizeof init, "%s/checkpoints", tmp_path("train1"));
  const char *const flags[][2] = {{"model", "configs/model/tiny.json"}, {"freeze", "visual"}, {"resume", "never"},
                                  {"init", init}, {"out", tmp_path("sft")}, {"plot", "false"}, {"backend", "cpu-bf16"}};
  lcc_train_opts o;
  make_opts(&o, flags, sizeof flags / sizeof flags[0]);
  lcc_backend *be = lcc_cpu_bf16_backend(2);
  lcc_comm *comm = lcc_comm_self(be);
  lcc_trainer t;
  const int rc = lcc_trainer_init(&t, &o, be, comm);
  if (rc) fprintf(stderr, "error: %s\n", lcc_last_error());
  checkf(!rc && t.model.n_elems == n && !memcmp(t.model.master, w1, n * sizeof(float)),
         "init from a bf16 run's checkpoint: the %zu master weights are the run's fp32 ones, bit for bit", n);
  lcc_trainer_free(&t);
  comm->destroy(comm);
  be->destroy(be);
  free(w1), free(w2);
}

int main(void) {
  lcc_config cfg;
  LCC_CHECK(lcc_config_load(&cfg, TINY) == 0, "%s", lcc_last_error());
  lcc_owned_batch ob;
  lcc_batch_synthetic(&ob, &cfg, &(lcc_synth_shape){4, 4, 6, 5}, 7, 0, 2);
  test_forward_backward(&ob.b);
  test_weights(&ob.b);
  lcc_owned_batch one;
  lcc_batch_synthetic(&one, &cfg, &(lcc_synth_shape){4, 4, 6, 3}, 3, 0, 1);
  test_infer(&one);
  test_training();
  lcc_batch_free(&one);
  lcc_batch_free(&ob);
  return test_finish("test_bf16_model");
}
