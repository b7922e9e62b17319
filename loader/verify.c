#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "shard.h"
#include "util.h"
#include "verify.h"

#define PROGRESS_EVERY 2.0   // seconds between progress lines

typedef struct {
  const lcc_manifest *m;
  pthread_mutex_t mu;
  pthread_cond_t wake;
  int next, done, running;   // shards handed out, finished; workers still going
  int64_t bytes;             // read so far
  char **why;                // [m->n] the reason a shard failed, or NULL
} verify_job;

// The reason shard e fails its checks, or NULL when it passes; *bytes: what was read.
static char *check_shard(const lcc_manifest *m, const lcc_manifest_entry *e, int64_t *bytes) {
  char path[4200], why[4400];
  lcc_pathf(path, sizeof path, "%s/%s", m->dir, e->file);
  struct stat st;
  *bytes = 0;
  if (stat(path, &st)) snprintf(why, sizeof why, "%s: %s", path, strerror(errno));
  else if ((int64_t)st.st_size != e->bytes)
    snprintf(why, sizeof why, "%s: %lld bytes, the manifest says %lld (truncated or rewritten)", path,
             (long long)st.st_size, (long long)e->bytes);
  else {
    uint64_t crc;
    if (lcc_file_crc64(path, &crc, bytes)) snprintf(why, sizeof why, "%s", lcc_last_error());
    else if (crc != e->checksum)
      snprintf(why, sizeof why, "%s: CRC-64 %016" PRIx64 ", the manifest says %016" PRIx64 " (damaged)", path, crc,
               e->checksum);
    else return NULL;
  }
  return lcc_strdup(why);
}

static void *worker(void *arg) {
  verify_job *j = arg;
  pthread_mutex_lock(&j->mu);
  while (j->next < j->m->n) {
    const int s = j->next++;
    pthread_mutex_unlock(&j->mu);
    int64_t bytes;
    char *why = check_shard(j->m, &j->m->shards[s], &bytes);
    pthread_mutex_lock(&j->mu);
    j->why[s] = why, j->bytes += bytes, j->done++;
  }
  j->running--;
  pthread_cond_signal(&j->wake);
  pthread_mutex_unlock(&j->mu);
  return NULL;
}

static int64_t total_bytes(const lcc_manifest *m) {
  int64_t n = 0;
  for (int s = 0; s < m->n; s++) n += m->shards[s].bytes;
  return n;
}

int lcc_dataset_verify(const char *manifest, int threads, FILE *report, FILE *progress, lcc_verify_stats *st) {
  memset(st, 0, sizeof *st);
  lcc_manifest m;
  if (lcc_manifest_load(manifest, &m)) return -1;
  if (m.n == 0 || m.total_samples == 0) {   // nothing to compare is not a match: a prep that wrote nothing, or the wrong folder
    lcc_error("%s/manifest.json: the dataset is empty (%d shards, %lld samples): nothing to verify", m.dir, m.n,
              (long long)m.total_samples);
    lcc_manifest_free(&m);
    return -1;
  }
  const double t0 = lcc_now();
  const int64_t total = total_bytes(&m);
  if (threads < 1) threads = 1;
  if (threads > m.n) threads = m.n ? m.n : 1;
  verify_job j = {.m = &m, .running = threads, .why = lcc_calloc((size_t)(m.n ? m.n : 1), sizeof(char *))};
  pthread_mutex_init(&j.mu, NULL);
  pthread_cond_init(&j.wake, NULL);
  pthread_t *tid = lcc_malloc((size_t)threads * sizeof(pthread_t));
  for (int i = 0; i < threads; i++) LCC_CHECK(pthread_create(&tid[i], NULL, worker, &j) == 0, "pthread_create failed");
  pthread_mutex_lock(&j.mu);
  while (j.running > 0) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)PROGRESS_EVERY;
    if (pthread_cond_timedwait(&j.wake, &j.mu, &until) == ETIMEDOUT && progress) {
      const double dt = lcc_now() - t0, rate = j.bytes / (dt > 0 ? dt : 1);
      fprintf(progress, "verify: %d/%d shards, %.1f of %.1f GB, %.0f MB/s, ETA %.0f s\n", j.done, m.n, j.bytes / 1e9,
              total / 1e9, rate / 1e6, rate > 0 ? (total - j.bytes) / rate : 0.0);
    }
  }
  pthread_mutex_unlock(&j.mu);
  for (int i = 0; i < threads; i++) pthread_join(tid[i], NULL);
  for (int s = 0; s < m.n; s++)   // in manifest order, whatever order the workers finished in
    if (j.why[s]) {
      fprintf(report, "%s\n", j.why[s]);
      st->bad++;
      free(j.why[s]);
    }
  st->shards = m.n, st->bytes = j.bytes, st->seconds = lcc_now() - t0;
  pthread_cond_destroy(&j.wake);
  pthread_mutex_destroy(&j.mu);
  free(j.why);
  free(tid);
  lcc_manifest_free(&m);
  return 0;
}
