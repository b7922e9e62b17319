// Every backend fills every slot of the op table (kernels/backend.h): a slot left NULL would crash only when
// that op first runs on that backend (a forgotten cpu-bf16 slot crashes only there). The slots are the
// function pointers from `destroy` to the end of lcc_backend; each one is named in the failure by its index.
// The CUDA table is checked by tests/gpu (it needs a device to be built).
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "backend.h"
#include "testlib.h"

typedef void (*slot_fn)(void);

// Every member from `destroy` on is a function pointer: the table has no data fields among its ops.
_Static_assert((sizeof(lcc_backend) - offsetof(lcc_backend, destroy)) % sizeof(slot_fn) == 0,
               "lcc_backend: only function pointers may follow `destroy`");

static int count_empty(const lcc_backend *be) {
  const size_t n = (sizeof(lcc_backend) - offsetof(lcc_backend, destroy)) / sizeof(slot_fn);
  int empty = 0;
  for (size_t i = 0; i < n; i++) {
    slot_fn f;
    memcpy(&f, (const char *)be + offsetof(lcc_backend, destroy) + i * sizeof(slot_fn), sizeof f);
    if (!f) empty++, fprintf(stderr, "%s: slot %zu of %zu (counting from destroy) is NULL\n", be->name, i, n);
  }
  return empty;
}

int main(void) {
  lcc_backend *backends[] = {lcc_cpu_backend(1), lcc_cpu_bf16_backend(1)};
  for (size_t b = 0; b < sizeof backends / sizeof *backends; b++) {
    lcc_backend *be = backends[b];
    checkf(count_empty(be) == 0, "%s: every slot of the op table is filled", be->name);
    be->destroy(be);
  }
  return test_finish("test_backend_slots");
}
