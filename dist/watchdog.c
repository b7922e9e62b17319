// The deadline of collectives and the stall report (watchdog.h). Needs no MPI: the start-up exchange goes
// through the communicator's own bcast, the report through UDP.
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "comm.h"
#include "util.h"
#include "watchdog.h"

#define HOST_CAP 64      // bytes of a host name kept (Linux's HOST_NAME_MAX)
#define BATCH_CAP 512    // the batch's sample ids as text
#define MSG_CAP 256      // one datagram
#define ASK_S 2.0        // how long a reporting rank waits for the others' answers
#define LINGER_S 1.0     // then it goes on answering, so ranks reporting at the same time hear from it
#define LIST_MAX 32      // ranks named one per line in each part of a report
#define FROZEN_S 3.0     // a gap this long between the watchdog's 1 s wake-ups: the process was stopped

typedef struct {
  int kind, bucket;
  size_t bytes;
} coll;

// Where a rank stands: what a query's answer says.
typedef struct {
  int answered, step;
  int64_t done;    // collectives completed
  coll pending;    // kind NONE: computing
  double age_s;    // how long it has waited in `pending`, or computed since its last collective
} standing;

typedef struct {   // what each rank tells the others at start (plain bytes: the same on every node)
  char host[HOST_CAP];
  uint32_t ip;     // network order
  uint16_t port;   // network order; 0: this rank has no socket
} peer;

struct lcc_watchdog {
  int rank, world, timeout_s;
  int sock, wake[2];      // the UDP socket (-1: none); a pipe whose write stops the thread
  unsigned long long token;   // the job's, in every message: a stray datagram must not end a run
  peer *peers;            // [world]
  double frozen_s, thawed;   // the last gap in the watchdog's wake-ups and when it ended (its thread only)
  pthread_t thread;
  pthread_mutex_t lock;   // guards the rest
  int step;
  char batch[BATCH_CAP];
  int64_t done;
  coll last, pending;
  double since;           // when `pending` began, or the last collective ended
};

static const char *const kind_names[LCC_COLL_KINDS] = {"none",    "allreduce", "reduce_scatter", "allgather",
                                                       "sum_f64", "max_i64",   "bcast",          "barrier"};

// ---- marks, on the threads that run collectives ----

void lcc_watchdog_begin(lcc_watchdog *w, lcc_coll_kind kind, int bucket, size_t bytes) {
  if (!w) return;
  const double now = lcc_now();
  pthread_mutex_lock(&w->lock);
  w->pending = (coll){kind, bucket, bytes};
  w->since = now;
  pthread_mutex_unlock(&w->lock);
}

void lcc_watchdog_end(lcc_watchdog *w) {
  if (!w) return;
  const double now = lcc_now();
  pthread_mutex_lock(&w->lock);
  w->last = w->pending;
  w->pending.kind = LCC_COLL_NONE;
  w->done++;
  w->since = now;
  pthread_mutex_unlock(&w->lock);
}

void lcc_comm_set_context(lcc_comm *c, int step, const int64_t *sample_ids, int n) {
  lcc_watchdog *w = c->watchdog;
  if (!w) return;
  char text[BATCH_CAP] = "";
  size_t k = 0;
  for (int i = 0; i < n && k < sizeof text; i++) {
    if (sample_ids[i] >= 0) k += (size_t)snprintf(text + k, sizeof text - k, "%s%lld", k ? ", " : "", (long long)sample_ids[i]);
    else k += (size_t)snprintf(text + k, sizeof text - k, "%s?", k ? ", " : "");
  }
  pthread_mutex_lock(&w->lock);
  w->step = step;
  memcpy(w->batch, text, sizeof text);
  pthread_mutex_unlock(&w->lock);
}

// ---- this rank's state, as the watchdog thread sees it ----

typedef struct {
  standing s;
  coll last;
  char batch[BATCH_CAP];
} snapshot;

