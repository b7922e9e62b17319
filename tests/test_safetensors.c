// safetensors: write/reopen with several dtypes and metadata, fp16/bf16 conversion, and one clear message
// (naming the file and, where it applies, the tensor) for each kind of broken file.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "safetensors.h"
#include "testlib.h"
#include "util.h"

// An 8-byte length (header_len unless it is overridden by len_field), the header, then `data_bytes` bytes.
static void write_raw(const char *path, const char *header, uint64_t len_field, size_t data_bytes) {
  size_t h = strlen(header), n = 8 + h + data_bytes;
  unsigned char *buf = lcc_calloc(n, 1);
  for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(len_field >> (8 * i));
  memcpy(buf + 8, header, h);
  write_file(path, buf, n);
  free(buf);
}

// Opening must fail with a message that starts with the file name and contains `want`.
static void expect_open_error(const char *path, const char *want) {
  lcc_st_file *f = lcc_st_open(path);
  const char *msg = lcc_last_error();
  CHECKF(!f && !strncmp(msg, path, strlen(path)) && strstr(msg, want), "%s: expected an error containing \"%s\", got %s",
         path, want, f ? "success" : msg);
  lcc_st_close(f);
}

static void expect_header_error(const char *header, size_t data_bytes, const char *want) {
  const char *path = tmp_path("bad.safetensors");
  write_raw(path, header, strlen(header), data_bytes);
  expect_open_error(path, want);
}

static float f32_of(uint32_t bits) {
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

static void test_round_trip(void) {
  const float w[6] = {1, -2, 3.5f, 1e-8f, -0.0f, 1e30f};
  const uint16_t bf[4] = {0x3F80, 0xC040, 0x7F80, 0x0001};   // 1, -3, inf, the smallest bf16 subnormal
  // 1, -2, 65504 (max), 2^-24 (smallest subnormal), 2^-14 - 2^-24 (largest subnormal), -inf, nan, -0
  const uint16_t hf[8] = {0x3C00, 0xC000, 0x7BFF, 0x0001, 0x03FF, 0xFC00, 0x7E00, 0x8000};
  const int32_t ints[3] = {7, -8, INT32_MAX};
  const double dbl[2] = {0.1, -1e300};
  const float scalar = 42.0f;
  const lcc_st_entry entries[] = {
      {"model.layers.0.w", LCC_F32, 2, {2, 3}, w},
      {"b.bf16", LCC_BF16, 1, {4}, bf},
      {"a.f16", LCC_F16, 3, {2, 2, 2}, hf},
      {"ids", LCC_I32, 1, {3}, ints},
      {"d", LCC_F64, 2, {1, 2}, dbl},
      {"empty", LCC_U8, 2, {0, 5}, NULL},
      {"scalar", LCC_F32, 0, {0}, &scalar},
  };
  const int n = (int)(sizeof entries / sizeof entries[0]);
  const char *meta[] = {"format", "pt", "note", "a \"quoted\"\nline\\"};
  const char *path = tmp_path("ok.safetensors");
  CHECK(lcc_st_write(path, entries, n, meta, 2, 1) == 0);

  lcc_st_file *f = lcc_st_open(path);
  CHECK(f != NULL);
  if (!f) {
    fprintf(stderr, "%s\n", lcc_last_error());
    return;
  }
  CHECK(f->n == n && f->data_start % 8 == 0 && !strcmp(f->path, path));
  CHECK(f->file_size == f->data_start + 24 + 8 + 16 + 12 + 16 + 0 + 4);
  for (int i = 1; i < f->n; i++) CHECK(strcmp(f->tensors[i - 1].name, f->tensors[i].name) < 0);   // sorted
  CHECK(f->n_meta == 2 && !strcmp(lcc_st_meta(f, "format"), "pt") && !strcmp(lcc_st_meta(f, "note"), meta[3]));
  CHECK(lcc_st_meta(f, "missing") == NULL);
  for (int i = 0; i < n; i++) {   // shapes and raw bytes survive unchanged
    const lcc_st_tensor *t = lcc_st_find(f, entries[i].name);
    CHECK(t && t->dtype == entries[i].dtype && t->ndim == entries[i].ndim);
    if (!t) continue;
    size_t numel = 1;
    for (int d = 0; d < t->ndim; d++) {
      CHECK(t->shape[d] == entries[i].shape[d]);
      numel *= (size_t)t->shape[d];
    }
    CHECK(t->numel == numel && t->nbytes == numel * lcc_dtype_size(t->dtype));
    if (t->nbytes) CHECK(!memcmp(lcc_st_data(f, t), entries[i].data, t->nbytes));
  }
  CHECK(lcc_st_find(f, "nope") == NULL && lcc_st_find(f, "") == NULL && lcc_st_find(f, "zzz") == NULL);

  float out[8];
  CHECK(lcc_st_read_f32(f, lcc_st_find(f, "model.layers.0.w"), out) == 0 && !memcmp(out, w, sizeof w));
  CHECK(lcc_st_read_f32(f, lcc_st_find(f, "b.bf16"), out) == 0);
  CHECK(out[0] == 1 && out[1] == -3 && isinf(out[2]) && out[2] > 0 && out[3] == f32_of(0x00010000));
  CHECK(lcc_st_read_f32(f, lcc_st_find(f, "a.f16"), out) == 0);
  CHECK(out[0] == 1 && out[1] == -2 && out[2] == 65504 && out[3] == ldexpf(1, -24) && out[4] == ldexpf(1023, -24));
  CHECK(isinf(out[5]) && out[5] < 0 && isnan(out[6]) && out[7] == 0 && signbit(out[7]));
  CHECK(lcc_st_read_f32(f, lcc_st_find(f, "d"), out) == 0 && out[0] == 0.1f && isinf(out[1]) && out[1] < 0);
  CHECK(lcc_st_read_f32(f, lcc_st_find(f, "scalar"), out) == 0 && out[0] == 42);
  CHECK(lcc_st_read_f32(f, lcc_st_find(f, "ids"), out) == -1);
  CHECK(strstr(lcc_last_error(), path) && strstr(lcc_last_error(), "tensor 'ids': dtype I32 is not a floating type"));
  lcc_st_close(f);

  // header layout: __metadata__ first, tensors in the given order with contiguous offsets, space padding
  char *bytes = lcc_read_file(path, NULL);
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--) hlen = hlen << 8 | (unsigned char)bytes[i];
  CHECK(hlen % 8 == 0 && !strncmp(bytes + 8, "{\"__metadata__\":{\"format\":\"pt\",", 31));
  lcc_json_doc *doc = lcc_json_parse(bytes + 8, (size_t)hlen, "header");
  CHECK(doc != NULL);
  const lcc_json *e = lcc_json_root(doc)->child;
  CHECK(!strcmp(e->key, "__metadata__"));
  int64_t expect_begin = 0;
  for (int i = 0; i < n; i++) {
    e = e->next;
    const lcc_json *off = lcc_json_get(e, "data_offsets");
    CHECK(!strcmp(e->key, entries[i].name) && lcc_json_at(off, 0)->integer == expect_begin);
    expect_begin = lcc_json_at(off, 1)->integer;
  }
  lcc_json_free(doc);
  free(bytes);

  // no metadata: no __metadata__ member at all
  CHECK(lcc_st_write(path, entries, 2, NULL, 0, 0) == 0);
  f = lcc_st_open(path);
  CHECK(f && f->n == 2 && f->n_meta == 0 && lcc_st_meta(f, "format") == NULL);
  lcc_st_close(f);
  bytes = lcc_read_file(path, NULL);
  CHECK(!strstr(bytes + 8, "__metadata__"));
  free(bytes);

  // an empty file list of tensors is valid
  CHECK(lcc_st_write(path, NULL, 0, NULL, 0, 0) == 0);
  f = lcc_st_open(path);
  CHECK(f && f->n == 0 && lcc_st_find(f, "x") == NULL);
  lcc_st_close(f);

  const char *bad_dir = tmp_path("no/such/dir/x.safetensors");
  CHECK(lcc_st_write(bad_dir, entries, n, meta, 2, 0) == -1 && strstr(lcc_last_error(), bad_dir));
}

