# livecc-stream: real-time commentary with the KV cache (stream.c: the loop, so tests can call it). It takes
# the run-config parser's source directly, as livecc-prep does, rather than lcc_train and its MPI.
add_library(lcc_stream STATIC stream.c)
target_include_directories(lcc_stream PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(lcc_stream PUBLIC lcc_prep lcc_ckpt_read)

add_executable(livecc-stream stream_main.c runconfig.c)
target_link_libraries(livecc-stream PRIVATE lcc_stream lcc_backend_open)
set_target_properties(livecc-stream PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/bin)

# livecc-eval resolves its weights and renders its multiple-choice prompts with the same pieces.
target_link_libraries(livecc-eval PRIVATE lcc_stream)
