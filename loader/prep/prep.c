#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "group.h"
#include "jsonl.h"
#include "model.h"
#include "prep.h"
#include "progress.h"
#include "shard.h"
#include "util.h"

#define MSG_BURST 100       // skip/warning messages printed in full before rate limiting
#define PROGRESS_EVERY 2.0  // seconds between progress lines (default)

// ---- the job: shared by the workers ----

typedef struct {
  const lcc_prep_opts *o;
  lcc_jsonl jl;
  lcc_tokenizer *tk;
  lcc_interleaver il;
  lcc_shard_meta meta;
  int n_shards;
  char *todo;                 // [n_shards] 1: to be written by this rank in this run
  int unfinished;             // shards not finished when the run began (every rank's)
  double index_seconds;       // opening the inputs (their seek index or a scan)
  pthread_mutex_t mu;         // guards everything below
  pthread_cond_t wake;        // a worker finished (or failed)
  pthread_cond_t memory;      // a sample finished: resident memory may have dropped (max_rss_mb)
  int next;                   // next shard index to consider
  int running;                // workers still running
  int failed;                 // a worker met an error that stops the job
  char error[1024];
  int64_t done, todo_samples; // samples processed by this run / to process (this rank)
  int busy;                   // workers in the middle of a sample
  int64_t rss_waits;          // samples that waited for memory
  int said_rss;               // the max_rss message was printed
  lcc_progress prog;
  int msgs;                   // messages printed
  int64_t suppressed;         // messages not printed (rate limit)
  double last_msg;
} job;

static void say_suppressed(int64_t n) {
  fprintf(stderr, "livecc-prep: (%" PRId64 " more messages not shown; the summary and the shard sidecars count them all)\n", n);
}

// Prints one skip or warning line (the message names the sample): the first MSG_BURST in full, then at most
// one per second, each saying how many were held back since the last.
static void report(job *j, const char *kind, const char *msg) {
  pthread_mutex_lock(&j->mu);
  double now = lcc_now();
  if (j->msgs < MSG_BURST || now - j->last_msg >= 1.0) {
    if (j->msgs >= MSG_BURST && j->suppressed) say_suppressed(j->suppressed);
    fprintf(stderr, "livecc-prep: %s: %s\n", kind, msg);
    j->msgs++, j->last_msg = now, j->suppressed = 0;
  } else {
    j->suppressed++;
  }
  pthread_mutex_unlock(&j->mu);
}

static void shard_path(const job *j, int k, const char *suffix, char *out, size_t cap) {
  snprintf(out, cap, "%s/shard-%05d%s", j->o->output, k, suffix);
}

// ---- one worker's state ----

typedef struct {
  job *j;
  lcc_tok_scratch *ts;
  lcc_jsonl_line line;
  lcc_seq seq;
  lcc_frames *pics;           // [cap_pics] pictures of the current sample (the clip, or one per element)
  int n_pics, cap_pics;
  lcc_shard_item *items;      // [cap_items] the sample's items, as the shard stores them
  int cap_items;
  lcc_bytes frames;           // encoded frames of the sample
  int64_t *frame_off;         // [cap_off] byte offsets into frames
  int cap_off;
  char source[PATH_MAX];      // provenance: the first media path, as the JSONL writes it
  double clip_start, clip_end;
  char what[PATH_MAX + 32];   // "file.jsonl:LINE"
} worker;

static void free_pics(worker *w) {
  for (int i = 0; i < w->n_pics; i++) lcc_frames_free(&w->pics[i]);
  w->n_pics = 0;
}

static lcc_frames *new_pic(worker *w) {
  if (w->n_pics == w->cap_pics) {
    w->cap_pics = w->cap_pics ? 2 * w->cap_pics : 8;
    w->pics = lcc_realloc(w->pics, (size_t)w->cap_pics * sizeof(lcc_frames));
  }
  lcc_frames *f = &w->pics[w->n_pics++];
  memset(f, 0, sizeof *f);
  return f;
}

// The file a media element names: absolute, or relative to video_root (default: the JSONL file's folder).
static int media_path(const worker *w, const lcc_elem *e, char *out, size_t cap) {
  const char *p = e->text;
  if (strlen(p) != e->text_len) return lcc_error("%s: media path contains a NUL byte", w->what);
  if (!strncmp(p, "file://", 7)) p += 7;
  if (strstr(p, "://")) return lcc_error("%s: %s: only local files are supported", w->what, p);
  const char *root = w->j->o->video_root, *slash = strrchr(w->line.path, '/');
  int n;
  if (p[0] == '/') n = snprintf(out, cap, "%s", p);
  else if (root && root[0]) n = snprintf(out, cap, "%s/%s", root, p);
  else if (slash) n = snprintf(out, cap, "%.*s/%s", (int)(slash - w->line.path), w->line.path, p);
  else n = snprintf(out, cap, "%s", p);   // the JSONL file is in the working directory
  if (n < 0 || (size_t)n >= cap) return lcc_error("%s: media path too long: %s", w->what, p);
  return 0;
}