static snapshot take(lcc_watchdog *w) {
  snapshot x;
  pthread_mutex_lock(&w->lock);
  const double now = lcc_now();
  x.s = (standing){1, w->step, w->done, w->pending, now - w->since};
  x.last = w->last;
  memcpy(x.batch, w->batch, sizeof x.batch);
  pthread_mutex_unlock(&w->lock);
  return x;
}

static void describe(const coll *k, int64_t number, char *out, size_t cap) {   // "#57 allreduce (bucket 3, 4.00 MiB)"
  char size[48];
  if (k->bytes >= (1u << 20)) snprintf(size, sizeof size, "%.2f MiB", (double)k->bytes / (1 << 20));
  else snprintf(size, sizeof size, "%zu bytes", k->bytes);
  char bucket[24] = "";
  if (k->bucket >= 0) snprintf(bucket, sizeof bucket, "bucket %d, ", k->bucket);
  snprintf(out, cap, "#%lld %s (%s%s)", (long long)number, kind_names[k->kind], bucket, size);
}

// "step 3, waiting in #57 allreduce (...) for 5.2 s" or "step 3, computing for 1.0 s since #56 ..."
static void where(const standing *s, const coll *last, char *out, size_t cap) {
  char k[128];
  if (s->pending.kind != LCC_COLL_NONE) {
    describe(&s->pending, s->done + 1, k, sizeof k);
    snprintf(out, cap, "step %d, waiting in collective %s for %.1f s", s->step, k, s->age_s);
  } else if (s->done) {
    if (last) describe(last, s->done, k, sizeof k);
    else snprintf(k, sizeof k, "#%lld", (long long)s->done);
    snprintf(out, cap, "step %d, computing (no collective pending) for %.1f s since collective %s", s->step, s->age_s, k);
  } else {
    snprintf(out, cap, "step %d, computing, no collective done yet", s->step);
  }
}

// ---- messages: "lccwd TOKEN query FROM" and "lccwd TOKEN state RANK STEP DONE KIND BUCKET BYTES AGE" ----

static void send_to(lcc_watchdog *w, const struct sockaddr_in *to, const char *msg) {
  // best effort: a lost datagram reads as a rank that did not answer, which the report says it may be
  if (sendto(w->sock, msg, strlen(msg), 0, (const struct sockaddr *)to, sizeof *to) < 0) {}
}

static void ask(lcc_watchdog *w, int r) {
  const peer *p = &w->peers[r];
  if (!p->port) return;
  // a rank on this node is asked over loopback: its node address may be on an interface we cannot pick
  const int here = !strcmp(p->host, w->peers[w->rank].host);
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = p->port};
  to.sin_addr.s_addr = here ? htonl(INADDR_LOOPBACK) : p->ip;
  char msg[MSG_CAP];
  snprintf(msg, sizeof msg, "lccwd %016llx query %d", w->token, w->rank);
  send_to(w, &to, msg);
}

// Reads the datagrams waiting. Answers queries and returns the rank that asked (its deadline passed), or -1
// when none did; stores answers in got[] when it is given.
static int receive(lcc_watchdog *w, standing *got) {
  int asked = -1;
  for (;;) {
    char buf[MSG_CAP + 1];
    struct sockaddr_in from;
    socklen_t len = sizeof from;
    const ssize_t n = recvfrom(w->sock, buf, MSG_CAP, MSG_DONTWAIT, (struct sockaddr *)&from, &len);
    if (n < 0) return asked;
    buf[n] = 0;
    unsigned long long token;
    char what[8];
    int r, at = 0;
    if (sscanf(buf, "lccwd %llx %7s %d %n", &token, what, &r, &at) != 3 || token != w->token || r < 0 || r >= w->world)
      continue;
    if (!strcmp(what, "query")) {
      const snapshot x = take(w);
      snprintf(buf, sizeof buf, "lccwd %016llx state %d %d %lld %d %d %zu %.3f", w->token, w->rank, x.s.step,
               (long long)x.s.done, x.s.pending.kind, x.s.pending.bucket, x.s.pending.bytes, x.s.age_s);
      send_to(w, &from, buf);
      asked = r;
    } else if (!strcmp(what, "state") && got && r != w->rank) {
      standing s = {.answered = 1};
      long long done;
      if (sscanf(buf + at, "%d %lld %d %d %zu %lf", &s.step, &done, &s.pending.kind, &s.pending.bucket, &s.pending.bytes,
                 &s.age_s) == 6 && s.pending.kind >= 0 && s.pending.kind < LCC_COLL_KINDS) {
        s.done = done;
        got[r] = s;
      }
    }
  }
}

