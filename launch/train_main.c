// livecc-train: trains a Qwen2-VL model, one data-parallel rank per process.
//   livecc-train [--config FILE] [--key=value ...]          (mpirun -np N livecc-train ... for N ranks)
// Exit codes: 0 done, 1 error, 2 bad arguments, 98 a collective passed --collective_timeout (the watchdog
// named the stalled rank; not requeued), 99 stopped by SIGTERM/SIGUSR1 after a checkpoint (requeue).
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend_open.h"
#include "trainer.h"
#include "util.h"

static volatile sig_atomic_t stop_requested = 0;

static void on_signal(int sig) { stop_requested = 1; }

static void usage(FILE *f) {
  fprintf(f, "usage: livecc-train [--config FILE] [--key=value ...]\n"
             "Keys (a config file holds the same keys as 'key = value' lines; flags win):\n");
  lcc_opts_usage(lcc_train_opt_table, lcc_train_opt_count, f);
}


// MPI (host memory) or NCCL (device memory) when asked, or when a launcher (mpirun, srun) started this
// process; otherwise one process.
static lcc_comm *open_comm(const char *dist, lcc_backend *be) {
  int launched = getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_SIZE");
  if (!strcmp(dist, "none") || (!strcmp(dist, "auto") && !launched)) return lcc_comm_self(be);
  if (strcmp(dist, "mpi") && strcmp(dist, "auto")) {
    lcc_error("dist must be auto, mpi or none, got '%s'", dist);
    return NULL;
  }
#ifdef LCC_HAVE_NCCL
  if (!strcmp(be->name, "cuda")) return lcc_comm_nccl(be);
#endif
#ifdef LCC_HAVE_MPI
  if (!strcmp(be->name, "cuda")) {   // device memory: MPI here reduces host buffers only
    lcc_error("the %s backend needs the NCCL communicator, which this build lacks", be->name);
    return NULL;
  }
  return lcc_comm_mpi(be);
#else
  lcc_error("this build has no MPI (configure with -DLCC_WITH_MPI=ON), but dist is '%s'%s", dist,
            launched ? " and an MPI launcher started it" : "");
  return NULL;
#endif
}

// --dry-run --dump_batch: the first micro-batch rank 0 would train on (from data, or synthetic).
static int dump_first_batch(const lcc_train_opts *o, const lcc_config *cfg) {
  lcc_trainer t = {.o = *o, .cfg = *cfg};   // a source reads only the options and the config
  lcc_source *src = lcc_source_open(&t, o->data, 1, 1, 0, o->micro_batch, 1, 0);
  lcc_owned_batch *ob;
  int rc = !src || lcc_source_next(src, &ob) || lcc_batch_save(ob, o->dump_batch, lcc_patch_dim(cfg));
  if (!rc)
    printf("# wrote %d samples, %d tokens, %d patch rows to %s (%s)\n", ob->b.n_samples, ob->b.n_tokens, ob->b.n_patches,
           o->dump_batch, o->data[0] ? o->data : "synthetic samples");
  lcc_source_close(src);
  return rc ? -1 : 0;
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      usage(stdout);
      return 0;
    }
  lcc_train_opts o;
  if (lcc_opts_parse_argv(&o, lcc_train_opt_table, lcc_train_opt_count, argc, argv)) {
    fprintf(stderr, "livecc-train: error: %s\n", lcc_last_error());
    return 2;
  }
  if (o.dry_run) {   // the memory plan, and the first synthetic micro-batch when asked (benchmarks feed it to torch)
    lcc_config cfg;
    int rc = lcc_train_opts_check(&o, o.plan_world) || lcc_config_load(&cfg, o.model) || lcc_memory_plan(&cfg, &o, stdout) < 0;
    if (!rc && o.dump_batch[0]) rc = dump_first_batch(&o, &cfg);
    if (rc) fprintf(stderr, "livecc-train: error: %s\n", lcc_last_error());
    return rc ? 2 : 0;
  }
  // The communicator's helper thread must not take these signals: block them while it starts.
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  sigaddset(&block, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &block, &old);
  lcc_backend *be = lcc_open_backend(o.backend, o.threads);
  if (!be) {
    fprintf(stderr, "livecc-train: error: %s\n", lcc_last_error());
    return 2;
  }
  lcc_comm *comm = open_comm(o.dist, be);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (!comm) {
    fprintf(stderr, "livecc-train: error: %s\n", lcc_last_error());
    be->destroy(be);
    return 2;
  }
  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGUSR1, &sa, NULL);

  lcc_trainer t;
  int rc = lcc_trainer_init(&t, &o, be, comm);
  if (comm->rank == 0 && !rc) {
    printf("# livecc-train resolved configuration (%d rank%s, communicator %s)\n%s", comm->world, comm->world > 1 ? "s" : "",
           comm->name, t.run_config);
    printf("# model: %zu parameters, %zu trainable; backend %s; ZeRO-%d; global batch %d = %d x %d x %d ranks\n",
           t.model.n_elems, t.model.n_grad, t.be->name, o.zero, t.o.global_batch, t.o.micro_batch, t.o.grad_accum, comm->world);
    fflush(stdout);
  }
  t.stop = &stop_requested;
  if (!rc) rc = lcc_trainer_run(&t, stdout);
  if (rc < 0) {
    fprintf(stderr, "livecc-train: rank %d: error: %s\n", comm->rank, lcc_last_error());
    if (comm->world > 1) comm->abort(comm, 1);   // the other ranks may be waiting in a collective
  }
  fflush(stdout);
  lcc_trainer_free(&t);
  comm->destroy(comm);
  be->destroy(be);
  return rc == LCC_EXIT_REQUEUE ? LCC_EXIT_REQUEUE : rc ? 1 : 0;
}
