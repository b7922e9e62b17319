// HDF5 shards of pre-interleaved samples (DESIGN.md section 4) and the manifest that lists them.
//
// One shard file (serial HDF5, written once, then immutable):
//   attributes of /: format = "livecc-shard", version, tokenizer_hash, vocab_size, patch_size, merge_size,
//                    temporal_patch_size, fps, image_mean[3], image_std[3], frame_codec ("jpeg" | "raw"),
//                    jpeg_quality, n_samples   (vocab_size may be absent: shards written before it was kept)
//   per sample s (offset arrays have n_samples + 1 entries, so any sample is read on its own):
//     /tokens  int32 [total tokens]      /loss_mask uint8 [total tokens]      /token_offset int64 [n+1]
//     /items   int32 [total items, 5]    (kind, grid t, grid h, grid w, token index of the first pad)
//     /item_offset int64 [n+1]
//     /frames  uint8 [total frame bytes] (each frame: JPEG, or raw RGB24 h x w x 3)
//     /frame_offset int64 [total frames + 1]     /sample_frame_offset int64 [n+1]
//     /source  variable-length UTF-8 string [n]  (source video or image path)
//     /clip    float64 [n, 2]                    (clip start, end in seconds of the source video)
//     /source_line int64 [n]                     (line of the sample in its JSONL file)
//   A video item of grid t holds 2t frames of (h*14) x (w*14) pixels; an image item holds one frame.
#ifndef LCC_SHARD_H
#define LCC_SHARD_H

#include <stddef.h>
#include <stdint.h>

#define LCC_SHARD_VERSION 1

enum { LCC_CODEC_JPEG = 0, LCC_CODEC_RAW = 1 };

typedef struct {
  uint64_t tokenizer_hash;
  int vocab_size;         // 1 + the tokenizer's largest id (0: not recorded)
  int patch_size, merge_size, temporal_patch_size;
  double fps;
  float image_mean[3], image_std[3];
  int frame_codec;        // LCC_CODEC_JPEG or LCC_CODEC_RAW
  int jpeg_quality;
} lcc_shard_meta;

typedef struct {
  int kind;               // LCC_IMAGE or LCC_VIDEO (model.h)
  int t, h, w;            // grid in patches
  int first_pad;          // token index of its first pad token
} lcc_shard_item;

// One pre-interleaved sample. Owned buffers; lcc_sample_free releases them.
typedef struct {
  int n_tokens;
  int32_t *ids;           // [n_tokens]
  uint8_t *mask;          // [n_tokens] 1 where the token is trained (assistant content and its <|im_end|>)
  int n_items;
  lcc_shard_item *items;  // [n_items] in order of appearance
  int n_frames;
  uint8_t *frame_data;    // all frames' encoded bytes
  int64_t *frame_off;     // [n_frames + 1] byte offsets into frame_data
  char *source;           // provenance
  double clip_start, clip_end;
  int64_t source_line;
} lcc_sample;

void lcc_sample_free(lcc_sample *s);

// ---- writer ----
typedef struct lcc_shard_writer lcc_shard_writer;
// Creates `path` (truncating); the caller writes to a temporary name and renames when closed.
lcc_shard_writer *lcc_shard_create(const char *path, const lcc_shard_meta *meta);
int lcc_shard_add(lcc_shard_writer *w, const lcc_sample *s);
// Writes the offsets and attributes and closes the file. 0, or -1 with lcc_error() naming the file.
int lcc_shard_finish(lcc_shard_writer *w);

// ---- reader ----
typedef struct lcc_shard lcc_shard;
// Opens read-only and validates the attributes and dataset sizes (a truncated or foreign file is an
// error naming it, never a crash).
lcc_shard *lcc_shard_open(const char *path);
void lcc_shard_close(lcc_shard *s);
const lcc_shard_meta *lcc_shard_meta_of(const lcc_shard *s);
int64_t lcc_shard_count(const lcc_shard *s);
// Reads sample i (its own hyperslabs only). Errors name the shard and the index.
int lcc_shard_read(lcc_shard *s, int64_t i, lcc_sample *out);

// ---- manifest: <dir>/manifest.json lists the shards with their sample counts and checksums ----
typedef struct {
  char *file;             // relative to the manifest's directory
  int64_t n_samples;
  int64_t bytes;
  uint64_t checksum;      // CRC-64 (ECMA-182) of the file's bytes (lcc_file_crc64 in base/util.h)
} lcc_manifest_entry;

typedef struct {
  char *dir;
  int n;
  lcc_manifest_entry *shards;
  int64_t total_samples;
  uint64_t tokenizer_hash;
} lcc_manifest;

int lcc_manifest_load(const char *path, lcc_manifest *m);   // a manifest.json or its directory
int lcc_manifest_write(const lcc_manifest *m);              // atomically: temp file, fsync, rename
void lcc_manifest_free(lcc_manifest *m);

#endif
