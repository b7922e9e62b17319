// What every test program shares: a failure count, checks that are quiet on success (CHECK, CHECKF) or
// print one ok/FAIL line (check, checkf, check_tol, expect_error), a scratch directory ($TEST_TMPDIR, or
// /tmp/lcc-test-<pid> when it is unset) with paths and small files in it, and the final summary.
#ifndef LCC_TESTLIB_H
#define LCC_TESTLIB_H

#include <stddef.h>
#include <stdint.h>

extern int test_failures;   // failed checks so far

// Counts a failure and prints "file:line: CHECK failed: <the expression, or the printf-style message>" to
// stderr. Both evaluate to 1 when cond holds, else 0; the message's arguments are evaluated only on failure.
#define CHECK(cond) CHECKF(cond, "%s", #cond)
#define CHECKF(cond, ...) ((cond) ? 1 : test_fail(__FILE__, __LINE__, __VA_ARGS__))
int test_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));   // returns 0

// One line on stdout, "ok   <what>" or "FAIL <what>", counting a failure; each returns cond.
int check(int cond, const char *what);
int checkf(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// An error measure against its tolerance: ok when err <= tol (NaN fails); the line shows both.
int check_tol(const char *what, double err, double tol);

// The call that returned rc must have failed with a message holding every fragment (a NULL-terminated
// list): prints "ok/FAIL  <what> -> <message>" (or "(no error)"). error_has only tests the message and
// prints it to stderr when a fragment is missing.
int expect_error(int rc, const char *what, ...) __attribute__((sentinel));
int error_has(const char *fragment, ...) __attribute__((sentinel));

// The scratch directory, created (mkdir -p) on first use; test_tmpdir_init creates it up front.
void test_tmpdir_init(void);
const char *test_tmpdir(void);
// dir/name and <scratch>/name in one of 8 rotating static buffers: a few can be alive at once.
const char *path_in(const char *dir, const char *name);
const char *tmp_path(const char *name);
// <scratch>/name, removed and made again empty; the string stays valid until the next call.
const char *test_fresh_dir(const char *name);

// Whole files; a failure to write is fatal.
void write_file(const char *path, const void *data, size_t n);
void write_text(const char *path, const char *text);

// Random test inputs: one xorshift64* stream per program, reseeded by test_seed.
void test_seed(uint64_t seed);
uint32_t test_rand_u32(void);
double test_rand_uniform(void);                 // in (0, 1)
float test_rand_normal(void);                   // N(0, 1), Box-Muller (first uniform for the radius)
float *test_randn(size_t n, float scale);       // [n] ~ N(0, scale^2), malloc'd

// Error measures against a reference: sqrt(sum (x - ref)^2 / sum ref^2) (a zero reference divides by 1) and
// the largest |x - ref|; NaN in x gives NaN (rel) or stays the maximum (max).
double rel_l2(const float *x, const float *ref, size_t n);
double max_abs_diff(const float *x, const float *ref, size_t n);

// Prints "<name>: OK" (stdout) or "<name>: N check(s) failed" (stderr); returns the exit status, 0 or 1.
int test_finish(const char *name);

#endif
