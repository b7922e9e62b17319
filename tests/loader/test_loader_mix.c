// Datasets with weights (data = "A:0.5, B:0.3, C:0.2"): three datasets of 37, 11 and 29 samples (grids 2, 4 and
// 6, so a sample's tokens tell its dataset), raw frames.
// - the list's syntax: weights after the last ':', bare entries weigh 1, bad entries are errors naming them;
// - the schedule: at every multiple of 256 positions each dataset has taken within n (datasets) of P * weight
//   positions (a fraction error below n / P: 1.2e-4 over 25,600 positions); the closed-form counts equal a count
//   of the positions;
// - each dataset cycles through its own epochs: its k-th N_d draws are its permutation of epoch k;
// - the same global batches on 1, 2, 3 and 6 ranks and any thread count; ids map back to the right dataset
//   and sample (first token = the sample's tag, token count = its dataset's grid);
// - opening at consumed = C continues exactly (C up to 10^12, timed); one dataset is today's order exactly;
// - a corrupt sample is replaced within its own dataset's stream, the same after a resume.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loader.h"
#include "mix.h"
#include "order.h"
#include "shard_fixture.h"
#include "testlib.h"
#include "util.h"

#define ND 3
static const int counts_a[2] = {20, 17}, counts_b[1] = {11}, counts_c[3] = {9, 14, 6};
static const int64_t sizes[ND] = {37, 11, 29}, first[ND] = {0, 37, 48};   // samples, first global id
static const int grids[ND] = {2, 4, 6};
static const double weights[ND] = {0.5, 0.3, 0.2};
#define G 6               // global batch
#define BATCHES 40        // 240 positions: several epochs of B, a few of A and C

static lcc_shard_meta meta;
static char dirs[ND][512], spec[2048];

static lcc_loader *open_list(const char *data, int W, int r, int M, int A, int threads, int shuffle, int64_t consumed) {
  lcc_loader_opts o = {.data = data, .seed = 42, .shuffle = shuffle, .world_size = W, .rank = r, .micro_batch = M,
                       .grad_accum = A, .threads = threads, .prefetch = 3, .skip_corrupt = 1, .max_open_shards = 3};
  return lcc_loader_open(&o, consumed);
}

static lcc_loader *must_open(const char *data, int W, int r, int M, int A, int threads, int shuffle, int64_t consumed) {
  lcc_loader *l = open_list(data, W, r, M, A, threads, shuffle, consumed);
  if (!l) {
    fprintf(stderr, "%s\n", lcc_last_error());
    exit(1);
  }
  return l;
}

// The dataset order of the test's datasets: dataset d's permutation of epoch e (mix's documented seed).
static uint32_t *perm_of(int d, int64_t e) {
  uint32_t *p = lcc_malloc((size_t)sizes[d] * sizeof(uint32_t));
  lcc_order_permutation(42 ^ (uint64_t)d * 0x9E3779B97F4A7C15ull, e, p, sizes[d]);
  return p;
}

// ---- the list ----

static void parse_ok(const char *text, int n, const char *const *paths, const double *w) {
  lcc_mix_entry *e;
  int got;
  if (!checkf(lcc_mix_parse(text, &e, &got) == 0 && got == n, "'%s' parses into %d entries", text, n)) return;
  for (int i = 0; i < n; i++)
    CHECKF(!strcmp(e[i].path, paths[i]) && e[i].weight == w[i], "'%s' entry %d: '%s' %g", text, i, e[i].path, e[i].weight);
  lcc_mix_entries_free(e, got);
}

static void parse_bad(const char *text, const char *fragment) {
  lcc_mix_entry *e;
  int n;
  const int rc = lcc_mix_parse(text, &e, &n);
  expect_error(rc, text, fragment, NULL);
  if (!rc) lcc_mix_entries_free(e, n);
}

