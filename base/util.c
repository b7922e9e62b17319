#include "util.h"

#include <errno.h>
#include <pthread.h>
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

// Formats into a scratch buffer first: callers wrap the previous error, lcc_error("x: %s", lcc_last_error()),
// and vsnprintf into the buffer it reads from would overwrite its own argument.
int lcc_error(const char *fmt, ...) {
  char message[sizeof last_error];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  memcpy(last_error, message, sizeof last_error);
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

void lcc_pathf(char *out, size_t cap, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(out, cap, fmt, ap);
  va_end(ap);
  LCC_CHECK(n >= 0 && (size_t)n < cap, "path longer than %zu bytes: %s...", cap, out);
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

// Slicing by 8: table[k][b] is the CRC of byte b followed by k zero bytes, so 8 bytes fold in per step.
static uint64_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void) {
  for (int b = 0; b < 256; b++) {
    uint64_t c = (uint64_t)b << 56;
    for (int k = 0; k < 8; k++) c = (c & (1ull << 63)) ? (c << 1) ^ 0x42F0E1EBA9EA3693ull : c << 1;
    crc_table[0][b] = c;
  }
  for (int b = 0; b < 256; b++)
    for (int k = 1; k < 8; k++) crc_table[k][b] = crc_table[0][crc_table[k - 1][b] >> 56] ^ (crc_table[k - 1][b] << 8);
}

uint64_t lcc_crc64(uint64_t crc, const void *data, size_t n) {
  pthread_once(&crc_once, crc_init);
  const unsigned char *p = data;
  for (; n >= 8; n -= 8, p += 8) {
    crc ^= (uint64_t)p[0] << 56 | (uint64_t)p[1] << 48 | (uint64_t)p[2] << 40 | (uint64_t)p[3] << 32 |
           (uint64_t)p[4] << 24 | (uint64_t)p[5] << 16 | (uint64_t)p[6] << 8 | (uint64_t)p[7];
    crc = crc_table[7][crc >> 56] ^ crc_table[6][(crc >> 48) & 255] ^ crc_table[5][(crc >> 40) & 255] ^
          crc_table[4][(crc >> 32) & 255] ^ crc_table[3][(crc >> 24) & 255] ^ crc_table[2][(crc >> 16) & 255] ^
          crc_table[1][(crc >> 8) & 255] ^ crc_table[0][crc & 255];
  }
  for (; n; n--, p++) crc = crc_table[0][(crc >> 56) ^ *p] ^ (crc << 8);
  return crc;
}

int lcc_file_crc64(const char *path, uint64_t *crc, int64_t *bytes) {
  FILE *f = fopen(path, "rb");
  if (!f) return lcc_error("%s: %s", path, strerror(errno));
  size_t cap = 1 << 20, got;
  unsigned char *buf = lcc_malloc(cap);
  *crc = 0;
  *bytes = 0;
  while ((got = fread(buf, 1, cap, f)) > 0) {
    *crc = lcc_crc64(*crc, buf, got);
    *bytes += (int64_t)got;
  }
  int bad = ferror(f);
  fclose(f);
  free(buf);
  return bad ? lcc_error("%s: read error after %lld bytes", path, (long long)*bytes) : 0;
}

// The value of a "Key:   N kB" line of /proc/self/status, in MiB.
static long status_mb(const char *key) {
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return 0;
  char line[256];
  long kb = 0;
  const size_t n = strlen(key);
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, key, n) && line[n] == ':') {
      kb = strtol(line + n + 1, NULL, 10);
      break;
    }
  fclose(f);
  return kb / 1024;
}

long lcc_rss_mb(void) { return status_mb("VmRSS"); }
long lcc_peak_rss_mb(void) { return status_mb("VmHWM"); }
