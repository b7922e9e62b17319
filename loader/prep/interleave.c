// Tokenization here concatenates the ids of the special tokens with the ids of the text between them. That
// equals tokenizing the whole rendered string (what LiveCC's processor does): the tokenizer splits its
// input at added tokens before normalizing and pre-tokenizing, so no merge ever crosses a special token.
// A turn's "<|im_end|>\n" is tokenized as <|im_end|> then "\n" at once, for the same reason.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interleave.h"
#include "model.h"
#include "util.h"

// ---- text helpers ----

static void str_put(lcc_str *s, const char *p, size_t n) {
  if (s->n + n + 1 > s->cap) {
    s->cap = 2 * (s->n + n + 1) + 64;
    s->s = lcc_realloc(s->s, s->cap);
  }
  memcpy(s->s + s->n, p, n);
  s->n += n;
  s->s[s->n] = 0;
}

// Bytes of the character at s[0..n) when Python's str.isspace() holds for it, else 0.
static size_t py_space_at(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  if ((c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20)) return 1;
  if (c >= 0xC2 && c <= 0xDF && n >= 2) {
    unsigned cp = (c & 0x1F) << 6 | (s[1] & 0x3F);
    return cp == 0x85 || cp == 0xA0 ? 2 : 0;
  }
  if (c >= 0xE0 && c <= 0xEF && n >= 3) {
    unsigned cp = (c & 0x0F) << 12 | (s[1] & 0x3F) << 6 | (s[2] & 0x3F);
    int sp = cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
             cp == 0x205F || cp == 0x3000;
    return sp ? 3 : 0;
  }
  return 0;
}

// Python's str.strip(): the range [*a, *b) of s[0..n) without leading and trailing whitespace.
static void py_strip(const char *s, size_t n, size_t *a, size_t *b) {
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0, j = n, k;
  while (i < n && (k = py_space_at(u + i, n - i)) > 0) i += k;
  while (j > i) {
    size_t st = j - 1;   // start of the last character
    while (st > i && (u[st] & 0xC0) == 0x80) st--;
    if (py_space_at(u + st, j - st) != j - st) break;
    j = st;
  }
  *a = i, *b = j;
}

// ---- word bucketing ----

// Appends ' ' + word.strip(), as LiveCC builds a phrase.
static void phrase_add(lcc_str *phrase, const lcc_word *w) {
  size_t a, b;
  py_strip(w->word, w->len, &a, &b);
  str_put(phrase, " ", 1);
  str_put(phrase, w->word + a, b - a);
}

static void phrase_strip(lcc_str *phrase) {
  size_t a, b;
  py_strip(phrase->s, phrase->n, &a, &b);
  memmove(phrase->s, phrase->s + a, b - a);
  phrase->n = b - a;
  phrase->s[phrase->n] = 0;
}

int lcc_bucket_words(const lcc_word *w, int n, double t, int *cursor, int fix_last_word, lcc_str *phrase) {
  phrase->n = 0;
  str_put(phrase, "", 0);
  int i = *cursor, last = *cursor, taken = 0;
  for (; i < n; i++) {
    last = i;
    if (!(t >= w[i].end)) break;
    phrase_add(phrase, &w[i]);
    taken++;
  }
  phrase_strip(phrase);
  *cursor = fix_last_word && i == n ? n : last;
  return taken;
}

// After a bucketing at time t left the cursor at `cursor`: the first word no call took. That is the word
// the cursor stopped at, or n when every word was taken (LiveCC's cursor then rests on the last word,
// which was taken).
static int first_untaken(const lcc_word *w, int n, double t, int cursor) {
  return cursor < n && !(t >= w[cursor].end) ? cursor : n;
}

