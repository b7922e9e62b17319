// livecc-convert: exports a trained model for inference engines.
//   livecc-convert --input=PATH --output=DIR [--format=hf|gguf] [--dtype=bf16|fp16|fp32|q8_0]
//                  [--tokenizer=tokenizer.json] [--mmproj=mmproj.gguf] [--name=NAME] [--shard_mb=N] [--untie=true]
// Inputs: a checkpoint (step-*/ with state.json), a run's checkpoints directory (its `latest`), an HF Qwen2-VL
// folder, or a GGUF pair. Outputs: an HF folder (config, generation config, sharded safetensors + index,
// processor and tokenizer files), or DIR/model-<dtype>.gguf + DIR/mmproj-<dtype>.gguf for llama.cpp
// (llama-mtmd-cli -m DIR/model-<dtype>.gguf --mmproj DIR/mmproj-<dtype>.gguf).
// Exit codes: 0 done, 1 error, 2 bad arguments.
#include <stdio.h>
#include <string.h>

#include "convert.h"
#include "util.h"

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      printf("usage: livecc-convert [--config FILE] --input=PATH --output=DIR [--key=value ...]\nKeys:\n");
      lcc_opts_usage(lcc_convert_opt_table, lcc_convert_opt_count, stdout);
      return 0;
    }
  lcc_convert_opts o;
  if (lcc_opts_parse_argv(&o, lcc_convert_opt_table, lcc_convert_opt_count, argc, argv)) {
    fprintf(stderr, "livecc-convert: error: %s\n", lcc_last_error());
    return 2;
  }
  printf("# livecc-convert resolved configuration\n");
  lcc_opts_print(&o, lcc_convert_opt_table, lcc_convert_opt_count, stdout);
  fflush(stdout);
  if (lcc_convert(&o, stdout)) {
    fprintf(stderr, "livecc-convert: error: %s\n", lcc_last_error());
    return 1;
  }
  return 0;
}
