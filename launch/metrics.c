// metrics.jsonl and the loss plot.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trainer.h"
#include "util.h"

FILE *lcc_metrics_open(const char *out_dir, int keep_steps) {
  char path[LCC_OPT_STR + 32];
  snprintf(path, sizeof path, "%s/metrics.jsonl", out_dir);
  // keep the lines of steps <= keep_steps: after a resume, the steps past the checkpoint are run again
  char *old = keep_steps > 0 ? lcc_read_file(path, NULL) : NULL;
  FILE *f = fopen(path, "w");
  if (!f) {
    free(old);
    lcc_error("%s: %s", path, strerror(errno));
    return NULL;
  }
  for (char *line = old, *next; line && *line; line = next) {
    next = strchr(line, '\n');
    if (next) *next++ = 0;
    const char *s = strstr(line, "\"step\": ");
    if (s && atoi(s + 8) <= keep_steps) fprintf(f, "%s\n", line);
    if (!next) break;
  }
  free(old);
  fflush(f);
  return f;
}

// Writes "step value" lines of every metrics line that has `key` into path; returns how many.
static int extract(const char *text, const char *key, const char *path) {
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  int n = 0;
  char pattern[64];
  snprintf(pattern, sizeof pattern, "\"%s\": ", key);
  for (const char *line = text; line && *line;) {
    const char *end = strchr(line, '\n'), *step = strstr(line, "\"step\": "), *val = strstr(line, pattern);
    if (step && val && (!end || (val < end && step < end))) {   // the value as written in the JSON
      const char *v = val + strlen(pattern);
      fprintf(f, "%d %.*s\n", atoi(step + 8), (int)strcspn(v, ",}\n"), v);
      n++;
    }
    line = end ? end + 1 : NULL;
  }
  fclose(f);
  return n;
}

int lcc_metrics_plot(const char *out_dir) {
  char path[LCC_OPT_STR + 32], train[LCC_OPT_STR + 32], held[LCC_OPT_STR + 32], png[LCC_OPT_STR + 32];
  snprintf(path, sizeof path, "%s/metrics.jsonl", out_dir);
  snprintf(train, sizeof train, "%s/.loss.dat", out_dir);
  snprintf(held, sizeof held, "%s/.heldout.dat", out_dir);
  snprintf(png, sizeof png, "%s/loss.png", out_dir);
  char *text = lcc_read_file(path, NULL);
  if (!text) return -1;
  int n_train = extract(text, "loss", train), n_held = extract(text, "heldout_loss", held);
  free(text);
  if (n_train <= 0) return lcc_error("%s: no training loss to plot", path);
  char cmd[4 * LCC_OPT_STR + 512];
  snprintf(cmd, sizeof cmd,
           "gnuplot -e \"set terminal png size 900,540; set output '%s'; set xlabel 'step'; set ylabel 'loss'; set grid; "
           "plot '%s' with lines lw 2 title 'training loss'%s%s%s\" 2>&1",
           png, train, n_held > 0 ? ", '" : "", n_held > 0 ? held : "", n_held > 0 ? "' with linespoints lw 2 title 'held-out loss'" : "");
  int rc = system(cmd);
  remove(train);
  remove(held);
  return rc ? lcc_error("%s: gnuplot failed (exit status %d); is gnuplot installed?", png, rc) : 0;
}
