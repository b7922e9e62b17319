// livecc-eval: held-out loss and commentary word accuracy of a model over shards, or multiple-choice accuracy.
//   livecc-eval --model=CONFIG --init=CHECKPOINT --data=SHARDS --tokenizer=tokenizer.json [--key=value ...]
//   livecc-eval --model=CONFIG --init=CHECKPOINT --mcq=questions.jsonl --tokenizer=tokenizer.json [--key=value ...]
// Loss: the mean over samples of each sample's token-mean cross-entropy (the training objective).
// Word accuracy, teacher-forced: at each transcript word of the assistant turns, is the model's most likely
// next token the word's token, for every token of the word? Words start at a token that begins with a space
// (or the turn's first token); the " ..." end-of-second token and <|im_end|> are not words.
// Multiple choice (LIVECC.md 9.3), answered by logits, not by generation: each line of the questions file is
// {"video": path (relative to the file), "video_start": s, "video_end": e, "question": "...",
//  "options": ["A. ...", "B. ...", ...], "answer": "B"}. The prompt is a user turn of the video (sampled
// uniformly, LIVECC.md 3.9) and question + "\n" + the options one per line + "\nPlease select the correct
// answer.", the generation prompt, then "Answer:"; the prediction is the option whose letter's token (the
// last token of ": A", ": B", ...) has the largest logit at the last position.
#include <libavutil/log.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonl.h"
#include "loader.h"
#include "model.h"
#include "backend_open.h"
#include "runconfig.h"
#include "stream.h"
#include "tokenizer.h"
#include "util.h"

typedef struct {
  char model[LCC_OPT_STR], init[LCC_OPT_STR], data[LCC_OPT_STR], tokenizer[LCC_OPT_STR], positions[LCC_OPT_STR];
  char predictions[LCC_OPT_STR], mcq[LCC_OPT_STR], system_prompt[LCC_OPT_STR];
  int threads, max_samples, blank_frames;
  char backend[LCC_OPT_STR];
  double fps;
  int max_frames, min_frames, min_pixels, max_pixels, total_pixels;
} eval_opts;

#define OPT(key, type, field, def, help) {key, type, offsetof(eval_opts, field), def, help}
static const lcc_opt table[] = {
    OPT("model", LCC_OPT_STRING, model, "configs/model/tiny.json", "model architecture: HF folder or config.json"),
    OPT("init", LCC_OPT_STRING, init, "", "weights: a run's checkpoints directory (its latest), a checkpoint, or an HF folder"),
    OPT("data", LCC_OPT_STRING, data, "", "held-out shards: manifest.json or its directory"),
    OPT("tokenizer", LCC_OPT_STRING, tokenizer, "", "tokenizer.json (word boundaries; the shards must be made with it; required with --mcq); empty: every token is a word"),
    OPT("positions", LCC_OPT_STRING, positions, "mrope", "mrope or 1d (as the model was trained)"),
    OPT("backend", LCC_OPT_STRING, backend, "cpu", "cpu, cpu-bf16 or cuda (bf16 on this process's GPU)"),
    OPT("threads", LCC_OPT_INT, threads, "0", "CPU threads (0: OpenMP default)"),
    OPT("max_samples", LCC_OPT_INT, max_samples, "0", "evaluate at most this many samples or questions (0: all)"),
    OPT("blank_frames", LCC_OPT_BOOL, blank_frames, "false", "every patch row at the mean colour (for a model trained so)"),
    OPT("predictions", LCC_OPT_STRING, predictions, "", "write 'sample<TAB>target<TAB>prediction' per content token to this file"),
    OPT("mcq", LCC_OPT_STRING, mcq, "", "multiple-choice questions (JSONL) to answer by logits instead of shards"),
    OPT("system_prompt", LCC_OPT_STRING, system_prompt, "You are a helpful assistant.", "mcq: system turn (empty: none)"),
    OPT("fps", LCC_OPT_FLOAT, fps, "2", "mcq: frames per second sampled from the videos"),
    OPT("max_frames", LCC_OPT_INT, max_frames, "480", "mcq: frames per video at most"),
    OPT("min_frames", LCC_OPT_INT, min_frames, "4", "mcq: frames per video at least"),
    OPT("min_pixels", LCC_OPT_INT, min_pixels, "78400", "mcq: pixels per frame at least (100*28*28)"),
    OPT("max_pixels", LCC_OPT_INT, max_pixels, "602112", "mcq: pixels per frame at most (768*28*28)"),
    OPT("total_pixels", LCC_OPT_INT, total_pixels, "19267584", "mcq: pixels per video at most (24576*28*28)"),
};
static const int n_table = sizeof table / sizeof table[0];

