// Round trip (acceptance): prep -> shards -> training loader gives back, for each sample, the tokens, the
// loss mask as labels (-100 elsewhere) and the grids that the interleaver makes from the same line, and
// patch rows whose un-normalized pixels match the patch rows of the frames decoded again from the video
// (lcc_video_read_strict / _uniform / lcc_image_read): PSNR >= 35 dB with JPEG at the default quality 90,
// bit-exact with codec raw. Three samples (streaming, video QA, image QA) over two shards.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "loader.h"
#include "model.h"
#include "prep_util.h"
#include "testlib.h"
#include "tokenizer.h"
#include "util.h"

#define P (3 * 2 * 14 * 14)   // values per patch row

static const char *LINES[] = {
    "[{\"role\": \"user\", \"content\": [{\"type\": \"video\", \"video\": \"clip.mp4\", \"video_start\": 1.1, "
    "\"video_end\": 7.6}, {\"type\": \"text\", \"text\": \"Comment on it.\", \"previous\": \"\", \"title\": \"Shapes\"}]}, "
    "{\"role\": \"assistant\", \"content\": [{\"type\": \"text_stream\", \"text_stream\": [[1.3, 1.6, \"red\"], "
    "[1.6, 2.0, \"circle\"], [3.8, 4.2, \"blue\"], [5.9, 6.3, \"green\"], [6.3, 6.7, \"triangle\"]]}]}]",
    "[{\"role\": \"user\", \"content\": [{\"type\": \"video\", \"video\": \"clip.mp4\", \"video_start\": 2.0, "
    "\"video_end\": 6.0}, {\"type\": \"text\", \"text\": \"What moves?\"}]}, {\"role\": \"assistant\", \"content\": "
    "[{\"type\": \"text\", \"text\": \"A red circle.\"}]}]",
    "[{\"role\": \"user\", \"content\": [{\"type\": \"image\", \"image\": \"pic.png\"}, {\"type\": \"text\", "
    "\"text\": \"Which shape?\"}]}, {\"role\": \"assistant\", \"content\": \"A square.\"}]",
};
#define N_LINES 3

// What prep should have produced for line i: the interleaver's output over freshly decoded pictures.
typedef struct {
  lcc_seq seq;
  lcc_frames pics[2];
  int n_pics;
} reference;

static void make_reference(const lcc_prep_opts *o, const lcc_interleaver *il, lcc_tok_scratch *ts, const char *dir,
                           int i, reference *r) {
  memset(r, 0, sizeof *r);
  lcc_conv c;
  int json_error;
  LCC_CHECK(lcc_conv_parse(LINES[i], strlen(LINES[i]), "ref", &c, &json_error) == 0, "%s", lcc_last_error());
  for (int e = 0; e < c.n_elems; e++) {
    const lcc_elem *el = &c.elems[e];
    if (el->kind == LCC_ELEM_TEXT) continue;
    char path[1200];
    pu_path(path, sizeof path, dir, el->text);
    lcc_frames *f = &r->pics[r->n_pics++];
    int rc = el->kind == LCC_ELEM_IMAGE ? lcc_image_read(path, &o->budget, f)
             : c.stream ? lcc_video_read_strict(path, el->start, el->end, &o->budget, f)
                        : lcc_video_read_uniform(path, el->start, el->end, &o->budget, f);
    LCC_CHECK(rc == 0, "%s", lcc_last_error());
  }
  int rc = c.stream ? lcc_interleave_stream(il, ts, &c, &r->pics[0], "ref", &r->seq)
                    : lcc_interleave_qa(il, ts, &c, r->pics, "ref", &r->seq);
  LCC_CHECK(rc == 0, "%s", lcc_last_error());
  lcc_conv_free(&c);
}

static void free_reference(reference *r) {
  lcc_seq_free(&r->seq);
  for (int k = 0; k < r->n_pics; k++) lcc_frames_free(&r->pics[k]);
}

// Pixel value 0..255 of a normalized patch value in column k.
static double unnormalize(float v, int k) {
  int c = k / (P / 3);
  return ((double)v * lcc_clip_std[c] + lcc_clip_mean[c]) * 255.0;
}

