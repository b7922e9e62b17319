#!/usr/bin/env bash
# Decode + strict 2 fps sampling + resize of a 60 s 640x360 video with lcc_media (media_read: FFmpeg
# demux/decode, our picks, swscale to RGB, our torchvision-exact bicubic resize), beside the ffmpeg command
# doing the same work on the same file, to the same output: RGB24 frames of the same size and count,
#   ffmpeg -threads 1 -i x.mp4 -vf fps=2,scale=W:H:flags=bicubic,format=rgb24 -filter_threads 1 -f null -
# (the null muxer takes the filter's RGB frames: no encoding, nothing written, as media_read writes nothing).
# Not the same: ffmpeg's fps filter picks by its own rounding (the frame count is printed for both) and its
# scale is one swscale pass from YUV, where ours converts at source size and then resizes with
# torchvision's antialiased bicubic (what LiveCC's frames need); and ffmpeg decodes every frame, where ours
# leaves out the non-reference frames it does not pick (AVDISCARD_NONREF per packet: the picked frames are
# the same bytes; the row "every frame decoded" is ours with that off, LCC_MEDIA_FULL_DECODE=1). Prints the
# best of 3 wall-clock and CPU seconds for each and the ratios to ffmpeg. Both decode with one thread (prep
# runs one clip per thread).
# Usage: bench/media_decode.sh [BUILD_DIR]   (default build; needs the media_read target and ffmpeg)
set -euo pipefail
BUILD=${1:-build}
BIN=$BUILD/tests/loader/media_read
[ -x "$BIN" ] || { echo "build it first: cmake --build $BUILD --target media_read" >&2; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
VIDEO=$TMP/x.mp4
ffmpeg -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=640x360:rate=30:duration=60 \
  -c:v libx264 -preset veryfast -pix_fmt yuv420p "$VIDEO"

best() {   # "wall cpu": the best of 3 wall-clock and of 3 CPU (user + sys) seconds of a command
  local w="" c=""
  for _ in 1 2 3; do
    /usr/bin/time -f "%e %U %S" -o "$TMP/time" "$@" > "$TMP/out" 2>&1
    read -r e u s < "$TMP/time"
    w=$(awk -v a="$e" -v b="${w:-1e9}" 'BEGIN { print (a < b ? a : b) }')
    c=$(awk -v a="$u" -v s="$s" -v b="${c:-1e9}" 'BEGIN { print (a + s < b ? a + s : b) }')
  done
  echo "$w $c"
}

"$BIN" "$VIDEO" --out "$TMP/ours.raw" > "$TMP/ours.txt"
LCC_MEDIA_FULL_DECODE=1 "$BIN" "$VIDEO" --out "$TMP/full.raw" > "$TMP/full.txt"
same="NOT the same bytes"
cmp -s "$TMP/ours.raw" "$TMP/full.raw" && cmp -s <(tail -n +2 "$TMP/ours.txt") <(tail -n +2 "$TMP/full.txt") &&
  same="the same bytes and pts"
rm -f "$TMP/ours.raw" "$TMP/full.raw"
read -r _ T _ SIZE _ _ < "$TMP/ours.txt"   # frames T size WxH seconds S
W=${SIZE%x*}; H=${SIZE#*x}

FF=(ffmpeg -hide_banner -threads 1 -i "$VIDEO" -vf "fps=2,scale=$W:$H:flags=bicubic,format=rgb24" -filter_threads 1
    -f null -)
ff_frames=$("${FF[@]}" 2>&1 | tr '\r' '\n' | sed -n 's/^frame= *\([0-9]*\).*/\1/p' | tail -1)
read -r ours_w ours_c <<< "$(best "$BIN" "$VIDEO")"
read -r full_w full_c <<< "$(best env LCC_MEDIA_FULL_DECODE=1 "$BIN" "$VIDEO")"
read -r ff_w ff_c <<< "$(best "${FF[@]}" -loglevel error)"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo "video: 60 s 640x360 h264 (x264 veryfast, B-frames) 30 fps; $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg); one decode thread each"
printf "%-34s %8s %8s %s\n" "" "wall s" "CPU s" "output"
printf "%-34s %8s %8s %s\n" "lcc_media (media_read)" "$ours_w" "$ours_c" "$T RGB24 frames of ${W}x${H}"
printf "%-34s %8s %8s %s\n" "  every frame decoded" "$full_w" "$full_c" "$same"
printf "%-34s %8s %8s %s\n" "ffmpeg fps=2,scale,format=rgb24" "$ff_w" "$ff_c" "$ff_frames RGB24 frames of ${W}x${H}"
echo "lcc_media / ffmpeg: wall $(ratio "$ours_w" "$ff_w"), CPU $(ratio "$ours_c" "$ff_c")" \
  "(every frame decoded: wall $(ratio "$full_w" "$ff_w"), CPU $(ratio "$full_c" "$ff_c"))"
