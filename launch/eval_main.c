// livecc-eval: held-out loss and commentary word accuracy of a model over shards.
//   livecc-eval --model=CONFIG --init=CHECKPOINT --data=SHARDS --tokenizer=tokenizer.json [--key=value ...]
// Loss: the mean over samples of each sample's token-mean cross-entropy (the training objective).
// Word accuracy, teacher-forced: at each transcript word of the assistant turns, is the model's most likely
// next token the word's token, for every token of the word? Words start at a token that begins with a space
// (or the turn's first token); the " ..." end-of-second token and <|im_end|> are not words.
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader.h"
#include "model.h"
#include "runconfig.h"
#include "tokenizer.h"
#include "util.h"

typedef struct {
  char model[LCC_OPT_STR], init[LCC_OPT_STR], data[LCC_OPT_STR], tokenizer[LCC_OPT_STR], positions[LCC_OPT_STR];
  char predictions[LCC_OPT_STR];
  int threads, max_samples, blank_frames;
} eval_opts;

#define OPT(key, type, field, def, help) {key, type, offsetof(eval_opts, field), def, help}
static const lcc_opt table[] = {
    OPT("model", LCC_OPT_STRING, model, "configs/model/tiny.json", "model architecture: HF folder or config.json"),
    OPT("init", LCC_OPT_STRING, init, "", "weights: a run's checkpoints directory (its latest), a checkpoint, or an HF folder"),
    OPT("data", LCC_OPT_STRING, data, "", "held-out shards: manifest.json or its directory"),
    OPT("tokenizer", LCC_OPT_STRING, tokenizer, "", "tokenizer.json (word boundaries); empty: every token is a word"),
    OPT("positions", LCC_OPT_STRING, positions, "mrope", "mrope or 1d (as the model was trained)"),
    OPT("threads", LCC_OPT_INT, threads, "0", "CPU threads (0: OpenMP default)"),
    OPT("max_samples", LCC_OPT_INT, max_samples, "0", "evaluate at most this many samples (0: all)"),
    OPT("blank_frames", LCC_OPT_BOOL, blank_frames, "false", "every patch row at the mean colour (for a model trained so)"),
    OPT("predictions", LCC_OPT_STRING, predictions, "", "write 'sample<TAB>target<TAB>prediction' per content token to this file"),
};
static const int n_table = sizeof table / sizeof table[0];

typedef struct {
  double loss_sum;
  long samples, words, words_right, tokens, tokens_right;
} tally;

// Scores one sample of the last forward: argmax of the logits at every labelled position.
static void score(lcc_model *m, const lcc_batch *b, const lcc_tokenizer *tk, int32_t ellipsis, tally *t, FILE *out) {
  const int T = b->n_tokens, V = m->cfg.vocab_size;
  float *logits = lcc_malloc((size_t)V * sizeof(float));
  int word_open = 0, word_ok = 0;
  for (int i = 0; i + 1 < T; i++) {
    const int32_t target = b->labels[i + 1];
    const int content = target >= 0 && target != m->cfg.eos_token_id && target != ellipsis;
    const char *piece = content && tk ? lcc_tokenizer_token(tk, target) : NULL;
    const int starts_word = content && (!tk || !word_open || (piece && (unsigned char)piece[0] == 0xC4 && (unsigned char)piece[1] == 0xA0));
    if (word_open && (!content || starts_word)) t->words++, t->words_right += word_ok, word_open = 0;
    if (!content) continue;
    lcc_model_logits(m, logits, i, 1);   // [1, V]: the prediction of token i + 1
    int best = 0;
    for (int v = 1; v < V; v++) best = logits[v] > logits[best] ? v : best;
    t->tokens++, t->tokens_right += best == target;
    if (out && tk) fprintf(out, "%ld\t%s\t%s\n", t->samples, lcc_tokenizer_token(tk, target), lcc_tokenizer_token(tk, best));
    if (starts_word) word_open = 1, word_ok = 1;
    word_ok &= best == target;
  }
  if (word_open) t->words++, t->words_right += word_ok;
  free(logits);
}