// Chunk k's answer words into *phrase, bucketed at t = the pts of its last frame. The last chunk also finds
// the words inside the clip window that no chunk reaches (from the first that ends after t on): LiveCC
// loses them; keep_last_words appends them. Returns how many there are (0 for the other chunks).
static int chunk_words(const lcc_interleaver *it, const lcc_conv *c, double t, int last, int *cursor, lcc_str *phrase) {
  lcc_bucket_words(c->words, c->n_words, t, cursor, it->o.fix_last_word, phrase);
  if (!last) return 0;
  int after = 0;
  for (int i = first_untaken(c->words, c->n_words, t, *cursor); i < c->n_words; i++) {
    if (lcc_conv_word_outside(c, i)) continue;   // counted and governed as words outside the window
    after++;
    if (it->o.keep_last_words) phrase_add(phrase, &c->words[i]);
  }
  if (it->o.keep_last_words) phrase_strip(phrase);
  return after;
}

// LIVECC.md 3.6 (preprocess_text): with context and a title or previous key, text + "\n" + title + "\n" +
// previous, stripped, where the title is dropped when previous ASR exists; otherwise the text itself.
static void context_text(const lcc_interleaver *it, const lcc_elem *e, lcc_str *out) {
  out->n = 0;
  str_put(out, "", 0);
  if (!it->o.with_context || (!e->title && !e->previous)) {
    str_put(out, e->text, e->text_len);
    return;
  }
  int has_prev = e->previous && e->previous_len > 0;
  str_put(out, e->text, e->text_len);
  str_put(out, "\n", 1);
  if (!has_prev && e->title) str_put(out, e->title, e->title_len);
  str_put(out, "\n", 1);
  if (has_prev) str_put(out, e->previous, e->previous_len);
  size_t a, b;
  py_strip(out->s, out->n, &a, &b);
  memmove(out->s, out->s + a, b - a);
  out->n = b - a;
  out->s[out->n] = 0;
}

// ---- rendering: the chat template, turn by turn ----

typedef struct {
  const lcc_interleaver *it;
  lcc_tok_scratch *ts;
  lcc_seq *q;
  const char *what;
} render;

static int flush(render *r) {
  lcc_seq *q = r->q;
  if (q->piece.n == 0) return 0;
  if (lcc_tokenizer_encode(r->it->tk, r->ts, q->piece.s, q->piece.n, &q->ids)) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", lcc_last_error());
    return lcc_error("%s: %s", r->what, msg);
  }
  q->piece.n = 0;
  return 0;
}

static int special(render *r, int32_t id) {
  if (flush(r)) return -1;
  lcc_ids_push(&r->q->ids, id);
  return 0;
}

static void text(render *r, const char *s, size_t n) { str_put(&r->q->piece, s, n); }

static int begin_turn(render *r, const char *role) {
  if (special(r, r->it->im_start)) return -1;
  text(r, role, strlen(role));
  text(r, "\n", 1);
  return 0;
}

// Closes a turn with "<|im_end|>\n"; after an assistant turn, records a boundary where a cut may fall.
static int end_turn(render *r, int assistant, int silent) {
  lcc_seq *q = r->q;
  if (special(r, r->it->im_end)) return -1;
  text(r, "\n", 1);
  if (flush(r)) return -1;
  if (!assistant) return 0;
  if (q->n_bounds == q->cap_bounds) {
    q->cap_bounds = q->cap_bounds ? 2 * q->cap_bounds : 64;
    q->bounds = lcc_realloc(q->bounds, (size_t)q->cap_bounds * sizeof *q->bounds);
  }
  q->bounds[q->n_bounds++] = (struct lcc_bound){q->ids.n, q->n_items, silent};
  return 0;
}

