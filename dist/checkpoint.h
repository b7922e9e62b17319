// Checkpoints (DESIGN.md section 4): a directory per step, written by every rank into a temporary
// directory and renamed when complete; a `latest` file that moves only after that.
//
//   <dir>/step-00000006/
//     config.json, model-0000k-of-0000n.safetensors, model.safetensors.index.json   HF layout (rank 0)
//     optim-00000-of-00002.safetensors ...   rank r's part [begin, end) of the trainable range: tensors
//         "master" (fp32 weights), "exp_avg", "exp_avg_sq", with begin/end/n_grad in the metadata
//     state.json   step, consumed samples, world size, ZeRO stage, layout hash, the run configuration, and
//                  the size and CRC-64 of every file above (rank 0)
//     state.sum    "<bytes> <crc64>" of state.json (rank 0, written last)
//   <dir>/latest   "step-00000006"
// A checkpoint loads on any number of ranks: each rank reads its new part from the files that hold it.
#ifndef LCC_CHECKPOINT_H
#define LCC_CHECKPOINT_H

#include <stdint.h>

#include "ckpt_read.h"
#include "comm.h"
#include "data_parallel.h"


typedef struct {
  int64_t step;            // optimizer steps done
  int64_t consumed;        // data stream positions consumed (the loader's state)
  int world_size, zero;    // of the run that wrote it
  char run_config[16384];  // resolved run configuration, "key = value" lines
} lcc_ckpt_state;

// Writes step st->step under dir (collective over comm). keep_last > 0 removes older step directories
// beyond that many. Returns 0, or -1 with lcc_error(); a failure never leaves a directory under its final
// name, and `latest` keeps pointing at the previous checkpoint.
int lcc_ckpt_save(const char *dir, lcc_model *m, lcc_dp *dp, const lcc_ckpt_state *st, int keep_last);
// Finds the newest checkpoint under dir that passes its checksums (state.json's own in state.sum),
// starting at `latest` and falling back to older ones with a message on stderr for each one refused
// (collective; rank 0 checks, all learn). Each refused one is moved to refused-step-NNNNNNNN, where no
// later save or prune touches it. *refused (may be NULL): how many refused-step-* directories dir holds.
// Returns 1 with the directory in path, 0 when none passes.
int lcc_ckpt_find(const char *dir, lcc_comm *comm, char *path, size_t cap, int *refused);
// Loads the weights and this rank's optimizer part (any world size) and the state (collective).
int lcc_ckpt_load(const char *path, lcc_model *m, lcc_dp *dp, lcc_ckpt_state *st);
// The exact weights of a checkpoint for export: its HF files hold the compute copy (bf16 on CUDA), its
// optimizer parts the fp32 master weights of every tensor the run trained. Overwrites those tensors of m
// (any freeze list and backend; the run's own list is in state.json) with the masters. No communicator.
// Returns 0, or -1 with lcc_error().
int lcc_ckpt_load_master(const char *path, lcc_model *m);
// Removes temporary directories left by interrupted saves (rank 0 at start).
void lcc_ckpt_clean(const char *dir);
// Fault injection for tests: the save of this step SIGKILLs the process after the files are written and
// before the directory is renamed (0: off).
void lcc_ckpt_fault_kill_in_save(int64_t step);

#endif