// The media file must exist and hold bytes; returns 0 or the skip reason.
static int check_media(const worker *w, const char *path) {
  struct stat st;
  if (stat(path, &st)) {
    lcc_error("%s: %s: %s", w->what, path, strerror(errno));
    return LCC_SKIP_MISSING_MEDIA;
  }
  if (!S_ISREG(st.st_mode)) {
    lcc_error("%s: %s is not a regular file", w->what, path);
    return LCC_SKIP_MISSING_MEDIA;
  }
  if (st.st_size == 0) {
    lcc_error("%s: %s is empty (0 bytes)", w->what, path);
    return LCC_SKIP_EMPTY_MEDIA;
  }
  return 0;
}

// The readers return -1 for every failure; the reason is told apart by their messages (media_video.c).
static int media_reason(const char *msg) {
  if (strstr(msg, "no frame ends inside")) return LCC_SKIP_NO_FRAMES;
  if (strstr(msg, "video stream has no frames")) return LCC_SKIP_EMPTY_MEDIA;
  return LCC_SKIP_CORRUPT_MEDIA;
}

// A video file cut short (fewer frames in it than its container lists) whose clip window reaches past its
// end: the words there would be lost with the frames. Skipped or kept (warned, counted) by keep_truncated.
static int check_truncated(worker *w, const lcc_elem *e, const char *path, const lcc_frames *f, lcc_prep_stats *st) {
  if (f->listed_frames <= f->file_frames || (e->end >= 0 && e->end <= f->file_end)) return 0;
  char msg[2 * PATH_MAX + 400];
  snprintf(msg, sizeof msg, "%s: %s is cut short: %d of the %d frames its container lists are in the file (up to "
           "%.2f s), the clip window ends at %s", w->what, path, f->file_frames, f->listed_frames, f->file_end,
           e->end < 0 ? "the end of the video" : "");
  if (e->end >= 0) snprintf(msg + strlen(msg), sizeof msg - strlen(msg), "%.2f s", e->end);
  if (!w->j->o->keep_truncated) {
    lcc_error("%s (truncated = keep uses the frames there are)", msg);
    return LCC_SKIP_TRUNCATED_MEDIA;
  }
  snprintf(msg + strlen(msg), sizeof msg - strlen(msg), ": kept with the frames there are (truncated = keep)");
  report(w->j, "warning", msg);
  st->truncated_kept++;
  return 0;
}

// Reads one media element into a new picture set; returns 0 or the skip reason.
static int read_media(worker *w, const lcc_elem *e, int strict, lcc_prep_stats *st) {
  char path[PATH_MAX];
  if (media_path(w, e, path, sizeof path)) return LCC_SKIP_INVALID;
  int rc = check_media(w, path);
  if (rc) return rc;
  if (w->n_pics == 0) snprintf(w->source, sizeof w->source, "%s", e->text);
  const lcc_video_budget *b = &w->j->o->budget;
  lcc_frames *f = new_pic(w);
  rc = e->kind == LCC_ELEM_IMAGE ? lcc_image_read(path, b, f)
       : strict                  ? lcc_video_read_strict(path, e->start, e->end, b, f)
                                 : lcc_video_read_uniform(path, e->start, e->end, b, f);
  if (rc == 0) return e->kind == LCC_ELEM_IMAGE ? 0 : check_truncated(w, e, path, f, st);
  char msg[1024];
  snprintf(msg, sizeof msg, "%s", lcc_last_error());
  lcc_error("%s: %s", w->what, msg);
  return media_reason(msg);
}

// Words outside the clip window: counted and warned about; dropped with words_outside = drop, else left to
// LiveCC's cursor. Returns 0 or LCC_SKIP_EMPTY_STREAM when dropping leaves no word.
static int words_outside(worker *w, lcc_conv *c, lcc_prep_stats *st) {
  const lcc_elem *v = &c->elems[c->turns[0].first];
  const int drop = w->j->o->drop_words_outside, n_words = c->n_words;
  int outside = drop ? lcc_conv_drop_words_outside(c) : lcc_conv_count_words_outside(c);
  if (outside == 0) return 0;
  st->words_outside += outside;
  st->samples_words_outside++;
  if (drop && outside == n_words) {
    lcc_error("%s: all %d words of text_stream lie outside the clip window [%g, %g] s (words_outside = drop)", w->what,
              n_words, v->start, v->end);
    return LCC_SKIP_EMPTY_STREAM;
  }
  char msg[PATH_MAX + 300];
  snprintf(msg, sizeof msg, "%s: %d of %d words lie outside the clip window [%g, %g] s and are %s", w->what, outside,
           n_words, v->start, v->end,
           drop ? "dropped (words_outside = drop)"
                : "kept, as in LiveCC: those ending before it go into the first chunk, those after it are "
                  "never reached (words_outside = keep)");
  report(w->j, "warning", msg);
  return 0;
}

