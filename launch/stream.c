// The streaming commentary loop (LIVECC.md 8) over lcc_infer's KV-cached context.
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "ckpt_read.h"
#include "json.h"
#include "stream.h"
#include "util.h"

void lcc_stream_opts_default(lcc_stream_opts *o) {
  *o = (lcc_stream_opts){.fps = 2, .system_prompt = "You are a helpful assistant.", .max_new_tokens = 16,
                         .repetition_penalty = 1.15};
}

void lcc_stream_result_free(lcc_stream_result *r) {
  for (int k = 0; k < r->n; k++) free(r->chunks[k].ids), free(r->chunks[k].text);
  free(r->chunks);
  memset(r, 0, sizeof *r);
}

int lcc_streamer_init(lcc_streamer *s, lcc_model *m, const lcc_tokenizer *tk, const lcc_stream_opts *o) {
  memset(s, 0, sizeof *s);
  s->o = *o;
  s->m = m;
  s->tk = tk;
  if (o->max_new_tokens < 1) return lcc_error("max_new_tokens must be >= 1 (got %d)", o->max_new_tokens);
  if (!(o->repetition_penalty > 0)) return lcc_error("repetition_penalty must be > 0 (got %g)", o->repetition_penalty);
  lcc_interleave_opts io = {.fps = o->fps, .system_prompt = o->system_prompt, .patch = m->cfg.patch_size,
                            .merge = m->cfg.spatial_merge_size, .temporal = m->cfg.temporal_patch_size};
  if (lcc_interleaver_init(&s->first, tk, &io)) return -1;
  io.system_prompt = "";   // later chunks continue the conversation: no system turn
  if (lcc_interleaver_init(&s->later, tk, &io)) return -1;
  s->ellipsis = lcc_tokenizer_id(tk, "\xC4\xA0...");   // " ..." in byte-level form
  s->ts = lcc_tok_scratch_new();
  const int V = m->cfg.vocab_size;
  s->seen = lcc_calloc((size_t)V, 1);
  s->banned = lcc_calloc((size_t)V, 1);
  for (int v = 0; v < V; v++)
    s->banned[v] = v == m->cfg.image_token_id || v == m->cfg.video_token_id || !lcc_tokenizer_token(tk, v);
  return 0;
}

void lcc_streamer_free(lcc_streamer *s) {
  if (!s->m) return;
  lcc_infer_free(&s->ctx);
  lcc_seq_free(&s->seq);
  lcc_ids_free(&s->prompt);
  if (s->ts) lcc_tok_scratch_free(s->ts);
  free(s->items), free(s->pixels), free(s->seen), free(s->banned);
  memset(s, 0, sizeof *s);
}

int lcc_stream_prompt(lcc_streamer *s, int k, const lcc_frames *clip, int f0, int nf, double t0, double t1,
                      const char *query) {
  // The user turn through the chat template (the same rendering as training): a one-turn conversation of
  // the Time= text, the chunk's frames as one video, and on the first chunk the query.
  char time[64], what[96];
  int tn = snprintf(time, sizeof time, "Time=%.1f-%.1fs", t0, t1);
  snprintf(what, sizeof what, "chunk %d (%s)", k, time);
  lcc_elem el[3] = {{.kind = LCC_ELEM_TEXT, .text = time, .text_len = (size_t)tn},
                    {.kind = LCC_ELEM_VIDEO, .text = "", .end = -1},
                    {.kind = LCC_ELEM_TEXT, .text = query, .text_len = query ? strlen(query) : 0}};
  lcc_turn user = {LCC_ROLE_USER, 0, k == 0 && query && *query ? 3 : 2};
  lcc_conv conv = {.n_turns = 1, .turns = &user, .n_elems = user.n, .elems = el};
  const size_t frame = (size_t)clip->h * clip->w * 3;
  lcc_frames chunk = {.T = nf, .h = clip->h, .w = clip->w, .rgb = clip->rgb + f0 * frame, .pts = clip->pts + f0};
  const lcc_interleaver *it = k == 0 ? &s->first : &s->later;
  if (lcc_interleave_qa(it, s->ts, &conv, &chunk, what, &s->seq)) return -1;
  // "<|im_end|>\n" closes the previous answer, whose last token is not in the context; then the user turn
  // and the generation prompt "<|im_start|>assistant\n".
  s->prompt.n = 0;
  if (k > 0) lcc_ids_push(&s->prompt, it->im_end), lcc_ids_push(&s->prompt, it->newline);
  s->prompt_pad = s->prompt.n + s->seq.items[0].first_pad;
  for (int i = 0; i < s->seq.ids.n; i++) lcc_ids_push(&s->prompt, s->seq.ids.ids[i]);
  lcc_ids_push(&s->prompt, it->im_start);
  lcc_ids_push(&s->prompt, it->assistant);
  lcc_ids_push(&s->prompt, it->newline);
  const lcc_seq_item *q = &s->seq.items[0];
  s->prompt_item = (lcc_vision_item){LCC_VIDEO, q->t, q->h, q->w};
  return 0;
}