static void test_parse(void) {
  parse_ok("data/a", 1, (const char *[]){"data/a"}, (double[]){1});
  parse_ok("a:0.7, b:0.3", 2, (const char *[]){"a", "b"}, (double[]){0.7, 0.3});
  parse_ok(" x:y/z:2 ,w ,\tv: 1e-3", 3, (const char *[]){"x:y/z", "w", "v"}, (double[]){2, 1, 1e-3});
  parse_ok("host:dir", 1, (const char *[]){"host:dir"}, (double[]){1});   // no number after ':': part of the path
  parse_ok("dir:", 1, (const char *[]){"dir:"}, (double[]){1});
  parse_bad("a:0, b:1", "'a:0': the weight must be a positive number");
  parse_bad("a:1, b:-2", "'b:-2': the weight must be a positive number");
  parse_bad("a:nan", "'a:nan'");
  parse_bad("a:1e999", "'a:1e999'");
  parse_bad("a:1,,b:1", "entry 2 is empty");
  parse_bad("a:1, ", "entry 2 is empty");
  parse_bad("", "entry 1 is empty");
  parse_bad(":0.5", "no dataset before the weight");
  lcc_mix m;
  lcc_mix_entry tiny[2] = {{"big", 1}, {"small", 1e-10}};
  expect_error(lcc_mix_init(&m, tiny, 2, 1), "a weight under 2^-30 of the sum", "'small'", NULL);
}

// ---- the schedule alone ----

// Over 400 blocks: every block holds B positions whose ranks count each dataset's positions; at each block
// boundary P every dataset has within n of P * share / total; lcc_mix_counts equals a count at any position.
static void schedule_bounds(const double *w, int n) {
  lcc_mix_entry e[LCC_MIX_MAX];
  for (int d = 0; d < n; d++) e[d] = (lcc_mix_entry){"x", w[d]};
  lcc_mix m;
  if (lcc_mix_init(&m, e, n, 7)) {
    test_fail(__FILE__, __LINE__, "%s", lcc_last_error());
    return;
  }
  int64_t count[LCC_MIX_MAX] = {0};   // [n] positions so far of each dataset
  double worst = 0;
  static lcc_mix_block b;
  for (int64_t k = 0; k < 400; k++) {
    lcc_mix_build(&m, k, &b);
    for (int d = 0; d < n; d++) CHECK(b.base[d] == count[d]);
    for (int j = 0; j < LCC_MIX_BLOCK; j++) {
      CHECK(b.label[j] < n && b.rank[j] == count[b.label[j]] - b.base[b.label[j]]);
      count[b.label[j]]++;
      const int64_t p = k * LCC_MIX_BLOCK + j + 1;
      if (p % 997 == 0) {   // the closed form anywhere inside a block
        int64_t c[LCC_MIX_MAX];
        lcc_mix_counts(&m, p, c);
        CHECK(!memcmp(c, count, (size_t)n * sizeof(int64_t)));
      }
    }
    const double P = (double)(k + 1) * LCC_MIX_BLOCK;
    for (int d = 0; d < n; d++) {
      const double err = fabs((double)count[d] - P * m.share[d] / (double)m.total);
      worst = err > worst ? err : worst;
    }
  }
  checkf(worst <= n, "%d datasets (%g, %g, ...): every 256 positions each count is within %.2f <= %d of P * weight",
         n, w[0], w[1], worst, n);
  double shares = 0;   // the fixed-point weights are the given ones to 2^-30
  for (int d = 0; d < n; d++) shares += w[d];
  for (int d = 0; d < n; d++) CHECK(fabs(m.share[d] / (double)m.total - w[d] / shares) < 1e-8);
}

static void test_schedule(void) {
  schedule_bounds(weights, ND);
  schedule_bounds((const double[]){0.7, 0.3}, 2);
  schedule_bounds((const double[]){1, 0.001, 3, 0.25}, 4);   // 0.001: most blocks hold none of it
  lcc_mix_entry e[2] = {{"a", 3}, {"b", 1}};
  lcc_mix m1, m2;
  lcc_mix_init(&m1, e, 2, 1), lcc_mix_init(&m2, e, 2, 2);
  static lcc_mix_block b1, b2;
  lcc_mix_build(&m1, 5, &b1), lcc_mix_build(&m2, 5, &b2);
  CHECK(memcmp(b1.label, b2.label, sizeof b1.label) != 0);   // another seed, another order inside the block
  int in_a = 0;
  for (int j = 0; j < LCC_MIX_BLOCK; j++) in_a += b1.label[j] == 0;
  CHECK(in_a == 192);   // 3:1 of 256
}

