// config.json: the three shipped configs, save/reload round trips, the nested layout, and one clear message
// (naming the file and the key) for each kind of bad input.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "testlib.h"
#include "util.h"

static char *tiny_text;   // configs/model/tiny.json, the base of every variant below

// A copy of text with the first `from` replaced by `to`.
static char *replace(const char *text, const char *from, const char *to) {
  const char *at = strstr(text, from);
  LCC_CHECK(at, "test bug: '%s' not found", from);
  char *out = lcc_malloc(strlen(text) + strlen(to) + 1);
  size_t k = (size_t)(at - text);
  memcpy(out, text, k);
  strcpy(out + k, to);
  strcat(out, at + strlen(from));
  return out;
}

static void load_ok(lcc_config *c, const char *path) {
  CHECKF(lcc_config_load(c, path) == 0, "unexpected failure: %s", lcc_last_error());
}

static void test_shipped(void) {
  lcc_config c;
  load_ok(&c, "configs/model/qwen2vl-7b.json");
  CHECK(c.vocab_size == 152064 && c.hidden_size == 3584 && c.intermediate_size == 18944);
  CHECK(c.num_layers == 28 && c.num_heads == 28 && c.num_kv_heads == 4 && c.head_dim == 128);
  CHECK(c.mrope_section[0] == 16 && c.mrope_section[1] == 24 && c.mrope_section[2] == 24);
  CHECK(c.rms_norm_eps == 1e-6f && c.rope_theta == 1e6f && c.max_position_embeddings == 32768);
  CHECK(!c.tie_word_embeddings && !strcmp(c.torch_dtype, "bfloat16"));
  CHECK(c.bos_token_id == 151643 && c.eos_token_id == 151645 && c.vision_start_token_id == 151652);
  CHECK(c.vision_end_token_id == 151653 && c.vision_token_id == 151654 && c.image_token_id == 151655 && c.video_token_id == 151656);
  CHECK(c.vit_depth == 32 && c.vit_embed_dim == 1280 && c.vit_num_heads == 16 && c.vit_head_dim == 80);
  CHECK(c.vit_mlp_dim == 5120 && c.vit_out_dim == 3584 && c.patch_size == 14 && c.temporal_patch_size == 2);
  CHECK(c.spatial_merge_size == 2 && c.in_channels == 3 && lcc_patch_dim(&c) == 1176 && lcc_merge_units(&c) == 4);
  CHECK(c.vit_norm_eps == 1e-6f && c.vit_rope_theta == 10000.0f);

  load_ok(&c, "configs/model/qwen2vl-2b.json");
  CHECK(c.vocab_size == 151936 && c.hidden_size == 1536 && c.intermediate_size == 8960 && c.num_layers == 28);
  CHECK(c.num_heads == 12 && c.num_kv_heads == 2 && c.head_dim == 128 && c.tie_word_embeddings);
  CHECK(c.vit_out_dim == 1536 && c.vit_embed_dim == 1280 && !strcmp(c.torch_dtype, "bfloat16"));

  load_ok(&c, "configs/model/tiny.json");
  CHECK(c.vocab_size == 1024 && c.hidden_size == 128 && c.intermediate_size == 352 && c.num_layers == 2);
  CHECK(c.num_heads == 4 && c.num_kv_heads == 2 && c.head_dim == 32 && !c.tie_word_embeddings);
  CHECK(c.mrope_section[0] == 4 && c.mrope_section[1] == 6 && c.mrope_section[2] == 6);
  CHECK(c.bos_token_id == 1000 && c.eos_token_id == 1002 && c.vision_start_token_id == 1009 && c.vision_end_token_id == 1010);
  CHECK(c.vision_token_id == 1011 && c.image_token_id == 1012 && c.video_token_id == 1013);
  CHECK(c.vit_depth == 2 && c.vit_embed_dim == 64 && c.vit_num_heads == 2 && c.vit_head_dim == 32 && c.vit_mlp_dim == 256);
  CHECK(c.vit_out_dim == 128 && !strcmp(c.torch_dtype, "float32"));

  // a directory holding config.json
  const char *dir = tmp_path("model_dir");
  mkdir(dir, 0755);
  write_text(path_in(dir, "config.json"), tiny_text);
  lcc_config d;
  load_ok(&d, dir);
  CHECK(!memcmp(&c, &d, sizeof c));
}

