// Small shared utilities: fatal checks for programming and library errors, a per-thread message for
// errors the user can cause, checked allocation, and a wall clock.
#ifndef LCC_UTIL_H
#define LCC_UTIL_H

#include <stddef.h>
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

// Read a whole file into a NUL-terminated buffer; NULL (with lcc_error set) on failure.
char *lcc_read_file(const char *path, size_t *len);

#endif