// Receives (and answers) until `until`, or until every rank answered when got[] is given.
static void collect(lcc_watchdog *w, standing *got, double until) {
  for (double now = lcc_now(); now < until; now = lcc_now()) {
    int missing = 0;
    for (int r = 0; got && r < w->world; r++) missing += !got[r].answered;
    if (got && !missing) return;
    struct pollfd fd = {w->sock, POLLIN, 0};
    if (poll(&fd, 1, (int)((until - now) * 1e3) + 1) > 0) receive(w, got);
  }
}

// ---- the report ----

typedef struct {
  char *buf;
  size_t n, cap;
  int rank;
} text;

static void say(text *t, const char *fmt, ...) {   // one line, prefixed with the rank; cut when the buffer is full
  const size_t room = t->cap - t->n;   // the buffer keeps one byte for the newline
  if (room < 2) return;
  int k = snprintf(t->buf + t->n, room - 1, "livecc-train: rank %d: ", t->rank);
  va_list ap;
  va_start(ap, fmt);
  if (k >= 0 && (size_t)k < room - 1) k += vsnprintf(t->buf + t->n + k, room - 1 - (size_t)k, fmt, ap);
  va_end(ap);
  t->n += k < 0 ? 0 : (size_t)k < room - 1 ? (size_t)k : room - 2;
  t->buf[t->n++] = '\n';
}

// Position in the sequence of collectives every rank runs: past `done` of them, inside the next or not.
static int64_t position(const standing *s) { return 2 * s->done + (s->pending.kind != LCC_COLL_NONE); }

// One part of the report: the ranks r with want(r) (-1 behind or silent, 0 level, 1 ahead of this rank).
static void list(lcc_watchdog *w, text *t, const standing *got, int want, const char *title) {
  const standing *me = &got[w->rank];
  int n = 0;
  for (int r = 0; r < w->world; r++) {
    if (r == w->rank) continue;
    const standing *s = &got[r];
    const int64_t d = s->answered ? position(s) - position(me) : -1;
    if ((d > 0) - (d < 0) != want) continue;
    if (++n > LIST_MAX) continue;
    char at[256];
    if (!s->answered) snprintf(at, sizeof at, "not responding (stopped, dead or unreachable: no answer in %.0f s)", ASK_S);
    else if (want == 0 && s->pending.kind != LCC_COLL_NONE && s->pending.kind != me->pending.kind)
      snprintf(at, sizeof at, "waiting in a different collective, %s, at the same place (the ranks' collectives do not match)",
               kind_names[s->pending.kind]);
    else where(s, NULL, at, sizeof at);
    say(t, "%s rank %d (host %s): %s", title, r, w->peers[r].host, at);
  }
  if (n > LIST_MAX) say(t, "%s ... and %d more ranks", title, n - LIST_MAX);
}