typedef struct {
  double loss_sum;
  long samples, words, words_right, tokens, tokens_right;
} tally;

#define LOGIT_ROWS 32   // logits formed per LM-head call: one call per labelled token costs a round trip each

// Scores one sample of the last forward: argmax of the logits at every labelled position.
static void score(lcc_model *m, const lcc_batch *b, const lcc_tokenizer *tk, int32_t ellipsis, tally *t, FILE *out) {
  const int T = b->n_tokens, V = m->cfg.vocab_size;
  float *logits = lcc_malloc((size_t)LOGIT_ROWS * V * sizeof(float));   // [LOGIT_ROWS, V] rows r0 ..
  int r0 = 0, rows = 0;
  int word_open = 0, word_ok = 0;
  for (int i = 0; i + 1 < T; i++) {
    const int32_t target = b->labels[i + 1];
    const int content = target >= 0 && target != m->cfg.eos_token_id && target != ellipsis;
    const char *piece = content && tk ? lcc_tokenizer_token(tk, target) : NULL;
    const int starts_word = content && (!tk || !word_open || (piece && (unsigned char)piece[0] == 0xC4 && (unsigned char)piece[1] == 0xA0));
    if (word_open && (!content || starts_word)) t->words++, t->words_right += word_ok, word_open = 0;
    if (!content) continue;
    if (i >= r0 + rows) {   // row i holds the prediction of token i + 1
      r0 = i, rows = T - 1 - i < LOGIT_ROWS ? T - 1 - i : LOGIT_ROWS;
      lcc_model_logits(m, logits, r0, rows);
    }
    const float *row = logits + (size_t)(i - r0) * V;
    int best = 0;
    for (int v = 1; v < V; v++) best = row[v] > row[best] ? v : best;
    t->tokens++, t->tokens_right += best == target;
    if (out && tk) fprintf(out, "%ld\t%s\t%s\n", t->samples, lcc_tokenizer_token(tk, target), lcc_tokenizer_token(tk, best));
    if (starts_word) word_open = 1, word_ok = 1;
    word_ok &= best == target;
  }
  if (word_open) t->words++, t->words_right += word_ok;
  free(logits);
}

// Held-out loss and word accuracy over shards; prints one line.
static int run_heldout(lcc_model *m, const lcc_tokenizer *tk, const eval_opts *o, const char *weights) {
  lcc_data_expect expect;
  lcc_data_expect_of(&m->cfg, o->model, tk, o->tokenizer, &expect);
  lcc_loader_opts lo = {.data = o->data, .shuffle = 0, .world_size = 1, .rank = 0, .micro_batch = 1, .grad_accum = 1,
                        .threads = 2, .prefetch = 4, .skip_corrupt = 1, .max_open_shards = 16, .expect = &expect};
  lcc_loader *ld = lcc_loader_open(&lo, 0);
  if (!ld) return -1;
  const int32_t ellipsis = tk ? lcc_tokenizer_id(tk, "\xC4\xA0...") : -1;   // " ..." in byte-level form
  tally t = {0};
  int rc = 0;
  FILE *pred = o->predictions[0] ? fopen(o->predictions, "w") : NULL;
  if (o->predictions[0] && !pred) rc = lcc_error("%s: cannot write predictions", o->predictions);
  const int64_t n = lcc_loader_samples(ld), limit = o->max_samples > 0 && o->max_samples < n ? o->max_samples : n;
  for (int64_t s = 0; s < limit && !rc; s++) {
    lcc_owned_batch ob;
    if ((rc = lcc_loader_next(ld, &ob))) break;
    if (o->blank_frames && ob.b.n_patches) memset(ob.pixels, 0, (size_t)ob.b.n_patches * lcc_patch_dim(&m->cfg) * sizeof(float));
    ob.b.norm_count = 1.0;
    if (!(rc = lcc_model_forward(m, &ob.b))) {
      for (int k = 0; k < ob.b.n_samples; k++) t.loss_sum += m->sample_loss[k], t.samples++;
      score(m, &ob.b, tk, ellipsis, &t, pred);
    }
    lcc_batch_free(&ob);
  }
  if (!rc)
    printf("held-out loss %.4f over %ld samples | word accuracy %.2f%% (%ld of %ld words) | token accuracy %.2f%% "
           "(%ld tokens) | %s\n", t.loss_sum / (t.samples ? t.samples : 1), t.samples,
           100.0 * t.words_right / (t.words ? t.words : 1), t.words_right, t.words,
           100.0 * t.tokens_right / (t.tokens ? t.tokens : 1), t.tokens, weights);
  if (pred) fclose(pred);
  lcc_loader_close(ld);
  return rc;
}