static int prep_stream(worker *w, lcc_conv *c, lcc_prep_stats *st) {
  if (c->n_words == 0) {
    lcc_error("%s: text_stream holds no [start, end, word] element", w->what);
    return LCC_SKIP_EMPTY_STREAM;
  }
  int rc = words_outside(w, c, st);
  if (rc) return rc;
  rc = read_media(w, &c->elems[c->turns[0].first], 1, st);
  if (rc) return rc;
  const lcc_frames *clip = &w->pics[0];
  rc = lcc_interleave_stream(&w->j->il, w->ts, c, clip, w->what, &w->seq);
  if (rc) return rc;
  // Counted, not warned about: LiveCC's windows end at the last word's end, after the last frame, so most
  // of its samples have such a word.
  if (w->seq.words_after_last_frame) {
    st->words_after_last_frame += w->seq.words_after_last_frame;
    st->samples_words_after_last_frame++;
  }
  const lcc_seq_item *last = &w->seq.items[w->seq.n_items - 1];
  w->clip_start = clip->pts[0], w->clip_end = clip->pts[last->frame0 + last->n_frames - 1];
  return 0;
}

static int prep_qa(worker *w, lcc_conv *c, lcc_prep_stats *st) {
  for (int e = 0; e < c->n_elems; e++) {
    if (c->elems[e].kind == LCC_ELEM_TEXT) continue;
    int rc = read_media(w, &c->elems[e], 0, st);
    if (rc) return rc;
  }
  int rc = lcc_interleave_qa(&w->j->il, w->ts, c, w->pics, w->what, &w->seq);
  if (rc) return rc;
  w->clip_start = w->clip_end = 0;
  if (w->n_pics > 0 && w->pics[0].T > 0) w->clip_start = w->pics[0].pts[0], w->clip_end = w->pics[0].pts[w->pics[0].T - 1];
  return 0;
}

static void bytes_put(lcc_bytes *b, const uint8_t *p, size_t n) {
  if (b->n + n > b->cap) {
    b->cap = 2 * (b->n + n);
    b->data = lcc_realloc(b->data, b->cap);
  }
  memcpy(b->data + b->n, p, n);
  b->n += n;
}

// The shard sample: tokens, mask and items from the sequence, each item's frames encoded.
static int pack(worker *w, lcc_sample *s, lcc_prep_stats *st) {
  const lcc_seq *q = &w->seq;
  const lcc_prep_opts *o = w->j->o;
  if (q->n_items > w->cap_items) {
    w->cap_items = q->n_items;
    w->items = lcc_realloc(w->items, (size_t)w->cap_items * sizeof(lcc_shard_item));
  }
  int n_frames = 0;
  for (int k = 0; k < q->n_items; k++) {
    const lcc_seq_item *it = &q->items[k];
    w->items[k] = (lcc_shard_item){it->kind, it->t, it->h, it->w, it->first_pad};
    n_frames += it->n_frames;
  }
  if (n_frames + 1 > w->cap_off) {
    w->cap_off = n_frames + 1;
    w->frame_off = lcc_realloc(w->frame_off, (size_t)w->cap_off * sizeof(int64_t));
  }
  w->frames.n = 0;
  w->frame_off[0] = 0;
  int f = 0;
  for (int k = 0; k < q->n_items; k++) {
    const lcc_seq_item *it = &q->items[k];
    const lcc_frames *p = &w->pics[it->src];
    const size_t frame_bytes = (size_t)p->h * p->w * 3;
    for (int i = 0; i < it->n_frames; i++) {
      const uint8_t *rgb = p->rgb + (size_t)(it->frame0 + i) * frame_bytes;   // [h, w, 3]
      if (o->codec == LCC_CODEC_RAW) bytes_put(&w->frames, rgb, frame_bytes);
      else if (lcc_jpeg_encode(rgb, p->h, p->w, o->jpeg_quality, &w->frames)) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", lcc_last_error());
        lcc_error("%s: %s", w->what, msg);
        return LCC_SKIP_CORRUPT_MEDIA;
      }
      w->frame_off[++f] = (int64_t)w->frames.n;
    }
  }
  *s = (lcc_sample){.n_tokens = q->ids.n, .ids = q->ids.ids, .mask = q->mask, .n_items = q->n_items,
                    .items = w->items, .n_frames = n_frames, .frame_data = w->frames.data, .frame_off = w->frame_off,
                    .source = w->source, .clip_start = w->clip_start, .clip_end = w->clip_end,
                    .source_line = w->line.line};
  st->tokens += q->ids.n;
  for (int i = 0; i < q->ids.n; i++) st->trained_tokens += q->mask[i];
  st->frames += n_frames;
  st->frame_bytes += (int64_t)w->frames.n;
  if (q->pairs_cut) st->cut_samples++, st->cut_pairs += q->pairs_cut;
  return 0;
}

