// Small shared utilities: fatal checks for programming and library errors, a per-thread message for
// errors the user can cause, checked allocation, and a wall clock.
#ifndef LCC_UTIL_H
#define LCC_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

// Print "file:line: message" to stderr and exit(1). For bugs and failed library calls, never user input.
void lcc_fatal_at(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4), noreturn));
#define lcc_fatal(...) lcc_fatal_at(__FILE__, __LINE__, __VA_ARGS__)
#define LCC_CHECK(cond, ...) do { if (!(cond)) lcc_fatal_at(__FILE__, __LINE__, __VA_ARGS__); } while (0)

// Errors the user can cause (bad file, bad config): the function that finds one records a message naming
// the file and the key or tensor with lcc_error() and returns non-zero; its caller prints lcc_last_error().
int lcc_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));   // always returns -1
const char *lcc_last_error(void);

void *lcc_malloc(size_t bytes);              // exits with a message when out of memory
void *lcc_calloc(size_t n, size_t size);
void *lcc_realloc(void *p, size_t bytes);
char *lcc_strdup(const char *s);

double lcc_now(void);   // monotonic seconds
// This process's resident memory now and at its peak (VmRSS, VmHWM of /proc/self/status), MiB; 0 if unknown.
long lcc_rss_mb(void);
long lcc_peak_rss_mb(void);

// snprintf into a path buffer; a path that does not fit is a fatal error, never a silently cut name.
void lcc_pathf(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

// Read a whole file into a NUL-terminated buffer; NULL (with lcc_error set) on failure.
char *lcc_read_file(const char *path, size_t *len);

// CRC-64/ECMA-182 (polynomial 0x42F0E1EBA9EA3693, MSB first, initial value 0, no final xor; the check
// value of "123456789" is 0x6C40DF5F0B497347): continue `crc` over n bytes.
uint64_t lcc_crc64(uint64_t crc, const void *data, size_t n);
// The CRC-64 and size of a whole file. Returns 0, or -1 with lcc_error() naming the file.
int lcc_file_crc64(const char *path, uint64_t *crc, int64_t *bytes);

#endif
