// The livecc-prep job: LiveCC JSONL + videos -> pre-interleaved samples in HDF5 shards (DESIGN.md 1, 4).
//
// Several processes (mpirun -n N, srun; opts.group) share one job: rank r writes the shards k with
// k % N == r, so the shards, their contents and names, do not depend on N either; rank 0 writes the manifest
// once every rank is done, and prints the progress of the whole job.
//
// Shard k holds input samples [k*S, (k+1)*S) of the global JSONL index (S = samples_per_shard), minus the
// skipped ones, in input order; so the output does not depend on the number of workers. Each worker takes
// the next unfinished shard, writes <out>/shard-%05d.h5.tmp, then its sidecar shard-%05d.json (counts by
// reason, byte size, CRC-64), then renames the shard to shard-%05d.h5. A shard is finished when both files
// exist; a re-run skips finished shards, so an interrupted job resumes where it stopped. <out>/prep.conf
// keeps the settings (all but the worker count): a re-run with different ones is an error. At the end
// manifest.json lists every shard, from the sidecars.
#ifndef LCC_PREP_H
#define LCC_PREP_H

#include <stdint.h>
#include <stdio.h>

#include "interleave.h"
#include "media.h"
#include "sample.h"

typedef struct {
  const char *const *inputs;   // JSONL files, in order
  int n_inputs;
  const char *output;          // directory (created if missing)
  const char *tokenizer;       // tokenizer.json or its directory
  lcc_interleave_opts il;
  lcc_video_budget budget;
  int workers;
  int samples_per_shard;
  int codec;                   // LCC_CODEC_JPEG or LCC_CODEC_RAW (shard.h)
  int jpeg_quality;
  const char *video_root;      // prefix of relative media paths; "" = the directory of the sample's JSONL file
  int keep_truncated;          // a clip reaching past the end of a video file cut short: 1 keep it (warned,
                               // counted), 0 skip it (LCC_SKIP_TRUNCATED_MEDIA)
  int drop_words_outside;      // words outside the clip window: 0 keep them, as LiveCC (those before it go
                               // into the first chunk, those after it are never reached); 1 drop them
  const char *settings;        // the resolved settings as text, stored as <output>/prep.conf
  int progress;                // 1: a progress line on stderr every progress_every seconds (rank 0)
  double progress_every;       // seconds (0: 2)
  long max_rss_mb;             // resident memory of this process above which a worker waits for the others'
                               // samples to finish before it starts its next (0: no cap)
  const struct lcc_prep_group *group;   // the ranks of the job (group.h); NULL: this process alone
  int plan_only;               // 1: open the inputs and count the shards, write nothing
} lcc_prep_opts;

typedef struct {
  int64_t samples_in, written;
  int64_t skipped[LCC_SKIP_COUNT];     // by reason (LCC_SKIP_*; [0] unused)
  int64_t cut_samples, cut_pairs;      // samples shortened to fit max_seq_len, and the pairs dropped
  int64_t words_outside, samples_words_outside;   // words outside the clip window (kept or dropped)
  int64_t words_after_last_frame, samples_words_after_last_frame;   // words of written samples that no chunk
                                       // reached (lost as in LiveCC, or kept: il.keep_last_words)
  int64_t ignored_stream_elems;        // text_stream elements that are not [start, end, word]
  int64_t truncated_kept;              // samples kept from video files cut short (keep_truncated)
  int64_t tokens, trained_tokens, frames, frame_bytes;
  int shards, shards_reused, shards_written;   // shards_written: by this run, on every rank
  int ranks;
  int64_t peak_rss_mb;                 // the largest rank's peak resident memory (rank 0's summary)
  int64_t rss_waits;                   // samples whose start waited for memory (max_rss_mb), this rank
  double index_seconds;                // plan_only: opening the inputs on this rank
  int indexed_files;                   // plan_only: inputs with a seek index
} lcc_prep_stats;

// Runs the job. 0, or -1 with lcc_error() for what stops it (unreadable input, a wrong seek index, a shard
// that cannot be written, different settings in an existing output directory). Skipped samples are not
// errors: each is reported on stderr with its file:line and reason, and counted.
// With a group every rank calls it; the totals (and the manifest) are rank 0's, the other ranks get their own
// shard counts. On an error the caller must end every rank (group->abort): the others would wait for it.
int lcc_prep_run(const lcc_prep_opts *o, lcc_prep_stats *st);
// The totals; o says whether words outside the window and after the last frame were kept or dropped.
void lcc_prep_print_summary(const lcc_prep_opts *o, const lcc_prep_stats *st, FILE *f);

#endif