// ---- multiple choice by logits ----

typedef struct {
  const char *video, *question, *answer;
  double start, end;
  const lcc_json *options;   // array of strings
} mcq_item;

static int mcq_parse(const lcc_json *q, const char *what, mcq_item *out) {
  const lcc_json *video = lcc_json_get(q, "video"), *question = lcc_json_get(q, "question");
  const lcc_json *options = lcc_json_get(q, "options"), *answer = lcc_json_get(q, "answer");
  const lcc_json *start = lcc_json_get(q, "video_start"), *end = lcc_json_get(q, "video_end");
  if (!video || video->type != LCC_JSON_STRING || !video->str[0]) return lcc_error("%s: \"video\" must be a file path", what);
  if (!question || question->type != LCC_JSON_STRING) return lcc_error("%s: \"question\" must be a string", what);
  if (!options || options->type != LCC_JSON_ARRAY || options->count < 2 || options->count > 26)
    return lcc_error("%s: \"options\" must be an array of 2 to 26 strings", what);
  for (const lcc_json *e = options->child; e; e = e->next)
    if (e->type != LCC_JSON_STRING) return lcc_error("%s: \"options\" must hold strings only", what);
  if (!answer || answer->type != LCC_JSON_STRING || answer->str_len != 1 || answer->str[0] < 'A' ||
      answer->str[0] >= 'A' + (int)options->count)
    return lcc_error("%s: \"answer\" must be one of the option letters A..%c", what, 'A' + (int)options->count - 1);
  if ((start && start->type != LCC_JSON_NUMBER) || (end && end->type != LCC_JSON_NUMBER))
    return lcc_error("%s: \"video_start\" and \"video_end\" must be numbers of seconds", what);
  *out = (mcq_item){video->str, question->str, answer->str, start ? start->number : 0, end ? end->number : -1, options};
  return 0;
}

// The prompt of one question (ids into prompt, its video item into item), LIVECC.md 9.3.
static int mcq_prompt(const lcc_interleaver *it, lcc_tok_scratch *ts, const mcq_item *q, const lcc_frames *f,
                      const char *what, lcc_seq *seq, lcc_ids *prompt, lcc_vision_item *item) {
  size_t cap = strlen(q->question) + 64, n;   // question, "\n" + each option, the request
  for (const lcc_json *e = q->options->child; e; e = e->next) cap += e->str_len + 1;
  char *text = lcc_malloc(cap);
  n = (size_t)snprintf(text, cap, "%s", q->question);
  for (const lcc_json *e = q->options->child; e; e = e->next) n += (size_t)snprintf(text + n, cap - n, "\n%s", e->str);
  n += (size_t)snprintf(text + n, cap - n, "\nPlease select the correct answer.");
  lcc_elem el[2] = {{.kind = LCC_ELEM_VIDEO, .text = q->video, .text_len = strlen(q->video), .start = q->start, .end = q->end},
                    {.kind = LCC_ELEM_TEXT, .text = text, .text_len = n}};
  lcc_turn user = {LCC_ROLE_USER, 0, 2};
  lcc_conv conv = {.n_turns = 1, .turns = &user, .n_elems = 2, .elems = el};
  int rc = lcc_interleave_qa(it, ts, &conv, f, what, seq) ? -1 : 0;
  free(text);
  if (rc) return -1;
  prompt->n = 0;
  for (int i = 0; i < seq->ids.n; i++) lcc_ids_push(prompt, seq->ids.ids[i]);
  lcc_ids_push(prompt, it->im_start);   // the generation prompt, then "Answer:"
  lcc_ids_push(prompt, it->assistant);
  lcc_ids_push(prompt, it->newline);
  if (lcc_tokenizer_encode(it->tk, ts, "Answer:", 7, prompt)) return -1;
  *item = (lcc_vision_item){LCC_VIDEO, seq->items[0].t, seq->items[0].h, seq->items[0].w};
  return 0;
}

