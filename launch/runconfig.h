// Run configuration: a table of typed keys filled from a `key = value` file (# comments) and then from
// --key=value flags, which win. Unknown keys are errors that suggest the closest known key.
#ifndef LCC_RUNCONFIG_H
#define LCC_RUNCONFIG_H

#include <stddef.h>

typedef enum { LCC_OPT_INT, LCC_OPT_FLOAT, LCC_OPT_STRING, LCC_OPT_BOOL } lcc_opt_type;

typedef struct {
  const char *key;
  lcc_opt_type type;
  size_t offset;        // offsetof the field in the options struct (int, double, char[LCC_OPT_STR] or int)
  const char *def;      // default, as text
  const char *help;
} lcc_opt;

#define LCC_OPT_STR 512   // size of every string field

// Sets every field to its default. Returns 0, or -1 with lcc_error() (a bad default is a bug).
int lcc_opts_defaults(void *opts, const lcc_opt *table, int n);
// Applies `key = value` lines of a file. Errors name the file, the line and the key.
int lcc_opts_load_file(void *opts, const lcc_opt *table, int n, const char *path);
// Applies one "key=value" (flags: the caller strips the leading "--"). `where` names the source in errors.
int lcc_opts_set(void *opts, const lcc_opt *table, int n, const char *key, const char *value, const char *where);
// A program's command line: defaults, then the file of --config FILE (or --config=FILE), then the flags in
// order: --key=value, --key value, or a bare --key for a boolean key (true). '-' in a flag name reads as '_'
// (--dry-run is dry_run). Returns 0, or -1 with lcc_error(). --help is the caller's.
int lcc_opts_parse_argv(void *opts, const lcc_opt *table, int n, int argc, char **argv);
// Writes every key with its resolved value, one "key = value" line each (the format the file reader takes).
void lcc_opts_print(const void *opts, const lcc_opt *table, int n, FILE *f);
// The same lines as one malloc'd string (for files and checkpoints that record a run's settings).
char *lcc_opts_text(const void *opts, const lcc_opt *table, int n);
// Prints the key list with defaults and help.
void lcc_opts_usage(const lcc_opt *table, int n, FILE *f);

#endif