// ---- the context's vision items: eviction and the pixels the no-cache baseline runs again ----

static void add_item(lcc_streamer *s, int first_pad, double t1, const float *rows, size_t n_rows) {
  if (s->n_items == s->cap_items) {
    s->cap_items = s->cap_items ? 2 * s->cap_items : 64;
    s->items = lcc_realloc(s->items, (size_t)s->cap_items * sizeof *s->items);
  }
  const lcc_vision_item *it = &s->prompt_item;
  s->items[s->n_items++] = (lcc_stream_item){*it, first_pad, it->t * it->h * it->w / lcc_merge_units(&s->m->cfg), t1};
  if (!s->o.no_cache) return;   // only the baseline needs the pixels again
  const size_t P = (size_t)lcc_patch_dim(&s->m->cfg);
  if (s->kept_rows + n_rows > s->cap_rows) {
    s->cap_rows = 2 * (s->kept_rows + n_rows);
    s->pixels = lcc_realloc(s->pixels, s->cap_rows * P * sizeof(float));
  }
  memcpy(s->pixels + s->kept_rows * P, rows, n_rows * P * sizeof(float));
  s->kept_rows += n_rows;
}

// Removes the visual tokens of every chunk that ended evict_after seconds or more before `now` (the oldest
// first; text tokens stay, and every token keeps its position). Returns the tokens removed.
static int evict_old(lcc_streamer *s, double now) {
  if (s->o.evict_after <= 0) return 0;
  const size_t P = (size_t)lcc_patch_dim(&s->m->cfg);
  int gone = 0, items = 0;
  size_t rows = 0;
  while (items < s->n_items && now - s->items[items].t1 >= s->o.evict_after) {
    const lcc_stream_item *it = &s->items[items];
    lcc_infer_evict(&s->ctx, it->first_pad - gone, it->first_pad - gone + it->n_pads);
    gone += it->n_pads;
    rows += (size_t)it->item.t * it->item.h * it->item.w;
    items++;
  }
  if (!items) return 0;
  s->n_items -= items;
  memmove(s->items, s->items + items, (size_t)s->n_items * sizeof *s->items);
  for (int i = 0; i < s->n_items; i++) s->items[i].first_pad -= gone;
  if (s->o.no_cache) {
    s->kept_rows -= rows;
    memmove(s->pixels, s->pixels + rows * P, s->kept_rows * P * sizeof(float));
  }
  return gone;
}

// ---- one chunk ----

// HF RepetitionPenaltyLogitsProcessor, then greedy: every id present in the context has its logit divided
// by the penalty when positive, multiplied when negative. The first maximum wins (as argmax).
static int32_t pick(const lcc_streamer *s, const float *logits, int V) {
  const double p = s->o.repetition_penalty;
  int32_t best = -1;
  float best_v = 0;
  for (int v = 0; v < V; v++) {
    if (s->banned[v]) continue;
    float x = logits[v];
    if (s->seen[v] && p != 1) x = x > 0 ? (float)(x / p) : (float)(x * p);
    if (best < 0 || x > best_v) best = v, best_v = x;
  }
  return best;
}