// ---- the loader on the three datasets ----

// Over 25,600 positions: the datasets' counts equal lcc_loader_drawn and the weights (within ND at each block
// boundary); the ids of dataset d lie in its range, and its k-th N_d draws are its epoch-k permutation.
static void test_fractions(void) {
  lcc_loader *l = must_open(spec, 1, 0, 1, 1, 0, 1, 0);
  CHECK(lcc_loader_datasets(l) == ND && lcc_loader_samples(l) == 77);
  for (int d = 0; d < ND; d++) {
    const lcc_loader_dataset info = lcc_loader_dataset_info(l, d);
    CHECK(!strcmp(info.name, dirs[d]) && info.samples == sizes[d] && info.first_id == first[d] &&
          fabs(info.weight - weights[d]) < 1e-12);
  }
  enum { P = 100 * LCC_MIX_BLOCK };
  int64_t count[ND] = {0}, *seq[ND];   // [ND][P] each dataset's draws in position order
  for (int d = 0; d < ND; d++) seq[d] = lcc_malloc(P * sizeof(int64_t));
  double worst = 0;
  for (int64_t p = 0; p < P; p++) {
    const int64_t id = lcc_loader_index_at(l, p);
    const int d = lcc_loader_dataset_of(l, id);
    if (!CHECKF(d >= 0 && id >= first[d] && id < first[d] + sizes[d], "position %lld: id %lld", (long long)p,
                (long long)id))
      break;
    seq[d][count[d]++] = id;
    if ((p + 1) % LCC_MIX_BLOCK == 0 || (p + 1) % 313 == 0) {
      int64_t drawn[ND];
      lcc_loader_drawn(l, p + 1, drawn);
      CHECKF(!memcmp(drawn, count, sizeof drawn), "drawn at %lld", (long long)p + 1);
      for (int e = 0; e < ND && (p + 1) % LCC_MIX_BLOCK == 0; e++) {
        const double err = fabs((double)count[e] - (double)(p + 1) * weights[e]);
        worst = err > worst ? err : worst;
      }
    }
  }
  checkf(worst <= ND, "25,600 positions: %lld, %lld, %lld of datasets 0.5/0.3/0.2, at most %.2f from P * weight at "
         "every block boundary", (long long)count[0], (long long)count[1], (long long)count[2], worst);
  int epochs_ok = 1;
  for (int d = 0; d < ND; d++)
    for (int64_t e = 0; (e + 1) * sizes[d] <= count[d] && epochs_ok; e++) {
      uint32_t *perm = perm_of(d, e);
      for (int64_t i = 0; i < sizes[d]; i++) epochs_ok &= seq[d][e * sizes[d] + i] == first[d] + perm[i];
      free(perm);
    }
  check(epochs_ok, "each dataset's draws are its own epochs, one permutation of its samples after another");
  for (int d = 0; d < ND; d++) free(seq[d]);
  lcc_loader_close(l);
}

// A sample of dataset d, by content: its first token is its tag and its tokens are those of d's grid.
static int is_sample(const lcc_owned_batch *ob, int s, int64_t id) {
  const int d = id >= first[2] ? 2 : id >= first[1] ? 1 : 0;
  const int32_t *ids = ob->ids + ob->sample_start[s];
  lcc_sample want;
  fx_sample(&want, &meta, id - first[d], grids[d]);
  const int same = ob->sample_start[s + 1] - ob->sample_start[s] == want.n_tokens &&
                   !memcmp(ids, want.ids, (size_t)want.n_tokens * sizeof(int32_t));
  lcc_sample_free(&want);
  return same;
}

