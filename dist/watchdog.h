// Deadline of collectives: a rank stuck in a collective because another rank stalled (stopped, hung, dead
// without its launcher noticing) reports what it knows and exits with LCC_EXIT_COLLECTIVE_TIMEOUT instead of
// spinning in MPI forever.
//
// Each communicator that has a deadline (lcc_comm_set_timeout) owns a watchdog: every collective marks its
// begin and end (cheap: a mutex and a clock read), and a thread checks each second how long the pending one
// has waited. The thread also owns a small UDP socket whose address every rank learned at start, while all
// were alive: when a deadline passes, the live ranks ask each other over it, outside MPI (which is blocked),
// where they are. A stopped process answers nothing (all its threads are frozen); a slow one answers with
// its step and what it is doing. A query also makes the asked rank report and exit, so every live rank
// prints its own block (step, collectives, sample ids) before the launcher tears the job down.
#ifndef LCC_WATCHDOG_H
#define LCC_WATCHDOG_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
  LCC_COLL_NONE,
  LCC_COLL_ALLREDUCE,
  LCC_COLL_REDUCE_SCATTER,
  LCC_COLL_ALLGATHER,
  LCC_COLL_SUM_F64,
  LCC_COLL_MAX_I64,
  LCC_COLL_BCAST,
  LCC_COLL_BARRIER,
  LCC_COLL_KINDS
} lcc_coll_kind;

typedef struct lcc_watchdog lcc_watchdog;

// Marks of one collective (w NULL: no deadline, nothing to do). bucket: the gradient bucket's index within
// its backward pass, -1 for other collectives. Collectives of one communicator never overlap (comm.h).
void lcc_watchdog_begin(lcc_watchdog *w, lcc_coll_kind kind, int bucket, size_t bytes);
void lcc_watchdog_end(lcc_watchdog *w);
// Stops the thread and frees w (NULL: nothing). Called by the communicators' destroy.
void lcc_watchdog_stop(lcc_watchdog *w);

#endif