// Runs the prompt in s->prompt: with the cache, only its tokens; without, the whole context again.
static int prefill(lcc_streamer *s, const float *rows, int n_rows, int *ran) {
  lcc_infer *c = &s->ctx;
  if (!s->o.no_cache) {
    *ran = s->prompt.n;
    return lcc_infer_append(c, s->prompt.ids, s->prompt.n, &s->prompt_item, 1, rows, n_rows);
  }
  const int n = c->n + s->prompt.n;
  int32_t *all = lcc_malloc((size_t)n * sizeof(int32_t));   // [n] the context, then the prompt
  lcc_vision_item *items = lcc_malloc((size_t)s->n_items * sizeof *items);
  memcpy(all, c->ids, (size_t)c->n * sizeof(int32_t));
  memcpy(all + c->n, s->prompt.ids, (size_t)s->prompt.n * sizeof(int32_t));
  for (int i = 0; i < s->n_items; i++) items[i] = s->items[i].item;
  lcc_infer_truncate(c, 0);
  *ran = n;
  int rc = lcc_infer_append(c, all, n, items, s->n_items, s->pixels, (int)s->kept_rows);
  free(all), free(items);
  return rc;
}

static int decode_text(const lcc_streamer *s, lcc_stream_chunk *ch) {
  int n = ch->n_ids - (ch->n_ids > 0 && ch->ids[ch->n_ids - 1] == s->first.im_end);
  size_t cap = 1;   // a token's byte-level string is at least as long as the bytes it decodes to
  for (int i = 0; i < n; i++) {
    const char *t = lcc_tokenizer_token(s->tk, ch->ids[i]);
    LCC_CHECK(t, "generated token id %d is not in the tokenizer (banned ids are never picked)", ch->ids[i]);
    cap += strlen(t);
  }
  ch->text = lcc_malloc(cap);
  return lcc_tokenizer_decode(s->tk, ch->ids, n, 1, ch->text, cap) < 0 ? -1 : 0;
}

static int run_chunk(lcc_streamer *s, const lcc_frames *clip, int f0, int nf, const char *query, lcc_stream_chunk *ch) {
  lcc_infer *c = &s->ctx;
  const lcc_config *cfg = &s->m->cfg;
  const double t_start = lcc_now();
  ch->evicted_tokens = evict_old(s, ch->t1);
  if (lcc_stream_prompt(s, ch->index, clip, f0, nf, ch->t0, ch->t1, query)) return -1;
  const lcc_vision_item *it = &s->prompt_item;
  const int n_rows = it->t * it->h * it->w;
  float *rows = lcc_malloc((size_t)n_rows * lcc_patch_dim(cfg) * sizeof(float));   // [n_rows, 1176]
  lcc_patchify(clip->rgb + (size_t)f0 * clip->h * clip->w * 3, nf, clip->h, clip->w, cfg->patch_size,
               cfg->spatial_merge_size, cfg->temporal_patch_size, lcc_clip_mean, lcc_clip_std, rows);
  add_item(s, c->n + s->prompt_pad, ch->t1, rows, (size_t)n_rows);
  ch->prompt_tokens = s->prompt.n;
  int rc = prefill(s, rows, n_rows, &ch->prefill_tokens);
  free(rows);
  if (rc) return -1;
  const double t_gen = lcc_now();
  ch->prefill_s = t_gen - t_start;
  // Generation. The last token is never appended: HF generate does not run it, so it is not cached, and
  // the next chunk's "<|im_end|>\n" takes its place.
  const int V = cfg->vocab_size;
  memset(s->seen, 0, (size_t)V);
  for (int i = 0; i < c->n; i++) s->seen[c->ids[i]] = 1;
  ch->ids = lcc_malloc((size_t)s->o.max_new_tokens * sizeof(int32_t));
  for (int g = 0; g < s->o.max_new_tokens; g++) {
    int32_t tok = pick(s, c->logits, V);
    ch->ids[ch->n_ids++] = tok;
    if (tok == s->first.im_end || g + 1 == s->o.max_new_tokens) break;
    s->seen[tok] = 1;
    if (lcc_infer_append(c, &tok, 1, NULL, 0, NULL, 0)) return -1;
  }
  const double t_end = lcc_now();
  ch->decode_s = t_end - t_gen;
  ch->latency_s = t_end - t_start;
  ch->context_tokens = c->n;
  return decode_text(s, ch);
}