// save(load(x)) reproduces the shipped file byte for byte, and reloads to the same struct.
static void test_round_trip(void) {
  const char *files[] = {"configs/model/qwen2vl-7b.json", "configs/model/qwen2vl-2b.json", "configs/model/tiny.json"};
  char out[1200];
  snprintf(out, sizeof out, "%s", tmp_path("saved.json"));
  for (int i = 0; i < 3; i++) {
    lcc_config a, b;
    load_ok(&a, files[i]);
    CHECK(lcc_config_save(&a, out) == 0);
    load_ok(&b, out);
    CHECK(!memcmp(&a, &b, sizeof a));
    char *orig = lcc_read_file(files[i], NULL), *saved = lcc_read_file(out, NULL);
    CHECK(orig && saved && !strcmp(orig, saved));
    free(orig);
    free(saved);
  }
  // a non-integral MLP ratio: 12 * 0.42 truncates to 5; the saved ratio must give 5 again
  lcc_config a, b;
  char *text = replace(tiny_text, "\"embed_dim\": 64, \"mlp_ratio\": 4, \"num_heads\": 2",
                       "\"embed_dim\": 12, \"mlp_ratio\": 0.42, \"num_heads\": 1");
  CHECK(lcc_config_parse(&a, text, strlen(text), "ratio.json") == 0 && a.vit_mlp_dim == 5);
  CHECK(lcc_config_save(&a, out) == 0);
  load_ok(&b, out);
  CHECK(!memcmp(&a, &b, sizeof a));
  free(text);
  // unwritable destination
  snprintf(out, sizeof out, "%s", tmp_path("no/such/dir/config.json"));
  CHECK(lcc_config_save(&a, out) == -1 && strstr(lcc_last_error(), out));
}

// transformers >= 4.5x writes text fields under text_config and rope_parameters instead of rope_scaling.
static void test_nested(void) {
  const char *nested =
      "{\"architectures\": [\"Qwen2VLForConditionalGeneration\"], \"model_type\": \"qwen2_vl\",\n"
      " \"image_token_id\": 1012, \"video_token_id\": 1013, \"vision_start_token_id\": 1009,\n"
      " \"vision_end_token_id\": 1010, \"vision_token_id\": 1011, \"dtype\": \"float32\", \"tie_word_embeddings\": false,\n"
      " \"text_config\": {\"model_type\": \"qwen2_vl_text\", \"vocab_size\": 1024, \"hidden_size\": 128,\n"
      "   \"intermediate_size\": 352, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"num_key_value_heads\": 2,\n"
      "   \"hidden_act\": \"silu\", \"rms_norm_eps\": 1e-06, \"bos_token_id\": 1000, \"eos_token_id\": 1002,\n"
      "   \"max_position_embeddings\": 32768, \"sliding_window\": null, \"use_sliding_window\": false,\n"
      "   \"rope_parameters\": {\"rope_type\": \"default\", \"mrope_section\": [4, 6, 6], \"rope_theta\": 1000000.0}},\n"
      " \"vision_config\": {\"depth\": 2, \"embed_dim\": 64, \"mlp_ratio\": 4.0, \"num_heads\": 2, \"in_channels\": 3,\n"
      "   \"hidden_size\": 128, \"hidden_act\": \"quick_gelu\", \"patch_size\": 14, \"spatial_merge_size\": 2,\n"
      "   \"temporal_patch_size\": 2, \"model_type\": \"qwen2_vl\"}}\n";
  lcc_config a, b;
  load_ok(&a, "configs/model/tiny.json");
  CHECK(lcc_config_parse(&b, nested, strlen(nested), "nested.json") == 0);
  CHECK(!memcmp(&a, &b, sizeof a));
  // messages name the nested key
  char *text = replace(nested, "\"hidden_size\": 128", "\"hidden_sizX\": 128");
  CHECK(lcc_config_parse(&b, text, strlen(text), "nested.json") == -1);
  CHECK(!strcmp(lcc_last_error(), "nested.json: key 'text_config.hidden_size': missing"));
  free(text);
  text = replace(nested, "[4, 6, 6]", "[4, 6, 7]");
  CHECK(lcc_config_parse(&b, text, strlen(text), "nested.json") == -1);
  CHECK(strstr(lcc_last_error(), "nested.json: key 'text_config.rope_parameters.mrope_section': 2 * (4 + 6 + 7) must equal head_dim 32"));
  free(text);
}

// Writes tiny.json with the first `from` replaced by `to` (from == NULL: `to` is the whole text), loads it,
// and expects failure with a message that starts with the file name and contains `want`.
static void expect_bad(const char *from, const char *to, const char *want) {
  const char *path = tmp_path("bad.json");
  char *text = from ? replace(tiny_text, from, to) : lcc_strdup(to);
  write_text(path, text);
  free(text);
  lcc_config c;
  int rc = lcc_config_load(&c, path);
  const char *msg = lcc_last_error();
  CHECKF(rc == -1 && !strncmp(msg, path, strlen(path)) && strstr(msg, want),
         "%s -> %s: expected an error containing \"%s\", got %s", from ? from : "(text)", to, want, rc ? msg : "success");
}

