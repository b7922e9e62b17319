// LiveCC annotation files (LIVECC.md 2.1): JSONL, one conversation per line. LiveCC's own files end with a
// line that is not a sample but a JSON array of every sample line's byte offset (the seek index, written by
// append_jsonl_seeks.py: [0] + cumsum(line lengths)[:-1], no trailing newline); for them no scan is needed.
// A plain JSONL file (no such line) is indexed in one pass. Several files form one global index, file after
// file; samples are then read at random by pread (thread-safe: the index is immutable once open).
//
// The seek index must list every data line, as LiveCC writes it, so sample i is line i + 1 of its file.
// Each read checks that its offsets bound exactly one line; a wrong index is an error naming the entry.
#ifndef LCC_JSONL_H
#define LCC_JSONL_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  char *path;
  int fd;
  int64_t n;          // samples (lines) in this file
  int64_t *off;       // [n + 1] byte offset of each sample line; off[n] = end of the sample lines
  int indexed;        // 1: offsets from the seek-index line; 0: found by scanning the file
} lcc_jsonl_file;

typedef struct {
  int n_files;
  lcc_jsonl_file *files;
  int64_t n;          // samples in all files
  int64_t *first;     // [n_files + 1] global index of each file's first sample
} lcc_jsonl;

// One sample's text. The buffer grows and is reused across reads (one per thread).
typedef struct {
  const char *path;   // its file (owned by the lcc_jsonl)
  int64_t line;       // 1-based line number in that file
  char *text;         // the line without its '\n', NUL-terminated
  size_t len, cap;
} lcc_jsonl_line;

// Opens the files and builds the global index. 0, or -1 with lcc_error() naming the file (unreadable, a
// malformed seek-index line, offsets out of order or beyond the data). With a group of several ranks
// (group.h; NULL: this process alone) every rank calls it: rank 0 alone reads a seek index and sends it,
// a plain file is scanned a part per rank; every rank ends with the whole index.
struct lcc_prep_group;
int lcc_jsonl_open(lcc_jsonl *j, const char *const *paths, int n_paths, const struct lcc_prep_group *g);
void lcc_jsonl_close(lcc_jsonl *j);
// Reads global sample g (0 <= g < j->n). -1 with lcc_error() on an I/O error or a seek-index entry that
// is not exactly one line.
int lcc_jsonl_read(const lcc_jsonl *j, int64_t g, lcc_jsonl_line *out);
void lcc_jsonl_line_free(lcc_jsonl_line *l);

#endif
