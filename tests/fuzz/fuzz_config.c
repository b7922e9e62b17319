// libFuzzer target: any byte string as a config.json; a config that parses must save and reload unchanged.
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lcc_config a, b;
  if (lcc_config_parse(&a, (const char *)data, size, "fuzz.json")) return 0;
  char path[64];
  snprintf(path, sizeof path, "/dev/shm/fuzz_config_%d.json", (int)getpid());
  if (lcc_config_save(&a, path) || lcc_config_load(&b, path) || memcmp(&a, &b, sizeof a)) __builtin_trap();
  unlink(path);
  return 0;
}