// Compares one loaded sample with its reference; returns the PSNR of its pixels (inf when exact).
static double compare(const lcc_owned_batch *ob, const reference *r, int *identical) {
  const lcc_seq *q = &r->seq;
  CHECK(ob->b.n_samples == 1 && ob->b.n_tokens == q->ids.n);
  for (int i = 0; i < q->ids.n && i < ob->b.n_tokens; i++)
    CHECK(ob->ids[i] == q->ids.ids[i] && ob->labels[i] == (q->mask[i] ? q->ids.ids[i] : -100));
  CHECK(ob->b.n_items == q->n_items);
  double sq = 0;
  size_t n = 0, row = 0;
  *identical = 1;
  for (int k = 0; k < q->n_items && k < ob->b.n_items; k++) {
    const lcc_seq_item *it = &q->items[k];
    const lcc_vision_item *got = &ob->items[k];
    CHECK(got->kind == it->kind && got->t == it->t && got->h == it->h && got->w == it->w);
    const lcc_frames *f = &r->pics[it->src];
    size_t rows = (size_t)it->t * it->h * it->w;
    float *want = lcc_malloc(rows * P * sizeof(float));
    lcc_patchify(f->rgb + (size_t)it->frame0 * f->h * f->w * 3, it->n_frames, f->h, f->w, 14, 2, 2, lcc_clip_mean,
                 lcc_clip_std, want);
    CHECK(row + rows <= (size_t)ob->b.n_patches);
    const float *have = ob->pixels + row * P;
    for (size_t j = 0; j < rows * P && row + rows <= (size_t)ob->b.n_patches; j++) {
      double d = unnormalize(have[j], (int)(j % P)) - unnormalize(want[j], (int)(j % P));
      sq += d * d, n++;
      *identical &= have[j] == want[j];
    }
    row += rows;
    free(want);
  }
  CHECK(row == (size_t)ob->b.n_patches);
  return sq == 0 ? INFINITY : 10 * log10(255.0 * 255.0 / (sq / (double)n));
}

static void round_trip(const char *dir, int codec) {
  char jsonl[1200], out[1200];
  pu_path(jsonl, sizeof jsonl, dir, "rt.jsonl");
  pu_path(out, sizeof out, dir, codec == LCC_CODEC_RAW ? "raw" : "jpeg");
  lcc_prep_opts o;
  const char *inputs[] = {jsonl};
  pu_opts(&o, inputs, 1, out);
  o.codec = codec, o.samples_per_shard = 2, o.workers = 2;
  lcc_prep_stats st;
  int rc = pu_run(&o, &st, dir);
  if (rc) fprintf(stderr, "%s\n", lcc_last_error());
  CHECK(rc == 0 && st.written == N_LINES && st.shards == 2);

  lcc_tokenizer *tk = lcc_tokenizer_load(TINY_TOKENIZER);
  lcc_tok_scratch *ts = lcc_tok_scratch_new();
  lcc_interleaver il;
  CHECK(tk && lcc_interleaver_init(&il, tk, &o.il) == 0);
  lcc_loader_opts lo = {.data = out, .seed = 1, .shuffle = 0, .world_size = 1, .rank = 0, .micro_batch = 1,
                        .grad_accum = 1, .threads = 1, .prefetch = 1, .skip_corrupt = 0, .max_open_shards = 2};
  lcc_loader *l = lcc_loader_open(&lo, 0);
  if (!l) fprintf(stderr, "%s\n", lcc_last_error());
  CHECK(l && lcc_loader_samples(l) == N_LINES);
  for (int i = 0; l && i < N_LINES; i++) {
    lcc_owned_batch ob = {0};
    CHECK(lcc_loader_next(l, &ob) == 0);
    reference r;
    make_reference(&o, &il, ts, dir, i, &r);
    int identical;
    double psnr = compare(&ob, &r, &identical);
    printf("%s sample %d: %d tokens, %d items, PSNR %.2f dB\n", codec == LCC_CODEC_RAW ? "raw" : "jpeg", i, ob.b.n_tokens,
           ob.b.n_items, psnr);
    if (codec == LCC_CODEC_RAW) CHECK(identical);
    else CHECK(psnr >= 35.0);
    free_reference(&r);
    lcc_batch_free(&ob);
  }
  if (l) lcc_loader_close(l);
  lcc_tok_scratch_free(ts);
  lcc_tokenizer_free(tk);
}

int main(void) {
  const char *dir = test_fresh_dir("roundtrip");
  char path[1200], jsonl[1200];
  pu_path(path, sizeof path, dir, "clip.mp4");
  pu_video(path, 112, 84, 4, 9);
  pu_path(path, sizeof path, dir, "pic.png");
  pu_image(path, 84, 56);
  pu_path(jsonl, sizeof jsonl, dir, "rt.jsonl");
  FILE *f = fopen(jsonl, "w");
  LCC_CHECK(f, "cannot write %s", jsonl);
  for (int i = 0; i < N_LINES; i++) fprintf(f, "%s\n", LINES[i]);
  fclose(f);
  round_trip(dir, LCC_CODEC_JPEG);
  round_trip(dir, LCC_CODEC_RAW);
  return test_finish("test_prep_roundtrip");
}