// The token of option letter k: the last token of ": A", ": B", ...
static int32_t letter_token(const lcc_tokenizer *tk, lcc_tok_scratch *ts, int k) {
  char s[4] = {':', ' ', (char)('A' + k), 0};
  lcc_ids ids = {0};
  int32_t id = lcc_tokenizer_encode(tk, ts, s, 3, &ids) || ids.n == 0 ? -1 : ids.ids[ids.n - 1];
  lcc_ids_free(&ids);
  return id;
}

static int mcq_one(lcc_model *m, lcc_infer *ctx, const lcc_interleaver *it, lcc_tok_scratch *ts, const eval_opts *o,
                   const lcc_video_budget *b, const mcq_item *q, const char *what, const char *dir, lcc_seq *seq,
                   lcc_ids *prompt, int *pred, float *logits) {
  char path[4200];
  if (q->video[0] == '/') lcc_pathf(path, sizeof path, "%s", q->video);
  else lcc_pathf(path, sizeof path, "%s/%s", dir, q->video);
  lcc_frames f;
  if (lcc_video_read_uniform(path, q->start, q->end, b, &f)) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", lcc_last_error());
    return lcc_error("%s: %s", what, msg);
  }
  lcc_vision_item item;
  int rc = mcq_prompt(it, ts, q, &f, what, seq, prompt, &item);
  const int n_rows = item.t * item.h * item.w;
  float *rows = rc ? NULL : lcc_malloc((size_t)n_rows * lcc_patch_dim(&m->cfg) * sizeof(float));   // [n_rows, 1176]
  if (!rc) {
    if (o->blank_frames) memset(rows, 0, (size_t)n_rows * lcc_patch_dim(&m->cfg) * sizeof(float));
    else lcc_patchify(f.rgb, f.T, f.h, f.w, m->cfg.patch_size, m->cfg.spatial_merge_size, m->cfg.temporal_patch_size,
                      lcc_clip_mean, lcc_clip_std, rows);
    if (prompt->n > ctx->cap) {
      lcc_infer_free(ctx);
      rc = lcc_infer_init(ctx, m, prompt->n);
    }
    lcc_infer_truncate(ctx, 0);
    if (!rc) rc = lcc_infer_append(ctx, prompt->ids, prompt->n, &item, 1, rows, n_rows);
  }
  float best = 0;
  for (int k = 0; k < (int)q->options->count && !rc; k++) {
    int32_t tok = letter_token(it->tk, ts, k);
    if (tok < 0 || tok >= m->cfg.vocab_size) rc = lcc_error("%s: the tokenizer has no token for option %c", what, 'A' + k);
    else if (k == 0 || ctx->logits[tok] > best) *pred = k, best = ctx->logits[tok];
    if (!rc) logits[k] = ctx->logits[tok];
  }
  free(rows);
  lcc_frames_free(&f);
  return rc;
}

