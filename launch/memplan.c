// livecc-train --dry-run: the per-rank memory plan of a run, from the model config and the options. On cuda
// and cpu-bf16: bf16 weights and activations, fp32 master weights, moments and gradients; on cpu everything is
// fp32 and the compute weights are the master weights. GPU workspaces count on cuda only.
// The activation terms follow the buffers of model/forward.c; with recompute a decoder layer keeps only its
// input and rebuilds the rest during backward.
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "trainer.h"
#include "util.h"

#define GIB (1024.0 * 1024.0 * 1024.0)
#define LM_HEAD_CHUNK 1024.0        // rows of logits held at once by the fused LM head + cross-entropy
#define LM_HEAD_LOGITS_CAP (1024.0 * 1024.0 * 1024.0)   // its cap on the fp32 logits (kernels/cuda/lm_head_ce.cu)
#define VISUAL_SHARE 0.75           // LiveCC samples: ~24K of ~32K tokens are visual (LIVECC.md 3.3)

// Bytes of the largest set of fp32 gradients one backward stage finishes at once: a decoder layer, or the LM
// head (its largest tensor plus the final norm). Under ZeRO-2 a bucket is at least one stage, so two of these
// (the stage being written, the bucket in flight) are the full-size gradients alive at a time.
static double largest_stage_bytes(const lcc_model *m) {
  double layer0 = 0, biggest = 0;
  for (int i = 0; i < m->n_params; i++) {
    const lcc_param *p = &m->params[i];
    if (p->grad_offset < 0) continue;
    if (!strncmp(p->name, "model.layers.0.", 15)) layer0 += (double)p->numel;
    if ((double)p->numel > biggest) biggest = (double)p->numel;
  }
  biggest += m->cfg.hidden_size;
  return 4.0 * (layer0 > biggest ? layer0 : biggest);
}

