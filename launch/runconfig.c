#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runconfig.h"
#include "util.h"

static int edit_distance(const char *a, const char *b) {
  size_t n = strlen(a), m = strlen(b);
  int *row = lcc_malloc((m + 1) * sizeof(int));
  for (size_t j = 0; j <= m; j++) row[j] = (int)j;
  for (size_t i = 1; i <= n; i++) {
    int diag = row[0];
    row[0] = (int)i;
    for (size_t j = 1; j <= m; j++) {
      int up = row[j];
      int sub = diag + (a[i - 1] != b[j - 1]);
      int best = up + 1 < row[j - 1] + 1 ? up + 1 : row[j - 1] + 1;
      row[j] = sub < best ? sub : best;
      diag = up;
    }
  }
  int d = row[m];
  free(row);
  return d;
}

static const lcc_opt *find(const lcc_opt *table, int n, const char *key) {
  for (int i = 0; i < n; i++)
    if (strcmp(table[i].key, key) == 0) return &table[i];
  return NULL;
}

// The known key nearest to a mistyped one: a key that contains it (or is contained in it) first, since
// users often type part of a key; otherwise the smallest edit distance.
static const char *closest(const lcc_opt *table, int n, const char *key) {
  const char *best = NULL;
  int best_d = 1 << 30;
  for (int i = 0; i < n; i++) {
    int d = edit_distance(key, table[i].key);
    if (strstr(table[i].key, key) || strstr(key, table[i].key)) d -= 1000;
    if (d < best_d) best_d = d, best = table[i].key;
  }
  return best;
}

static int parse_value(void *opts, const lcc_opt *o, const char *value, const char *where) {
  char *field = (char *)opts + o->offset, *end;
  errno = 0;
  switch (o->type) {
  case LCC_OPT_INT: {
    long long v = strtoll(value, &end, 10);
    if (end == value || *end || errno || v < -2147483647LL || v > 2147483647LL)
      return lcc_error("%s: key '%s' needs an integer, got '%s'", where, o->key, value);
    *(int *)field = (int)v;
    return 0;
  }
  case LCC_OPT_FLOAT: {
    double v = strtod(value, &end);
    if (end == value || *end || errno || !isfinite(v))
      return lcc_error("%s: key '%s' needs a number, got '%s'", where, o->key, value);
    *(double *)field = v;
    return 0;
  }
  case LCC_OPT_BOOL:
    if (!strcmp(value, "1") || !strcmp(value, "true") || !strcmp(value, "yes") || !strcmp(value, "on")) *(int *)field = 1;
    else if (!strcmp(value, "0") || !strcmp(value, "false") || !strcmp(value, "no") || !strcmp(value, "off")) *(int *)field = 0;
    else return lcc_error("%s: key '%s' needs true or false, got '%s'", where, o->key, value);
    return 0;
  case LCC_OPT_STRING:
    if (strlen(value) >= LCC_OPT_STR) return lcc_error("%s: value of key '%s' is too long", where, o->key);
    strcpy(field, value);
    return 0;
  }
  return lcc_error("%s: key '%s' has an unknown type", where, o->key);
}

int lcc_opts_set(void *opts, const lcc_opt *table, int n, const char *key, const char *value, const char *where) {
  const lcc_opt *o = find(table, n, key);
  if (!o) return lcc_error("%s: unknown key '%s' (did you mean '%s'?)", where, key, closest(table, n, key));
  return parse_value(opts, o, value, where);
}

int lcc_opts_defaults(void *opts, const lcc_opt *table, int n) {
  for (int i = 0; i < n; i++)
    if (parse_value(opts, &table[i], table[i].def, "defaults")) return -1;
  return 0;
}

