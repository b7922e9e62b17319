// Qwen2-VL model configuration, read from a Hugging Face config.json (Qwen2VLForConditionalGeneration).
// Accepts the flat legacy layout (text fields at the root) and the nested one (text fields in
// "text_config"); rope_scaling or rope_parameters carry mrope_section.
#ifndef LCC_CONFIG_H
#define LCC_CONFIG_H

#include <stddef.h>

typedef struct {
  // decoder (Qwen2)
  int vocab_size;
  int hidden_size;          // C
  int intermediate_size;    // I
  int num_layers;           // L
  int num_heads;            // Hq
  int num_kv_heads;         // Hkv
  int head_dim;             // hidden_size / num_heads
  float rms_norm_eps;
  float rope_theta;
  int mrope_section[3];     // (t, h, w) frequency counts; 2 * sum = head_dim
  int tie_word_embeddings;
  int max_position_embeddings;
  // special token ids
  int bos_token_id, eos_token_id;
  int vision_start_token_id, vision_end_token_id, vision_token_id, image_token_id, video_token_id;
  // vision tower
  int vit_depth;
  int vit_embed_dim;        // E
  int vit_num_heads;
  int vit_head_dim;         // E / vit_num_heads
  int vit_mlp_dim;          // E * mlp_ratio
  int vit_out_dim;          // vision_config.hidden_size (= hidden_size)
  int patch_size;           // 14
  int temporal_patch_size;  // 2
  int spatial_merge_size;   // 2
  int in_channels;          // 3
  float vit_norm_eps;       // 1e-6, hard-coded in HF
  float vit_rope_theta;     // 10000, hard-coded in HF
  char torch_dtype[16];
} lcc_config;

// Parses and validates config.json (a file, or a directory holding one). Returns 0, or -1 with lcc_error()
// naming the file and the key that is missing, mistyped or inconsistent.
int lcc_config_load(lcc_config *cfg, const char *path);
int lcc_config_parse(lcc_config *cfg, const char *text, size_t len, const char *what);
// Writes config.json in the flat legacy layout that transformers, vLLM and llama.cpp all read.
int lcc_config_save(const lcc_config *cfg, const char *path);
// Derived sizes.
static inline int lcc_patch_dim(const lcc_config *c) {   // 3 * 2 * 14 * 14 = 1176
  return c->in_channels * c->temporal_patch_size * c->patch_size * c->patch_size;
}
static inline int lcc_merge_units(const lcc_config *c) { return c->spatial_merge_size * c->spatial_merge_size; }

#endif