// The ids of `batches` global batches from position `from`, read by W ranks with micro batch M, accumulation A.
static int64_t *run(const char *data, int W, int M, int A, int threads, int64_t from, int batches, int content) {
  lcc_loader *l[G];
  for (int r = 0; r < W; r++) l[r] = must_open(data, W, r, M, A, threads, 1, from);
  int64_t *ids = lcc_malloc((size_t)batches * G * sizeof(int64_t)), n = 0;
  for (int b = 0; b < batches; b++)
    for (int r = 0; r < W; r++)
      for (int a = 0; a < A; a++) {
        lcc_owned_batch ob;
        if (lcc_loader_next(l[r], &ob)) {
          fprintf(stderr, "%s\n", lcc_last_error());
          exit(1);
        }
        for (int s = 0; s < M; s++, n++) {
          ids[n] = ob.sample_ids[s];
          if (content) CHECKF(is_sample(&ob, s, ids[n]), "sample %lld is not its dataset's", (long long)ids[n]);
        }
        lcc_batch_free(&ob);
      }
  for (int r = 0; r < W; r++) lcc_loader_close(l[r]);
  return ids;
}

static void test_world_sizes(void) {
  int64_t *ref = run(spec, 1, 6, 1, 0, 0, BATCHES, 1);
  lcc_loader *l = must_open(spec, 1, 0, 1, 1, 0, 1, 0);
  int same = 1;
  for (int p = 0; p < BATCHES * G; p++) same &= lcc_loader_index_at(l, p) == ref[p];
  lcc_loader_close(l);
  check(same, "the batches' sample ids are the stream's, and each sample is its dataset's own (tokens, tag)");
  const int configs[][4] = {{2, 3, 1, 2}, {3, 2, 1, 1}, {3, 1, 2, 3}, {6, 1, 1, 0}, {2, 1, 3, 1}};
  for (size_t c = 0; c < sizeof configs / sizeof configs[0]; c++) {   // {world, micro batch, accum, threads}
    int64_t *got = run(spec, configs[c][0], configs[c][1], configs[c][2], configs[c][3], 0, BATCHES, 0);
    checkf(!memcmp(got, ref, BATCHES * G * sizeof(int64_t)), "world %d, micro batch %d, accum %d, threads %d: the same "
           "240 samples", configs[c][0], configs[c][1], configs[c][2], configs[c][3]);
    free(got);
  }
  const int stops[3] = {1, 7, 31};   // resume after k global batches, on 2 ranks
  for (int s = 0; s < 3; s++) {
    int64_t *got = run(spec, 2, 3, 1, 1, (int64_t)stops[s] * G, BATCHES - stops[s], 1);
    checkf(!memcmp(got, ref + stops[s] * G, (size_t)(BATCHES - stops[s]) * G * sizeof(int64_t)),
           "opened at consumed = %d: the uninterrupted run's next batches", stops[s] * G);
    free(got);
  }
  free(ref);
}

// Opening far into a run: cheap, and the batches are the stream's there. The id at position p is dataset d's
// epoch permutation at q = the positions before p that drew d (closed form), so the counts define the draws.
static void test_far(int64_t C) {
  const double t0 = lcc_now();
  lcc_loader *l = must_open(spec, 2, 1, 3, 1, 1, 1, C);
  const double dt = lcc_now() - t0;
  int ok = 1;
  for (int b = 0; b < 3; b++) {
    lcc_owned_batch ob;
    if (lcc_loader_next(l, &ob)) {
      fprintf(stderr, "%s\n", lcc_last_error());
      exit(1);
    }
    for (int s = 0; s < 3; s++) {
      const int64_t p = C + b * G + 3 + s, id = ob.sample_ids[s];   // rank 1 of 2: the second half
      const int d = lcc_loader_dataset_of(l, id);
      int64_t drawn[ND];
      lcc_loader_drawn(l, p, drawn);
      uint32_t *perm = perm_of(d, drawn[d] / sizes[d]);
      ok &= id == lcc_loader_index_at(l, p) && id == first[d] + perm[drawn[d] % sizes[d]] && is_sample(&ob, s, id);
      free(perm);
    }
    lcc_batch_free(&ob);
  }
  lcc_loader_close(l);
  checkf(ok && dt < 0.5, "opened at consumed = %.0e in %.3f ms: the stream's samples there", (double)C, 1e3 * dt);
}

