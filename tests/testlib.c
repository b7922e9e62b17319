#include "testlib.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

int test_failures;
static char tmpdir[1024];

int test_fail(const char *file, int line, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s:%d: CHECK failed: ", file, line);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  test_failures++;
  return 0;
}

int check(int cond, const char *what) { return checkf(cond, "%s", what); }

int checkf(int cond, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  printf("%-4s ", cond ? "ok" : "FAIL");
  vprintf(fmt, ap);
  putchar('\n');
  va_end(ap);
  test_failures += !cond;
  return cond;
}

int check_tol(const char *what, double err, double tol) {
  return checkf(err <= tol, "%-56s err %.3e (tol %.0e)", what, err, tol);   // false for NaN
}

// Whether msg holds every string of the NULL-terminated list.
static int has_all(const char *msg, const char *first, va_list ap) {
  int ok = 1;
  for (const char *s = first; s; s = va_arg(ap, const char *)) ok &= strstr(msg, s) != NULL;
  return ok;
}

int expect_error(int rc, const char *what, ...) {
  va_list ap;
  va_start(ap, what);
  const char *first = va_arg(ap, const char *);
  const int ok = rc != 0 && has_all(lcc_last_error(), first, ap);
  va_end(ap);
  return checkf(ok, "%-28s -> %s", what, rc ? lcc_last_error() : "(no error)");
}

int error_has(const char *fragment, ...) {
  va_list ap;
  va_start(ap, fragment);
  const int ok = has_all(lcc_last_error(), fragment, ap);
  va_end(ap);
  if (!ok) fprintf(stderr, "unexpected message: %s\n", lcc_last_error());
  return ok;
}

void test_tmpdir_init(void) {
  const char *env = getenv("TEST_TMPDIR");
  if (env && *env) lcc_pathf(tmpdir, sizeof tmpdir, "%s", env);
  else lcc_pathf(tmpdir, sizeof tmpdir, "/tmp/lcc-test-%d", (int)getpid());
  char path[sizeof tmpdir];   // mkdir -p
  memcpy(path, tmpdir, sizeof path);
  for (char *p = path + 1;; p++) {
    if (*p == '/' || !*p) {
      char c = *p;
      *p = 0;
      LCC_CHECK(mkdir(path, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", path, strerror(errno));
      if (!(*p = c)) break;
    }
  }
}

const char *test_tmpdir(void) {
  if (!tmpdir[0]) test_tmpdir_init();
  return tmpdir;
}

const char *path_in(const char *dir, const char *name) {
  static char buf[8][4200];
  static int slot;
  slot = (slot + 1) % 8;
  lcc_pathf(buf[slot], sizeof buf[slot], "%s/%s", dir, name);
  return buf[slot];
}

const char *tmp_path(const char *name) { return path_in(test_tmpdir(), name); }

const char *test_fresh_dir(const char *name) {
  static char dir[4200];
  lcc_pathf(dir, sizeof dir, "%s", tmp_path(name));
  char cmd[2 * sizeof dir + 32];
  snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
  LCC_CHECK(system(cmd) == 0, "cannot make %s", dir);
  return dir;
}

void write_file(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  LCC_CHECK(f && (n == 0 || fwrite(data, 1, n, f) == n) && fclose(f) == 0, "cannot write %s", path);
}

void write_text(const char *path, const char *text) { write_file(path, text, strlen(text)); }

int test_finish(const char *name) {
  if (test_failures) {
    fprintf(stderr, "%s: %d check(s) failed\n", name, test_failures);
    return 1;
  }
  printf("%s: OK\n", name);
  return 0;
}

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;

void test_seed(uint64_t seed) { rng_state = seed ? seed : 0x2545F4914F6CDD1Dull; }   // xorshift needs a nonzero state

uint32_t test_rand_u32(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (uint32_t)((rng_state * 0x2545F4914F6CDD1Dull) >> 32);
}

double test_rand_uniform(void) { return (test_rand_u32() + 0.5) / 4294967296.0; }

float test_rand_normal(void) {
  const double u1 = test_rand_uniform(), u2 = test_rand_uniform();   // sequenced: the same values on every compiler
  return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}

float *test_randn(size_t n, float scale) {
  float *x = lcc_malloc((n ? n : 1) * sizeof(float));
  for (size_t i = 0; i < n; i++) x[i] = scale * test_rand_normal();
  return x;
}

double rel_l2(const float *x, const float *ref, size_t n) {
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < n; i++) {
    const double d = (double)x[i] - ref[i];
    num += d * d, den += (double)ref[i] * ref[i];
  }
  return sqrt(num / (den > 0.0 ? den : 1.0));
}

double max_abs_diff(const float *x, const float *ref, size_t n) {
  double m = 0.0;
  for (size_t i = 0; i < n; i++) {
    const double d = fabs((double)x[i] - ref[i]);
    if (!(d <= m)) m = d;   // keeps NaN
  }
  return m;
}
