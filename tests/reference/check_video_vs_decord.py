#!/usr/bin/env python3
"""Checks lcc_media's video reader against LiveCC's own reader (not a ctest: needs decord and ffmpeg).

LiveCC reads clips with livecc_utils' _read_video_decord_plus (decord 0.6.0, NumPy 1.24) and resizes them with
torchvision; this script transcribes that code (strict 2 fps and the non-strict smart_nframes path, the
_spatial_resize_video budget), runs it and build/tests/loader/media_read on the same synthetic videos, and
prints for each clip whether the picked frames (their end times) agree and how far the pixels are apart.

    pip install decord==0.6.0   # into the venv of tests/reference/requirements.txt
    cmake --build build --target media_read
    .venv-ref/bin/python tests/reference/check_video_vs_decord.py [build]

Seen with FFmpeg 5.1 (ours) and decord 0.6.0: identical picks everywhere, bit-identical pixels on the H.264
clips; on the MPEG-4 clip with B-frames, decord's get_batch returns a neighbouring frame at some indices
(where it seeks), unlike a sequential decode of the same indices; ours equals the sequential decode.
"""
import math
import os
import subprocess
import sys
import tempfile

import decord
import numpy as np
import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

FPS, FPS_MAX_FRAMES, FRAME_FACTOR, IMAGE_FACTOR = 2.0, 480, 2, 28
VIDEO_MIN_PIXELS, VIDEO_MAX_PIXELS, VIDEO_TOTAL_PIXELS = 100 * 28 * 28, 768 * 28 * 28, 24576 * 28 * 28


def smart_resize(h, w, min_pixels, max_pixels, factor=IMAGE_FACTOR):   # qwen-vl-utils 0.0.10
    hb, wb = max(factor, round(h / factor) * factor), max(factor, round(w / factor) * factor)
    if hb * wb > max_pixels:
        beta = math.sqrt(h * w / max_pixels)
        hb, wb = math.floor(h / beta / factor) * factor, math.floor(w / beta / factor) * factor
    elif hb * wb < min_pixels:
        beta = math.sqrt(min_pixels / (h * w))
        hb, wb = math.ceil(h * beta / factor) * factor, math.ceil(w * beta / factor) * factor
    return hb, wb


def smart_nframes(total, video_fps):   # qwen-vl-utils 0.0.10, fps mode
    min_frames = math.ceil(4 / FRAME_FACTOR) * FRAME_FACTOR
    max_frames = math.floor(min(FPS_MAX_FRAMES, total) / FRAME_FACTOR) * FRAME_FACTOR
    n = min(min(max(total / video_fps * FPS, min_frames), max_frames), total)
    return math.floor(n / FRAME_FACTOR) * FRAME_FACTOR


def livecc_read(path, video_start, video_end, strict):
    """_read_video_decord_plus with a clip window, then _spatial_resize_video."""
    vr = decord.VideoReader(path, num_threads=2)
    video_fps = vr.get_avg_fps()
    vr.get_frame_timestamp(0)
    video_pts = vr._frame_pts[:, 1]
    video_start = video_pts[0] if not video_start else video_start
    video_end = video_pts[-1] if not video_end else video_end
    clip_idxs = ((video_start <= video_pts) & (video_pts <= video_end)).nonzero()[0]
    clip_pts = video_pts[clip_idxs]
    if not strict:
        idx = np.linspace(0, len(clip_idxs) - 1, smart_nframes(len(clip_idxs), video_fps)).round().astype(int)
        clip_idxs, clip_pts = clip_idxs[idx].tolist(), clip_pts[idx].tolist()
    else:
        ts = np.arange(np.float64(clip_pts[0]), np.float64(clip_pts[-1]) + 1e-6, 1 / FPS)[:FPS_MAX_FRAMES]
        pick = (ts[:, None] <= clip_pts).argmax(axis=1)
        clip_pts, clip_idxs = clip_pts[pick].tolist(), clip_idxs[pick].tolist()
        while len(clip_idxs) % FRAME_FACTOR:
            clip_idxs.append(clip_idxs[-1])
            clip_pts.append(clip_pts[-1])
    clip = torch.from_numpy(vr.get_batch(clip_idxs).asnumpy()).permute(0, 3, 1, 2)
    t, _, h, w = clip.shape
    max_pixels = max(min(VIDEO_MAX_PIXELS, VIDEO_TOTAL_PIXELS / t * FRAME_FACTOR), int(VIDEO_MIN_PIXELS * 1.05))
    rh, rw = smart_resize(h, w, VIDEO_MIN_PIXELS, max_pixels)
    out = TF.resize(clip, [rh, rw], interpolation=InterpolationMode.BICUBIC, antialias=True)
    return np.array(clip_pts, np.float32), out.permute(0, 2, 3, 1).numpy()


def ours_read(tool, path, start, end, strict, raw):
    args = [tool] + ([] if strict else ["--uniform"]) + [path, str(start or 0), str(end or -1), "--out", raw]
    lines = subprocess.run(args, check=True, capture_output=True, text=True).stdout.split("\n")
    _, t, _, size, _, _ = lines[0].split()
    w, h = map(int, size.split("x"))
    pts = np.array([float(x) for x in lines[1].split()], np.float32)
    return pts, np.fromfile(raw, np.uint8).reshape(int(t), h, w, 3)


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    tool = os.path.join(build, "tests", "loader", "media_read")
    with tempfile.TemporaryDirectory() as tmp:
        videos = {
            "h264_720p_30fps_bframes": ("testsrc2=size=1280x720:rate=30:duration=12",
                                        ["-c:v", "libx264", "-preset", "veryfast", "-bf", "2", "-pix_fmt", "yuv420p"]),
            "mpeg4_360p_25fps_bframes": ("testsrc2=size=640x360:rate=25:duration=9",
                                         ["-c:v", "mpeg4", "-q:v", "4", "-bf", "2"]),
            "h264_854x480_29.97fps": ("testsrc2=size=854x480:rate=30000/1001:duration=10",
                                      ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"]),
        }
        for name, (src, codec) in videos.items():
            path = os.path.join(tmp, name + ".mp4")
            subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", src] + codec
                           + [path], check=True)
            for start, end in [(None, None), (1.3, 7.7), (2.0, 6.1)]:
                for strict in (True, False):
                    ref_pts, ref = livecc_read(path, start, end, strict)
                    pts, got = ours_read(tool, path, start, end, strict, os.path.join(tmp, "frames.raw"))
                    same = len(pts) == len(ref_pts) and np.array_equal(pts, ref_pts)
                    diff = (np.abs(got.astype(int) - ref.astype(int)) if got.shape == ref.shape else None)
                    print(f"{name:26s} [{start}, {end}] {'strict ' if strict else 'uniform'} T={len(pts):3d} "
                          f"{got.shape[2]}x{got.shape[1]} same picks: {same}  pixels: "
                          + (f"mean |diff| {diff.mean():.3f}, max {diff.max()}" if diff is not None else "shape differs"))


if __name__ == "__main__":
    main()