// One dataset, with or without a weight, is the order a single dataset always had: perm(seed, p / N)[p % N].
static void test_one_dataset(void) {
  char weighted[600];
  snprintf(weighted, sizeof weighted, " %s:0.3 ", dirs[0]);
  lcc_loader *plain = must_open(dirs[0], 1, 0, 1, 1, 0, 1, 0), *w = must_open(weighted, 1, 0, 1, 1, 0, 1, 0);
  int same = lcc_loader_datasets(plain) == 1 && lcc_loader_datasets(w) == 1;
  for (int e = 0; e < 3; e++) {
    uint32_t *perm = lcc_malloc(37 * sizeof(uint32_t));
    lcc_order_permutation(42, e, perm, 37);
    for (int i = 0; i < 37; i++) {
      same &= lcc_loader_index_at(plain, e * 37 + i) == perm[i] && lcc_loader_index_at(w, e * 37 + i) == perm[i];
    }
    free(perm);
  }
  lcc_loader_close(plain), lcc_loader_close(w);
  int64_t *a = run(dirs[0], 2, 3, 1, 1, 0, 10, 0), *b = run(weighted, 3, 1, 2, 0, 0, 10, 0);
  same &= !memcmp(a, b, 10 * G * sizeof(int64_t));
  free(a), free(b);
  check(same, "one dataset, 'DIR' or 'DIR:0.3': the permutation of (seed, epoch) of before, batch for batch");
  lcc_loader *cat = must_open(spec, 1, 0, 1, 1, 0, 0, 0);   // shuffle = 0: the datasets one after another
  int in_order = 1;
  for (int p = 0; p < 2 * 77; p++) in_order &= lcc_loader_index_at(cat, p) == p % 77;
  int64_t drawn[ND];
  lcc_loader_drawn(cat, 77 + 40, drawn);   // one epoch, then all of A and 3 of B
  lcc_loader_close(cat);
  check(in_order && drawn[0] == 74 && drawn[1] == 14 && drawn[2] == 29,
        "shuffle = 0: every sample once per epoch, in list order");
}

// ---- errors ----

static void refused(const char *data, const lcc_data_expect *e, const char *what, const char *f1, const char *f2) {
  lcc_loader_opts o = {.data = data, .seed = 1, .shuffle = 1, .world_size = 1, .micro_batch = 1, .grad_accum = 1,
                       .threads = 0, .prefetch = 1, .max_open_shards = 2, .expect = e};
  lcc_loader *l = lcc_loader_open(&o, 0);
  expect_error(l ? 0 : -1, what, f1, f2, NULL);
  lcc_loader_close(l);
}

static void test_errors(const char *root) {
  char text[2048], other[512], p16[512];
  snprintf(text, sizeof text, "%s:1, %s/nope:1", dirs[0], root);
  refused(text, NULL, "a missing dataset", "data entry 2", "nope");
  snprintf(text, sizeof text, "%s:1, %s:0", dirs[0], dirs[1]);
  refused(text, NULL, "a zero weight", "the weight must be a positive number", dirs[1]);
  snprintf(text, sizeof text, "%s:1, %s, %s/:2", dirs[0], dirs[1], dirs[0]);
  refused(text, NULL, "a dataset listed twice", "data entry 3", "listed twice (entries 1 and 3)");
  snprintf(other, sizeof other, "%s/other", root);   // another tokenizer
  mkdir(other, 0755);
  lcc_shard_meta m = meta;
  m.tokenizer_hash ^= 1;
  snprintf(p16, sizeof p16, "%s/p16", root);   // another patch size
  mkdir(p16, 0755);
  lcc_shard_meta m16 = meta;
  m16.patch_size = 16;
  if (fx_dataset(other, (const int[]){4}, 1, &m, 2) || fx_dataset(p16, (const int[]){4}, 1, &m16, 2)) {
    test_fail(__FILE__, __LINE__, "%s", lcc_last_error());
    return;
  }
  snprintf(text, sizeof text, "%s:1, %s:1", dirs[0], other);
  refused(text, NULL, "datasets of two tokenizers", "data entry 2", "must be tokenized by the same tokenizer");
  lcc_data_expect e = {.model = "model.json", .patch_size = 14, .merge_size = 2, .temporal_patch_size = 2,
                       .vocab_size = 151936};
  memcpy(e.image_mean, meta.image_mean, sizeof e.image_mean);
  memcpy(e.image_std, meta.image_std, sizeof e.image_std);
  snprintf(text, sizeof text, "%s:1, %s:1", dirs[0], p16);
  refused(text, &e, "a dataset made for another model", "p16/shard-00000.h5", "patch_size 16");
  lcc_loader *ok = open_list(text, 1, 0, 1, 1, 0, 1, 0);   // without a model to compare with it opens
  CHECK(ok != NULL);
  lcc_loader_close(ok);
}

