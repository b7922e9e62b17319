// The whole model on the CUDA backend (bf16) against the CPU backend (fp32): forward and backward of the
// tiny fixture models on their fixture samples and of a mid-size model on a synthetic LiveCC-shaped batch,
// and a short training run whose loss curve must track the CPU's. Tolerances are bf16's: logits within
// 3e-2 of max |logit|, loss within 1e-2 relative, each weight gradient within 6e-2 relative L2 (the
// accumulated error of 2-layer models in bf16; a wrong op is off by O(1)), the training losses within 3%
// of the CPU's at every step. Skips (77) where no GPU exists.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "cuda/backend_cuda.h"
#include "cuda/device.h"
#include "model.h"
#include "testlib.h"
#include "util.h"

// Logits of every row of the last forward as fp32 on the host.
static float *logits_of(lcc_model *m, int T) {
  float *host = lcc_malloc((size_t)T * m->cfg.vocab_size * sizeof(float));
  lcc_model_logits(m, host, 0, T);
  return host;
}

static float *grads_of(lcc_model *m) {
  float *host = lcc_malloc(m->n_grad * sizeof(float));
  m->be->download(m->be, host, m->grads, m->n_grad * sizeof(float));
  return host;
}

// One forward + backward of the same weights and batch on both backends; compares logits, loss, gradients.
static void compare(const char *name, const lcc_config *cfg, const char *weights, const lcc_batch *b, lcc_backend *cpu,
                    lcc_backend *gpu, const char *freeze) {
  printf("%s\n", name);
  lcc_model mc, mg;
  LCC_CHECK(lcc_model_create(&mc, cfg, cpu, freeze) == 0 && lcc_model_create(&mg, cfg, gpu, freeze) == 0, "%s", lcc_last_error());
  if (weights) {
    LCC_CHECK(lcc_model_load_hf(&mc, weights) == 0 && lcc_model_load_hf(&mg, weights) == 0, "%s", lcc_last_error());
  } else {
    lcc_model_init_random(&mc, 5);
    lcc_model_init_random(&mg, 5);
  }
  mg.recompute = 1;   // the GPU path trains with recompute; the CPU path keeps everything
  LCC_CHECK(lcc_model_forward(&mc, b) == 0 && lcc_model_forward(&mg, b) == 0, "%s", lcc_last_error());
  const int T = b->n_tokens;
  float *lc = logits_of(&mc, T), *lg = logits_of(&mg, T);
  double err = 0, scale = 0;
  for (size_t i = 0; i < (size_t)T * cfg->vocab_size; i++) {
    err = fmax(err, fabs((double)lg[i] - lc[i]));
    scale = fmax(scale, fabs(lc[i]));
  }
  check_tol("logits, max error over max |logit|", err / scale, 3e-2);
  check_tol("loss, relative", fabs(mg.loss - mc.loss) / fabs(mc.loss), 1e-2);
  lcc_model_backward(&mc);
  lcc_model_backward(&mg);
  float *gc = grads_of(&mc), *gg = grads_of(&mg);
  double worst = 0;
  const char *worst_name = "";
  for (int i = 0; i < mc.n_params; i++) {
    const lcc_param *p = &mc.params[i];
    if (p->grad_offset < 0) continue;
    double e = rel_l2(gg + p->grad_offset, gc + p->grad_offset, p->numel);
    if (!(e <= worst)) worst = e, worst_name = p->name;
  }
  char what[160];
  snprintf(what, sizeof what, "worst weight gradient, relative L2 (%s)", worst_name);
  check_tol(what, worst, 6e-2);
  free(lc), free(lg), free(gc), free(gg);
  lcc_model_destroy(&mc);
  lcc_model_destroy(&mg);
}