// Sleeps until `seconds` after `wall0` (monotonic clock).
static void wait_until(double wall0, double seconds) {
  for (double left; (left = wall0 + seconds - lcc_now()) > 0;) {
    struct timespec ts = {(time_t)left, (long)((left - (time_t)left) * 1e9)};
    nanosleep(&ts, NULL);
  }
}

// Frames [*f0, *f0 + *nf) of chunk k: the first 3 s, then 1 s each.
static void chunk_frames(const lcc_streamer *s, int k, int *f0, int *nf) {
  const int first = 3 * (int)s->o.fps, step = (int)s->o.fps;
  *f0 = k ? first + (k - 1) * step : 0;
  *nf = k ? step : first;
}

// Tokens the context must hold at its fullest: every prompt and up to max_new_tokens answer tokens per chunk,
// less the visual tokens evicted by then.
static long context_capacity(lcc_streamer *s, const lcc_frames *clip, const char *query, int chunks) {
  double *t1 = lcc_malloc((size_t)chunks * sizeof(double));   // [chunks] end of each chunk, seconds
  int *pads = lcc_malloc((size_t)chunks * sizeof(int));       // [chunks] its visual tokens
  long need = 0, cap = 0;
  for (int k = 0, gone = 0; k < chunks && cap >= 0; k++) {
    int f0, nf;
    chunk_frames(s, k, &f0, &nf);
    t1[k] = (f0 + nf) / s->o.fps;
    while (s->o.evict_after > 0 && gone < k && t1[k] - t1[gone] >= s->o.evict_after) need -= pads[gone++];
    if (lcc_stream_prompt(s, k, clip, f0, nf, f0 / s->o.fps, t1[k], query)) cap = -1;
    else pads[k] = s->prompt_item.t * s->prompt_item.h * s->prompt_item.w / lcc_merge_units(&s->m->cfg);
    need += s->prompt.n + s->o.max_new_tokens;
    if (cap >= 0 && need > cap) cap = need;
  }
  free(t1), free(pads);
  return cap;
}

int lcc_stream_clip(lcc_streamer *s, const lcc_frames *clip, const char *query, lcc_stream_result *r) {
  memset(r, 0, sizeof *r);
  const int first = 3 * (int)s->o.fps, step = (int)s->o.fps;
  if (clip->T < first)
    return lcc_error("the window holds %d frames at %g fps; the first chunk needs %d (3 s)", clip->T, s->o.fps, first);
  const int chunks = 1 + (clip->T - first) / step;   // frames past the last whole second are not used
  const long cap = context_capacity(s, clip, query, chunks);
  if (cap < 0) return -1;
  if (cap > INT_MAX) return lcc_error("the window needs a context of %ld tokens; shorten it or set evict_after", cap);
  if (cap > s->ctx.cap) {
    lcc_infer_free(&s->ctx);
    if (lcc_infer_init(&s->ctx, s->m, (int)cap)) return -1;
  }
  lcc_infer_truncate(&s->ctx, 0);
  s->n_items = 0, s->kept_rows = 0;
  r->chunks = lcc_calloc((size_t)chunks, sizeof *r->chunks);
  const double wall0 = lcc_now();
  for (int k = 0; k < chunks; k++) {
    lcc_stream_chunk *ch = &r->chunks[k];
    int f0, nf;
    chunk_frames(s, k, &f0, &nf);
    *ch = (lcc_stream_chunk){.index = k, .t0 = f0 / s->o.fps, .t1 = (f0 + nf) / s->o.fps, .pts = clip->pts[f0 + nf - 1]};
    r->n = k + 1;
    if (s->o.realtime) wait_until(wall0, ch->t1);   // its last frame has just been shown
    if (run_chunk(s, clip, f0, nf, query, ch)) return -1;
    r->wall_s += ch->latency_s;
    if (s->o.on_chunk) s->o.on_chunk(s->o.ctx, ch);
  }
  return 0;
}