// ---- corrupt samples ----

// Dataset D (5 + 6 samples) with its first shard truncated, mixed with A: every position keeps its dataset; a
// corrupt sample of D is replaced by the next readable one of D's stream; a resume on another world size repeats
// the replacements.
static void test_corrupt(const char *root) {
  char d_dir[512], text[1200];
  snprintf(d_dir, sizeof d_dir, "%s/d", root);
  mkdir(d_dir, 0755);
  if (fx_dataset(d_dir, (const int[]){5, 6}, 2, &meta, 2)) {
    test_fail(__FILE__, __LINE__, "%s", lcc_last_error());
    return;
  }
  CHECK(truncate(path_in(d_dir, "shard-00000.h5"), 3000) == 0);
  snprintf(text, sizeof text, "%s:0.6, %s:0.4", dirs[0], d_dir);
  enum { B = 30 };
  int64_t *got = run(text, 2, 3, 1, 2, 0, B, 0);
  lcc_loader *l = must_open(text, 1, 0, 1, 1, 0, 1, 0);
  int64_t *seq = lcc_malloc(4 * B * G * sizeof(int64_t)), n_d = 0, *q_of = lcc_malloc(B * G * sizeof(int64_t));
  for (int64_t p = 0; p < 4 * B * G; p++) {   // D's stream: its ids in position order
    const int64_t id = lcc_loader_index_at(l, p);
    if (p < B * G) q_of[p] = lcc_loader_dataset_of(l, id) == 1 ? n_d : -1;
    if (lcc_loader_dataset_of(l, id) == 1) seq[n_d++] = id;
  }
  int ok = 1, replaced = 0;
  for (int p = 0; p < B * G; p++) {
    const int64_t want = lcc_loader_index_at(l, p);
    if (q_of[p] < 0) {
      ok &= got[p] == want;
      continue;
    }
    int64_t q = q_of[p];
    while (q < n_d && seq[q] - 37 < 5) q++;   // tags 0..4 are in the truncated shard
    ok &= q < n_d && got[p] == seq[q];
    replaced += q != q_of[p];
  }
  lcc_loader_close(l);
  int64_t *resumed = run(text, 3, 1, 2, 0, 12 * G, B - 12, 0);
  checkf(ok && replaced > 0 && !memcmp(resumed, got + 12 * G, (B - 12) * G * sizeof(int64_t)),
         "%d corrupt draws of D replaced by D's next readable samples, the same after a resume on 3 ranks", replaced);
  free(got), free(resumed), free(seq), free(q_of);
}

int main(void) {
  const char *root = test_fresh_dir("mix");
  fx_meta(&meta, LCC_CODEC_RAW);
  const int *counts[ND] = {counts_a, counts_b, counts_c}, n_shards[ND] = {2, 1, 3};
  for (int d = 0; d < ND; d++) {
    snprintf(dirs[d], sizeof dirs[d], "%s/%c", root, 'a' + d);
    mkdir(dirs[d], 0755);
    if (fx_dataset(dirs[d], counts[d], n_shards[d], &meta, grids[d])) {
      fprintf(stderr, "%s\n", lcc_last_error());
      return 1;
    }
  }
  snprintf(spec, sizeof spec, "%s:0.5, %s:0.3, %s/manifest.json:0.2", dirs[0], dirs[1], dirs[2]);
  snprintf(dirs[2], sizeof dirs[2], "%s/c/manifest.json", root);   // the name as listed
  test_parse();
  test_schedule();
  test_fractions();
  test_world_sizes();
  test_far(100000002);
  test_far(1000000000002);
  test_one_dataset();
  test_errors(root);
  test_corrupt(root);
  return test_finish("test_loader_mix");
}