int lcc_opts_parse_argv(void *opts, const lcc_opt *table, int n, int argc, char **argv) {
  if (lcc_opts_defaults(opts, table, n)) return -1;
  for (int i = 1; i < argc; i++) {   // the config file first, so flags override it wherever they appear
    const char *file = NULL;
    if (!strcmp(argv[i], "--config") && i + 1 < argc) file = argv[i + 1];
    else if (!strncmp(argv[i], "--config=", 9)) file = argv[i] + 9;
    if (file && lcc_opts_load_file(opts, table, n, file)) return -1;
  }
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--config")) {
      i++;
      continue;
    }
    if (!strncmp(argv[i], "--config=", 9)) continue;
    if (strncmp(argv[i], "--", 2) != 0) return lcc_error("unexpected argument '%s' (flags look like --key=value)", argv[i]);
    char key[256];
    const char *eq = strchr(argv[i], '='), *value = NULL;
    snprintf(key, sizeof key, "%.*s", eq ? (int)(eq - argv[i] - 2) : (int)strlen(argv[i] + 2), argv[i] + 2);
    for (char *c = key; *c; c++)
      if (*c == '-') *c = '_';
    const lcc_opt *o = find(table, n, key);
    if (eq) value = eq + 1;
    else if (o && o->type == LCC_OPT_BOOL && (i + 1 >= argc || !strncmp(argv[i + 1], "--", 2))) value = "true";
    else if (i + 1 < argc) value = argv[++i];
    else return lcc_error("flag '%s' needs a value: --key=value or --key value", argv[i]);
    if (lcc_opts_set(opts, table, n, key, value, "command line")) return -1;
  }
  return 0;
}

static char *trim(char *s) {
  while (isspace((unsigned char)*s)) s++;
  char *e = s + strlen(s);
  while (e > s && isspace((unsigned char)e[-1])) *--e = 0;
  return s;
}

int lcc_opts_load_file(void *opts, const lcc_opt *table, int n, const char *path) {
  char *text = lcc_read_file(path, NULL);
  if (!text) return -1;
  int rc = 0, line_no = 0;
  for (char *line = text, *next; line && !rc; line = next) {
    next = strchr(line, '\n');
    if (next) *next++ = 0;
    line_no++;
    char *hash = strchr(line, '#');
    if (hash) *hash = 0;
    char *s = trim(line);
    if (!*s) continue;
    char where[600];
    snprintf(where, sizeof where, "%s:%d", path, line_no);
    char *eq = strchr(s, '=');
    if (!eq) {
      rc = lcc_error("%s: expected 'key = value', got '%s'", where, s);
      break;
    }
    *eq = 0;
    rc = lcc_opts_set(opts, table, n, trim(s), trim(eq + 1), where);
  }
  free(text);
  return rc;
}

static void format_value(const void *opts, const lcc_opt *o, char *out, size_t n) {
  const char *field = (const char *)opts + o->offset;
  switch (o->type) {
  case LCC_OPT_INT: snprintf(out, n, "%d", *(const int *)field); break;
  case LCC_OPT_FLOAT: snprintf(out, n, "%.9g", *(const double *)field); break;
  case LCC_OPT_BOOL: snprintf(out, n, "%s", *(const int *)field ? "true" : "false"); break;
  case LCC_OPT_STRING: snprintf(out, n, "%s", field); break;
  }
}

void lcc_opts_print(const void *opts, const lcc_opt *table, int n, FILE *f) {
  char buf[LCC_OPT_STR + 8];
  for (int i = 0; i < n; i++) {
    format_value(opts, &table[i], buf, sizeof buf);
    fprintf(f, "%s = %s\n", table[i].key, buf);
  }
}

char *lcc_opts_text(const void *opts, const lcc_opt *table, int n) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  LCC_CHECK(f, "open_memstream failed");
  lcc_opts_print(opts, table, n, f);
  LCC_CHECK(fclose(f) == 0, "open_memstream close failed");
  return text;
}

void lcc_opts_usage(const lcc_opt *table, int n, FILE *f) {
  for (int i = 0; i < n; i++) {
    char flag[LCC_OPT_STR + 64];
    snprintf(flag, sizeof flag, "--%s=%s", table[i].key, table[i].def[0] ? table[i].def : "\"\"");
    fprintf(f, "  %-34s %s\n", flag, table[i].help);
  }
}
