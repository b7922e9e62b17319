#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "group.h"
#include "jsonl.h"
#include "util.h"

#define BLOCK (1 << 20)   // bytes per read when scanning

// Reads n bytes at offset off; -1 with lcc_error() on an I/O error or a file shorter than expected.
static int read_at(const char *path, int fd, char *buf, size_t n, int64_t off) {
  while (n > 0) {
    ssize_t got = pread(fd, buf, n, off);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return lcc_error("%s: read failed at byte %lld: %s", path, (long long)off, strerror(errno));
    if (got == 0) return lcc_error("%s: file ended at byte %lld (was it changed while open?)", path, (long long)off);
    buf += got, n -= (size_t)got, off += got;
  }
  return 0;
}

// Start of the last line, ignoring one trailing '\n' (as LiveCC's readlastline, which seeks to EOF - 2).
static int last_line_start(const char *path, int fd, int64_t size, int64_t *start) {
  char *buf = lcc_malloc(BLOCK);
  int64_t end = size - 1;   // the final byte never starts the search
  *start = 0;
  while (end > 0) {
    int64_t from = end > BLOCK ? end - BLOCK : 0;
    if (read_at(path, fd, buf, (size_t)(end - from), from)) {
      free(buf);
      return -1;
    }
    char *nl = memrchr(buf, '\n', (size_t)(end - from));
    if (nl) {
      *start = from + (nl - buf) + 1;
      break;
    }
    end = from;
  }
  free(buf);
  return 0;
}