// One JSONL line -> *s (views into the worker's buffers). 0, or the skip reason with lcc_error().
static int prep_line(worker *w, lcc_sample *s, lcc_prep_stats *st) {
  snprintf(w->what, sizeof w->what, "%s:%" PRId64, w->line.path, w->line.line);
  lcc_conv c;
  int json_error;
  if (lcc_conv_parse(w->line.text, w->line.len, w->what, &c, &json_error))
    return json_error ? LCC_SKIP_MALFORMED_JSON : LCC_SKIP_INVALID;
  st->ignored_stream_elems += c.n_ignored;
  w->source[0] = 0;
  int rc = c.stream ? prep_stream(w, &c, st) : prep_qa(w, &c, st);
  if (!rc) rc = pack(w, s, st);
  free_pics(w);
  lcc_conv_free(&c);
  return rc;
}

// ---- shards ----

static void add_stats(lcc_prep_stats *a, const lcc_prep_stats *b) {
  a->samples_in += b->samples_in, a->written += b->written;
  for (int r = 0; r < LCC_SKIP_COUNT; r++) a->skipped[r] += b->skipped[r];
  a->cut_samples += b->cut_samples, a->cut_pairs += b->cut_pairs;
  a->words_outside += b->words_outside, a->samples_words_outside += b->samples_words_outside;
  a->words_after_last_frame += b->words_after_last_frame;
  a->samples_words_after_last_frame += b->samples_words_after_last_frame;
  a->ignored_stream_elems += b->ignored_stream_elems, a->truncated_kept += b->truncated_kept;
  a->tokens += b->tokens, a->trained_tokens += b->trained_tokens;
  a->frames += b->frames, a->frame_bytes += b->frame_bytes;
}

// The sidecar's counters, by key: one table for writing and reading.
typedef struct {
  const char *key;
  size_t offset;
} counter;
#define C(key, field) {key, offsetof(lcc_prep_stats, field)}
static const counter counters[] = {
    C("samples_in", samples_in), C("written", written), C("cut_samples", cut_samples), C("cut_pairs", cut_pairs),
    C("words_outside_window", words_outside), C("samples_with_words_outside_window", samples_words_outside),
    C("words_after_last_frame", words_after_last_frame),
    C("samples_with_words_after_last_frame", samples_words_after_last_frame),
    C("ignored_stream_elements", ignored_stream_elems), C("truncated_kept", truncated_kept), C("tokens", tokens), C("trained_tokens", trained_tokens),
    C("frames", frames), C("frame_bytes", frame_bytes)};
#undef C
#define N_COUNTERS ((int)(sizeof counters / sizeof counters[0]))

static int64_t *counter_at(lcc_prep_stats *st, int i) { return (int64_t *)((char *)st + counters[i].offset); }

// shard-%05d.json: written to a temporary name, flushed, renamed.
static int write_sidecar(const job *j, int k, lcc_prep_stats *st, int64_t bytes, uint64_t crc) {
  char path[PATH_MAX], tmp[PATH_MAX + 8];
  shard_path(j, k, ".json", path, sizeof path);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f) return lcc_error("%s: cannot create: %s", tmp, strerror(errno));
  fprintf(f, "{\"shard\": \"shard-%05d.h5\", \"first_sample\": %" PRId64 ", \"bytes\": %" PRId64 ", ", k,
          (int64_t)k * j->o->samples_per_shard, bytes);
  fprintf(f, "\"crc64\": \"%016" PRIx64 "\",\n", crc);
  for (int i = 0; i < N_COUNTERS; i++) fprintf(f, " \"%s\": %" PRId64 ",", counters[i].key, *counter_at(st, i));
  fprintf(f, "\n \"skipped\": {");
  for (int r = 1; r < LCC_SKIP_COUNT; r++) fprintf(f, "%s\"%s\": %" PRId64, r > 1 ? ", " : "", lcc_skip_keys[r], st->skipped[r]);
  fprintf(f, "}}\n");
  int bad = fflush(f) || fsync(fileno(f));
  bad |= fclose(f);
  if (bad) return lcc_error("%s: write failed: %s", tmp, strerror(errno));
  if (rename(tmp, path)) return lcc_error("cannot rename %s to %s: %s", tmp, path, strerror(errno));
  return 0;
}

