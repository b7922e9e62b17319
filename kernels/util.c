#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void lcc_fatal_at(const char *file, int line, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s:%d: ", file, line);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

static _Thread_local char last_error[1024];

int lcc_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_error, sizeof last_error, fmt, ap);
  va_end(ap);
  return -1;
}

const char *lcc_last_error(void) { return last_error; }

void *lcc_malloc(size_t bytes) {
  void *p = malloc(bytes ? bytes : 1);
  LCC_CHECK(p, "out of memory allocating %zu bytes", bytes);
  return p;
}

void *lcc_calloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  LCC_CHECK(p, "out of memory allocating %zu x %zu bytes", n, size);
  return p;
}

void *lcc_realloc(void *p, size_t bytes) {
  void *q = realloc(p, bytes ? bytes : 1);
  LCC_CHECK(q, "out of memory reallocating %zu bytes", bytes);
  return q;
}

char *lcc_strdup(const char *s) {
  size_t n = strlen(s) + 1;
  return memcpy(lcc_malloc(n), s, n);
}

double lcc_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

char *lcc_read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) { lcc_error("%s: %s", path, strerror(errno)); return NULL; }
  size_t cap = 1 << 16, n = 0;
  char *buf = lcc_malloc(cap);
  for (;;) {
    if (n + 1 >= cap) buf = lcc_realloc(buf, cap *= 2);
    size_t got = fread(buf + n, 1, cap - n - 1, f);
    n += got;
    if (got == 0) break;
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) { free(buf); lcc_error("%s: read error", path); return NULL; }
  buf[n] = 0;
  if (len) *len = n;
  return buf;
}
