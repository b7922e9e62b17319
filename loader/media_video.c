// Video clips as LiveCC reads them (LIVECC.md 3.2, 3.3, 3.9), in two passes over the file:
//  1. demux only (no decoding): every frame's presentation timestamp, as decord indexes a video;
//  2. pick the frames (strict fps or uniform), size the clip, then decode from the keyframe before the first
//     pick and convert + resize each picked frame as it comes out, so only one full-size frame is ever held.
//     Frames that are neither picked nor used as a reference by any other frame are not decoded at all
//     (skip_allowed: the picked frames are the same bytes as with every frame decoded).
//
// Frame end times follow decord's _frame_pts[:, 1]: (packet pts + packet duration - stream start) * time
// base, rounded to float32 (decord stores them as float32, and LiveCC compares those values). When a packet
// carries no duration (libavformat fills it from the frame rate for most containers), we use one frame at
// avg_frame_rate, where decord would use 0.
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libswscale/swscale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "av_rgb.h"
#include "media.h"
#include "util.h"

void lcc_video_budget_default(lcc_video_budget *b) {
  b->fps = 2.0;
  b->max_frames = 480;
  b->min_frames = 4;
  b->min_pixels = 100L * 28 * 28;
  b->max_pixels = 768L * 28 * 28;
  b->total_pixels = 24576L * 28 * 28;
  b->image_min_pixels = 4L * 28 * 28;
  b->image_max_pixels = 16384L * 28 * 28;
  b->factor = 28;
}

void lcc_frames_free(lcc_frames *f) {
  free(f->rgb);
  free(f->pts);
  memset(f, 0, sizeof(*f));
}

typedef struct {
  const char *path;
  AVFormatContext *fmt;
  AVCodecContext *dec;
  int si;   // the video stream's index
  int pts_missing;   // frames whose packet had no pts (the index took the dts)
} video;

typedef struct {
  int64_t pts;   // stream time base
  double end;    // seconds from the stream start, float32-rounded like decord
} frame_time;

static void video_close(video *v) {
  avcodec_free_context(&v->dec);
  avformat_close_input(&v->fmt);
}

