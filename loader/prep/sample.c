#include <stdlib.h>
#include <string.h>

#include "sample.h"
#include "util.h"

const char *const lcc_skip_keys[LCC_SKIP_COUNT] = {
    "written", "malformed_json", "invalid_sample", "missing_media", "zero_length_media", "corrupt_media",
    "truncated_media", "no_frames_in_window", "too_few_frames", "empty_text_stream", "all_turns_silent", "too_long"};
const char *const lcc_skip_labels[LCC_SKIP_COUNT] = {
    "written", "malformed JSON", "invalid sample", "missing video/image", "zero-length video/image",
    "corrupt video/image", "video file cut short", "no frames in the clip window", "fewer frames than the first chunk",
    "empty text_stream", "all turns silent", "too long"};

static const char *str_of(const lcc_json *v, size_t *len) {
  if (!v || v->type != LCC_JSON_STRING) return NULL;
  *len = v->str_len;
  return v->str;
}

// An optional string member: NULL when absent, "" when null (LiveCC tests the key's presence).
static int opt_string(const lcc_json *obj, const char *key, const char **s, size_t *len, const char *what, int m, int e) {
  const lcc_json *v = lcc_json_get(obj, key);
  *s = NULL, *len = 0;
  if (!v) return 0;
  if (v->type == LCC_JSON_NULL) {
    *s = "";
    return 0;
  }
  if (!(*s = str_of(v, len))) return lcc_error("%s: message %d, content element %d: '%s' must be a string", what, m, e, key);
  return 0;
}

static int opt_number(const lcc_json *obj, const char *key, double absent, double *out, const char *what, int m, int e) {
  const lcc_json *v = lcc_json_get(obj, key);
  *out = absent;
  if (!v || v->type == LCC_JSON_NULL) return 0;
  if (v->type != LCC_JSON_NUMBER) return lcc_error("%s: message %d, content element %d: '%s' must be a number", what, m, e, key);
  *out = v->number;
  return 0;
}

// One content element of message m (0-based in errors as in the file's array order).
static int parse_elem(const lcc_json *el, int role, lcc_elem *out, const char *what, int m, int e) {
  memset(out, 0, sizeof *out);
  if (el->type != LCC_JSON_OBJECT) return lcc_error("%s: message %d, content element %d is not an object", what, m, e);
  size_t tlen;
  const char *type = str_of(lcc_json_get(el, "type"), &tlen);
  if (!type) return lcc_error("%s: message %d, content element %d has no string 'type'", what, m, e);
  const char *key = !strcmp(type, "text") ? "text" : !strcmp(type, "video") ? "video" : !strcmp(type, "image") ? "image" : NULL;
  if (!key) return lcc_error("%s: message %d, content element %d: unsupported type '%s' (text, video or image)", what, m, e, type);
  if (!(out->text = str_of(lcc_json_get(el, key), &out->text_len)))
    return lcc_error("%s: message %d, content element %d: '%s' must be a string", what, m, e, key);
  if (!strcmp(key, "text")) {
    out->kind = LCC_ELEM_TEXT;
    if (opt_string(el, "title", &out->title, &out->title_len, what, m, e)) return -1;
    return opt_string(el, "previous", &out->previous, &out->previous_len, what, m, e);
  }
  if (role != LCC_ROLE_USER) return lcc_error("%s: message %d: %s elements are only allowed in user messages", what, m, key);
  if (!strcmp(key, "image")) {
    out->kind = LCC_ELEM_IMAGE;
    return 0;
  }
  out->kind = LCC_ELEM_VIDEO;
  if (opt_number(el, "video_start", 0.0, &out->start, what, m, e) ||
      opt_number(el, "video_end", -1.0, &out->end, what, m, e))
    return -1;
  if (out->start < 0 || (out->end >= 0 && out->start > out->end))   // end < 0 (absent): to the end of the video
    return lcc_error("%s: message %d, content element %d: invalid window: video_start %g > video_end %g", what, m, e,
                     out->start, out->end);
  return 0;
}

static int parse_words(lcc_conv *c, const lcc_json *stream, const char *what) {
  if (stream->type != LCC_JSON_ARRAY) return lcc_error("%s: text_stream must be an array", what);
  c->words = lcc_calloc(stream->count + 1, sizeof(lcc_word));
  int k = 0;
  for (const lcc_json *w = stream->child; w; w = w->next, k++) {
    if (w->type != LCC_JSON_ARRAY) {   // e.g. the "..." that ends the dataset card's shortened example
      c->n_ignored++;
      continue;
    }
    const lcc_json *s = w->child, *e = s ? s->next : NULL, *t = e ? e->next : NULL;
    if (w->count != 3 || s->type != LCC_JSON_NUMBER || e->type != LCC_JSON_NUMBER || t->type != LCC_JSON_STRING)
      return lcc_error("%s: text_stream element %d is not [start, end, word]", what, k);
    c->words[c->n_words++] = (lcc_word){s->number, e->number, t->str, t->str_len};
  }
  return 0;
}