// <|vision_start|>, grid_t*(h/14)*(w/14)/4 pad tokens, <|vision_end|>; records the item.
static int vision(render *r, int kind, int t, int h, int w, int src, int frame0, int n_frames) {
  lcc_seq *q = r->q;
  if (special(r, r->it->vision_start)) return -1;
  if (q->n_items == q->cap_items) {
    q->cap_items = q->cap_items ? 2 * q->cap_items : 64;
    q->items = lcc_realloc(q->items, (size_t)q->cap_items * sizeof(lcc_seq_item));
  }
  q->items[q->n_items++] = (lcc_seq_item){kind, t, h, w, q->ids.n, src, frame0, n_frames};
  int32_t pad = kind == LCC_VIDEO ? r->it->video_pad : r->it->image_pad;
  for (int k = 0; k < t * h * w / (r->it->o.merge * r->it->o.merge); k++) lcc_ids_push(&q->ids, pad);
  lcc_ids_push(&q->ids, r->it->vision_end);
  return 0;
}

static int system_turn(render *r, const lcc_conv *c) {
  const char *prompt = r->it->o.system_prompt;
  if (!prompt || !*prompt || c->turns[0].role == LCC_ROLE_SYSTEM) return 0;
  if (begin_turn(r, "system")) return -1;
  text(r, prompt, strlen(prompt));
  return end_turn(r, 0, 0);
}

static void reset(lcc_seq *q) {
  q->ids.n = 0;
  q->n_items = q->n_bounds = q->pairs = q->pairs_cut = q->words_after_last_frame = 0;
  q->piece.n = 0;
}

// LIVECC.md 3.7: the k-th <|im_start|> pairs with the k-th <|im_end|> (Python's zip); when the token after
// the start is "assistant", positions start+3 .. end are trained.
static void make_mask(const lcc_interleaver *it, lcc_seq *q) {
  int n = q->ids.n;
  const int32_t *ids = q->ids.ids;
  if (q->mask_cap < n) {
    q->mask_cap = n;
    q->mask = lcc_realloc(q->mask, (size_t)n);
  }
  memset(q->mask, 0, (size_t)n);
  for (int s = 0, e = 0;; s++, e++) {
    while (s < n && ids[s] != it->im_start) s++;
    while (e < n && ids[e] != it->im_end) e++;
    if (s >= n || e >= n) break;
    if (s + 1 < n && ids[s + 1] == it->assistant)
      for (int k = s + 3; k <= e; k++) q->mask[k] = 1;
  }
}

// max_seq_len: skip, or keep the longest prefix that ends after an assistant turn (for streaming samples,
// a non-silent one: a sample never ends with a silent second).
static int fit(const lcc_interleaver *it, lcc_seq *q, int stream, const char *what) {
  int max = it->o.max_seq_len;
  if (max <= 0 || q->ids.n <= max) return 0;
  if (it->o.overlong_skip) {
    lcc_error("%s: %d tokens, over max_seq_len %d (overlong = skip)", what, q->ids.n, max);
    return LCC_SKIP_TOO_LONG;
  }
  int k = q->n_bounds - 1;
  while (k >= 0 && (q->bounds[k].tokens > max || (stream && q->bounds[k].silent))) k--;
  if (k < 0) {
    lcc_error("%s: %d tokens, over max_seq_len %d, and no turn boundary fits (the first assistant turn ends at %d)",
              what, q->ids.n, max, q->n_bounds ? q->bounds[0].tokens : q->ids.n);
    return LCC_SKIP_TOO_LONG;
  }
  q->pairs_cut = q->n_bounds - (k + 1);
  q->pairs = k + 1;
  q->ids.n = q->bounds[k].tokens;
  q->n_items = q->bounds[k].items;
  return 0;
}

// ---- the two sample kinds ----