static void push_offset(lcc_jsonl_file *f, int64_t *cap, int64_t v) {
  if (f->n + 1 >= *cap) {
    *cap = *cap ? 2 * *cap : 1024;
    f->off = lcc_realloc(f->off, (size_t)*cap * sizeof(int64_t));
  }
  f->off[f->n++] = v;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// A seek-index line: '[' non-negative integers separated by commas ']', JSON whitespace allowed.
static int parse_index(lcc_jsonl_file *f, const char *s, size_t len) {
  int64_t cap = 0;
  size_t i = 0;
  while (i < len && is_space(s[i])) i++;
  i++;   // '[' (checked by the caller)
  for (;;) {
    while (i < len && is_space(s[i])) i++;
    if (i >= len || s[i] < '0' || s[i] > '9') break;
    int64_t v = 0;
    while (i < len && s[i] >= '0' && s[i] <= '9') {
      if (v > (INT64_MAX - 9) / 10)
        return lcc_error("%s: seek index (last line): offset too large at column %zu", f->path, i + 1);
      v = v * 10 + (s[i++] - '0');
    }
    push_offset(f, &cap, v);
    while (i < len && is_space(s[i])) i++;
    if (i < len && s[i] == ',') {
      i++;
      continue;
    }
    if (i < len && s[i] == ']') {
      i++;
      while (i < len && is_space(s[i])) i++;
      if (i == len) {
        f->off = lcc_realloc(f->off, (size_t)(f->n + 1) * sizeof(int64_t));   // room for off[n]
        return 0;
      }
    }
    break;
  }
  return lcc_error("%s: seek index (last line) is malformed at column %zu: expected a JSON array of byte offsets",
                   f->path, i + 1);
}

// Offsets must start at 0, increase, and stay before the index line; off[n] becomes the index line's start.
static int check_index(lcc_jsonl_file *f, int64_t data_end) {
  if (f->off[0] != 0)
    return lcc_error("%s: seek index entry 0 is %lld; the first sample line starts at 0", f->path, (long long)f->off[0]);
  for (int64_t i = 1; i < f->n; i++)
    if (f->off[i] <= f->off[i - 1])
      return lcc_error("%s: seek index entry %lld (offset %lld) is not after entry %lld (offset %lld)", f->path,
                       (long long)i, (long long)f->off[i], (long long)(i - 1), (long long)f->off[i - 1]);
  if (f->off[f->n - 1] >= data_end)
    return lcc_error("%s: seek index entry %lld (offset %lld) is not before the index line (offset %lld)", f->path,
                     (long long)(f->n - 1), (long long)f->off[f->n - 1], (long long)data_end);
  f->off[f->n] = data_end;
  return 0;
}

// The starts of the lines that begin in bytes [lo, hi) of a plain file of `size` bytes: 0, and every
// byte after a '\n' except the end. *starts is malloc'd.
static int scan_range(const lcc_jsonl_file *f, int64_t size, int64_t lo, int64_t hi, int64_t **starts, int64_t *n) {
  int64_t cap = 1024;
  *starts = lcc_malloc((size_t)cap * sizeof(int64_t));
  *n = 0;
  if (lo == 0 && hi > 0) (*starts)[(*n)++] = 0;
  char *buf = lcc_malloc(BLOCK);
  for (int64_t pos = lo > 0 ? lo - 1 : 0; pos < hi - 1;) {   // a '\n' at byte q starts a line at q + 1
    size_t len = (size_t)(hi - 1 - pos < BLOCK ? hi - 1 - pos : BLOCK);
    if (read_at(f->path, f->fd, buf, len, pos)) {
      free(buf);
      return -1;
    }
    for (char *p = buf; (p = memchr(p, '\n', len - (size_t)(p - buf))) != NULL; p++) {
      const int64_t next = pos + (p - buf) + 1;
      if (next >= size) continue;
      if (*n == cap) *starts = lcc_realloc(*starts, (size_t)(cap *= 2) * sizeof(int64_t));
      (*starts)[(*n)++] = next;
    }
    pos += (int64_t)len;
  }
  free(buf);
  return 0;
}

// No index line, one process: every line is a sample; one pass finds their starts, and off[n] is the end.
static int scan_lines(lcc_jsonl_file *f, int64_t size) {
  if (scan_range(f, size, 0, size, &f->off, &f->n)) return -1;
  f->off = lcc_realloc(f->off, (size_t)(f->n + 1) * sizeof(int64_t));
  f->off[f->n] = size;
  return 0;
}

// A plain file indexed by all ranks together: each scans 1/world of its bytes, and the line starts are
// gathered, so no rank reads the whole file.
static int scan_lines_shared(lcc_jsonl_file *f, int64_t size, const lcc_prep_group *g) {
  const int W = g->world;
  const int64_t lo = size * g->rank / W, hi = size * (g->rank + 1) / W;
  int64_t *mine, n_mine;
  int rc = scan_range(f, size, lo, hi, &mine, &n_mine);
  int64_t *counts = lcc_malloc((size_t)W * sizeof(int64_t)), *eight = lcc_malloc((size_t)W * sizeof(int64_t));
  int64_t status = rc ? -1 : n_mine * (int64_t)sizeof(int64_t);   // a failed rank says so in its count
  for (int r = 0; r < W; r++) eight[r] = sizeof(int64_t);
  g->allgather(g, &status, sizeof status, counts, eight);
  int64_t total = 0;
  for (int r = 0; r < W && !rc; r++) {
    if (counts[r] < 0) rc = lcc_error("%s: rank %d could not read its part of the file (its message says why)", f->path, r);
    total += counts[r] / (int64_t)sizeof(int64_t);
  }
  if (!rc) {
    f->off = lcc_malloc((size_t)(total + 1) * sizeof(int64_t));
    g->allgather(g, mine, n_mine * (int64_t)sizeof(int64_t), f->off, counts);
    f->n = total;
    f->off[total] = size;
  }
  free(mine), free(counts), free(eight);
  return rc;
}

// The last line of the file: a seek index (LiveCC's files), or a sample line (a plain file). 0 with
// *indexed, or -1 with lcc_error().
static int has_index(const lcc_jsonl_file *f, int64_t size, int64_t *start, int *indexed) {
  if (last_line_start(f->path, f->fd, size, start)) return -1;
  // The last line is an index when it is an array whose first element is a number (a sample line is an
  // array of message objects).
  char head[64];
  size_t nh = (size_t)(size - *start < (int64_t)sizeof head ? size - *start : (int64_t)sizeof head);
  if (read_at(f->path, f->fd, head, nh, *start)) return -1;
  size_t k = 0;
  while (k < nh && is_space(head[k])) k++;
  int looks_indexed = k < nh && head[k] == '[';
  for (k++; looks_indexed && k < nh && is_space(head[k]); k++) {}
  *indexed = looks_indexed && k < nh && head[k] >= '0' && head[k] <= '9';
  return 0;
}

// Reads and checks the seek index (last line, from byte start).
static int read_index(lcc_jsonl_file *f, int64_t size, int64_t start) {
  f->indexed = 1;
  size_t len = (size_t)(size - start);
  char *line = lcc_malloc(len);
  int rc = read_at(f->path, f->fd, line, len, start);
  if (!rc) rc = parse_index(f, line, len);
  free(line);
  return rc ? rc : check_index(f, start);
}

// Several ranks: rank 0 reads the last line; a seek index is read by it alone and sent to the others, a plain
// file is scanned by all of them, a part each.
static int open_shared(lcc_jsonl_file *f, int64_t size, const lcc_prep_group *g) {
  int64_t head[3] = {0, 0, 0};   // status (0 / -1), indexed, samples
  if (g->rank == 0) {
    int64_t start;
    int indexed = 0;
    head[0] = has_index(f, size, &start, &indexed) || (indexed && read_index(f, size, start)) ? -1 : 0;
    head[1] = indexed, head[2] = f->n;
  }
  g->bcast(g, head, sizeof head, 0);
  if (head[0]) return g->rank == 0 ? -1 : lcc_error("%s: rank 0 could not read its index (its message says why)", f->path);
  if (!head[1]) return scan_lines_shared(f, size, g);
  if (g->rank) {
    f->indexed = 1, f->n = head[2];
    f->off = lcc_malloc((size_t)(f->n + 1) * sizeof(int64_t));
  }
  g->bcast(g, f->off, (size_t)(f->n + 1) * sizeof(int64_t), 0);
  return 0;
}

static int open_file(lcc_jsonl_file *f, const char *path, const lcc_prep_group *g) {
  memset(f, 0, sizeof *f);
  f->path = lcc_strdup(path);
  f->fd = open(path, O_RDONLY | O_CLOEXEC);
  if (f->fd < 0) return lcc_error("%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(f->fd, &st)) return lcc_error("%s: cannot stat: %s", path, strerror(errno));
  int64_t size = st.st_size, start;
  if (size == 0) {
    f->off = lcc_calloc(1, sizeof(int64_t));
    return 0;
  }
  if (lcc_group_world(g) > 1) return open_shared(f, size, g);
  int indexed;
  if (has_index(f, size, &start, &indexed)) return -1;
  return indexed ? read_index(f, size, start) : scan_lines(f, size);
}

int lcc_jsonl_open(lcc_jsonl *j, const char *const *paths, int n_paths, const lcc_prep_group *g) {
  memset(j, 0, sizeof *j);
  j->files = lcc_calloc((size_t)(n_paths > 0 ? n_paths : 1), sizeof(lcc_jsonl_file));
  j->first = lcc_calloc((size_t)n_paths + 1, sizeof(int64_t));
  for (int i = 0; i < n_paths; i++) {
    j->n_files = i + 1;
    if (open_file(&j->files[i], paths[i], g)) {
      lcc_jsonl_close(j);
      return -1;
    }
    j->first[i + 1] = j->first[i] + j->files[i].n;
  }
  j->n = j->first[n_paths];
  return 0;
}

void lcc_jsonl_close(lcc_jsonl *j) {
  for (int i = 0; i < j->n_files; i++) {
    if (j->files[i].fd >= 0) close(j->files[i].fd);
    free(j->files[i].path);
    free(j->files[i].off);
  }
  free(j->files);
  free(j->first);
  memset(j, 0, sizeof *j);
}

int lcc_jsonl_read(const lcc_jsonl *j, int64_t g, lcc_jsonl_line *out) {
  LCC_CHECK(g >= 0 && g < j->n, "sample %lld out of range [0, %lld)", (long long)g, (long long)j->n);
  int lo = 0, hi = j->n_files - 1;   // the file holding g: first[lo] <= g < first[lo + 1]
  while (lo < hi) {
    int mid = (lo + hi + 1) / 2;
    if (j->first[mid] <= g) lo = mid;
    else hi = mid - 1;
  }
  const lcc_jsonl_file *f = &j->files[lo];
  int64_t i = g - j->first[lo], a = f->off[i], b = f->off[i + 1];
  int64_t from = a > 0 ? a - 1 : 0;   // one byte more: the '\n' that must precede the line
  size_t n = (size_t)(b - from);
  if (out->cap < n + 1) {
    out->cap = n + 1;
    out->text = lcc_realloc(out->text, out->cap);
  }
  if (read_at(f->path, f->fd, out->text, n, from)) return -1;
  if (a > 0 && out->text[0] != '\n')
    return lcc_error("%s: seek index entry %lld (offset %lld) is not at a line start", f->path, (long long)i, (long long)a);
  char *line = out->text + (a - from);
  size_t len = (size_t)(b - a);
  int last_plain = !f->indexed && i == f->n - 1;   // a plain file's last line may lack its '\n'
  if (len > 0 && line[len - 1] == '\n') len--;
  else if (!last_plain)
    return lcc_error("%s: seek index entry %lld (offset %lld) is not at a line start", f->path, (long long)(i + 1), (long long)b);
  if (memchr(line, '\n', len))
    return lcc_error("%s: seek index entries %lld and %lld (offsets %lld, %lld) do not bound exactly one line "
                     "(the index must list every line)", f->path, (long long)i, (long long)(i + 1), (long long)a, (long long)b);
  memmove(out->text, line, len);
  out->text[len] = 0;
  out->len = len;
  out->path = f->path;
  out->line = i + 1;
  return 0;
}

void lcc_jsonl_line_free(lcc_jsonl_line *l) {
  free(l->text);
  memset(l, 0, sizeof *l);
}