static int role_of(const char *r) {
  if (!strcmp(r, "system")) return LCC_ROLE_SYSTEM;
  if (!strcmp(r, "user")) return LCC_ROLE_USER;
  if (!strcmp(r, "assistant")) return LCC_ROLE_ASSISTANT;
  return -1;
}

// The stream shape (LiveCC's preprocess_conversation_stream): user [video, optional text], assistant
// [text_stream].
static int check_stream(const lcc_conv *c, const char *what) {
  if (c->n_turns != 2 || c->turns[0].role != LCC_ROLE_USER || c->turns[1].role != LCC_ROLE_ASSISTANT)
    return lcc_error("%s: a streaming sample must be [user, assistant] messages", what);
  const lcc_turn *u = &c->turns[0];
  if (u->n < 1 || u->n > 2 || c->elems[u->first].kind != LCC_ELEM_VIDEO ||
      (u->n == 2 && c->elems[u->first + 1].kind != LCC_ELEM_TEXT))
    return lcc_error("%s: a streaming sample's user content must be [video, text]", what);
  return 0;
}

static int parse_messages(lcc_conv *c, const lcc_json *root, const char *what) {
  if (root->type != LCC_JSON_ARRAY || root->count == 0)
    return lcc_error("%s: a sample must be a non-empty array of messages", what);
  size_t max_elems = 0;
  for (const lcc_json *msg = root->child; msg; msg = msg->next) {
    const lcc_json *content = msg->type == LCC_JSON_OBJECT ? lcc_json_get(msg, "content") : NULL;
    max_elems += content && content->type == LCC_JSON_ARRAY ? content->count : 1;
  }
  c->turns = lcc_calloc(root->count, sizeof(lcc_turn));
  c->elems = lcc_calloc(max_elems, sizeof(lcc_elem));
  int m = 0, has_assistant = 0;
  for (const lcc_json *msg = root->child; msg; msg = msg->next, m++) {
    if (msg->type != LCC_JSON_OBJECT) return lcc_error("%s: message %d is not an object", what, m);
    size_t rlen;
    const char *r = str_of(lcc_json_get(msg, "role"), &rlen);
    int role = r ? role_of(r) : -1;
    if (role < 0) return lcc_error("%s: message %d: 'role' must be system, user or assistant", what, m);
    lcc_turn *t = &c->turns[c->n_turns++];
    *t = (lcc_turn){role, c->n_elems, 0};
    has_assistant |= role == LCC_ROLE_ASSISTANT;
    const lcc_json *content = lcc_json_get(msg, "content");
    if (content && content->type == LCC_JSON_STRING) {   // a plain-string content is one text element
      c->elems[c->n_elems++] = (lcc_elem){.kind = LCC_ELEM_TEXT, .text = content->str, .text_len = content->str_len};
      t->n = 1;
      continue;
    }
    if (!content || content->type != LCC_JSON_ARRAY)
      return lcc_error("%s: message %d: 'content' must be an array or a string", what, m);
    const lcc_json *stream = role == LCC_ROLE_ASSISTANT && content->child ? lcc_json_get(content->child, "text_stream") : NULL;
    if (stream) {
      if (content->count != 1) return lcc_error("%s: message %d: a text_stream must be the assistant's only content", what, m);
      c->stream = 1;
      if (parse_words(c, stream, what)) return -1;
      continue;
    }
    int e = 0;
    for (const lcc_json *el = content->child; el; el = el->next, e++)
      if (parse_elem(el, role, &c->elems[c->n_elems++], what, m, e)) return -1;
    t->n = e;
  }
  if (c->stream) return check_stream(c, what);
  if (!has_assistant) return lcc_error("%s: no assistant message: nothing to train on", what);
  return 0;
}

int lcc_conv_parse(const char *text, size_t len, const char *what, lcc_conv *out, int *json_error) {
  memset(out, 0, sizeof *out);
  *json_error = 0;
  out->doc = lcc_json_parse(text, len, what);
  if (!out->doc) {
    *json_error = 1;
    return -1;
  }
  if (parse_messages(out, lcc_json_root(out->doc), what)) {
    lcc_conv_free(out);
    return -1;
  }
  return 0;
}

void lcc_conv_free(lcc_conv *c) {
  free(c->turns);
  free(c->elems);
  free(c->words);
  lcc_json_free(c->doc);
  memset(c, 0, sizeof *c);
}

int lcc_conv_word_outside(const lcc_conv *c, int i) {
  if (!c->stream) return 0;
  const lcc_elem *v = &c->elems[c->turns[0].first];
  double hi = v->end < 0 ? 1e300 : v->end;   // no video_end: to the end of the video
  return c->words[i].end < v->start || c->words[i].start > hi;
}

int lcc_conv_count_words_outside(const lcc_conv *c) {
  int n = 0;
  for (int i = 0; i < c->n_words; i++) n += lcc_conv_word_outside(c, i);
  return n;
}

int lcc_conv_drop_words_outside(lcc_conv *c) {
  int kept = 0, n = c->n_words;
  for (int i = 0; i < n; i++)
    if (!lcc_conv_word_outside(c, i)) c->words[kept++] = c->words[i];
  c->n_words = kept;
  return n - kept;
}
