// Qwen2-VL backward of the last forward: the forward call list in reverse. Weight gradients accumulate into
// m->grads (frozen tensors get none: their lcc_g is NULL and the ops skip them). The residual-stream
// gradient lives in d_res; d_a and d_b are scratch for the widest intermediate gradients.
#include "model.h"
#include "model_internal.h"

// Reports the gradients of the trainable tensors among idx[0..n) as final (see lcc_grad_hook). A stage's
// tensors are adjacent in the layout, so their trainable part is one range.
static void stage_done(lcc_model *m, const int *idx, int n) {
  if (!m->grad_hook.ready) return;
  long long begin = -1, end = -1;
  for (int k = 0; k < n; k++) {
    const lcc_param *p = &m->params[idx[k]];
    if (p->grad_offset < 0) continue;
    if (begin < 0 || p->grad_offset < begin) begin = p->grad_offset;
    if (p->grad_offset + (long long)p->numel > end) end = p->grad_offset + (long long)p->numel;
  }
  if (begin >= 0) m->grad_hook.ready(m->grad_hook.ctx, (size_t)begin, (size_t)end);
}

static void decoder_backward(lcc_model *m) {
  lcc_backend *be = m->be;
  const lcc_config *c = &m->cfg;
  lcc_acts *a = &m->acts;
  const int T = m->cur_tokens, C = c->hidden_size, I = c->intermediate_size, D = c->head_dim;
  const int Hq = c->num_heads, Hkv = c->num_kv_heads, HD = Hq * D, Q = HD + 2 * Hkv * D;
  const size_t TC = (size_t)T * C;

  // LM head + cross-entropy: d_nf = d nf [T,C] (already from the forward with fuse_head_grad); then the
  // final norm starts the residual gradient.
  if (!m->fuse_head_grad)
    be->lm_head_ce(be, a->losses, a->d_nf, lcc_g(m, m->head_idx), a->nf, lcc_w(m, m->head_idx), a->targets, a->loss_w,
                   T, C, c->vocab_size);
  be->zero(be, a->d_res, TC * be->act_bytes);
  be->rmsnorm_bwd(be, a->d_res, lcc_g(m, m->norm_idx), a->d_nf, a->x[c->num_layers], lcc_w(m, m->norm_idx), a->rstdf, T, C);
  const int head[2] = {m->norm_idx, m->head_idx};   // a tied head is the embedding: final only after EMBED
  stage_done(m, head, c->tie_word_embeddings ? 1 : 2);

  for (int l = c->num_layers - 1; l >= 0; l--) {
    const int *ix = m->dec_idx[l];   // for stage_done
    const lcc_decoder_tensors w = lcc_decoder_of(m, l, lcc_w), g = lcc_decoder_of(m, l, lcc_g_any);
    void *x = a->x[l];
    if (m->recompute) lcc_decoder_layer_forward(m, l);   // rebuild this layer's activations from its input
    const lcc_layer_acts y = lcc_layer_acts_of(m, l);
    void *n1 = y.n1, *qkv = y.qkv, *att = y.att, *h = y.h, *n2 = y.n2, *gu = y.gu, *s = y.s;
    float *rstd1 = y.rstd1, *rstd2 = y.rstd2, *lse = y.lse;
    // MLP: out = h + down(swiglu(gate_up(rmsnorm(h))))
    be->linear_bwd(be, a->d_a, g.down_w, NULL, a->d_res, s, w.down_w, T, I, C);              // d s [T,I]
    be->swiglu_bwd(be, a->d_b, a->d_a, gu, T, I);                                            // d gu [T,2I]
    be->linear_bwd(be, a->d_a, g.gate_up_w, NULL, a->d_b, n2, w.gate_up_w, T, C, 2 * I);     // d n2 [T,C]
    be->rmsnorm_bwd(be, a->d_res, g.post_norm, a->d_a, h, w.post_norm, rstd2, T, C);         // d h [T,C]
    // attention: h = x + o(attn(rope(qkv(rmsnorm(x)))))
    be->linear_bwd(be, a->d_a, g.o_w, NULL, a->d_res, att, w.o_w, T, HD, C);                 // d att [T,HD]
    be->attention_bwd(be, a->d_b, a->d_a, qkv, att, lse, a->tok_cu, m->cur_samples, T, Hq, Hkv, D, 1);   // d qkv [T,Q]
    be->rope_bwd(be, a->d_b, a->cos, a->sin, T, Hq, Hkv, D);
    be->linear_bwd(be, a->d_a, g.qkv_w, g.qkv_b, a->d_b, n1, w.qkv_w, T, C, Q);              // d n1 [T,C]
    be->rmsnorm_bwd(be, a->d_res, g.in_norm, a->d_a, x, w.in_norm, rstd1, T, C);             // d x [T,C]
    stage_done(m, ix, DL_COUNT);
  }
  // d_res = d x[0]: vision rows go to the merger output (and are cleared), the rest to the embedding table.
  if (m->cur_vis_tokens)
    be->scatter_rows_bwd(be, m->vision_trainable ? a->d_vis : NULL, a->d_res, a->scatter_rows, m->cur_vis_tokens, C);
  if (lcc_g(m, m->tok_idx)) be->embedding_bwd(be, lcc_g(m, m->tok_idx), a->ids, a->d_res, T, C);
  stage_done(m, &m->tok_idx, 1);
}

