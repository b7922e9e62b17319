// Incremental inference with a key/value cache: a context that grows by appended tokens (and their pictures),
// each append running only the new tokens through the model against the cached keys and values. This is
// what streaming commentary needs: a new second of video and the words generated for it cost only their own
// tokens; the prefix is never recomputed.
//
// Positions follow the canonical get_rope_index over the whole context, computed piecewise: an appended
// segment starts at the cached context's next position (max position + 1), so appending in any split gives
// the positions (and, up to float rounding, the logits) of one forward over the whole context.
#ifndef LCC_INFER_H
#define LCC_INFER_H

#include <stdint.h>

#include "model.h"

typedef struct {
  lcc_model *m;
  int cap;                  // context capacity in tokens
  int n;                    // tokens in the cache
  void **k, **v;            // [L] cached keys (rotated) and values [cap, Hkv*D] (act type)
  int32_t *ids;             // [cap] the cached tokens (host)
  int32_t *next_after;      // [cap] next position after each cached token (host)
  int next_pos;             // first position of the next appended token
  // scratch for a segment of up to seg_cap tokens (backend memory)
  int seg_cap;
  void *x, *t1, *qkv, *att, *h, *gu, *s;   // [seg,C] [seg,C] [seg,Q] [seg,Hq*D] [seg,C] [seg,2I] [seg,I]
  float *rstd, *cos, *sin;                 // [seg] [seg, D/2] [seg, D/2]
  int32_t *dev_ids, *rows;                 // [seg] [seg]
  void *last;                              // [C] final-norm output of the last appended token
  void *logits_act;                        // [V]
  float *logits;                           // [V] host fp32: logits of the last appended token
} lcc_infer;

// capacity: tokens the context may hold. Returns 0, or -1 with lcc_error().
int lcc_infer_init(lcc_infer *s, lcc_model *m, int capacity);
void lcc_infer_free(lcc_infer *s);
// Appends n tokens; items/pixels: the vision items whose pad tokens are among them, in order, and their
// patch rows. Fills s->logits with the next-token logits after the last appended token.
// Returns 0, or -1 with lcc_error() (capacity exceeded, pads and items disagree).
int lcc_infer_append(lcc_infer *s, const int32_t *ids, int n, const lcc_vision_item *items, int n_items,
                     const float *pixels, int n_patches);
// Forgets the cached tokens from index `keep` on (keep <= n; never inside a vision item's pad tokens).
void lcc_infer_truncate(lcc_infer *s, int keep);
// Removes cached tokens [a, b) and closes the gap (the paper evicts old visual tokens every 240 s). The other
// tokens keep their positions, so the next token's position does not change.
void lcc_infer_evict(lcc_infer *s, int a, int b);

#endif