static void test_truncated(void) {
  const float w[64] = {1};
  const lcc_st_entry entries[] = {{"a", LCC_F32, 1, {64}, w}, {"b", LCC_F32, 2, {8, 8}, w}};
  const char *path = tmp_path("cut.safetensors");
  CHECK(lcc_st_write(path, entries, 2, NULL, 0, 0) == 0);
  size_t len;
  char *bytes = lcc_read_file(path, &len);
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--) hlen = hlen << 8 | (unsigned char)bytes[i];

  write_file(path, bytes, len - 10);   // cut in the data section: the last tensor runs off the end
  expect_open_error(path, "tensor 'b': data_offsets [256, 512) run past the end of the data (502 bytes; file truncated?)");
  write_file(path, bytes, 8 + hlen / 2);   // cut inside the header
  char want[128];
  snprintf(want, sizeof want, "header length %llu exceeds the file (%llu bytes)", (unsigned long long)hlen,
           (unsigned long long)(8 + hlen / 2));
  expect_open_error(path, want);
  write_file(path, bytes, 5);
  expect_open_error(path, "5 bytes is too short for a safetensors file");
  write_file(path, bytes, 0);
  expect_open_error(path, "0 bytes is too short");
  free(bytes);
}

static void test_bad_files(void) {
  char path[1200];   // own copy: tmp_path's buffers are reused
  snprintf(path, sizeof path, "%s", tmp_path("bad.safetensors"));
  expect_open_error(tmp_path("missing.safetensors"), "No such file or directory");
  expect_open_error(test_tmpdir(), "not a regular file");

  write_raw(path, "{}", 1000, 0);   // header length larger than the file
  expect_open_error(path, "header length 1000 exceeds the file (10 bytes)");
  write_raw(path, "{}", 1ull << 40, 0);
  expect_open_error(path, "header length 1099511627776 exceeds the 100000000-byte limit");

  // header not JSON, or not an object
  expect_header_error("{not json}", 0, "bad.safetensors: header: expected a string key but found 'n' at line 1 column 2");
  expect_header_error("{\"a\": {\"dtype\": \"F32\"", 0, "header: expected ',' or '}' but found end of input");
  expect_header_error("[1, 2]", 0, "header must be a JSON object");
  expect_header_error("", 0, "header: unexpected end of input");

  // lying data_offsets
  expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8,
                      "tensor 'a': data_offsets [0, 16) run past the end of the data (8 bytes");
  expect_header_error("{\"model.norm.weight\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,12]}}", 12,
                      "tensor 'model.norm.weight': data_offsets [0, 12) hold 12 bytes but F32 [4] needs 16");
  expect_header_error("{\"w\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,24]}}", 24,
                      "tensor 'w': data_offsets [0, 24) hold 24 bytes but BF16 [2, 3] needs 12");
  expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                      "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}",
                      24, "tensor 'b': data_offsets [8, 24) overlap tensor 'a' [0, 16)");
  expect_header_error("{\"big\":{\"dtype\":\"F32\",\"shape\":[16],\"data_offsets\":[0,64]},"
                      "\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]},"
                      "\"y\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[32,40]}}",
                      64, "tensor 'x': data_offsets [8, 16) overlap tensor 'big' [0, 64)");
  expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8,
                      "tensor 'a': data_offsets [8, 4) end before they begin");
  expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 8,
                      "tensor 'a': \"data_offsets\" must be [begin, end] with non-negative integers");
  expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 8, "tensor 'a': \"data_offsets\" must be");
  expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 8, "tensor 'a': \"data_offsets\" must be");
  expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,1e2]}}", 8, "tensor 'a': \"data_offsets\" must be");

  // dtype and shape
  expect_header_error("{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[1],\"data_offsets\":[0,1]}}", 8,
                      "tensor 'a': unsupported dtype \"F8_E4M3\"");
  expect_header_error("{\"a\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 8, "tensor 'a': \"dtype\" must be a string");
  expect_header_error("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 8, "tensor 'a': \"dtype\" must be a string");
  expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 8,
                      "tensor 'a': shape entries must be non-negative integers");
  expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,4]}}", 8,
                      "tensor 'a': shape entries must be non-negative integers");
  expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,4]}}", 8,
                      "tensor 'a': shape entries must be non-negative integers");
  expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":4,\"data_offsets\":[0,4]}}", 8, "tensor 'a': \"shape\" must be an array");
  expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 8,
                      "tensor 'a': shape has 9 dimensions (at most 8)");
  expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", 8,
                      "tensor 'a': shape [4294967296, 4294967296] is too large");
  expect_header_error("{\"a\":{\"dtype\":\"F64\",\"shape\":[2305843009213693952],\"data_offsets\":[0,4]}}", 8,
                      "tensor 'a': shape [2305843009213693952] is too large");
  expect_header_error("{\"a\":5}", 8, "tensor 'a': entry must be an object");

  // names and metadata
  expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                      "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                      8, "tensor 'a': appears twice");
  expect_header_error("{\"__metadata__\":[\"pt\"]}", 0, "\"__metadata__\" must be an object");
  expect_header_error("{\"__metadata__\":{\"format\":1}}", 0, "\"__metadata__\" value of 'format' must be a string");
  expect_header_error("{\"__metadata__\":{},\"__metadata__\":{}}", 0, "\"__metadata__\" appears twice");

  // valid edge cases: empty tensors anywhere, gaps between tensors, padding spaces after the header
  write_raw(path, "{\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
                  "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                  "\"z\":{\"dtype\":\"I8\",\"shape\":[2],\"data_offsets\":[6,8]}}    ",
            strlen("{\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
                   "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                   "\"z\":{\"dtype\":\"I8\",\"shape\":[2],\"data_offsets\":[6,8]}}    "),
            8);
  lcc_st_file *f = lcc_st_open(path);
  CHECK(f && f->n == 3 && lcc_st_find(f, "e")->numel == 0 && lcc_st_find(f, "z")->offset == 6);
  if (!f) fprintf(stderr, "%s\n", lcc_last_error());
  lcc_st_close(f);

  // lcc_st_parse_header on a header held in memory (what the fuzzer drives), without a file name
  lcc_st_file *g = lcc_calloc(1, sizeof *g);
  const char *h = "{\"a\":{\"dtype\":\"BOOL\",\"shape\":[3],\"data_offsets\":[0,4]}}";
  CHECK(lcc_st_parse_header(g, h, strlen(h), 8 + strlen(h) + 4) == -1);
  CHECK(!strcmp(lcc_last_error(), "safetensors header: tensor 'a': data_offsets [0, 4) hold 4 bytes but BOOL [3] needs 3"));
  lcc_st_close(g);
}

int main(void) {
  test_round_trip();
  test_truncated();
  test_bad_files();
  return test_finish("test_safetensors");
}
