// livecc-prep --verify's check (lcc_dataset_verify): a dataset as written passes; a missing shard, a
// truncated one and one with a flipped byte are each reported once, in manifest order, with the reason;
// a missing or empty manifest is an error.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shard_fixture.h"
#include "testlib.h"
#include "util.h"
#include "verify.h"

// Runs the check; returns its report (malloc'd) and fills st.
static char *verify(const char *dir, int threads, lcc_verify_stats *st, int *rc) {
  const char *path = tmp_path("report.txt");
  FILE *report = fopen(path, "w");
  LCC_CHECK(report, "cannot write %s", path);
  *rc = lcc_dataset_verify(dir, threads, report, NULL, st);
  LCC_CHECK(fclose(report) == 0, "cannot write %s", path);
  return lcc_read_file(path, NULL);
}

static void flip_byte(const char *path, long at) {
  FILE *f = fopen(path, "r+b");
  LCC_CHECK(f && fseek(f, at, SEEK_SET) == 0, "cannot open %s", path);
  const int c = fgetc(f);
  LCC_CHECK(c != EOF && fseek(f, at, SEEK_SET) == 0 && fputc(c ^ 0x40, f) != EOF && fclose(f) == 0, "cannot edit %s", path);
}

int main(void) {
  const char *dir = test_fresh_dir("dataset");
  lcc_shard_meta meta;
  fx_meta(&meta, LCC_CODEC_JPEG);
  const int counts[4] = {5, 4, 6, 3};
  LCC_CHECK(fx_dataset(dir, counts, 4, &meta, 4) == 0, "%s", lcc_last_error());

  lcc_verify_stats st;
  int rc;
  for (int threads = 1; threads <= 3; threads += 2) {
    char *report = verify(dir, threads, &st, &rc);
    checkf(rc == 0 && st.shards == 4 && st.bad == 0 && st.bytes > 0 && !report[0],
           "intact dataset passes (%d thread(s)): %d shards, %lld bytes", threads, st.shards, (long long)st.bytes);
    free(report);
  }

  // damage three of the four shards: shard-00000 gone, shard-00002 truncated, shard-00003 one byte flipped
  char p0[4200], p2[4200], p3[4200];
  lcc_pathf(p0, sizeof p0, "%s/shard-00000.h5", dir);
  lcc_pathf(p2, sizeof p2, "%s/shard-00002.h5", dir);
  lcc_pathf(p3, sizeof p3, "%s/shard-00003.h5", dir);
  LCC_CHECK(unlink(p0) == 0 && truncate(p2, 1000) == 0, "cannot damage the dataset");
  flip_byte(p3, 2000);
  char *report = verify(dir, 2, &st, &rc);
  check(rc == 0 && st.shards == 4 && st.bad == 3, "three damaged shards of four are counted");
  const char *missing = strstr(report, "shard-00000.h5: No such file"), *cut = strstr(report, "shard-00002.h5: 1000 bytes"),
             *flipped = strstr(report, "shard-00003.h5: CRC-64");
  checkf(missing && cut && flipped && missing < cut && cut < flipped && !strstr(report, "shard-00001"),
         "each is named once with its reason, in manifest order:\n%s", report);
  check(strstr(report, "(truncated or rewritten)") && strstr(report, "(damaged)"), "the reasons say what happened");
  free(report);

  rc = lcc_dataset_verify(tmp_path("no-such-dataset"), 2, stdout, NULL, &st);
  check(rc == -1 && error_has("no-such-dataset", NULL), "a missing manifest is an error naming it");

  const char *empty = test_fresh_dir("empty");
  LCC_CHECK(fx_dataset(empty, NULL, 0, &meta, 4) == 0, "%s", lcc_last_error());
  rc = lcc_dataset_verify(empty, 2, stdout, NULL, &st);
  check(rc == -1 && error_has("empty/manifest.json: the dataset is empty (0 shards, 0 samples)", NULL),
        "an empty manifest is an error, not 'all match'");
  return test_finish("test_verify");
}