static void vision_backward(lcc_model *m) {
  lcc_backend *be = m->be;
  const lcc_config *c = &m->cfg;
  lcc_acts *a = &m->acts;
  const int N = m->cur_patches, E = c->vit_embed_dim, M = c->vit_mlp_dim, H = c->vit_num_heads, Dv = c->vit_head_dim;
  const int P = lcc_patch_dim(c), U = lcc_merge_units(c), C = c->hidden_size, Nv = N / U;
  const size_t NE = (size_t)N * E;

  // merger: out = mlp2(gelu(mlp0(view(layernorm(x)))))
  be->linear_bwd(be, a->d_a, lcc_g(m, m->mg_idx[4]), lcc_g(m, m->mg_idx[5]), a->d_vis, a->mg_h2, lcc_w(m, m->mg_idx[4]), Nv, U * E, C);
  be->gelu_bwd(be, a->d_b, a->d_a, a->mg_h1, (size_t)Nv * U * E);
  be->linear_bwd(be, a->d_a, lcc_g(m, m->mg_idx[2]), lcc_g(m, m->mg_idx[3]), a->d_b, a->mg_n, lcc_w(m, m->mg_idx[2]), Nv, U * E, U * E);
  be->zero(be, a->d_res, NE * be->act_bytes);
  be->layernorm_bwd(be, a->d_res, lcc_g(m, m->mg_idx[0]), lcc_g(m, m->mg_idx[1]), a->d_a, a->vx[c->vit_depth],
                    lcc_w(m, m->mg_idx[0]), a->mg_mean, a->mg_rstd, N, E);
  stage_done(m, m->mg_idx, 6);

  for (int b = c->vit_depth - 1; b >= 0; b--) {
    const int *ix = m->vit_idx[b];   // for stage_done
    const lcc_vit_tensors w = lcc_vit_of(m, b, lcc_w), g = lcc_vit_of(m, b, lcc_g_any);
    const size_t k = (size_t)b;
    void *x = a->vx[b];
    void *n1 = act_at(m, a->v_n1, k * NE), *qkv = act_at(m, a->v_qkv, k * 3 * NE), *att = act_at(m, a->v_att, k * NE);
    void *h = act_at(m, a->v_h, k * NE), *n2 = act_at(m, a->v_n2, k * NE);
    void *f1 = act_at(m, a->v_f1, k * N * (size_t)M), *f2 = act_at(m, a->v_f2, k * N * (size_t)M);
    float *mean1 = a->v_mean1 + k * N, *rstd1 = a->v_rstd1 + k * N, *mean2 = a->v_mean2 + k * N, *rstd2 = a->v_rstd2 + k * N;
    float *lse = a->v_lse + k * (size_t)H * N;
    // MLP: out = h + fc2(quick_gelu(fc1(layernorm(h))))
    be->linear_bwd(be, a->d_a, g.fc2_w, g.fc2_b, a->d_res, f2, w.fc2_w, N, M, E);                 // d f2 [N,M]
    be->quick_gelu_bwd(be, a->d_b, a->d_a, f1, (size_t)N * M);                                  // d f1 [N,M]
    be->linear_bwd(be, a->d_a, g.fc1_w, g.fc1_b, a->d_b, n2, w.fc1_w, N, E, M);                   // d n2 [N,E]
    be->layernorm_bwd(be, a->d_res, g.norm2_w, g.norm2_b, a->d_a, h, w.norm2_w, mean2, rstd2, N, E);   // d h [N,E]
    // attention: h = x + proj(attn(rope(qkv(layernorm(x)))))
    be->linear_bwd(be, a->d_a, g.proj_w, g.proj_b, a->d_res, att, w.proj_w, N, E, E);              // d att [N,E]
    be->attention_bwd(be, a->d_b, a->d_a, qkv, att, lse, a->vit_cu, m->cur_blocks, N, H, H, Dv, 0);   // d qkv [N,3E]
    be->rope_bwd(be, a->d_b, a->v_cos, a->v_sin, N, H, H, Dv);
    be->linear_bwd(be, a->d_a, g.qkv_w, g.qkv_b, a->d_b, n1, w.qkv_w, N, E, 3 * E);                // d n1 [N,E]
    be->layernorm_bwd(be, a->d_res, g.norm1_w, g.norm1_b, a->d_a, x, w.norm1_w, mean1, rstd1, N, E);   // d x [N,E]
    stage_done(m, ix, VB_COUNT);
  }
  be->linear_bwd(be, NULL, lcc_g(m, m->vit_idx_patch), NULL, a->d_res, a->v_pix, lcc_w(m, m->vit_idx_patch), N, P, E);
  stage_done(m, &m->vit_idx_patch, 1);
}

// A batch without pictures leaves the vision gradients as they are; they are still final.
static void vision_stages_done(lcc_model *m) {
  stage_done(m, m->mg_idx, 6);
  for (int b = m->cfg.vit_depth - 1; b >= 0; b--) stage_done(m, m->vit_idx[b], VB_COUNT);
  stage_done(m, &m->vit_idx_patch, 1);
}

void lcc_model_backward(lcc_model *m) {
  if (!m->n_grad) return;
  decoder_backward(m);
  if (m->vision_trainable && m->cur_patches) vision_backward(m);
  else if (m->vision_trainable) vision_stages_done(m);
}
