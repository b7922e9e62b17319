# livecc-stream and the multiple-choice mode of livecc-eval (launch/stream.*, launch/eval_main.c).
if(TARGET lcc_stream)
  # the loop in-process: prompt layout, cache == no cache, eviction
  lcc_test(test_stream SOURCES test_stream.c LIBS lcc_stream lcc_media_testlib LABELS unit TIMEOUT 120)
  # the programs: a run, bad inputs, check mode, multiple choice against logits computed here
  lcc_test(test_stream_cli SOURCES test_stream_cli.c LIBS lcc_stream lcc_media_testlib LABELS integration TIMEOUT 300
           ARGS $<TARGET_FILE:livecc-stream> $<TARGET_FILE:livecc-eval>)
  add_dependencies(test_stream_cli livecc-stream livecc-eval)
endif()