int lcc_interleave_stream(const lcc_interleaver *it, lcc_tok_scratch *ts, const lcc_conv *c, const lcc_frames *clip,
                          const char *what, lcc_seq *q) {
  reset(q);
  int first = 3 * (int)it->o.fps, step = (int)it->o.fps;   // frames of the first chunk (3 s) and of the others (1 s)
  if (clip->T < first) {
    lcc_error("%s: %d frames in the clip window; the first chunk needs %d (3 s at %g fps)", what, clip->T, first, it->o.fps);
    return LCC_SKIP_FEW_FRAMES;
  }
  const int P = it->o.patch, factor = it->o.patch * it->o.merge, Tp = it->o.temporal;
  LCC_CHECK(clip->h % factor == 0 && clip->w % factor == 0, "frames of %dx%d are not multiples of %d", clip->w, clip->h, factor);
  int chunks = 1 + (clip->T - first) / step;   // frames past the last whole chunk are not used
  // Pass 1: the last chunk with words; the silent chunks after it are dropped.
  int kept = 0, cursor = 0;
  for (int k = 0; k < chunks; k++) {
    int after = chunk_words(it, c, clip->pts[first + k * step - 1], k == chunks - 1, &cursor, &q->phrase);
    if (k == chunks - 1) q->words_after_last_frame = after;
    if (q->phrase.n > 0) kept = k + 1;
  }
  if (kept == 0) {
    lcc_error("%s: no word ends inside the clip's %d frames: every turn is silent", what, clip->T);
    return LCC_SKIP_ALL_SILENT;
  }
  // Pass 2: render the kept chunks.
  render r = {it, ts, q, what};
  const lcc_turn *u = &c->turns[0];
  const lcc_elem *query = u->n == 2 ? &c->elems[u->first + 1] : NULL;
  int gh = clip->h / P, gw = clip->w / P;
  if (system_turn(&r, c)) return LCC_SKIP_INVALID;
  cursor = 0;
  for (int k = 0; k < kept; k++) {
    int f0 = k == 0 ? 0 : first + (k - 1) * step, nf = k == 0 ? first : step;
    chunk_words(it, c, clip->pts[f0 + nf - 1], k == chunks - 1, &cursor, &q->phrase);
    char time[64];
    int tn = snprintf(time, sizeof time, "Time=%.1f-%.1fs", f0 / it->o.fps, (f0 + nf) / it->o.fps);
    if (begin_turn(&r, "user")) return LCC_SKIP_INVALID;
    text(&r, time, (size_t)tn);
    if (vision(&r, LCC_VIDEO, nf / Tp, gh, gw, 0, f0, nf)) return LCC_SKIP_INVALID;
    if (k == 0 && query) {
      context_text(it, query, &q->word);
      text(&r, q->word.s, q->word.n);
    }
    if (end_turn(&r, 0, 0) || begin_turn(&r, "assistant")) return LCC_SKIP_INVALID;
    text(&r, q->phrase.s, q->phrase.n);
    text(&r, " ...", 4);   // " ..." marks that the stream goes on
    if (end_turn(&r, 1, q->phrase.n == 0)) return LCC_SKIP_INVALID;
  }
  q->pairs = kept;
  int rc = fit(it, q, 1, what);
  if (rc) return rc;
  make_mask(it, q);
  return 0;
}

static const char *role_name(int role) {
  return role == LCC_ROLE_SYSTEM ? "system" : role == LCC_ROLE_USER ? "user" : "assistant";
}