static int read_sidecar(const job *j, int k, lcc_prep_stats *st, lcc_manifest_entry *e) {
  memset(st, 0, sizeof *st);
  char path[PATH_MAX];
  shard_path(j, k, ".json", path, sizeof path);
  size_t len;
  char *text = lcc_read_file(path, &len);
  if (!text) return -1;
  lcc_json_doc *doc = lcc_json_parse(text, len, path);
  free(text);
  if (!doc) return -1;
  const lcc_json *root = lcc_json_root(doc), *v;
  int rc = 0;
  for (int i = 0; i < N_COUNTERS && !rc; i++) {
    if (!(v = lcc_json_get(root, counters[i].key)) || !v->is_integer)
      rc = lcc_error("%s: '%s' missing or not an integer", path, counters[i].key);
    else *counter_at(st, i) = v->integer;
  }
  const lcc_json *sk = lcc_json_get(root, "skipped");
  for (int r = 1; r < LCC_SKIP_COUNT && !rc; r++) {
    if (!(v = lcc_json_get(sk, lcc_skip_keys[r])) || !v->is_integer)
      rc = lcc_error("%s: 'skipped.%s' missing or not an integer", path, lcc_skip_keys[r]);
    else st->skipped[r] = v->integer;
  }
  const lcc_json *bytes = lcc_json_get(root, "bytes"), *crc = lcc_json_get(root, "crc64");
  if (!rc && (!bytes || !bytes->is_integer || !crc || crc->type != LCC_JSON_STRING))
    rc = lcc_error("%s: 'bytes' or 'crc64' missing", path);
  if (!rc) {
    char name[32];
    snprintf(name, sizeof name, "shard-%05d.h5", k);
    e->file = lcc_strdup(name);
    e->n_samples = st->written;
    e->bytes = bytes->integer;
    e->checksum = strtoull(crc->str, NULL, 16);
  }
  lcc_json_free(doc);
  return rc;
}

// max_rss_mb: a sample starts only while the process is under the cap, or when no other worker is in the
// middle of one (so the job always moves, one sample at a time at worst).
static void begin_sample(job *j) {
  const long cap = j->o->max_rss_mb;
  pthread_mutex_lock(&j->mu);
  for (int waited = 0; cap > 0 && j->busy > 0 && !j->failed;) {
    const long rss = lcc_rss_mb();
    if (rss <= cap) break;
    if (!waited++) j->rss_waits++;
    if (!j->said_rss) {
      fprintf(stderr, "livecc-prep: resident memory %ld MB is over max_rss = %ld MB: workers wait for each other's "
                      "samples (counted in the summary)\n", rss, cap);
      j->said_rss = 1;
    }
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += 50 * 1000 * 1000;
    if (until.tv_nsec >= 1000000000) until.tv_sec++, until.tv_nsec -= 1000000000;
    pthread_cond_timedwait(&j->memory, &j->mu, &until);
  }
  j->busy++;
  pthread_mutex_unlock(&j->mu);
}

static void end_sample(job *j) {
  pthread_mutex_lock(&j->mu);
  j->busy--;
  pthread_cond_broadcast(&j->memory);
  pthread_mutex_unlock(&j->mu);
}

// Writes shard k: its samples in order, then the sidecar, then the rename that marks it finished.
static int do_shard(worker *w, int k) {
  job *j = w->j;
  const int64_t first = (int64_t)k * j->o->samples_per_shard;
  const int64_t end = first + j->o->samples_per_shard < j->jl.n ? first + j->o->samples_per_shard : j->jl.n;
  char tmp[PATH_MAX], final[PATH_MAX];
  shard_path(j, k, ".h5.tmp", tmp, sizeof tmp);
  shard_path(j, k, ".h5", final, sizeof final);
  lcc_shard_writer *sw = lcc_shard_create(tmp, &j->meta);
  if (!sw) return -1;
  lcc_prep_stats st = {0};
  int rc = 0;
  int stop = 0;
  for (int64_t g = first; g < end && !rc && !stop; g++) {
    begin_sample(j);
    if ((rc = lcc_jsonl_read(&j->jl, g, &w->line))) {
      end_sample(j);
      break;
    }
    lcc_sample s;
    int reason = prep_line(w, &s, &st);
    st.samples_in++;
    if (reason) {
      st.skipped[reason]++;
      char kind[128];
      snprintf(kind, sizeof kind, "skipped (%s)", lcc_skip_labels[reason]);
      report(j, kind, lcc_last_error());
    } else {
      rc = lcc_shard_add(sw, &s);
      st.written += !rc;
    }
    end_sample(j);
    pthread_mutex_lock(&j->mu);
    j->done++;
    stop = j->failed;   // another worker failed: the job ends
    pthread_mutex_unlock(&j->mu);
  }
  if (stop && !rc) rc = lcc_error("stopped: another worker failed");
  if (rc) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", lcc_last_error());
    lcc_shard_finish(sw);
    unlink(tmp);
    return lcc_error("%s", msg);
  }
  if (lcc_shard_finish(sw)) return -1;
  int64_t bytes;
  uint64_t crc;
  if (lcc_file_crc64(tmp, &crc, &bytes)) return lcc_error("%s: cannot read it back for its checksum", tmp);
  if (write_sidecar(j, k, &st, bytes, crc)) return -1;
  if (rename(tmp, final)) return lcc_error("cannot rename %s to %s: %s", tmp, final, strerror(errno));
  return 0;
}

