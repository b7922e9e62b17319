# lcc_media: FFmpeg decode/encode, resize, JPEG, patch rows (media.h).
add_library(lcc_media STATIC
  media_video.c
  av_rgb.c
  media_image.c
  resize.c
  jpeg.c
  patchify.c
)
target_include_directories(lcc_media PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(lcc_media PUBLIC lcc_base PkgConfig::LIBAV Threads::Threads m)
