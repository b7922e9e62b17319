// livecc-prep: LiveCC JSONL files + their videos -> pre-interleaved samples in HDF5 shards + manifest.json.
//   livecc-prep [--config FILE] [--key=value ...]
//   livecc-prep --verify=DIR [--workers=N]       (check a prepared dataset against its manifest)
//   mpirun -n N livecc-prep ...  /  srun livecc-prep ...   (one job over N processes: launch/slurm/prep.sbatch)
// Re-running with the same settings finishes an interrupted job (finished shards are kept), on any number
// of ranks. Exit codes: 0 done, 1 error, 2 bad arguments or an unreadable manifest (--verify).
#include <inttypes.h>
#include <libavutil/log.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "prep.h"
#include "prep_mpi.h"
#include "runconfig.h"
#include "shard.h"
#include "util.h"
#include "verify.h"

typedef struct {
  char input[LCC_OPT_STR], output[LCC_OPT_STR], tokenizer[LCC_OPT_STR];
  char mode[LCC_OPT_STR], with_context[LCC_OPT_STR];
  int workers, samples_per_shard, max_seq_len;
  char overlong[LCC_OPT_STR];
  char truncated[LCC_OPT_STR];
  int fix_last_word;
  char words_outside[LCC_OPT_STR], last_words[LCC_OPT_STR];
  char codec[LCC_OPT_STR];
  int jpeg_quality;
  char video_root[LCC_OPT_STR];
  double fps;
  int max_frames, min_frames, min_pixels, max_pixels, total_pixels, image_min_pixels, image_max_pixels;
  char system_prompt[LCC_OPT_STR];
  int progress;
  double progress_every;
  int max_rss;
  int dry_run;
  char verify[LCC_OPT_STR];
} prep_opts;