static void *worker_main(void *arg) {
  job *j = arg;
  worker w = {.j = j, .ts = lcc_tok_scratch_new()};
  for (;;) {
    pthread_mutex_lock(&j->mu);
    while (j->next < j->n_shards && !j->todo[j->next]) j->next++;
    int k = j->failed || j->next >= j->n_shards ? -1 : j->next++;
    pthread_mutex_unlock(&j->mu);
    if (k < 0) break;
    if (do_shard(&w, k)) {
      pthread_mutex_lock(&j->mu);
      if (!j->failed) snprintf(j->error, sizeof j->error, "%s", lcc_last_error());
      j->failed = 1;
      pthread_mutex_unlock(&j->mu);
      break;
    }
  }
  pthread_mutex_lock(&j->mu);
  j->running--;
  pthread_cond_signal(&j->wake);
  pthread_mutex_unlock(&j->mu);
  lcc_tok_scratch_free(w.ts);
  lcc_jsonl_line_free(&w.line);
  lcc_seq_free(&w.seq);
  free_pics(&w);
  free(w.pics);
  free(w.items);
  free(w.frames.data);
  free(w.frame_off);
  return NULL;
}

// ---- the run ----

static double progress_every(const lcc_prep_opts *o) { return o->progress_every > 0 ? o->progress_every : PROGRESS_EVERY; }

static int run_workers(job *j) {
  int n = j->o->workers;
  pthread_t *th = lcc_calloc((size_t)n, sizeof(pthread_t));
  j->running = n;
  const double every = progress_every(j->o);
  FILE *out = j->o->progress ? stderr : NULL;
  for (int i = 0; i < n; i++) LCC_CHECK(pthread_create(&th[i], NULL, worker_main, j) == 0, "pthread_create failed");
  pthread_mutex_lock(&j->mu);
  while (j->running > 0) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    const double t = (double)until.tv_sec + until.tv_nsec * 1e-9 + every;
    until.tv_sec = (time_t)t, until.tv_nsec = (long)((t - (double)(time_t)t) * 1e9);
    if (pthread_cond_timedwait(&j->wake, &j->mu, &until) == ETIMEDOUT) lcc_progress_tick(&j->prog, j->done, j->todo_samples, 0, out);
  }
  lcc_progress_tick(&j->prog, j->done, j->todo_samples, 1, j->todo_samples > 0 && lcc_group_world(j->o->group) == 1 ? out : NULL);
  pthread_mutex_unlock(&j->mu);
  for (int i = 0; i < n; i++) pthread_join(th[i], NULL);
  free(th);
  return j->failed ? lcc_error("%s", j->error) : 0;
}

static int mkdirs(const char *dir) {
  char p[PATH_MAX];
  if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p) return lcc_error("%s: path too long", dir);
  for (char *s = p + 1;; s++) {
    char c = *s;
    if (c != '/' && c != 0) continue;
    *s = 0;
    if (mkdir(p, 0777) && errno != EEXIST) return lcc_error("%s: cannot create directory: %s", p, strerror(errno));
    *s = c;
    if (!c) return 0;
  }
}

// <output>/prep.conf: written by the first run; later runs must bring the same settings.
static int check_settings(const lcc_prep_opts *o) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/prep.conf", o->output);
  const char *want = o->settings ? o->settings : "";
  if (access(path, F_OK) == 0) {
    char *have = lcc_read_file(path, NULL);
    if (!have) return -1;
    int same = strcmp(have, want) == 0;
    const char *a = have, *b = want;   // first differing line, for the message
    while (*a && *a == *b) a++, b++;
    while (a > have && a[-1] != '\n') a--, b--;
    int rc = same ? 0 : lcc_error("%s: this directory was prepared with other settings (it has '%.*s', this run '%.*s'); "
                                  "use the same settings to resume, or a new output directory",
                                  path, (int)strcspn(a, "\n"), a, (int)strcspn(b, "\n"), b);
    free(have);
    return rc;
  }
  FILE *f = fopen(path, "w");
  if (!f) return lcc_error("%s: cannot create: %s", path, strerror(errno));
  fputs(want, f);
  if (fclose(f)) return lcc_error("%s: write failed: %s", path, strerror(errno));
  return 0;
}