// Asks the other ranks where they are, prints this rank's block, and ends the process. asked_by: the rank
// whose query started it, -1 when this rank's own deadline passed.
static void report(lcc_watchdog *w, int asked_by) {
  const snapshot x = take(w);
  standing *got = lcc_calloc((size_t)w->world, sizeof *got);
  got[w->rank] = x.s;
  if (w->sock >= 0) {
    for (int r = 0; r < w->world; r++)
      if (r != w->rank) ask(w, r);
    collect(w, got, lcc_now() + ASK_S);
  }
  text t = {.cap = 16384 + (size_t)LIST_MAX * 3 * 400, .rank = w->rank};
  t.buf = lcc_malloc(t.cap);
  char now_at[320], last[128] = "none", pending[160] = "none";
  where(&x.s, &x.last, now_at, sizeof now_at);
  if (x.s.done) describe(&x.last, x.s.done, last, sizeof last);
  if (x.s.pending.kind != LCC_COLL_NONE) describe(&x.s.pending, x.s.done + 1, pending, sizeof pending);
  else snprintf(pending, sizeof pending, "none (computing for %.1f s)", x.s.age_s);
  if (asked_by < 0)
    say(&t, "collective timeout: waited %.1f s in collective %s (collective_timeout = %d s)", x.s.age_s, pending, w->timeout_s);
  else say(&t, "collective timeout on rank %d (host %s); this rank is at %s", asked_by, w->peers[asked_by].host, now_at);
  say(&t, "host %s, step %d (the last step this rank began; 0: none yet), its batch's sample ids: %s",
      w->peers[w->rank].host, x.s.step, x.batch[0] ? x.batch : "none");
  say(&t, "last completed collective: %s; pending: %s", last, pending);
  if (w->frozen_s > 0)   // e.g. SIGSTOP, then mpirun's SIGCONT before it kills the job
    say(&t, "this process was frozen for %.1f s (stopped, or not scheduled) until %.1f s ago: it is likely the "
            "rank the others waited for", w->frozen_s, lcc_now() - w->thawed);
  if (w->sock < 0) say(&t, "this rank has no watchdog socket: it cannot ask where the other ranks are");
  int late = 0;
  for (int r = 0; r < w->world; r++) late += r != w->rank && (!got[r].answered || position(&got[r]) < position(&x.s));
  if (!late) say(&t, "not arrived: none (every other rank answered and is level with or ahead of this one)");
  list(w, &t, got, -1, "not arrived:");
  list(w, &t, got, 0, x.s.pending.kind != LCC_COLL_NONE ? "in the same collective:" : "at the same place:");
  list(w, &t, got, 1, "ahead of this rank:");
  say(&t, "exiting with code %d (collective timeout): do not requeue blindly; the ranks named above are the suspects",
      LCC_EXIT_COLLECTIVE_TIMEOUT);
  fflush(stdout);
  for (size_t at = 0; at < t.n;) {   // one write where the pipe takes it: the block stays in one piece
    const ssize_t k = write(STDERR_FILENO, t.buf + at, t.n - at);
    if (k <= 0 && errno != EINTR) break;
    if (k > 0) at += (size_t)k;
  }
  if (w->sock >= 0) collect(w, NULL, lcc_now() + LINGER_S);
  _exit(LCC_EXIT_COLLECTIVE_TIMEOUT);   // the main thread is inside MPI: no clean way back
}

static void *watch(void *arg) {
  lcc_watchdog *w = arg;
  for (double tick = lcc_now();;) {
    struct pollfd fds[2] = {{w->wake[0], POLLIN, 0}, {w->sock, POLLIN, 0}};   // a negative fd is skipped
    if (poll(fds, 2, 1000) < 0 && errno != EINTR) lcc_fatal("watchdog: poll failed: %s", strerror(errno));
    const double now = lcc_now();   // the monotonic clock runs on while the process is stopped
    if (now - tick > FROZEN_S) w->frozen_s = now - tick, w->thawed = now;
    tick = now;
    if (fds[0].revents) return NULL;
    // a query means another rank's deadline passed: this one reports too (its step, its batch)
    const int asked = fds[1].revents & POLLIN ? receive(w, NULL) : -1;
    if (asked >= 0) report(w, asked);
    const snapshot x = take(w);
    if (x.s.pending.kind != LCC_COLL_NONE && x.s.age_s > w->timeout_s) report(w, -1);
  }
}

// ---- start and stop ----

static int loopback(uint32_t ip) { return (ntohl(ip) >> 24) == 127; }

