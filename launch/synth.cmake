# livecc-synth: the synthetic commentary dataset (coloured shapes named by timed words), for tests and the demo.
# PkgConfig::LIBAV is defined in loader/, a sibling directory whose imported targets are not visible here.
if(NOT TARGET PkgConfig::LIBAV)
  find_package(PkgConfig REQUIRED)
  pkg_check_modules(LIBAV REQUIRED IMPORTED_TARGET libavformat libavcodec libswscale libavutil)
endif()
add_library(lcc_synth STATIC synth_draw.c synth_encode.c)   # rasterizer and MP4 writer (the test uses them too)
target_include_directories(lcc_synth PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(lcc_synth PUBLIC lcc_model PkgConfig::LIBAV m)

add_executable(livecc-synth synth_main.c)
target_link_libraries(livecc-synth PRIVATE lcc_synth lcc_train)
set_target_properties(livecc-synth PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/bin)
