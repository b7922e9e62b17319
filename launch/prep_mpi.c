// The prep group over MPI_COMM_WORLD. Only the main thread calls MPI (the workers never do), so
// MPI_THREAD_FUNNELED is enough.
#include <limits.h>
#include <stdlib.h>

#include "prep_mpi.h"
#include "util.h"

int lcc_prep_launched(void) { return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_SIZE"); }

#ifdef LCC_HAVE_MPI
#include <mpi.h>

#define PIECE (1 << 30)   // bytes per MPI_Bcast: MPI counts are ints

static void check(int err, const char *what) {
  if (err == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(err, msg, &len);
  lcc_fatal("%s failed: %s", what, msg);
}

static void bcast(const lcc_prep_group *g, void *buf, size_t bytes, int root) {
  for (size_t at = 0; at < bytes; at += PIECE) {
    const size_t n = bytes - at < PIECE ? bytes - at : PIECE;
    check(MPI_Bcast((char *)buf + at, (int)n, MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast");
  }
}

// One MPI_Allgatherv: the gathered bytes (a JSONL file's line offsets, 8 per line) must stay below 2 GiB,
// i.e. 268M lines per input file.
static void allgather(const lcc_prep_group *g, const void *mine, int64_t n, void *all, const int64_t *counts) {
  const int W = g->world;
  int *cnt = lcc_malloc((size_t)W * sizeof(int)), *displ = lcc_malloc((size_t)W * sizeof(int));
  int64_t total = 0;
  for (int r = 0; r < W; r++) {
    cnt[r] = (int)counts[r], displ[r] = (int)total;
    total += counts[r];
  }
  LCC_CHECK(total <= INT_MAX, "livecc-prep: %lld bytes to gather across ranks (over 2 GiB): split the input file",
            (long long)total);
  check(MPI_Allgatherv(mine, (int)n, MPI_BYTE, all, cnt, displ, MPI_BYTE, MPI_COMM_WORLD), "MPI_Allgatherv");
  free(cnt), free(displ);
}

static void barrier(const lcc_prep_group *g) { check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier"); }

static void *ibarrier(const lcc_prep_group *g) {
  MPI_Request *req = lcc_malloc(sizeof *req);
  check(MPI_Ibarrier(MPI_COMM_WORLD, req), "MPI_Ibarrier");
  return req;
}

static int test(const lcc_prep_group *g, void *request) {
  int done = 0;
  check(MPI_Test(request, &done, MPI_STATUS_IGNORE), "MPI_Test");
  if (done) free(request);
  return done;
}

static void group_abort(const lcc_prep_group *g, int code) { MPI_Abort(MPI_COMM_WORLD, code); }

lcc_prep_group *lcc_prep_group_mpi(int *argc, char ***argv) {
  int provided;
  check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
  lcc_prep_group *g = lcc_calloc(1, sizeof *g);
  check(MPI_Comm_rank(MPI_COMM_WORLD, &g->rank), "MPI_Comm_rank");
  check(MPI_Comm_size(MPI_COMM_WORLD, &g->world), "MPI_Comm_size");
  g->bcast = bcast, g->allgather = allgather, g->barrier = barrier, g->ibarrier = ibarrier, g->test = test;
  g->abort = group_abort;
  return g;
}

void lcc_prep_group_end(lcc_prep_group *g) {
  if (!g) return;
  check(MPI_Finalize(), "MPI_Finalize");
  free(g);
}

#else

lcc_prep_group *lcc_prep_group_mpi(int *argc, char ***argv) {
  lcc_error("an MPI launcher started livecc-prep, but this build has no MPI (configure with -DLCC_WITH_MPI=ON)");
  return NULL;
}

void lcc_prep_group_end(lcc_prep_group *g) {}

#endif