// This node's address as other nodes reach it: its host name's IPv4 address, else the first address of an
// interface that is up (a host name often resolves to 127.0.1.1), else loopback (one node).
static uint32_t node_address(const char *host) {
  uint32_t ip = 0;
  struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_DGRAM}, *res = NULL;
  if (!getaddrinfo(host, NULL, &hints, &res)) {
    for (struct addrinfo *a = res; a && !ip; a = a->ai_next) {
      const uint32_t x = ((const struct sockaddr_in *)a->ai_addr)->sin_addr.s_addr;
      if (!loopback(x)) ip = x;
    }
    freeaddrinfo(res);
  }
  struct ifaddrs *ifs = NULL;
  if (!ip && !getifaddrs(&ifs)) {
    for (struct ifaddrs *i = ifs; i && !ip; i = i->ifa_next)
      if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET && (i->ifa_flags & IFF_UP) && !(i->ifa_flags & IFF_LOOPBACK))
        ip = ((const struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr;
    freeifaddrs(ifs);
  }
  return ip ? ip : htonl(INADDR_LOOPBACK);
}

// A UDP socket on every interface and a free port. -1 (with a warning) when there is none: the deadline
// still holds, the report only lacks the other ranks' answers.
static int open_socket(int rank, uint16_t *port) {
  const int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY)};
  socklen_t len = sizeof a;
  if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) || getsockname(s, (struct sockaddr *)&a, &len)) {
    fprintf(stderr, "livecc-train: rank %d: warning: no watchdog socket (%s): a collective timeout will not learn "
                    "where the other ranks are\n", rank, strerror(errno));
    if (s >= 0) close(s);
    return -1;
  }
  *port = a.sin_port;
  return s;
}

void lcc_comm_set_timeout(lcc_comm *c, int seconds) {
  if (seconds <= 0 || c->world < 2 || c->watchdog) return;
  lcc_watchdog *w = lcc_calloc(1, sizeof *w);
  w->rank = c->rank, w->world = c->world, w->timeout_s = seconds;
  peer me = {.ip = 0};
  if (gethostname(me.host, sizeof me.host - 1)) snprintf(me.host, sizeof me.host, "unknown");
  w->sock = open_socket(c->rank, &me.port);
  if (w->sock >= 0) me.ip = node_address(me.host);
  // every rank's host and address, learned now while all are alive (one bcast each: world is small)
  w->peers = lcc_calloc((size_t)c->world, sizeof *w->peers);
  for (int r = 0; r < c->world; r++) {
    peer p = r == c->rank ? me : (peer){.ip = 0};
    c->bcast(c, &p, sizeof p, r);
    p.host[sizeof p.host - 1] = 0;
    w->peers[r] = p;
  }
  if (c->rank == 0 && getentropy(&w->token, sizeof w->token))
    w->token = (unsigned long long)time(NULL) * 0x9E3779B97F4A7C15ull ^ (unsigned long long)getpid();
  c->bcast(c, &w->token, sizeof w->token, 0);
  LCC_CHECK(pipe2(w->wake, O_CLOEXEC) == 0, "watchdog: pipe failed: %s", strerror(errno));
  pthread_mutex_init(&w->lock, NULL);
  w->since = lcc_now();
  // signals are for the main thread (SIGTERM/SIGUSR1 start a checkpoint there): the watchdog takes none
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  LCC_CHECK(pthread_create(&w->thread, NULL, watch, w) == 0, "cannot start the watchdog thread");
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  c->watchdog = w;
}

void lcc_watchdog_stop(lcc_watchdog *w) {
  if (!w) return;
  const char stop = 1;
  LCC_CHECK(write(w->wake[1], &stop, 1) == 1, "watchdog: cannot stop its thread: %s", strerror(errno));
  pthread_join(w->thread, NULL);
  close(w->wake[0]);
  close(w->wake[1]);
  if (w->sock >= 0) close(w->sock);
  pthread_mutex_destroy(&w->lock);
  free(w->peers);
  free(w);
}
