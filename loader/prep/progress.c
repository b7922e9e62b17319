#include "progress.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

typedef struct {
  int64_t run_id, done, todo, rss_mb, peak_mb;
  int last;
} report;

static void rank_path(const lcc_progress *p, int rank, char *out, size_t cap) {
  snprintf(out, cap, "%s/rank-%05d", p->dir, rank);
}

int lcc_progress_init(lcc_progress *p, const char *output, const lcc_prep_group *g) {
  memset(p, 0, sizeof *p);
  p->group = g;
  p->t0 = lcc_now();
  if (snprintf(p->dir, sizeof p->dir, "%s/.progress", output) >= (int)sizeof p->dir) return lcc_error("%s: path too long", output);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  p->run_id = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
  if (g) g->bcast(g, &p->run_id, sizeof p->run_id, 0);
  if (mkdir(p->dir, 0777) && errno != EEXIST) return lcc_error("%s: cannot create directory: %s", p->dir, strerror(errno));
  return 0;
}

// This rank's report: to a temporary name, then renamed, so a reader never sees half a line.
static void write_report(const lcc_progress *p, const report *r) {
  char path[4200], tmp[4300];
  rank_path(p, lcc_group_rank(p->group), path, sizeof path);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f) return;   // progress is advisory: a full disk shows up where shards are written
  fprintf(f, "%" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 " %d\n", r->run_id, r->done, r->todo, r->rss_mb,
          r->peak_mb, r->last);
  if (fclose(f) == 0) rename(tmp, path);
}

// Rank `rank`'s report of this run; 0 when there is none yet.
static int read_report(const lcc_progress *p, int rank, report *r) {
  char path[4200];
  rank_path(p, rank, path, sizeof path);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  int ok = fscanf(f, "%" SCNd64 " %" SCNd64 " %" SCNd64 " %" SCNd64 " %" SCNd64 " %d", &r->run_id, &r->done, &r->todo,
                  &r->rss_mb, &r->peak_mb, &r->last) == 6 && r->run_id == p->run_id;
  fclose(f);
  return ok;
}

// Sums the ranks' reports; returns how many ranks have reported, *finished how many made their last one.
static int gather(lcc_progress *p, report *sum, int *finished) {
  const int W = lcc_group_world(p->group);
  int reported = 0;
  *finished = 0;
  memset(sum, 0, sizeof *sum);
  for (int r = 0; r < W; r++) {
    report x;
    if (!read_report(p, r, &x)) continue;
    reported++, *finished += x.last;
    sum->done += x.done, sum->todo += x.todo;
    if (x.rss_mb > sum->rss_mb) sum->rss_mb = x.rss_mb;
    if (x.peak_mb > sum->peak_mb) sum->peak_mb = x.peak_mb;
  }
  return reported;
}

static void print_line(lcc_progress *p, FILE *out) {
  report s;
  int finished;
  const int W = lcc_group_world(p->group), reported = gather(p, &s, &finished);
  const double dt = lcc_now() - p->t0, rate = dt > 0 ? (double)s.done / dt : 0;
  const double eta = rate > 0 ? (double)(s.todo - s.done) / rate : 0;
  char ranks[96] = "";
  if (W > 1) snprintf(ranks, sizeof ranks, "%d ranks (%d reporting, %d done): ", W, reported, finished);
  fprintf(out, "livecc-prep: %s%" PRId64 "/%" PRId64 " samples, %.1f samples/s, ETA %dh%02dm%02ds, memory %" PRId64
          " MB%s (peak %" PRId64 ")\n", ranks, s.done, s.todo, rate, (int)eta / 3600, (int)eta / 60 % 60, (int)eta % 60,
          s.rss_mb, W > 1 ? " on the largest rank" : "", s.peak_mb);
  fflush(out);
}

void lcc_progress_tick(lcc_progress *p, int64_t done, int64_t todo, int last, FILE *out) {
  const report r = {p->run_id, done, todo, lcc_rss_mb(), lcc_peak_rss_mb(), last};
  write_report(p, &r);
  if (out && lcc_group_rank(p->group) == 0) print_line(p, out);
}

void lcc_progress_finish(lcc_progress *p, double every, FILE *out) {
  const lcc_prep_group *g = p->group;
  const int W = lcc_group_world(g), root = lcc_group_rank(g) == 0;
  if (g) {   // the other ranks' work may go on after ours: rank 0 keeps printing the job's line meanwhile
    void *all_done = g->ibarrier(g);
    for (double last_line = lcc_now(); !g->test(g, all_done); usleep(50 * 1000))
      if (root && out && lcc_now() - last_line >= every) print_line(p, out), last_line = lcc_now();
  }
  if (!root) return;
  if (g && out) print_line(p, out);   // the whole job's last line
  report s;
  int finished;
  gather(p, &s, &finished);
  p->peak_rss_mb = s.peak_mb;
  char path[4200];
  for (int r = 0; r < W; r++) rank_path(p, r, path, sizeof path), unlink(path);
  rmdir(p->dir);
}