void lcc_stream_words(const char *text, char *out, size_t cap) {
  size_t a = 0, b = strlen(text);
  if (b >= 4 && !strcmp(text + b - 4, " ...")) b -= 4;
  else if (b == 3 && !strcmp(text, "...")) b = 0;
  while (a < b && (text[a] == ' ' || text[a] == '\n')) a++;
  while (b > a && (text[b - 1] == ' ' || text[b - 1] == '\n')) b--;
  snprintf(out, cap, "%.*s", (int)(b - a), text + a);
}

// Splits text at spaces into at most cap words (pointers into buf, a copy of text).
static int split_words(const char *text, char *buf, size_t buf_cap, char **words, int cap) {
  lcc_pathf(buf, buf_cap, "%s", text);
  int n = 0;
  char *save = NULL;
  for (char *w = strtok_r(buf, " ", &save); w && n < cap; w = strtok_r(NULL, " ", &save)) words[n++] = w;
  return n;
}

int lcc_stream_seconds_right(const char *said, const char *const ref[3]) {
  enum { MAXW = 96 };
  char gbuf[4096], rbuf[3][1024], *g[MAXW], *r[MAXW];
  int owner[MAXW], n_r = 0;
  const int n_g = split_words(said, gbuf, sizeof gbuf, g, MAXW);
  for (int sec = 0; sec < 3; sec++) {
    char *w[MAXW];
    int n = split_words(ref[sec] ? ref[sec] : "", rbuf[sec], sizeof rbuf[sec], w, MAXW);
    for (int i = 0; i < n && n_r < MAXW; i++) r[n_r] = w[i], owner[n_r++] = sec;
  }
  // cost[i][j]: edit distance of r[0..i) and g[0..j)
  static _Thread_local int cost[MAXW + 1][MAXW + 1];
  for (int i = 0; i <= n_r; i++)
    for (int j = 0; j <= n_g; j++) {
      if (!i || !j) { cost[i][j] = i + j; continue; }
      int best = cost[i - 1][j - 1] + (strcmp(r[i - 1], g[j - 1]) != 0);
      if (cost[i - 1][j] + 1 < best) best = cost[i - 1][j] + 1;
      if (cost[i][j - 1] + 1 < best) best = cost[i][j - 1] + 1;
      cost[i][j] = best;
    }
  int wrong[3] = {0, 0, 0};
  for (int i = n_r, j = n_g; i > 0 || j > 0;) {   // walk the alignment back, charging each mistake to a second
    if (i && j && cost[i][j] == cost[i - 1][j - 1] + (strcmp(r[i - 1], g[j - 1]) != 0)) {
      if (strcmp(r[i - 1], g[j - 1])) wrong[owner[i - 1]] = 1;
      i--, j--;
    } else if (i && cost[i][j] == cost[i - 1][j] + 1) {   // a transcript word not said
      wrong[owner[--i]] = 1;
    } else {   // a word said that the transcript lacks: it belongs to the second of the next transcript word
      wrong[i < n_r ? owner[i] : 2] = 1;
      j--;
    }
  }
  return !wrong[0] + !wrong[1] + !wrong[2];
}

int lcc_resolve_weights(const char *init, char *out, size_t cap) {
  if (!init || !*init) return lcc_error("no weights given (--init)");
  struct stat st;
  if (stat(init, &st)) return lcc_error("weights %s: %s", init, strerror(errno));
  return lcc_ckpt_resolve(init, out, cap) ? lcc_ckpt_verify(out) : 0;
}