#define OPT(key, type, field, def, help) {key, type, offsetof(prep_opts, field), def, help}
static const lcc_opt table[] = {
    OPT("input", LCC_OPT_STRING, input, "", "JSONL files, comma-separated (LiveCC seek-index line optional)"),
    OPT("output", LCC_OPT_STRING, output, "", "output directory: shard-*.h5, their .json sidecars, manifest.json"),
    OPT("tokenizer", LCC_OPT_STRING, tokenizer, "", "tokenizer.json (Qwen2 byte-level BPE) or its directory"),
    OPT("mode", LCC_OPT_STRING, mode, "pretrain", "pretrain or sft: picks the with_context default"),
    OPT("with_context", LCC_OPT_STRING, with_context, "auto",
        "previous ASR (else title) after the first chunk: true, false, or auto (pretrain: true; sft: false)"),
    OPT("workers", LCC_OPT_INT, workers, "0", "worker threads (0: one per CPU core)"),
    OPT("samples_per_shard", LCC_OPT_INT, samples_per_shard, "2500", "input samples per shard"),
    OPT("max_seq_len", LCC_OPT_INT, max_seq_len, "32768", "tokens per sample at most (0: no limit)"),
    OPT("overlong", LCC_OPT_STRING, overlong, "cut", "over max_seq_len: cut (drop trailing turn pairs) or skip"),
    OPT("truncated", LCC_OPT_STRING, truncated, "skip",
        "a video file cut short (fewer frames than its MP4/MOV/AVI index lists) before the clip's end: skip the sample, or keep it with the frames there are (warned, counted)"),
    OPT("fix_last_word", LCC_OPT_BOOL, fix_last_word, "false",
        "false: LiveCC's word cursor (once every word is used, the last word is said again in every remaining "
        "window, to the clip's end); true: never repeat it"),
    OPT("words_outside", LCC_OPT_STRING, words_outside, "keep",
        "words outside the clip window (counted, warned): keep, as LiveCC (those ending before it go into the first "
        "chunk, those after it are never reached), or drop"),
    OPT("last_words", LCC_OPT_STRING, last_words, "drop",
        "words in the clip window that no chunk reaches, from the first one ending after the last frame on "
        "(counted): drop, as LiveCC, or keep (appended to the last chunk's answer)"),
    OPT("codec", LCC_OPT_STRING, codec, "jpeg", "frame storage: jpeg or raw"),
    OPT("jpeg_quality", LCC_OPT_INT, jpeg_quality, "90", "JPEG quality 1..100"),
    OPT("video_root", LCC_OPT_STRING, video_root, "", "prefix of relative media paths (empty: the JSONL file's directory)"),
    OPT("fps", LCC_OPT_FLOAT, fps, "2", "frames per second sampled from videos"),
    OPT("max_frames", LCC_OPT_INT, max_frames, "480", "frames per clip at most"),
    OPT("min_frames", LCC_OPT_INT, min_frames, "4", "frames per QA video at least"),
    OPT("min_pixels", LCC_OPT_INT, min_pixels, "78400", "pixels per video frame at least (100*28*28)"),
    OPT("max_pixels", LCC_OPT_INT, max_pixels, "602112", "pixels per video frame at most (768*28*28)"),
    OPT("total_pixels", LCC_OPT_INT, total_pixels, "19267584", "pixels per clip at most (24576*28*28)"),
    OPT("image_min_pixels", LCC_OPT_INT, image_min_pixels, "3136", "pixels per image at least"),
    OPT("image_max_pixels", LCC_OPT_INT, image_max_pixels, "12845056", "pixels per image at most"),
    OPT("system_prompt", LCC_OPT_STRING, system_prompt, "You are a helpful assistant.",
        "text of the system turn the chat template adds (empty: none)"),
    OPT("progress", LCC_OPT_BOOL, progress, "true", "print a progress line on stderr (rank 0: the whole job's)"),
    OPT("progress_every", LCC_OPT_FLOAT, progress_every, "2", "seconds between progress lines"),
    OPT("dry_run", LCC_OPT_BOOL, dry_run, "false",
        "open the inputs and print the plan (samples, shards, shards per rank, time to read them), write nothing"),
    OPT("max_rss", LCC_OPT_INT, max_rss, "0",
        "MB of resident memory per process above which a worker waits for the others' samples before starting its next (0: no cap)"),
    OPT("verify", LCC_OPT_STRING, verify, "",
        "instead of preparing: check the dataset DIR (or its manifest.json) shard by shard, size and CRC-64"),
};
#define N_OPTS ((int)(sizeof table / sizeof table[0]))

static void usage(FILE *f) {
  fprintf(f, "usage: livecc-prep [--config FILE] [--key=value ...]\n"
             "Keys (a config file holds the same keys as 'key = value' lines; flags win):\n");
  lcc_opts_usage(table, N_OPTS, f);
}


// workers = 0: the CPUs this process may run on (Slurm's --cpus-per-task binding, say); ranks that share
// an unbound node split its CPUs between them.
static int workers_or_cores(int workers) {
  if (workers > 0) return workers;
  cpu_set_t set;
  const long online = sysconf(_SC_NPROCESSORS_ONLN);
  long n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : online;
  const char *local = getenv("OMPI_COMM_WORLD_LOCAL_SIZE") ? getenv("OMPI_COMM_WORLD_LOCAL_SIZE") : getenv("SLURM_NTASKS_PER_NODE");
  const long ranks_here = local ? strtol(local, NULL, 10) : 1;
  if (n >= online && ranks_here > 1) n /= ranks_here;
  return n > 0 ? (int)n : 1;
}

// --verify: every shard of the manifest present, of its size and CRC-64. Exit status 0 (all good), 1 (bad
// shards, listed) or 2 (no readable manifest, or an empty one).
static int run_verify(const prep_opts *o) {
  lcc_verify_stats st;
  if (lcc_dataset_verify(o->verify, workers_or_cores(o->workers), stdout, o->progress ? stderr : NULL, &st)) {
    fprintf(stderr, "livecc-prep: error: %s\n", lcc_last_error());
    return 2;
  }
  printf("verified %d shards, %.2f GB in %.1f s (%.0f MB/s): %s\n", st.shards, st.bytes / 1e9, st.seconds,
         st.bytes / 1e6 / (st.seconds > 0 ? st.seconds : 1), st.bad ? "" : "all match the manifest");
  if (st.bad) printf("%d of %d shards do not match the manifest (listed above): prepare or copy them again\n", st.bad, st.shards);
  return st.bad ? 1 : 0;
}

