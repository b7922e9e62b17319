// Reading checkpoints without a communicator (ckpt_read.c): the one reader livecc-train's resume,
// livecc-convert, livecc-stream and livecc-eval share. Needs no MPI: tools link lcc_ckpt_read alone.
// The layout is checkpoint.h's.
#ifndef LCC_CKPT_READ_H
#define LCC_CKPT_READ_H

#include <stddef.h>

#include "json.h"

#define LCC_CKPT_VERSION 1

// What a tool was given: a run's checkpoints directory (then the checkpoint its `latest` names), a checkpoint,
// or anything else (HF weights), resolved into out. Returns 1 when out is a checkpoint (holds state.json),
// else 0.
int lcc_ckpt_resolve(const char *input, char *out, size_t cap);
// state.json of a checkpoint, parsed, when it is a livecc checkpoint of this format version; NULL with
// lcc_error() naming the file otherwise. Free with lcc_json_free.
lcc_json_doc *lcc_ckpt_read_state(const char *path);
// The value of `key` in a run configuration's "key = value" lines (lcc_ckpt_state.run_config), into out;
// -1 when absent.
int lcc_ckpt_run_value(const char *run_config, const char *key, char *out, size_t cap);
// Checks state.sum and every file of one checkpoint against state.json. 0, or -1 with lcc_error() naming the file.
int lcc_ckpt_verify(const char *path);
#endif
