// lcc_error: a message that wraps the previous one (the way every layer adds its context), truncation of
// long messages, and one message per thread.
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "testlib.h"
#include "util.h"

static void *other_thread(void *arg) {
  lcc_error("thread %d", 2);
  return (void *)(strcmp(lcc_last_error(), "thread 2") == 0 ? arg : NULL);
}

int main(void) {
  lcc_error("shard %s: %s", "s0.h5", "bad dataset 'tokens'");
  lcc_error("sample %d: %s", 7, lcc_last_error());
  lcc_error("loading data: %s", lcc_last_error());
  const char *want = "loading data: sample 7: shard s0.h5: bad dataset 'tokens'";
  checkf(!strcmp(lcc_last_error(), want), "a message wrapping the previous one twice: '%s'", lcc_last_error());

  // the previous message in the middle of the format, not only at its start
  lcc_error("abc");
  lcc_error("[%s] and [%s]", lcc_last_error(), lcc_last_error());
  checkf(!strcmp(lcc_last_error(), "[abc] and [abc]"), "the previous message used twice: '%s'", lcc_last_error());

  char longer[3000];
  memset(longer, 'x', sizeof longer - 1);
  longer[sizeof longer - 1] = 0;
  lcc_error("start %s", longer);
  size_t n = strlen(lcc_last_error());
  checkf(n > 1000 && n < 1024 && !strncmp(lcc_last_error(), "start xxx", 9), "a long message is cut, not overrun (%zu chars)", n);
  lcc_error("wrap: %s", lcc_last_error());
  checkf(!strncmp(lcc_last_error(), "wrap: start xxx", 15), "wrapping a cut message: '%.20s'", lcc_last_error());

  lcc_error("main thread");
  pthread_t t;
  int token = 0;
  void *ok = NULL;
  pthread_create(&t, NULL, other_thread, &token);
  pthread_join(t, &ok);
  check(ok == &token && !strcmp(lcc_last_error(), "main thread"), "each thread has its own message");
  return test_finish("test_error");
}