// 30 AdamW steps on one fixed batch on both backends: the losses must stay within 3% of each other.
static void train_both(const lcc_config *cfg, const lcc_batch *b, lcc_backend *cpu, lcc_backend *gpu) {
  lcc_model m[2];
  lcc_backend *be[2] = {cpu, gpu};
  float *adam[2][2];
  double worst = 0, first = 0, last = 0;
  for (int k = 0; k < 2; k++) {
    LCC_CHECK(lcc_model_create(&m[k], cfg, be[k], "visual") == 0, "%s", lcc_last_error());
    lcc_model_init_random(&m[k], 11);
    adam[k][0] = be[k]->alloc(be[k], m[k].n_grad * sizeof(float));
    adam[k][1] = be[k]->alloc(be[k], m[k].n_grad * sizeof(float));
  }
  for (int step = 1; step <= 30; step++) {
    double loss[2];
    for (int k = 0; k < 2; k++) {
      lcc_model *mm = &m[k];
      lcc_model_zero_grad(mm);
      LCC_CHECK(lcc_model_forward(mm, b) == 0, "%s", lcc_last_error());
      lcc_model_backward(mm);
      loss[k] = mm->loss;
      void *act = mm->weights == (void *)mm->master ? NULL : (char *)mm->weights + mm->train_begin * be[k]->act_bytes;
      be[k]->adamw(be[k], mm->master + mm->train_begin, act, mm->grads, adam[k][0], adam[k][1], mm->n_grad, 3e-3f, 0.9f,
                   0.999f, 1e-8f, 0.0f, step, 1.0f);
    }
    worst = fmax(worst, fabs(loss[1] - loss[0]) / loss[0]);
    if (step == 1) first = loss[0];
    last = loss[0];
  }
  char what[160];
  snprintf(what, sizeof what, "30 training steps: GPU loss vs CPU loss at every step (CPU %.3f -> %.3f)", first, last);
  check_tol(what, worst, 3e-2);
  for (int k = 0; k < 2; k++) {
    be[k]->free(be[k], adam[k][0]);
    be[k]->free(be[k], adam[k][1]);
    lcc_model_destroy(&m[k]);
  }
}

int main(void) {
  char why[256] = "";
  if (lcc_cuda_device_count(why, sizeof why) == 0) {
    printf("SKIP: no CUDA device: %s\n", why);
    return 77;
  }
  lcc_backend *cpu = lcc_cpu_backend(0), *gpu = lcc_cuda_backend(0);
  struct { const char *model, *sample; } cases[] = {{"tests/fixtures/tiny_b", "tests/fixtures/case_video.safetensors"},
                                                    {"tests/fixtures/tiny_b", "tests/fixtures/case_image.safetensors"},
                                                    {"tests/fixtures/tiny_t", "tests/fixtures/case_tied.safetensors"}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    lcc_config cfg;
    lcc_owned_batch ob;
    LCC_CHECK(lcc_config_load(&cfg, cases[i].model) == 0, "%s", lcc_last_error());
    LCC_CHECK(lcc_batch_load(&ob, cases[i].sample, lcc_patch_dim(&cfg)) == 0, "%s", lcc_last_error());
    char name[256];
    snprintf(name, sizeof name, "%s on %s, everything trainable", cases[i].model, cases[i].sample);
    compare(name, &cfg, cases[i].model, &ob.b, cpu, gpu, "");
    lcc_batch_free(&ob);
  }
  lcc_config mid;   // mid-size: 768 wide, 8 layers, GQA 12/4, 8K vocabulary; LiveCC-shaped with a frozen ViT
  LCC_CHECK(lcc_config_load(&mid, "configs/model/bench-60m.json") == 0, "%s", lcc_last_error());
  lcc_owned_batch ob;
  lcc_batch_synthetic(&ob, &mid, &(lcc_synth_shape){12, 8, 12, 6}, 3, 0, 2);
  compare("configs/model/bench-60m.json on 2 synthetic LiveCC samples, visual frozen", &mid, NULL, &ob.b, cpu, gpu, "visual");
  train_both(&mid, &ob.b, cpu, gpu);
  lcc_batch_free(&ob);
  cpu->destroy(cpu);
  gpu->destroy(gpu);
  return test_finish("test_cuda_model");
}