static int shard_finished(const job *j, int k) {
  char h5[PATH_MAX], side[PATH_MAX];
  shard_path(j, k, ".h5", h5, sizeof h5);
  shard_path(j, k, ".json", side, sizeof side);
  return access(h5, F_OK) == 0 && access(side, F_OK) == 0;
}

// The totals and the manifest, from every shard's sidecar.
static int finish(job *j, lcc_prep_stats *st) {
  lcc_manifest m = {.dir = (char *)j->o->output, .n = j->n_shards, .tokenizer_hash = j->meta.tokenizer_hash};
  m.shards = lcc_calloc((size_t)(j->n_shards > 0 ? j->n_shards : 1), sizeof(lcc_manifest_entry));
  int rc = 0;
  for (int k = 0; k < j->n_shards && !rc; k++) {
    lcc_prep_stats s;
    rc = read_sidecar(j, k, &s, &m.shards[k]);
    add_stats(st, &s);
    m.total_samples += s.written;
  }
  if (!rc) rc = lcc_manifest_write(&m);
  for (int k = 0; k < j->n_shards; k++) free(m.shards[k].file);
  free(m.shards);
  return rc;
}

static int check_opts(const lcc_prep_opts *o) {
  if (o->n_inputs < 1) return lcc_error("no input: give one or more JSONL files");
  if (!o->output || !o->output[0]) return lcc_error("no output directory");
  if (o->workers < 1) return lcc_error("workers must be >= 1, got %d", o->workers);
  if (o->samples_per_shard < 1) return lcc_error("samples_per_shard must be >= 1, got %d", o->samples_per_shard);
  if (o->codec == LCC_CODEC_JPEG && (o->jpeg_quality < 1 || o->jpeg_quality > 100))
    return lcc_error("jpeg_quality must be in 1..100, got %d", o->jpeg_quality);
  if (o->il.max_seq_len < 0) return lcc_error("max_seq_len must be >= 0 (0: no limit), got %d", o->il.max_seq_len);
  return 0;
}

// Every rank: the inputs, the settings (rank 0 writes prep.conf when it is new, the others compare with it
// after), and this rank's unfinished shards, seen by every rank before any writes one.
static int setup(job *j, const lcc_prep_opts *o) {
  const lcc_prep_group *g = o->group;
  const int rank = lcc_group_rank(g), W = lcc_group_world(g);
  if (check_opts(o)) return -1;
  if (!(j->tk = lcc_tokenizer_load(o->tokenizer))) return -1;
  if (lcc_interleaver_init(&j->il, j->tk, &o->il)) return -1;
  const double t0 = lcc_now();
  if (lcc_jsonl_open(&j->jl, o->inputs, o->n_inputs, g)) return -1;
  j->index_seconds = lcc_now() - t0;
  j->n_shards = (int)((j->jl.n + o->samples_per_shard - 1) / o->samples_per_shard);
  if (o->plan_only) return 0;
  if (mkdirs(o->output) || (rank == 0 && check_settings(o))) return -1;   // only once the inputs are known to be good
  if (g) g->barrier(g);
  if (rank > 0 && check_settings(o)) return -1;
  j->meta = (lcc_shard_meta){.tokenizer_hash = lcc_tokenizer_hash(j->tk), .vocab_size = lcc_tokenizer_vocab_size(j->tk),
                             .patch_size = j->il.o.patch, .merge_size = j->il.o.merge, .temporal_patch_size = j->il.o.temporal,
                             .fps = o->budget.fps, .frame_codec = o->codec, .jpeg_quality = o->jpeg_quality};
  memcpy(j->meta.image_mean, lcc_clip_mean, sizeof j->meta.image_mean);
  memcpy(j->meta.image_std, lcc_clip_std, sizeof j->meta.image_std);
  j->todo = lcc_calloc((size_t)(j->n_shards > 0 ? j->n_shards : 1), 1);
  for (int k = 0; k < j->n_shards; k++) {
    const int unfinished = !shard_finished(j, k);
    j->unfinished += unfinished;
    j->todo[k] = unfinished && k % W == rank;
    if (j->todo[k]) {
      int64_t first = (int64_t)k * o->samples_per_shard, end = first + o->samples_per_shard;
      j->todo_samples += (end < j->jl.n ? end : j->jl.n) - first;
    }
  }
  if (g) g->barrier(g);
  return lcc_progress_init(&j->prog, o->output, g);
}