static int run_mcq(lcc_model *m, const lcc_tokenizer *tk, const eval_opts *o) {
  if (!tk) return lcc_error("--mcq needs --tokenizer");
  lcc_video_budget b;
  lcc_video_budget_default(&b);
  b.fps = o->fps, b.max_frames = o->max_frames, b.min_frames = o->min_frames;
  b.min_pixels = o->min_pixels, b.max_pixels = o->max_pixels, b.total_pixels = o->total_pixels;
  b.factor = m->cfg.patch_size * m->cfg.spatial_merge_size;
  lcc_interleaver it;
  lcc_interleave_opts io = {.fps = 2, .system_prompt = o->system_prompt, .patch = m->cfg.patch_size,
                            .merge = m->cfg.spatial_merge_size, .temporal = m->cfg.temporal_patch_size};
  if (lcc_interleaver_init(&it, tk, &io)) return -1;
  lcc_jsonl jl;
  const char *paths[1] = {o->mcq};
  if (lcc_jsonl_open(&jl, paths, 1, NULL)) return -1;
  char dir[LCC_OPT_STR];
  const char *slash = strrchr(o->mcq, '/');
  snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - o->mcq) : 1, slash ? o->mcq : ".");
  lcc_tok_scratch *ts = lcc_tok_scratch_new();
  lcc_seq seq = {0};
  lcc_ids prompt = {0};
  lcc_infer ctx = {0};
  lcc_jsonl_line line = {0};
  long right = 0, asked = 0;
  int rc = 0;
  const int64_t n = o->max_samples > 0 && o->max_samples < jl.n ? o->max_samples : jl.n;
  for (int64_t g = 0; g < n && !rc; g++) {
    if ((rc = lcc_jsonl_read(&jl, g, &line))) break;
    char what[LCC_OPT_STR + 32];
    snprintf(what, sizeof what, "%s:%lld", line.path, (long long)line.line);
    lcc_json_doc *doc = lcc_json_parse(line.text, line.len, what);
    mcq_item q = {0};
    int pred = 0;
    float logits[26];   // of each option's letter
    if (!doc || mcq_parse(lcc_json_root(doc), what, &q) ||
        mcq_one(m, &ctx, &it, ts, o, &b, &q, what, dir, &seq, &prompt, &pred, logits)) {
      rc = -1;
    } else {
      right += 'A' + pred == q.answer[0], asked++;
      printf("%s: predicted %c, answer %c | logits", what, 'A' + pred, q.answer[0]);
      for (int k = 0; k < (int)q.options->count; k++) printf(" %c %.4f", 'A' + k, logits[k]);
      printf("\n");
    }
    if (doc) lcc_json_free(doc);
  }
  if (!rc) printf("multiple-choice accuracy %.2f%% (%ld of %ld questions)\n", 100.0 * right / (asked ? asked : 1), right, asked);
  lcc_jsonl_line_free(&line);
  lcc_jsonl_close(&jl);
  lcc_infer_free(&ctx);
  lcc_ids_free(&prompt);
  lcc_seq_free(&seq);
  lcc_tok_scratch_free(ts);
  return rc;
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      printf("usage: livecc-eval [--config FILE] [--key=value ...]\n");
      lcc_opts_usage(table, n_table, stdout);
      return 0;
    }
  eval_opts o;
  if (lcc_opts_parse_argv(&o, table, n_table, argc, argv)) {
    fprintf(stderr, "livecc-eval: error: %s\n", lcc_last_error());
    return 2;
  }
  av_log_set_level(AV_LOG_FATAL);   // the video reader reports failures itself, once
  lcc_config cfg;
  lcc_backend *be = lcc_open_backend(o.backend, o.threads);
  if (!be) {
    fprintf(stderr, "livecc-eval: error: %s\n", lcc_last_error());
    return 2;
  }
  lcc_model m = {0};
  lcc_tokenizer *tk = NULL;
  char weights[4200];
  int rc = lcc_resolve_weights(o.init, weights, sizeof weights) || lcc_config_load(&cfg, o.model) ||
           lcc_model_create(&m, &cfg, be, "") || lcc_model_load_hf(&m, weights);
  if (!rc && o.tokenizer[0] && !(tk = lcc_tokenizer_load(o.tokenizer))) rc = -1;
  m.pos_mode = strcmp(o.positions, "1d") == 0 ? LCC_POS_1D : LCC_POS_MROPE;
  if (!rc) rc = o.mcq[0] ? run_mcq(&m, tk, &o) : run_heldout(&m, tk, &o, weights);
  if (rc) fprintf(stderr, "livecc-eval: error: %s\n", lcc_last_error());
  if (tk) lcc_tokenizer_free(tk);
  if (m.params) lcc_model_destroy(&m);
  be->destroy(be);
  return rc ? 1 : 0;
}