int lcc_interleave_qa(const lcc_interleaver *it, lcc_tok_scratch *ts, const lcc_conv *c, const lcc_frames *pics,
                      const char *what, lcc_seq *q) {
  reset(q);
  render r = {it, ts, q, what};
  if (system_turn(&r, c)) return LCC_SKIP_INVALID;
  int pic = 0;
  for (int m = 0; m < c->n_turns; m++) {
    const lcc_turn *t = &c->turns[m];
    if (begin_turn(&r, role_name(t->role))) return LCC_SKIP_INVALID;
    for (int k = 0; k < t->n; k++) {
      const lcc_elem *e = &c->elems[t->first + k];
      if (e->kind == LCC_ELEM_TEXT) {
        if (t->role == LCC_ROLE_USER) {   // LiveCC runs preprocess_text on user text only
          context_text(it, e, &q->word);
          text(&r, q->word.s, q->word.n);
        } else {
          text(&r, e->text, e->text_len);
        }
        continue;
      }
      const lcc_frames *f = &pics[pic];
      const int P = it->o.patch, factor = it->o.patch * it->o.merge, Tp = it->o.temporal;
      LCC_CHECK(f->h % factor == 0 && f->w % factor == 0, "frames of %dx%d are not multiples of %d", f->w, f->h, factor);
      int video = e->kind == LCC_ELEM_VIDEO;
      LCC_CHECK(!video || (f->T > 0 && f->T % Tp == 0), "a video of %d frames", f->T);
      if (vision(&r, video ? LCC_VIDEO : LCC_IMAGE, video ? f->T / Tp : 1, f->h / P, f->w / P, pic, 0, video ? f->T : 1))
        return LCC_SKIP_INVALID;
      pic++;
    }
    if (end_turn(&r, t->role == LCC_ROLE_ASSISTANT, 0)) return LCC_SKIP_INVALID;
  }
  q->pairs = q->n_bounds;
  int rc = fit(it, q, 0, what);
  if (rc) return rc;
  make_mask(it, q);
  return 0;
}

int lcc_interleaver_init(lcc_interleaver *it, const lcc_tokenizer *tk, const lcc_interleave_opts *o) {
  memset(it, 0, sizeof *it);
  it->o = *o;
  it->tk = tk;
  if (!it->o.patch) it->o.patch = LCC_QWEN2VL_PATCH, it->o.merge = LCC_QWEN2VL_MERGE, it->o.temporal = LCC_QWEN2VL_TEMPORAL;
  if (it->o.patch < 1 || it->o.merge < 1 || it->o.temporal < 1)
    return lcc_error("vision geometry %d/%d/%d: patch, merge and temporal sizes must be >= 1", it->o.patch, it->o.merge,
                     it->o.temporal);
  if (!(o->fps >= it->o.temporal && o->fps == floor(o->fps) && (int)o->fps % it->o.temporal == 0))
    return lcc_error("fps %g: streaming chunks hold whole temporal patches, so fps must be a whole multiple of %d", o->fps,
                     it->o.temporal);
  struct { const char *name; int32_t *id; } sp[] = {
      {"<|im_start|>", &it->im_start}, {"<|im_end|>", &it->im_end}, {"<|vision_start|>", &it->vision_start},
      {"<|vision_end|>", &it->vision_end}, {"<|image_pad|>", &it->image_pad}, {"<|video_pad|>", &it->video_pad}};
  for (size_t i = 0; i < sizeof sp / sizeof sp[0]; i++)
    if ((*sp[i].id = lcc_tokenizer_id(tk, sp[i].name)) < 0) return lcc_error("the tokenizer has no %s token", sp[i].name);
  // As LiveCC: im_start, assistant, newline, im_end = tokenizer('<|im_start|>assistant\n<|im_end|>').
  const char *probe = "<|im_start|>assistant\n<|im_end|>";
  lcc_tok_scratch *ts = lcc_tok_scratch_new();
  lcc_ids ids = {0};
  int rc = lcc_tokenizer_encode(tk, ts, probe, strlen(probe), &ids);
  if (!rc && (ids.n != 4 || ids.ids[0] != it->im_start || ids.ids[3] != it->im_end))
    rc = lcc_error("the tokenizer gives %d tokens for \"<|im_start|>assistant\\n<|im_end|>\"; LiveCC's label rule "
                   "needs 4 ('assistant' and '\\n' one token each)", ids.n);
  if (!rc) it->assistant = ids.ids[1], it->newline = ids.ids[2];
  lcc_ids_free(&ids);
  lcc_tok_scratch_free(ts);
  return rc;
}

void lcc_seq_free(lcc_seq *s) {
  lcc_ids_free(&s->ids);
  free(s->mask);
  free(s->items);
  free(s->piece.s);
  free(s->phrase.s);
  free(s->word.s);
  free(s->bounds);
  memset(s, 0, sizeof *s);
}