static void test_bad(void) {
  char path[1200];
  snprintf(path, sizeof path, "%s", tmp_path("missing.json"));
  lcc_config c;
  CHECK(lcc_config_load(&c, path) == -1 && strstr(lcc_last_error(), path) && strstr(lcc_last_error(), "No such file"));
  snprintf(path, sizeof path, "%s", tmp_path("empty_dir"));   // a directory without config.json
  mkdir(path, 0755);
  CHECK(lcc_config_load(&c, path) == -1 && strstr(lcc_last_error(), "empty_dir/config.json: No such file"));

  // malformed JSON and a wrong top level
  expect_bad("\"vocab_size\": 1024,", "\"vocab_size\": 1024,,", "expected a string key but found ',' at line 29 column");
  expect_bad(NULL, "{\"vocab_size\": 10", "expected ',' or '}' but found end of input at line 1 column 18");
  expect_bad(NULL, "", "unexpected end of input at line 1 column 1");
  expect_bad(NULL, "[1, 2]", "expected a JSON object at the top level");
  // missing keys
  expect_bad("\"vocab_size\": 1024,", "", "key 'vocab_size': missing");
  expect_bad("\"hidden_size\": 128,", "", "key 'hidden_size': missing");
  expect_bad("\"intermediate_size\": 352,", "", "key 'intermediate_size': missing");
  expect_bad("\"num_hidden_layers\": 2,", "", "key 'num_hidden_layers': missing");
  expect_bad("\"num_attention_heads\": 4,", "", "key 'num_attention_heads': missing");
  expect_bad("\"num_key_value_heads\": 2,", "", "key 'num_key_value_heads': missing");
  expect_bad("\"rope_scaling\": {\"type\": \"mrope\", \"mrope_section\": [4, 6, 6]},", "", "key 'rope_scaling.mrope_section': missing");
  expect_bad("\"depth\": 2, ", "", "key 'vision_config.depth': missing");
  expect_bad("\"embed_dim\": 64, ", "", "key 'vision_config.embed_dim': missing");
  expect_bad("\"in_channels\": 3, \"hidden_size\": 128,", "\"in_channels\": 3,", "key 'vision_config.hidden_size': missing");
  expect_bad(",\n  \"vision_config\"", ",\n  \"vision_configs\"", "key 'vision_config': missing");
  // wrong types
  expect_bad("\"hidden_size\": 128", "\"hidden_size\": \"128\"", "key 'hidden_size': expected an integer (got the string \"128\")");
  expect_bad("\"num_hidden_layers\": 2", "\"num_hidden_layers\": 2.0", "key 'num_hidden_layers': expected an integer (got 2.0)");
  expect_bad("\"num_hidden_layers\": 2", "\"num_hidden_layers\": 2.5", "key 'num_hidden_layers': expected an integer (got 2.5)");
  expect_bad("\"vocab_size\": 1024", "\"vocab_size\": [1024]", "key 'vocab_size': expected an integer (got an array)");
  expect_bad("\"tie_word_embeddings\": false", "\"tie_word_embeddings\": \"no\"", "key 'tie_word_embeddings': expected true or false");
  expect_bad("\"rms_norm_eps\": 1e-06", "\"rms_norm_eps\": \"1e-6\"", "key 'rms_norm_eps': expected a number");
  expect_bad("\"rope_scaling\": {\"type\": \"mrope\", \"mrope_section\": [4, 6, 6]}", "\"rope_scaling\": \"mrope\"",
             "key 'rope_scaling': expected an object (got the string \"mrope\")");
  expect_bad("[4, 6, 6]", "[4, 6, 6, 0]", "key 'rope_scaling.mrope_section': expected an array of 3 integers");
  expect_bad("[4, 6, 6]", "[4, 6.0, 6]", "key 'rope_scaling.mrope_section': expected an array of 3 non-negative integers");
  expect_bad("\"vision_config\": {", "\"vision_config\": [], \"x\": {", "key 'vision_config': expected an object (got an array)");
  expect_bad("\"torch_dtype\": \"float32\"", "\"torch_dtype\": 32", "key 'torch_dtype': expected a string (got 32)");
  expect_bad("\"mlp_ratio\": 4", "\"mlp_ratio\": \"4\"", "key 'vision_config.mlp_ratio': expected a number");
  // out-of-range values and unsupported settings
  expect_bad("\"intermediate_size\": 352", "\"intermediate_size\": 0", "key 'intermediate_size': must be >= 1 (got 0)");
  expect_bad("\"num_hidden_layers\": 2", "\"num_hidden_layers\": -2", "key 'num_hidden_layers': must be >= 1 (got -2)");
  expect_bad("\"vocab_size\": 1024", "\"vocab_size\": 3000000000", "key 'vocab_size': too large (got 3000000000)");
  expect_bad("\"rms_norm_eps\": 1e-06", "\"rms_norm_eps\": 0", "key 'rms_norm_eps': must be a positive finite float (got 0)");
  expect_bad("\"rope_theta\": 1000000.0", "\"rope_theta\": 1e999", "key 'rope_theta': must be a positive finite float (got inf)");
  expect_bad("\"rms_norm_eps\": 1e-06", "\"rms_norm_eps\": 1e-50", "key 'rms_norm_eps': must be a positive finite float (got 1e-50)");
  expect_bad("\"torch_dtype\": \"float32\"", "\"torch_dtype\": \"float\\\"32\"", "key 'torch_dtype': unknown dtype \"float\"32\"");
  expect_bad("\"mlp_ratio\": 4", "\"mlp_ratio\": 0.001", "key 'vision_config.mlp_ratio': embed_dim 64 * mlp_ratio = 0.064");
  expect_bad("\"hidden_act\": \"silu\"", "\"hidden_act\": \"gelu\"", "key 'hidden_act': only \"silu\" is supported (got \"gelu\")");
  expect_bad("\"hidden_act\": \"quick_gelu\"", "\"hidden_act\": \"gelu\"", "key 'vision_config.hidden_act': only \"quick_gelu\"");
  expect_bad("\"model_type\": \"qwen2_vl\"", "\"model_type\": \"qwen2_5_vl\"", "key 'model_type': only \"qwen2_vl\" is supported");
  expect_bad("\"use_sliding_window\": false", "\"use_sliding_window\": true", "key 'use_sliding_window': sliding-window attention");
  // inconsistent sizes
  expect_bad("\"num_attention_heads\": 4", "\"num_attention_heads\": 3", "key 'num_attention_heads': must divide hidden_size 128 (got 3)");
  expect_bad("\"num_key_value_heads\": 2", "\"num_key_value_heads\": 3", "key 'num_key_value_heads': must divide num_attention_heads 4 (got 3)");
  expect_bad("[4, 6, 6]", "[4, 6, 5]", "key 'rope_scaling.mrope_section': 2 * (4 + 6 + 5) must equal head_dim 32");
  expect_bad("\"num_heads\": 2", "\"num_heads\": 3", "key 'vision_config.num_heads': must divide embed_dim 64 (got 3)");
  expect_bad("\"embed_dim\": 64, \"mlp_ratio\": 4, \"num_heads\": 2", "\"embed_dim\": 72, \"mlp_ratio\": 4, \"num_heads\": 4",
             "key 'vision_config.num_heads': head_dim 72 / 4 = 18 must be a multiple of 4");
  expect_bad("\"in_channels\": 3, \"hidden_size\": 128", "\"in_channels\": 3, \"hidden_size\": 64",
             "key 'vision_config.hidden_size': must equal the text hidden_size 128 (got 64)");
  expect_bad("\"spatial_merge_size\": 2", "\"spatial_merge_size\": 3", "key 'vision_config.spatial_merge_size': only 2 is supported (got 3)");
  expect_bad("\"temporal_patch_size\": 2", "\"temporal_patch_size\": 1", "key 'vision_config.temporal_patch_size': only 2 is supported (got 1)");
  expect_bad("\"patch_size\": 14", "\"patch_size\": 2008409812", "key 'vision_config.patch_size': a patch of 3 x 2 x 2008409812 x 2008409812 values is too large");
  // token ids
  expect_bad("\"image_token_id\": 1012", "\"image_token_id\": 5000", "key 'image_token_id': token id 5000 is outside the vocabulary [0, 1024)");
  expect_bad("\"image_token_id\": 1012", "\"image_token_id\": -1", "key 'image_token_id': must be >= 0 (got -1)");
  expect_bad("\"video_token_id\": 1013,", "", "key 'video_token_id': token id 151656 is outside the vocabulary [0, 1024) (default value");

  // defaults and tolerated spellings: null means absent, in_chans alone, no torch_dtype
  const char *path2 = tmp_path("ok.json");
  char *t1 = replace(tiny_text, "\"max_position_embeddings\": 32768", "\"max_position_embeddings\": null");
  char *t2 = replace(t1, "\"in_channels\": 3, ", "");
  char *t3 = replace(t2, "\"in_chans\": 3", "\"in_chans\": 1");
  char *t4 = replace(t3, "\"torch_dtype\": \"float32\",", "");
  write_text(path2, t4);
  free(t1), free(t2), free(t3), free(t4);
  load_ok(&c, path2);
  CHECK(c.max_position_embeddings == 32768 && c.in_channels == 1 && lcc_patch_dim(&c) == 392 && !strcmp(c.torch_dtype, "float32"));
}

int main(void) {
  tiny_text = lcc_read_file("configs/model/tiny.json", NULL);
  LCC_CHECK(tiny_text, "run from the repository root: %s", lcc_last_error());
  test_shipped();
  test_round_trip();
  test_nested();
  test_bad();
  free(tiny_text);
  return test_finish("test_config");
}