int lcc_prep_run(const lcc_prep_opts *o, lcc_prep_stats *st) {
  memset(st, 0, sizeof *st);
  job j = {.o = o};
  pthread_mutex_init(&j.mu, NULL);
  pthread_cond_init(&j.wake, NULL);
  pthread_cond_init(&j.memory, NULL);
  int rc = setup(&j, o);
  const int root = lcc_group_rank(o->group) == 0;
  if (!rc && o->plan_only) {
    st->samples_in = j.jl.n, st->shards = j.n_shards, st->ranks = lcc_group_world(o->group);
    st->index_seconds = j.index_seconds, st->indexed_files = 0;
    for (int f = 0; f < j.jl.n_files; f++) st->indexed_files += j.jl.files[f].indexed;
    st->peak_rss_mb = lcc_peak_rss_mb();
  } else if (!rc) {
    st->shards = j.n_shards, st->ranks = lcc_group_world(o->group);
    st->shards_written = j.unfinished, st->shards_reused = j.n_shards - j.unfinished;
    rc = run_workers(&j);
  }
  if (!rc && !o->plan_only) {   // every rank done; rank 0 reads their sidecars into the totals and the manifest
    lcc_progress_finish(&j.prog, progress_every(o), o->progress ? stderr : NULL);
    st->peak_rss_mb = root ? j.prog.peak_rss_mb : lcc_peak_rss_mb();
    st->rss_waits = j.rss_waits;
    if (root) rc = finish(&j, st);
  }
  if (j.msgs >= MSG_BURST && j.suppressed) say_suppressed(j.suppressed);
  lcc_jsonl_close(&j.jl);
  if (j.tk) lcc_tokenizer_free(j.tk);
  free(j.todo);
  pthread_cond_destroy(&j.wake);
  pthread_cond_destroy(&j.memory);
  pthread_mutex_destroy(&j.mu);
  return rc;
}

void lcc_prep_print_summary(const lcc_prep_opts *o, const lcc_prep_stats *st, FILE *f) {
  fprintf(f, "# livecc-prep summary\n");
  fprintf(f, "samples in:  %" PRId64 "\n", st->samples_in);
  fprintf(f, "written:     %" PRId64 "\n", st->written);
  int64_t skipped = 0;
  for (int r = 1; r < LCC_SKIP_COUNT; r++) skipped += st->skipped[r];
  fprintf(f, "skipped:     %" PRId64 "\n", skipped);
  for (int r = 1; r < LCC_SKIP_COUNT; r++) fprintf(f, "  %-36s %" PRId64 "\n", lcc_skip_labels[r], st->skipped[r]);
  fprintf(f, "cut to fit max_seq_len: %" PRId64 " samples (%" PRId64 " turn pairs dropped)\n", st->cut_samples, st->cut_pairs);
  fprintf(f, "words outside the clip window (%s): %" PRId64 " in %" PRId64 " samples\n",
          o->drop_words_outside ? "dropped: words_outside = drop" : "kept, as LiveCC: words_outside = keep",
          st->words_outside, st->samples_words_outside);
  fprintf(f, "words ending after the last frame (%s): %" PRId64 " in %" PRId64 " written samples\n",
          o->il.keep_last_words ? "kept in the last chunk: last_words = keep" : "lost, as in LiveCC: last_words = drop",
          st->words_after_last_frame, st->samples_words_after_last_frame);
  fprintf(f, "text_stream elements that are not [start, end, word] (ignored): %" PRId64 "\n", st->ignored_stream_elems);
  fprintf(f, "kept from video files cut short (truncated = keep): %" PRId64 " samples\n", st->truncated_kept);
  fprintf(f, "tokens: %" PRId64 " (%" PRId64 " trained); frames: %" PRId64 " (%.1f MB encoded)\n", st->tokens,
          st->trained_tokens, st->frames, (double)st->frame_bytes / 1e6);
  fprintf(f, "shards: %d (%d written by this run, %d finished before), %d rank%s\n", st->shards, st->shards_written,
          st->shards_reused, st->ranks, st->ranks == 1 ? "" : "s");
  fprintf(f, "peak resident memory: %" PRId64 " MB%s, %d worker threads per rank", st->peak_rss_mb,
          st->ranks > 1 ? " on the largest rank" : "", o->workers);
  if (o->max_rss_mb > 0) fprintf(f, "; max_rss %ld MB: %" PRId64 " samples waited for memory (rank 0)", o->max_rss_mb, st->rss_waits);
  fputc('\n', f);
}