// Checks the choices and fills in the automatic values (with_context, workers).
static int resolve(prep_opts *o) {
  if (!o->input[0]) return lcc_error("input: give the JSONL files (--input=a.jsonl,b.jsonl)");
  if (!o->output[0]) return lcc_error("output: give the output directory (--output=DIR)");
  if (!o->tokenizer[0]) return lcc_error("tokenizer: give a tokenizer.json or its directory (--tokenizer=PATH)");
  if (strcmp(o->mode, "pretrain") && strcmp(o->mode, "sft")) return lcc_error("mode must be pretrain or sft, got '%s'", o->mode);
  if (!strcmp(o->with_context, "auto")) strcpy(o->with_context, !strcmp(o->mode, "pretrain") ? "true" : "false");
  if (strcmp(o->with_context, "true") && strcmp(o->with_context, "false"))
    return lcc_error("with_context must be auto, true or false, got '%s'", o->with_context);
  if (strcmp(o->overlong, "cut") && strcmp(o->overlong, "skip"))
    return lcc_error("overlong must be cut or skip, got '%s'", o->overlong);
  if (strcmp(o->truncated, "skip") && strcmp(o->truncated, "keep"))
    return lcc_error("truncated must be skip or keep, got '%s'", o->truncated);
  if (strcmp(o->words_outside, "keep") && strcmp(o->words_outside, "drop"))
    return lcc_error("words_outside must be keep or drop, got '%s'", o->words_outside);
  if (strcmp(o->last_words, "drop") && strcmp(o->last_words, "keep"))
    return lcc_error("last_words must be drop or keep, got '%s'", o->last_words);
  if (strcmp(o->codec, "jpeg") && strcmp(o->codec, "raw")) return lcc_error("codec must be jpeg or raw, got '%s'", o->codec);
  if (o->max_rss < 0) return lcc_error("max_rss must be >= 0 MB (0: no cap), got %d", o->max_rss);
  if (!(o->progress_every > 0)) return lcc_error("progress_every must be > 0 seconds, got %g", o->progress_every);
  o->workers = workers_or_cores(o->workers);
  return 0;
}

// Splits the comma-separated input list in place.
static int split_inputs(char *list, char ***out) {
  int n = 0;
  char **v = lcc_malloc((strlen(list) / 2 + 2) * sizeof(char *));
  for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
    while (*tok == ' ') tok++;
    char *e = tok + strlen(tok);
    while (e > tok && e[-1] == ' ') *--e = 0;
    if (*tok) v[n++] = tok;
  }
  *out = v;
  return n;
}

// The settings that decide the output (all but workers, progress, verify and the memory cap), as prep.conf
// stores them.
static char *settings_text(const prep_opts *o) {
  lcc_opt kept[N_OPTS];
  int n = 0;
  for (int i = 0; i < N_OPTS; i++)
    if (strcmp(table[i].key, "workers") && strcmp(table[i].key, "progress") && strcmp(table[i].key, "verify") &&
        strcmp(table[i].key, "progress_every") && strcmp(table[i].key, "max_rss") && strcmp(table[i].key, "dry_run"))
      kept[n++] = table[i];
  return lcc_opts_text(o, kept, n);
}

