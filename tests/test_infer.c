// Incremental inference with the KV cache against the full forward: appending a sample in pieces gives the
// logits of one forward over the whole sample (vision items included), and greedy generation with the
// cache equals generation that recomputes everything, token for token.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "infer.h"
#include "testlib.h"
#include "util.h"

static int argmax(const float *x, int n) {
  int best = 0;
  for (int i = 1; i < n; i++) best = x[i] > x[best] ? i : best;
  return best;
}

// Logits of the last token of ids[0..n) by one full forward (no cache), into out[V].
static void full_forward_last(lcc_model *m, const int32_t *ids, int n, const lcc_owned_batch *ob, int n_items, int n_patches,
                              float *out) {
  const int32_t starts[2] = {0, n};
  lcc_batch b = {.n_samples = 1, .n_tokens = n, .ids = ids, .sample_start = starts, .n_items = n_items,
                 .items = ob->items, .n_patches = n_patches, .pixels = ob->pixels, .norm_count = 1};
  LCC_CHECK(lcc_model_forward(m, &b) == 0, "%s", lcc_last_error());
  lcc_model_logits(m, out, n - 1, 1);
}

int main(void) {
  lcc_config cfg;
  LCC_CHECK(lcc_config_load(&cfg, "tests/fixtures/tiny_b") == 0, "%s", lcc_last_error());
  lcc_backend *be = lcc_cpu_backend(0);
  lcc_model m;
  LCC_CHECK(lcc_model_create(&m, &cfg, be, "") == 0 && lcc_model_load_hf(&m, "tests/fixtures/tiny_b") == 0, "%s",
            lcc_last_error());
  lcc_owned_batch ob;
  lcc_batch_synthetic(&ob, &cfg, &(lcc_synth_shape){4, 4, 6, 3}, 3, 0, 1);
  const int T = ob.b.n_tokens, V = cfg.vocab_size, P = lcc_patch_dim(&cfg), U = lcc_merge_units(&cfg);
  float *full = lcc_malloc((size_t)T * V * sizeof(float));
  LCC_CHECK(lcc_model_forward(&m, &ob.b) == 0, "%s", lcc_last_error());
  lcc_model_logits(&m, full, 0, T);

  // 1. the sample appended in pieces, cut before each <|im_start|> (turn boundaries, as streaming does)
  lcc_infer s;
  LCC_CHECK(lcc_infer_init(&s, &m, T + 64) == 0, "%s", lcc_last_error());
  double worst = 0, scale = 0;
  int pieces = 0, item = 0, patch = 0;
  for (int a = 0; a < T;) {
    int b = a + 1;
    while (b < T && ob.ids[b] != cfg.bos_token_id + 1) b++;
    int pads = 0, items = 0, patches = 0;
    for (int i = a; i < b; i++) pads += ob.ids[i] == cfg.video_token_id;
    for (int need = 0; need < pads; items++) {
      const lcc_vision_item *it = &ob.items[item + items];
      need += it->t * it->h * it->w / U, patches += it->t * it->h * it->w;
    }
    LCC_CHECK(lcc_infer_append(&s, ob.ids + a, b - a, ob.items + item, items, ob.pixels + (size_t)patch * P, patches) == 0,
              "%s", lcc_last_error());
    for (int v = 0; v < V; v++) {
      double d = fabs((double)s.logits[v] - full[(size_t)(b - 1) * V + v]);
      if (d > worst) worst = d;
      if (fabs(full[(size_t)(b - 1) * V + v]) > scale) scale = fabs(full[(size_t)(b - 1) * V + v]);
    }
    item += items, patch += patches, pieces++;
    a = b;
  }
  checkf(worst <= 1e-4 * scale, "%d pieces appended with the cache: logits at each piece end within %.2e of max |logit| "
         "%.2f of the full forward (tolerance 1e-4)", pieces, worst / scale, scale);

  // 2. greedy generation of 24 tokens after the first two turns: cache vs recomputing the whole context
  int cut = 0;
  for (int turns = 0; cut < T && turns < 4; cut++) turns += ob.ids[cut] == cfg.bos_token_id + 1;
  cut--;   // just before the 4th <|im_start|>: after the system turn, one user turn and one assistant turn
  int n_items = 0, n_patches = 0, pads = 0;
  for (int i = 0; i < cut; i++) pads += ob.ids[i] == cfg.video_token_id;
  for (int need = 0; need < pads; n_items++) {
    need += ob.items[n_items].t * ob.items[n_items].h * ob.items[n_items].w / U;
    n_patches += ob.items[n_items].t * ob.items[n_items].h * ob.items[n_items].w;
  }
  int32_t *ctx = lcc_malloc((size_t)(cut + 32) * sizeof(int32_t));
  memcpy(ctx, ob.ids, (size_t)cut * sizeof(int32_t));
  lcc_infer_truncate(&s, 0);
  LCC_CHECK(lcc_infer_append(&s, ctx, cut, ob.items, n_items, ob.pixels, n_patches) == 0, "%s", lcc_last_error());
  float *logits = lcc_malloc((size_t)V * sizeof(float));
  int same = 1, n_gen = 24;
  for (int g = 0; g < n_gen; g++) {
    full_forward_last(&m, ctx, cut + g, &ob, n_items, n_patches, logits);
    int with_cache = argmax(s.logits, V), recomputed = argmax(logits, V);
    same &= with_cache == recomputed;
    ctx[cut + g] = with_cache;
    LCC_CHECK(lcc_infer_append(&s, &ctx[cut + g], 1, NULL, 0, NULL, 0) == 0, "%s", lcc_last_error());
  }
  checkf(same, "greedy generation of %d tokens: with the KV cache == recomputing the whole context each step", n_gen);

  // 3. truncate and evict keep positions: dropping the last token and appending it again gives the same logits
  float *before = lcc_malloc((size_t)V * sizeof(float));
  memcpy(before, s.logits, (size_t)V * sizeof(float));
  int32_t last = s.ids[s.n - 1];
  lcc_infer_truncate(&s, s.n - 1);
  LCC_CHECK(lcc_infer_append(&s, &last, 1, NULL, 0, NULL, 0) == 0, "%s", lcc_last_error());
  check(memcmp(before, s.logits, (size_t)V * sizeof(float)) == 0, "truncate then append the same token: identical logits");
  const int next = s.next_pos;
  lcc_infer_evict(&s, 2, 10);
  check(s.next_pos == next && s.n == cut + n_gen - 8, "evicting 8 cached tokens keeps the next position");
  lcc_infer_free(&s);
  free(full), free(logits), free(before), free(ctx);
  lcc_batch_free(&ob);
  lcc_model_destroy(&m);
  be->destroy(be);
  return test_finish("test_infer");
}
