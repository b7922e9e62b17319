// The JSONL index (LIVECC.md 2.1): a file with LiveCC's seek-index last line and the same file without it
// give the same samples and line numbers; several files form one global index; a wrong index is a clear
// error: an offset that is not at a line start (when read, and as livecc-prep's job error), offsets out of
// order, a malformed index line.
#include <stdlib.h>
#include <string.h>

#include "jsonl.h"
#include "prep_util.h"
#include "testlib.h"
#include "util.h"

static const char *lines[] = {
    "[{\"role\": \"user\", \"content\": \"one\"}, {\"role\": \"assistant\", \"content\": \"1\"}]",
    "[{\"role\": \"user\", \"content\": \"two \\u00e9\"}, {\"role\": \"assistant\", \"content\": \"2\"}]",
    "",   // an empty line is a sample too (a malformed one)
    "[{\"role\": \"user\", \"content\": \"four\"}, {\"role\": \"assistant\", \"content\": \"4\"}]",
};
#define N 4

// The file's text; with_index: LiveCC's seek line ([0] + cumsum(len(line))[:-1], no trailing newline);
// bad_entry >= 0 moves that entry by `shift` bytes.
static void write_jsonl(const char *path, int with_index, int bad_entry, int shift, int plain_trailing_newline) {
  FILE *f = fopen(path, "wb");
  LCC_CHECK(f, "cannot write %s", path);
  long off[N], pos = 0;
  for (int i = 0; i < N; i++) {
    off[i] = pos;
    int last = i == N - 1 && !with_index && !plain_trailing_newline;
    fprintf(f, "%s%s", lines[i], last ? "" : "\n");
    pos += (long)strlen(lines[i]) + 1;
  }
  if (with_index) {
    fprintf(f, "[");
    for (int i = 0; i < N; i++) fprintf(f, "%s%ld", i ? ", " : "", off[i] + (i == bad_entry ? shift : 0));
    fprintf(f, "]");
  }
  fclose(f);
}

static void read_all(const char *path, int want_indexed) {
  lcc_jsonl j;
  const char *paths[] = {path};
  CHECK(lcc_jsonl_open(&j, paths, 1, NULL) == 0);
  CHECK(j.n == N && j.files[0].indexed == want_indexed);
  lcc_jsonl_line l = {0};
  for (int i = 0; i < N && i < j.n; i++) {
    CHECK(lcc_jsonl_read(&j, i, &l) == 0);
    CHECK(l.len == strlen(lines[i]) && !strcmp(l.text, lines[i]) && l.line == i + 1 && !strcmp(l.path, path));
  }
  lcc_jsonl_line_free(&l);
  lcc_jsonl_close(&j);
}

static void expect_open_error(const char *path, const char *want) {
  lcc_jsonl j;
  const char *paths[] = {path};
  int rc = lcc_jsonl_open(&j, paths, 1, NULL);
  CHECKF(rc != 0 && strstr(lcc_last_error(), path) && strstr(lcc_last_error(), want), "expected an error with '%s', got %s",
         want, rc ? lcc_last_error() : "success");
}

int main(void) {
  const char *dir = test_fresh_dir("jsonl");
  char seek[1200], plain[1200], plain_nl[1200], bad[1200], order[1200], malformed[1200];
  pu_path(seek, sizeof seek, dir, "seek.jsonl");
  pu_path(plain, sizeof plain, dir, "plain.jsonl");
  pu_path(plain_nl, sizeof plain_nl, dir, "plain_nl.jsonl");
  write_jsonl(seek, 1, -1, 0, 0);
  write_jsonl(plain, 0, -1, 0, 0);
  write_jsonl(plain_nl, 0, -1, 0, 1);
  read_all(seek, 1);
  read_all(plain, 0);
  read_all(plain_nl, 0);

  // Three files, one global index.
  lcc_jsonl j;
  const char *three[] = {plain, seek, plain_nl};
  CHECK(lcc_jsonl_open(&j, three, 3, NULL) == 0 && j.n == 3 * N);
  lcc_jsonl_line l = {0};
  CHECK(lcc_jsonl_read(&j, N + 1, &l) == 0 && !strcmp(l.path, seek) && l.line == 2 && !strcmp(l.text, lines[1]));
  CHECK(lcc_jsonl_read(&j, 3 * N - 1, &l) == 0 && !strcmp(l.path, plain_nl) && l.line == N && !strcmp(l.text, lines[N - 1]));
  lcc_jsonl_close(&j);

  // Entry 1 three bytes into its line: not at a line start.
  pu_path(bad, sizeof bad, dir, "bad.jsonl");
  write_jsonl(bad, 1, 1, 3, 0);
  const char *one[] = {bad};
  CHECK(lcc_jsonl_open(&j, one, 1, NULL) == 0);
  CHECK(lcc_jsonl_read(&j, 0, &l) != 0 && strstr(lcc_last_error(), bad) && strstr(lcc_last_error(), "entry 1 (offset"));
  CHECK(lcc_jsonl_read(&j, 1, &l) != 0 && strstr(lcc_last_error(), "seek index entry 1") &&
        strstr(lcc_last_error(), "not at a line start"));
  CHECK(lcc_jsonl_read(&j, 3, &l) == 0 && !strcmp(l.text, lines[3]));
  lcc_jsonl_close(&j);
  lcc_jsonl_line_free(&l);

  // livecc-prep stops on it with that message.
  char out[1200];
  pu_path(out, sizeof out, dir, "out");
  lcc_prep_opts o;
  pu_opts(&o, one, 1, out);
  lcc_prep_stats st;
  CHECK(pu_run(&o, &st, dir) != 0 && strstr(lcc_last_error(), bad) && strstr(lcc_last_error(), "not at a line start"));

  pu_path(order, sizeof order, dir, "order.jsonl");
  write_jsonl(order, 1, 2, -100, 0);
  expect_open_error(order, "seek index entry 2 (offset");
  pu_path(malformed, sizeof malformed, dir, "malformed.jsonl");
  write_jsonl(malformed, 0, -1, 0, 1);
  FILE *f = fopen(malformed, "ab");
  fputs("[0, 12, x]", f);
  fclose(f);
  expect_open_error(malformed, "seek index (last line) is malformed at column 9");
  write_text(malformed, "[0]");
  expect_open_error(malformed, "is not before the index line");

  return test_finish("test_prep_jsonl");
}