// --dry-run: one line per rank (each opened the inputs: the time is its share of the planning).
static void print_plan(const lcc_prep_stats *st, int rank, int per_shard) {
  const int W = st->ranks, mine = st->shards / W + (rank < st->shards % W);
  if (rank == 0)
    printf("plan: %" PRId64 " samples in %d shards of %d, %d rank%s: %d to %d shards each\n", st->samples_in,
           st->shards, per_shard, W, W == 1 ? "" : "s", st->shards / W, st->shards / W + (st->shards % W > 0));
  printf("plan: rank %d: inputs opened in %.3f s (%d with a seek index), %d shards, peak resident memory %" PRId64 " MB\n",
         rank, st->index_seconds, st->indexed_files, mine, st->peak_rss_mb);
  fflush(stdout);
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      usage(stdout);
      return 0;
    }
  prep_opts o;
  if (lcc_opts_parse_argv(&o, table, N_OPTS, argc, argv)) {
    fprintf(stderr, "livecc-prep: error: %s\n", lcc_last_error());
    return 2;
  }
  if (o.verify[0]) return run_verify(&o);   // one process: the check is a read of every shard, threads suffice
  if (resolve(&o)) {
    fprintf(stderr, "livecc-prep: error: %s\n", lcc_last_error());
    return 2;
  }
  lcc_prep_group *group = NULL;   // the job's ranks, when a launcher started several
  if (lcc_prep_launched() && !(group = lcc_prep_group_mpi(&argc, &argv))) {
    fprintf(stderr, "livecc-prep: error: %s\n", lcc_last_error());
    return 1;
  }
  const int rank = lcc_group_rank(group);
  // Every skipped sample gets one message naming its line and FFmpeg's reason; FFmpeg's own log lines
  // would repeat each failure unthrottled.
  av_log_set_level(AV_LOG_FATAL);
  if (rank == 0) {
    printf("# livecc-prep resolved configuration\n");
    lcc_opts_print(&o, table, N_OPTS, stdout);
    if (group) printf("# %d ranks, %d workers each\n", group->world, o.workers);
    fflush(stdout);
  }

  char input_list[LCC_OPT_STR];
  strcpy(input_list, o.input);
  char **inputs;
  int n_inputs = split_inputs(input_list, &inputs);
  char *settings = settings_text(&o);
  lcc_prep_opts p = {.inputs = (const char *const *)inputs, .n_inputs = n_inputs, .output = o.output,
                     .tokenizer = o.tokenizer, .workers = o.workers, .samples_per_shard = o.samples_per_shard,
                     .codec = !strcmp(o.codec, "raw") ? LCC_CODEC_RAW : LCC_CODEC_JPEG, .jpeg_quality = o.jpeg_quality,
                     .video_root = o.video_root, .keep_truncated = !strcmp(o.truncated, "keep"),
                     .drop_words_outside = !strcmp(o.words_outside, "drop"),
                     .settings = settings, .progress = o.progress, .progress_every = o.progress_every,
                     .max_rss_mb = o.max_rss, .group = group, .plan_only = o.dry_run};
  p.il = (lcc_interleave_opts){.fps = o.fps, .with_context = !strcmp(o.with_context, "true"),
                               .fix_last_word = o.fix_last_word, .keep_last_words = !strcmp(o.last_words, "keep"),
                               .system_prompt = o.system_prompt,
                               .max_seq_len = o.max_seq_len, .overlong_skip = !strcmp(o.overlong, "skip")};
  lcc_video_budget_default(&p.budget);
  p.budget.fps = o.fps, p.budget.max_frames = o.max_frames, p.budget.min_frames = o.min_frames;
  p.budget.min_pixels = o.min_pixels, p.budget.max_pixels = o.max_pixels, p.budget.total_pixels = o.total_pixels;
  p.budget.image_min_pixels = o.image_min_pixels, p.budget.image_max_pixels = o.image_max_pixels;

  lcc_prep_stats st;
  int rc = lcc_prep_run(&p, &st);
  if (rc) {
    if (group) fprintf(stderr, "livecc-prep: rank %d: error: %s\n", rank, lcc_last_error());
    else fprintf(stderr, "livecc-prep: error: %s\n", lcc_last_error());
    if (group && group->world > 1) group->abort(group, 1);   // the other ranks would wait for this one
  } else if (o.dry_run) {
    print_plan(&st, rank, o.samples_per_shard);
  } else if (rank == 0) {
    lcc_prep_print_summary(&p, &st, stdout);
  }
  if (!rc) lcc_prep_group_end(group);
  free(settings);
  free(inputs);
  return rc ? 1 : 0;
}