static int video_open(const char *path, video *v) {
  memset(v, 0, sizeof(*v));
  v->path = path;
  int ret = avformat_open_input(&v->fmt, path, NULL, NULL);
  if (ret < 0) return lcc_error("%s: cannot open as a video (%s)", path, av_err2str(ret));
  ret = avformat_find_stream_info(v->fmt, NULL);
  if (ret < 0) {
    video_close(v);
    return lcc_error("%s: cannot read stream info (%s)", path, av_err2str(ret));
  }
  const AVCodec *codec = NULL;
  v->si = av_find_best_stream(v->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
  if (v->si < 0) {
    video_close(v);
    return lcc_error("%s: %s", path, v->si == AVERROR_DECODER_NOT_FOUND ? "no decoder for its video stream"
                                                                         : "no video stream");
  }
  AVStream *st = v->fmt->streams[v->si];
  v->dec = avcodec_alloc_context3(codec);
  LCC_CHECK(v->dec, "avcodec_alloc_context3 failed");
  ret = avcodec_parameters_to_context(v->dec, st->codecpar);
  LCC_CHECK(ret >= 0, "avcodec_parameters_to_context: %s", av_err2str(ret));
  v->dec->thread_count = 1;   // callers decode many clips in parallel, one per thread
  ret = avcodec_open2(v->dec, codec, NULL);
  if (ret < 0) {
    video_close(v);
    return lcc_error("%s: cannot open the %s decoder (%s)", path, codec->name, av_err2str(ret));
  }
  if (v->dec->width <= 0 || v->dec->height <= 0) {
    video_close(v);
    return lcc_error("%s: video stream has no picture size", path);
  }
  return 0;
}

// One frame's duration in time-base units when the packet has none: 1 / avg_frame_rate (or r_frame_rate).
static int64_t default_duration(const AVStream *st) {
  AVRational fr = st->avg_frame_rate.num > 0 ? st->avg_frame_rate : st->r_frame_rate;
  if (fr.num <= 0 || fr.den <= 0) return 0;
  return av_rescale_q(1, av_inv_q(fr), st->time_base);
}

static int cmp_pts(const void *a, const void *b) {
  int64_t x = ((const frame_time *)a)->pts, y = ((const frame_time *)b)->pts;
  return (x > y) - (x < y);
}

// Pass 1: the timestamps of every frame of the stream, sorted by pts (presentation order); *packets counts
// the discarded ones too, as the container's frame count does.
static int video_index(video *v, frame_time **out, int *n_out, int *packets) {
  AVStream *st = v->fmt->streams[v->si];
  int64_t start = st->start_time == AV_NOPTS_VALUE ? 0 : st->start_time;
  int64_t dflt = default_duration(st);
  double tb = av_q2d(st->time_base);
  AVPacket *pkt = av_packet_alloc();
  LCC_CHECK(pkt, "av_packet_alloc failed");
  frame_time *ft = NULL;
  int n = 0, cap = 0, ret;
  while ((ret = av_read_frame(v->fmt, pkt)) >= 0) {
    // Packets flagged discard (outside an MP4 edit list, say) decode but are never shown: not frames.
    if (pkt->stream_index == v->si) ++*packets;
    if (pkt->stream_index == v->si && !(pkt->flags & AV_PKT_FLAG_DISCARD)) {
      int64_t pts = pkt->pts != AV_NOPTS_VALUE ? pkt->pts : pkt->dts;
      v->pts_missing += pkt->pts == AV_NOPTS_VALUE;
      if (pts == AV_NOPTS_VALUE) {
        av_packet_unref(pkt);
        break;   // reported below
      }
      if (n == cap) {
        cap = cap ? 2 * cap : 1024;
        ft = lcc_realloc(ft, sizeof(frame_time) * cap);
      }
      int64_t dur = pkt->duration > 0 ? pkt->duration : dflt;
      ft[n].pts = pts;
      ft[n].end = (float)((double)(pts + dur - start) * tb);
      n++;
    }
    av_packet_unref(pkt);
  }
  av_packet_free(&pkt);
  if (ret >= 0) {
    free(ft);
    return lcc_error("%s: video packet %d has no timestamp", v->path, n);
  }
  if (ret != AVERROR_EOF) {
    free(ft);
    return lcc_error("%s: read error after %d video packets (%s)", v->path, n, av_err2str(ret));
  }
  if (n == 0) {
    free(ft);
    return lcc_error("%s: video stream has no frames", v->path);
  }
  qsort(ft, n, sizeof(frame_time), cmp_pts);
  *out = ft;
  *n_out = n;
  return 0;
}

// The frames whose end time lies in [start, end] (end < 0: no upper bound), as indices into ft. LiveCC
// compares a Python float with decord's float32 array, which NumPy does in float32: the bounds are rounded
// to float32 first (1.3 becomes 1.2999999523, so a frame ending at float32(1.3) is inside).
static int clip_window(const video *v, const frame_time *ft, int n, double start, double end, int **clip_out) {
  int *clip = lcc_malloc(sizeof(int) * n), m = 0;
  float lo = (float)start, hi = (float)end;
  for (int i = 0; i < n; i++)
    if (lo <= (float)ft[i].end && (end < 0 || (float)ft[i].end <= hi)) clip[m++] = i;
  if (m == 0) {
    free(clip);
    char window[64];
    if (end < 0) snprintf(window, sizeof window, "[%.3f s, the end]", start);
    else snprintf(window, sizeof window, "[%.3f, %.3f] s", start, end);
    return lcc_error("%s: no frame ends inside %s (frames end from %.3f to %.3f s)", v->path, window, ft[0].end,
                     ft[n - 1].end);
  }
  *clip_out = clip;
  return m;
}

// Strict fps (LIVECC.md 3.2): timestamps arange(first, last + 1e-6, 1/fps) in float64 as NumPy 1.x computes
// them (length from the step, values first + i*delta with delta = (first + step) - first), the first
// max_frames of them, and for each the first frame whose end time is >= it. LiveCC's argmax picks the
// window's FIRST frame when no end time is >= the timestamp, which happens when the last timestamp falls
// within 1e-6 above the last end time (float32 rounding); we take the last frame there instead.
// The count is then made even by repeating the last pick. Returns the count; *sel holds ft indices.
static int select_strict(const frame_time *ft, const int *clip, int m, const lcc_video_budget *b, int **sel_out) {
  double first = ft[clip[0]].end, stop = ft[clip[m - 1]].end + 1e-6, step = 1.0 / b->fps;
  double len = ceil((stop - first) / step);
  int n = len < 1 ? 1 : len > b->max_frames ? b->max_frames : (int)len;
  double delta = (first + step) - first;
  int *sel = lcc_malloc(sizeof(int) * (n + 1));
  for (int i = 0; i < n; i++) {
    double ts = first + i * delta;
    int j = 0;
    while (j < m - 1 && ft[clip[j]].end < ts) j++;
    sel[i] = clip[j];
  }
  if (n % 2) sel[n] = sel[n - 1], n++;
  *sel_out = sel;
  return n;
}

// Non-strict (LIVECC.md 3.9, qwen_vl_utils smart_nframes): n = total / video_fps * fps clamped to
// [ceil2(min_frames), floor2(min(max_frames, total))] and to total, floored to even; the frames at
// linspace(0, total - 1, n) rounded half to even.
static int select_uniform(const video *v, const int *clip, int m, const lcc_video_budget *b, int **sel_out) {
  AVStream *st = v->fmt->streams[v->si];
  AVRational fr = st->avg_frame_rate.num > 0 ? st->avg_frame_rate : st->r_frame_rate;
  if (fr.num <= 0 || fr.den <= 0) return lcc_error("%s: video stream has no frame rate", v->path);
  double min_frames = ceil(b->min_frames / 2.0) * 2;
  double max_frames = floor((b->max_frames < m ? b->max_frames : m) / 2.0) * 2;
  double want = m / av_q2d(fr) * b->fps;
  if (want < min_frames) want = min_frames;
  if (want > max_frames) want = max_frames;
  if (want > m) want = m;
  int n = (int)(floor(want / 2) * 2);
  if (n < 2) return lcc_error("%s: %d frame(s) in the window, need at least 2", v->path, m);
  int *sel = lcc_malloc(sizeof(int) * n);
  double step = (double)(m - 1) / (n - 1);
  for (int i = 0; i < n; i++) sel[i] = clip[i == n - 1 ? m - 1 : (int)nearbyint(i * step)];
  *sel_out = sel;
  return n;
}

// State of pass 2: the picks in order, where the next output frame goes, and scratch space.
typedef struct {
  const frame_time *ft;
  int n;              // frames in ft
  const int *sel;     // [T] picked ft indices, non-decreasing
  int T, next;        // picks, and the first one not yet filled
  int oh, ow;
  uint8_t *out;       // [T, oh, ow, 3]
  uint8_t *rgb;       // [h, stride] the current frame at source size (av_malloc, padded rows)
  size_t rgb_cap, stride;
  struct SwsContext *sws;
  lcc_resizer *rs;    // the resize of rs_h x rs_w frames to oh x ow
  int rs_h, rs_w;
  const uint8_t *picked;   // [n] 1 for the ft indices in sel
  int skip;           // skip decoding non-reference frames that are not picked (see skip_allowed)
  int unsure;         // skipping, a frame came out without a pts: stop, and decode in full instead
  int failed;         // a frame could not be converted (lcc_error says why): stop
} picker;

// The frame at source size in RGB24 (the colour matrix and range the stream declares, as ffmpeg's scale
// filter uses by default), into padded rows that the resize reads in place.
static int frame_to_rgb(picker *p, const AVFrame *fr) {
  p->stride = lcc_av_rgb_stride(fr->width, AV_PIX_FMT_RGB24);
  size_t need = p->stride * fr->height;
  if (need > p->rgb_cap) {
    av_free(p->rgb);
    p->rgb = av_malloc(need);
    LCC_CHECK(p->rgb, "out of memory converting a %dx%d picture", fr->width, fr->height);
    p->rgb_cap = need;
  }
  return lcc_av_frame_to_rgb_rows(fr, AV_PIX_FMT_RGB24, SWS_BICUBIC, p->rgb, p->stride, &p->sws);
}

static int find_pts(const frame_time *ft, int n, int64_t pts) {
  int lo = 0, hi = n - 1;
  while (lo <= hi) {
    int mid = (lo + hi) / 2;
    if (ft[mid].pts == pts) return mid;
    if (ft[mid].pts < pts) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

// Whether pass 2 may skip frames no pick needs. A frame that no other frame predicts from can be left
// undecoded when it is not picked itself, and the others come out bit for bit as in a full decode: the
// decoder's AVDISCARD_NONREF, set per packet, drops exactly those frames (H.264: nal_ref_idc 0; HEVC:
// sub-layer non-reference NAL types, truly unreferenced when the stream has one temporal sub-layer, as its
// hvcC record says; MPEG-1/2/4 part 2, H.263: B-pictures). Only for decoders that honour it on the packet
// just sent, with one temporal layer for HEVC, and only when every packet has its own pts: a decoded frame
// then carries the pts of the packet it came from, so the frame a packet makes is known before decoding it
// (frames without one are named by the dts of the packet that happens to push them out, which skipping
// changes: AVI with B-frames). A frame without a pts while skipping sends the clip to the full decode.
// LCC_MEDIA_FULL_DECODE=1 turns skipping off (tests, debugging).
static int skip_allowed(const video *v) {
  const char *full = getenv("LCC_MEDIA_FULL_DECODE");
  if ((full && *full && strcmp(full, "0")) || v->pts_missing) return 0;
  const AVCodecParameters *par = v->fmt->streams[v->si]->codecpar;
  // Where a frame may be coded as two field pictures in two packets (H.264, MPEG-2; their decoders report
  // a progressive stream from the sequence header), the second field's packet has a pts of its own that no
  // output frame carries: only progressive streams qualify. HEVC codes fields as pictures of their own.
  int progressive = par->field_order == AV_FIELD_PROGRESSIVE;
  switch (par->codec_id) {
    case AV_CODEC_ID_MPEG1VIDEO:
    case AV_CODEC_ID_MPEG4:   // interlace in MPEG-4 part 2 is within frame pictures
    case AV_CODEC_ID_H263:
      return 1;
    case AV_CODEC_ID_H264:
    case AV_CODEC_ID_MPEG2VIDEO:
      return progressive;
    case AV_CODEC_ID_HEVC:   // hvcC: configurationVersion 1; byte 21 = frame rate (2), numTemporalLayers (3), ...
      return par->extradata_size >= 23 && par->extradata[0] == 1 && ((par->extradata[21] >> 3) & 7) == 1;
    default:
      return 0;
  }
}

// The decoder's discard level for the next packet: everything decodes when the packet's frame is picked (or
// not in the index, or skipping is off); otherwise a non-reference frame is dropped.
static enum AVDiscard packet_discard(const picker *p, const AVPacket *pkt) {
  if (!p->skip || pkt->pts == AV_NOPTS_VALUE) return AVDISCARD_DEFAULT;
  int k = find_pts(p->ft, p->n, pkt->pts);
  return k < 0 || p->picked[k] ? AVDISCARD_DEFAULT : AVDISCARD_NONREF;
}

// A decoded frame: if it is the next pick, convert and resize it into every output slot that picks it.
static void take_frame(picker *p, const AVFrame *fr) {
  if (p->skip && fr->pts == AV_NOPTS_VALUE) {   // see skip_allowed
    p->unsure = 1;
    return;
  }
  int64_t pts = fr->pts != AV_NOPTS_VALUE ? fr->pts : fr->best_effort_timestamp;
  int k = find_pts(p->ft, p->n, pts);
  if (k < 0 || p->next >= p->T || p->sel[p->next] != k) return;
  if (frame_to_rgb(p, fr)) {
    p->failed = 1;
    return;
  }
  size_t frame_bytes = (size_t)p->oh * p->ow * 3;
  uint8_t *first = p->out + p->next * frame_bytes;
  if (!p->rs || p->rs_h != fr->height || p->rs_w != fr->width) {   // a stream may change size midway
    lcc_resizer_free(p->rs);
    p->rs = lcc_resizer_new(fr->height, fr->width, p->oh, p->ow);
    p->rs_h = fr->height, p->rs_w = fr->width;
  }
  lcc_resizer_run(p->rs, p->rgb, p->stride, first);
  for (p->next++; p->next < p->T && p->sel[p->next] == k; p->next++)
    memcpy(p->out + p->next * frame_bytes, first, frame_bytes);
}

static void drain(video *v, picker *p, AVFrame *fr) {
  while (p->next < p->T && !p->failed && !p->unsure && avcodec_receive_frame(v->dec, fr) >= 0) {
    take_frame(p, fr);
    av_frame_unref(fr);
  }
}

// Pass 2: decode from `from_pts` (a seek to the keyframe at or before it; AV_NOPTS_VALUE: from where the
// demuxer stands) until every pick is filled or the stream ends. Returns the number of picks filled.
static int decode_picks(video *v, picker *p, int64_t from_pts) {
  if (from_pts != AV_NOPTS_VALUE) {
    if (av_seek_frame(v->fmt, v->si, from_pts, AVSEEK_FLAG_BACKWARD) < 0) return 0;
    avcodec_flush_buffers(v->dec);
  }
  AVPacket *pkt = av_packet_alloc();
  AVFrame *fr = av_frame_alloc();
  LCC_CHECK(pkt && fr, "av_packet_alloc/av_frame_alloc failed");
  while (p->next < p->T && !p->failed && !p->unsure && av_read_frame(v->fmt, pkt) >= 0) {
    // A packet the decoder rejects is skipped; a pick it would have produced stays unfilled and is reported.
    // Every frame out so far has been drained, so the decoder decodes this packet before send returns and
    // the discard level set here applies to it.
    if (pkt->stream_index == v->si) {
      v->dec->skip_frame = packet_discard(p, pkt);
      if (avcodec_send_packet(v->dec, pkt) >= 0) drain(v, p, fr);
    }
    av_packet_unref(pkt);
  }
  v->dec->skip_frame = AVDISCARD_DEFAULT;
  if (p->next < p->T && !p->failed && !p->unsure && avcodec_send_packet(v->dec, NULL) >= 0) drain(v, p, fr);
  av_frame_free(&fr);
  av_packet_free(&pkt);
  return p->next;
}

// Put the file name in front of the message a size helper recorded (copied first: lcc_error writes there).
static int prefix_path(const char *path) {
  char why[256];
  snprintf(why, sizeof why, "%s", lcc_last_error());
  return lcc_error("%s: %s", path, why);
}

// Decode the picks into out: first by seeking to the first pick; if that misses any (an inexact seek
// index, or a frame that skipping cannot place), once more from the start of a freshly opened file,
// decoding every frame.
static int decode_clip(video *v, picker *p) {
  p->skip = skip_allowed(v);
  if (decode_picks(v, p, p->ft[p->sel[0]].pts) == p->T && !p->unsure) return 0;
  if (p->failed) return prefix_path(v->path);
  const char *path = v->path;
  video_close(v);
  if (video_open(path, v)) return -1;
  p->next = 0;
  p->skip = p->unsure = 0;
  if (decode_picks(v, p, AV_NOPTS_VALUE) == p->T) return 0;
  if (p->failed) return prefix_path(v->path);
  const frame_time *miss = &p->ft[p->sel[p->next]];
  return lcc_error("%s: frame ending at %.3f s did not decode", v->path, miss->end);
}

// After the index: the window, the picks, the clip size, then pass 2 into out.
static int read_picks(video *v, const frame_time *ft, int n, double start, double end, const lcc_video_budget *b,
                      int strict, lcc_frames *out) {
  int *clip = NULL, *sel = NULL;   // [m] window frames, [T] picks: indices into ft
  int m = clip_window(v, ft, n, start, end, &clip);
  if (m < 0) return -1;
  int T = strict ? select_strict(ft, clip, m, b, &sel) : select_uniform(v, clip, m, b, &sel);
  free(clip);
  if (T < 0) return -1;
  int oh, ow;
  if (lcc_video_clip_size(b, v->dec->height, v->dec->width, T, &oh, &ow)) {
    free(sel);
    return prefix_path(v->path);
  }
  uint8_t *picked = lcc_calloc(n, 1);
  for (int i = 0; i < T; i++) picked[sel[i]] = 1;
  picker p = {.ft = ft, .n = n, .sel = sel, .T = T, .oh = oh, .ow = ow, .picked = picked};
  p.out = lcc_malloc((size_t)T * oh * ow * 3);
  int rc = decode_clip(v, &p);
  av_free(p.rgb);
  sws_freeContext(p.sws);
  lcc_resizer_free(p.rs);
  free(picked);
  if (rc == 0) {
    *out = (lcc_frames){.T = T, .h = oh, .w = ow, .rgb = p.out, .pts = lcc_malloc(sizeof(double) * T)};
    for (int i = 0; i < T; i++) out->pts[i] = ft[sel[i]].end;
  } else {
    free(p.out);
  }
  free(sel);
  return rc;
}

static int read_clip(const char *path, double start, double end, const lcc_video_budget *b, int strict,
                     lcc_frames *out) {
  memset(out, 0, sizeof(*out));
  video v;
  if (video_open(path, &v)) return -1;
  frame_time *ft = NULL;   // [n] every frame's timestamps, presentation order
  int n = 0, packets = 0;
  int rc = video_index(&v, &ft, &n, &packets);
  if (rc == 0) rc = read_picks(&v, ft, n, start, end, b, strict, out);
  if (rc == 0) {
    const int64_t listed = v.fmt->streams[v.si]->nb_frames;
    out->listed_frames = listed > 0 && listed <= INT32_MAX ? (int)listed : 0;
    out->file_frames = packets;
    out->file_end = ft[n - 1].end;
  }
  free(ft);
  video_close(&v);
  return rc;
}

int lcc_video_read_strict(const char *path, double start, double end, const lcc_video_budget *b, lcc_frames *out) {
  return read_clip(path, start, end, b, 1, out);
}

int lcc_video_read_uniform(const char *path, double start, double end, const lcc_video_budget *b, lcc_frames *out) {
  return read_clip(path, start, end, b, 0, out);
}
