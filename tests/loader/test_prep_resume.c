// Resume: a finished job with 2 workers and 3 shards; one shard and its sidecar are deleted (as if the
// job had been killed before finishing it) and a stale .tmp is left; the re-run writes only that shard
// (the others keep their modification times), and the manifest equals the first run's and a fresh run's
// in another directory (same sample counts, sizes and CRC-64s). Other settings on resume are an error.
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "prep_util.h"
#include "testlib.h"
#include "util.h"

static void line(FILE *f, double start, const char *word) {
  fprintf(f,
          "[{\"role\": \"user\", \"content\": [{\"type\": \"video\", \"video\": \"v.mp4\", \"video_start\": %g, \"video_end\": 7.6}, "
          "{\"type\": \"text\", \"text\": \"\", \"title\": \"shapes\"}]}, {\"role\": \"assistant\", \"content\": "
          "[{\"type\": \"text_stream\", \"text_stream\": [[%g, %g, \"%s\"], [5.9, 6.3, \"green\"]]}]}]\n",
          start, start + 0.3, start + 0.6, word);
}

static struct timespec mtime(const char *path) {
  struct stat st;
  LCC_CHECK(stat(path, &st) == 0, "cannot stat %s", path);
  return st.st_mtim;
}

// Waits for the wall clock's next second, so that a rewritten file would carry other timestamps (HDF5
// stores object times in seconds) and its modification time would differ.
static void next_second(void) {
  time_t t = time(NULL);
  while (time(NULL) == t) usleep(10000);
}

static int same_time(struct timespec a, struct timespec b) { return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec; }

static void load_manifest(const char *dir, lcc_manifest *m) { LCC_CHECK(lcc_manifest_load(dir, m) == 0, "%s", lcc_last_error()); }

static int same_manifest(const lcc_manifest *a, const lcc_manifest *b) {
  if (a->n != b->n || a->total_samples != b->total_samples || a->tokenizer_hash != b->tokenizer_hash) return 0;
  for (int i = 0; i < a->n; i++)
    if (strcmp(a->shards[i].file, b->shards[i].file) || a->shards[i].n_samples != b->shards[i].n_samples ||
        a->shards[i].bytes != b->shards[i].bytes || a->shards[i].checksum != b->shards[i].checksum)
      return 0;
  return 1;
}

int main(void) {
  const char *dir = test_fresh_dir("resume");
  char path[1200], jsonl[1200], out[1200], fresh[1200];
  pu_path(path, sizeof path, dir, "v.mp4");
  pu_video(path, 112, 84, 4, 9);
  pu_path(jsonl, sizeof jsonl, dir, "r.jsonl");
  FILE *f = fopen(jsonl, "w");
  LCC_CHECK(f, "cannot write %s", jsonl);
  const char *words[] = {"red", "blue", "circle", "square", "triangle", "yellow"};
  for (int i = 0; i < 6; i++) line(f, 1.1 + 0.1 * i, words[i]);
  fclose(f);
  pu_path(out, sizeof out, dir, "out");
  pu_path(fresh, sizeof fresh, dir, "fresh");

  lcc_prep_opts o;
  const char *inputs[] = {jsonl};
  pu_opts(&o, inputs, 1, out);
  o.samples_per_shard = 2, o.workers = 2;
  lcc_prep_stats st;
  CHECK(pu_run(&o, &st, dir) == 0 && st.shards == 3 && st.shards_written == 3 && st.written == 6);
  lcc_manifest first, again, other;
  load_manifest(out, &first);

  char s0[1300], s1[1300], s1_json[1300], s1_tmp[1300], s2[1300];
  pu_path(s0, sizeof s0, out, "shard-00000.h5");
  pu_path(s1, sizeof s1, out, "shard-00001.h5");
  pu_path(s1_json, sizeof s1_json, out, "shard-00001.json");
  pu_path(s1_tmp, sizeof s1_tmp, out, "shard-00001.h5.tmp");
  pu_path(s2, sizeof s2, out, "shard-00002.h5");
  struct timespec t0 = mtime(s0), t2 = mtime(s2);
  CHECK(unlink(s1) == 0 && unlink(s1_json) == 0);
  write_text(s1_tmp, "partial shard of a killed run");
  next_second();

  CHECK(pu_run(&o, &st, dir) == 0);
  CHECK(st.shards == 3 && st.shards_written == 1 && st.shards_reused == 2 && st.written == 6 && st.samples_in == 6);
  CHECK(same_time(mtime(s0), t0) && same_time(mtime(s2), t2));
  CHECK(access(s1, F_OK) == 0 && access(s1_tmp, F_OK) != 0);
  load_manifest(out, &again);
  CHECK(same_manifest(&first, &again));

  // A fresh run elsewhere, with one worker: the same shards, byte for byte.
  next_second();
  pu_opts(&o, inputs, 1, fresh);
  o.samples_per_shard = 2;
  CHECK(pu_run(&o, &st, dir) == 0 && st.shards_written == 3);
  load_manifest(fresh, &other);
  int same = same_manifest(&first, &other);
  if (!same)
    for (int i = 0; i < first.n && i < other.n; i++)
      fprintf(stderr, "%s: %lld bytes crc %016llx vs %lld bytes crc %016llx\n", first.shards[i].file, (long long)first.shards[i].bytes,
              (unsigned long long)first.shards[i].checksum, (long long)other.shards[i].bytes, (unsigned long long)other.shards[i].checksum);
  CHECK(same);

  // Resuming with other settings is refused, naming prep.conf.
  pu_opts(&o, inputs, 1, out);
  o.samples_per_shard = 2, o.settings = "test\njpeg_quality = 80\n";
  CHECK(pu_run(&o, &st, dir) != 0 && strstr(lcc_last_error(), "prep.conf") && strstr(lcc_last_error(), "jpeg_quality = 80"));

  lcc_manifest_free(&first);
  lcc_manifest_free(&again);
  lcc_manifest_free(&other);
  return test_finish("test_prep_resume");
}