int main(int argc, char **argv) {
  eval_opts o;
  if (lcc_opts_defaults(&o, table, n_table)) return 2;
  for (int i = 1; i < argc; i++) {
    const char *eq = strchr(argv[i], '=');
    if (!strcmp(argv[i], "--help")) {
      printf("usage: livecc-eval [--key=value ...]\n");
      lcc_opts_usage(table, n_table, stdout);
      return 0;
    }
    char key[256];
    if (strncmp(argv[i], "--", 2) || !eq) {
      fprintf(stderr, "livecc-eval: error: unexpected argument '%s' (flags look like --key=value)\n", argv[i]);
      return 2;
    }
    snprintf(key, sizeof key, "%.*s", (int)(eq - argv[i] - 2), argv[i] + 2);
    if (lcc_opts_set(&o, table, n_table, key, eq + 1, "command line")) {
      fprintf(stderr, "livecc-eval: error: %s\n", lcc_last_error());
      return 2;
    }
  }
  lcc_config cfg;
  lcc_backend *be = lcc_cpu_backend(o.threads);
  lcc_model m = {0};
  lcc_tokenizer *tk = NULL;
  lcc_loader *ld = NULL;
  char weights[2 * LCC_OPT_STR];
  char *latest = NULL;
  {   // a run's checkpoints directory means its latest checkpoint
    char p[LCC_OPT_STR + 16];
    lcc_pathf(p, sizeof p, "%s/latest", o.init);
    latest = lcc_read_file(p, NULL);
    if (latest) latest[strcspn(latest, "\r\n")] = 0;
    lcc_pathf(weights, sizeof weights, latest ? "%s/%s" : "%s%s", o.init, latest ? latest : "");
  }
  int rc = lcc_config_load(&cfg, o.model) || lcc_model_create(&m, &cfg, be, "") || lcc_model_load_hf(&m, weights);
  if (!rc && o.tokenizer[0] && !(tk = lcc_tokenizer_load(o.tokenizer))) rc = -1;
  lcc_loader_opts lo = {.data = o.data, .shuffle = 0, .world_size = 1, .rank = 0, .micro_batch = 1, .grad_accum = 1,
                        .threads = 2, .prefetch = 4, .skip_corrupt = 1, .max_open_shards = 16};
  if (!rc && !(ld = lcc_loader_open(&lo, 0))) rc = -1;
  m.pos_mode = strcmp(o.positions, "1d") == 0 ? LCC_POS_1D : LCC_POS_MROPE;
  const int32_t ellipsis = tk ? lcc_tokenizer_id(tk, "\xC4\xA0...") : -1;   // " ..." in byte-level form
  tally t = {0};
  FILE *pred = o.predictions[0] ? fopen(o.predictions, "w") : NULL;
  if (o.predictions[0] && !pred) rc = lcc_error("%s: cannot write predictions", o.predictions);
  const int64_t n = rc ? 0 : lcc_loader_samples(ld), limit = o.max_samples > 0 && o.max_samples < n ? o.max_samples : n;
  for (int64_t s = 0; s < limit && !rc; s++) {
    lcc_owned_batch ob;
    if ((rc = lcc_loader_next(ld, &ob))) break;
    if (o.blank_frames && ob.b.n_patches) memset(ob.pixels, 0, (size_t)ob.b.n_patches * lcc_patch_dim(&cfg) * sizeof(float));
    ob.b.norm_count = 1.0;
    if (!(rc = lcc_model_forward(&m, &ob.b))) {
      for (int k = 0; k < ob.b.n_samples; k++) t.loss_sum += m.sample_loss[k], t.samples++;
      score(&m, &ob.b, tk, ellipsis, &t, pred);
    }
    lcc_batch_free(&ob);
  }
  if (rc) {
    fprintf(stderr, "livecc-eval: error: %s\n", lcc_last_error());
  } else {
    printf("held-out loss %.4f over %ld samples | word accuracy %.2f%% (%ld of %ld words) | token accuracy %.2f%% "
           "(%ld tokens) | %s\n", t.loss_sum / (t.samples ? t.samples : 1), t.samples,
           100.0 * t.words_right / (t.words ? t.words : 1), t.words_right, t.words,
           100.0 * t.tokens_right / (t.tokens ? t.tokens : 1), t.tokens, weights);
  }
  if (pred) fclose(pred);
  if (ld) lcc_loader_close(ld);
  if (tk) lcc_tokenizer_free(tk);
  if (m.params) lcc_model_destroy(&m);
  free(latest);
  be->destroy(be);
  return rc ? 1 : 0;
}
