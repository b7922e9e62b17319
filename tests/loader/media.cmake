# lcc_media tests (loader/media.h). Paths relative to tests/loader/.
add_library(lcc_media_testlib STATIC media_testlib.c)
target_link_libraries(lcc_media_testlib PUBLIC lcc_media lcc_testlib)
target_include_directories(lcc_media_testlib PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})

lcc_test(test_media_size SOURCES test_media_size.c LIBS lcc_media_testlib LABELS unit)
lcc_test(test_media_jpeg SOURCES test_media_jpeg.c LIBS lcc_media_testlib LABELS unit)
lcc_test(test_media_image SOURCES test_media_image.c LIBS lcc_media_testlib LABELS unit)
lcc_test(test_media_video SOURCES test_media_video.c LIBS lcc_media_testlib Threads::Threads LABELS unit TIMEOUT 120)
lcc_test(test_media_hf SOURCES test_media_hf.c LIBS lcc_media_testlib LABELS unit)
lcc_test(test_media_decode SOURCES test_media_decode.c LIBS lcc_media_testlib LABELS unit TIMEOUT 120)

# Not a test: reads one clip and reports it (bench/media_decode.sh, tests/reference/check_video_vs_decord.py).
add_executable(media_read media_read.c)
target_link_libraries(media_read PRIVATE lcc_media)
