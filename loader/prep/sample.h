// One LiveCC JSONL line parsed into a conversation (LIVECC.md 2.2-2.4):
//   streaming sample: [user: [video (video, video_start, video_end), text (text, previous, title)],
//                      assistant: [text_stream: [[start, end, word], ...]]]
//   QA sample: any turns (system / user / assistant); user content holds video, image and text elements,
//              assistant content holds text; a content may also be a plain string.
// A sample is a streaming one when its assistant's first content element has a text_stream (as LiveCC's
// getitem decides). Elements of text_stream that are not arrays (the dataset card shows a trailing "..."
// that marks where its example was cut) are ignored; an array that is not [number, number, string] is
// an error. Strings point into the parsed JSON document, which the conversation owns.
#ifndef LCC_SAMPLE_H
#define LCC_SAMPLE_H

#include <stddef.h>

#include "json.h"

enum { LCC_ROLE_SYSTEM, LCC_ROLE_USER, LCC_ROLE_ASSISTANT };
enum { LCC_ELEM_TEXT, LCC_ELEM_VIDEO, LCC_ELEM_IMAGE };

typedef struct {
  int kind;                 // LCC_ELEM_*
  const char *text;         // TEXT: the text; VIDEO / IMAGE: the file path
  size_t text_len;
  double start, end;        // VIDEO: video_start, video_end in seconds (absent: 0 and -1 = whole video)
  const char *title;        // TEXT: title, previous (NULL when absent; context per LIVECC.md 3.6)
  const char *previous;
  size_t title_len, previous_len;
} lcc_elem;

typedef struct {
  int role;                 // LCC_ROLE_*
  int first, n;             // its elements: elems[first .. first + n)
} lcc_turn;

typedef struct {
  double start, end;        // seconds of the source video
  const char *word;
  size_t len;
} lcc_word;

typedef struct {
  int stream;               // 1: streaming sample (turns = user, assistant; words = text_stream)
  int n_turns;
  lcc_turn *turns;          // [n_turns]
  int n_elems;
  lcc_elem *elems;          // [n_elems] all turns' elements in order
  int n_words;
  lcc_word *words;          // [n_words] text_stream, in file order
  int n_ignored;            // text_stream elements that are not [start, end, word] arrays
  lcc_json_doc *doc;        // owns every string above
} lcc_conv;

// Why a sample is not written: each reason is counted (shard sidecars, the summary) and reported with the
// sample's file:line.
enum {
  LCC_SKIP_NONE = 0,
  LCC_SKIP_MALFORMED_JSON,    // the line is not JSON
  LCC_SKIP_INVALID,           // JSON, but not a conversation LiveCC reads (or text the tokenizer rejects)
  LCC_SKIP_MISSING_MEDIA,     // a video or image file that does not exist
  LCC_SKIP_EMPTY_MEDIA,       // a video or image file of zero bytes
  LCC_SKIP_CORRUPT_MEDIA,     // FFmpeg cannot decode it
  LCC_SKIP_TRUNCATED_MEDIA,   // the video file is cut short before the end of the clip (truncated = skip)
  LCC_SKIP_NO_FRAMES,         // no frame inside [video_start, video_end]
  LCC_SKIP_FEW_FRAMES,        // fewer frames than the first 3-s chunk needs (6 at 2 fps)
  LCC_SKIP_EMPTY_STREAM,      // text_stream has no word (or none inside the clip window)
  LCC_SKIP_ALL_SILENT,        // every second is silent: no (user, assistant) pair is left
  LCC_SKIP_TOO_LONG,          // over max_seq_len (overlong = skip, or not even the first pair fits)
  LCC_SKIP_COUNT
};
extern const char *const lcc_skip_keys[LCC_SKIP_COUNT];     // "malformed_json", ... (JSON keys)
extern const char *const lcc_skip_labels[LCC_SKIP_COUNT];   // "malformed JSON", ... (messages)

// Parses one line. `what` names it in errors ("file.jsonl:12"). Returns 0; -1 with lcc_error() when the
// line is not JSON (*json_error = 1) or not a conversation of the shape above (*json_error = 0).
int lcc_conv_parse(const char *text, size_t len, const char *what, lcc_conv *out, int *json_error);
void lcc_conv_free(lcc_conv *c);
// Words outside the clip window of a streaming sample: those that end before video_start or start after
// video_end. LiveCC keeps them (its own data has none: the window is the first word's start to the last
// word's end): its cursor puts those before the window into the first chunk and stops at those after it.
int lcc_conv_word_outside(const lcc_conv *c, int i);   // 1: word i lies outside the window
int lcc_conv_count_words_outside(const lcc_conv *c);   // how many do
int lcc_conv_drop_words_outside(lcc_conv *c);          // removes them (livecc-prep's words_outside = drop); how many

#endif