double lcc_memory_plan(const lcc_config *cfg, const lcc_train_opts *o, FILE *f) {
  lcc_model m;
  if (lcc_model_create(&m, cfg, NULL, o->freeze)) return -1;   // the layout only
  const int gpu = !strcmp(o->backend, "cuda"), fp32 = !strcmp(o->backend, "cpu");
  const double W = o->plan_world, T = o->plan_tokens, A = fp32 ? 4.0 : 2.0, F = 4.0;   // act bytes, fp32 bytes
  const double n_all = (double)m.n_elems, n_train = (double)m.n_grad, part = n_train / W;
  const double C = cfg->hidden_size, I = cfg->intermediate_size, L = cfg->num_layers, D = cfg->head_dim;
  const double HD = cfg->num_heads * D, Q = HD + 2.0 * cfg->num_kv_heads * D, V = cfg->vocab_size;
  const double E = cfg->vit_embed_dim, M = cfg->vit_mlp_dim, P = lcc_patch_dim(cfg), U = lcc_merge_units(cfg);
  const double N = m.vision_trainable ? 0 : VISUAL_SHARE * T * U;   // patches (the plan covers a frozen ViT)
  const double bucket_bytes = (double)o->bucket_mb * 1024 * 1024, stage_bytes = largest_stage_bytes(&m);
  const double bucket = bucket_bytes > stage_bytes ? bucket_bytes : stage_bytes;

  const double weights = n_all * A;
  const double master = fp32 ? 0.0 : (o->zero ? part : n_train) * F;   // fp32: the compute weights are the masters
  const double moments = 2.0 * (o->zero ? part : n_train) * F;
  const double grads = o->zero == 2 ? part * F + 2.0 * bucket : n_train * F;
  const double layer = T * (C + Q + HD + C + C + 2 * I + I) * A + T * (2 + cfg->num_heads) * F;   // one layer's buffers
  const double layer_inputs = (L + 1) * T * C * A;
  const double act_decoder = o->recompute ? layer_inputs + layer : layer_inputs + L * layer;
  // final norm output + the fused head's scratch: the row list, fp32 logits and act-type dlogits of one chunk,
  // and the chunk's input rows and their gradient (lm_head_ce.cu)
  const double fit = floor(LM_HEAD_LOGITS_CAP / (V * F)), chunk = fit < 1 ? 1 : fit > LM_HEAD_CHUNK ? LM_HEAD_CHUNK : fit;
  const double act_head = T * C * A + T * 4.0 + chunk * V * (F + A) + 2.0 * chunk * C * A;
  const double scratch = T * C * A + 2.0 * T * (Q > 2 * I ? Q : 2 * I) * A;
  const double act_vit = N * P * A + 2 * N * E * A + N * (7 * E + 2 * M) * A + N * (4 + cfg->vit_num_heads) * F +
                         N * cfg->vit_head_dim * F + N * 3 * E * A + N / U * C * A;
  const double workspace = gpu ? (64.0 + 256.0) * 1024 * 1024 + 1.0 * GIB : 0.0;   // cuBLASLt, cuDNN attention, NCCL
  // a frozen ViT runs before the decoder and shares its memory (model/forward.c): the peak is the larger
  const double decoder_phase = act_decoder + act_head + scratch;
  const double total = weights + master + moments + grads + (act_vit > decoder_phase ? act_vit : decoder_phase) + workspace;

  fprintf(f, "# memory plan per rank (backend %s): %s, %d ranks, ZeRO-%d, %d tokens per sample (%.0f patches through a frozen ViT), "
             "recompute %s, freeze '%s'\n", o->backend, o->model, o->plan_world, o->zero, o->plan_tokens, N, o->recompute ? "on" : "off",
          o->freeze);
  fprintf(f, "#   parameters: %.3f B in all, %.3f B trainable\n", n_all / 1e9, n_train / 1e9);
  if (fp32) {
    fprintf(f, "  %-44s %8.2f GiB\n", "weights (fp32, all: the master weights)", weights / GIB);
  } else {
    fprintf(f, "  %-44s %8.2f GiB\n", "weights (bf16 compute copy, all)", weights / GIB);
    fprintf(f, "  %-44s %8.2f GiB\n", o->zero ? "master weights (fp32, this rank's part)" : "master weights (fp32)", master / GIB);
  }
  fprintf(f, "  %-44s %8.2f GiB\n", o->zero ? "AdamW moments (fp32, this rank's part)" : "AdamW moments (fp32)", moments / GIB);
  fprintf(f, "  %-44s %8.2f GiB\n", o->zero == 2 ? "gradients (fp32 part + 2 stages in flight)" : "gradients (fp32, trainable)", grads / GIB);
  fprintf(f, "  %-44s %8.2f GiB   (without recompute: %.2f GiB)\n", "activations, decoder", act_decoder / GIB,
          (layer_inputs + L * layer) / GIB);
  fprintf(f, "  %-44s %8.2f GiB\n", "activations, LM head (logits + grad, a chunk)", act_head / GIB);
  fprintf(f, "  %-44s %8.2f GiB\n", "backward scratch", scratch / GIB);
  fprintf(f, "  %-44s %8.2f GiB   (shares the decoder's memory: not added)\n", "activations, ViT (no grad, one block reused)",
          act_vit / GIB);
  if (gpu) fprintf(f, "  %-44s %8.2f GiB\n", "workspace (cuBLASLt, cuDNN, NCCL)", workspace / GIB);
  fprintf(f, "  %-44s %8.2f GiB   (%.1f GB)\n", "total", total / GIB, total / 1e9);
  // what one rank may use: a GPU's memory, or (CPU backends) this machine's
  const double have = gpu ? o->plan_device_gib * GIB : (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
  if (total > have)
    fprintf(stderr, "livecc-train: warning: the plan needs %.2f GiB per rank, more than the %.2f GiB of %s: use more ranks "
            "(plan.world_size), ZeRO-2, recompute = true or shorter samples\n", total / GIB, have / GIB,
            gpu ? "one GPU (plan.device_gib)" : "this machine's memory");
  lcc_model_destroy(&m);
  return total;
}
