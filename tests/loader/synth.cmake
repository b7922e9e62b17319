# livecc-synth end to end: runs the generator, decodes its videos, replays LiveCC's sampling and bucketing.
lcc_test(test_synth SOURCES test_synth.c LIBS lcc_synth lcc_model LABELS integration TIMEOUT 300
         ARGS $<TARGET_FILE:livecc-synth>)
add_dependencies(test_synth livecc-synth)
if(TARGET lcc_media)   # also read the clips through lcc_media (loader/media_video.c), as livecc-prep does
  target_link_libraries(test_synth PRIVATE lcc_media)
  target_compile_definitions(test_synth PRIVATE LCC_SYNTH_HAVE_MEDIA=1)
endif()
