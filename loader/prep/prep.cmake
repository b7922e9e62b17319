# lcc_prep: LiveCC JSONL + videos -> pre-interleaved samples in HDF5 shards (livecc-prep's engine).
# Included from loader/CMakeLists.txt, so paths are relative to loader/.
add_library(lcc_prep STATIC
  prep/jsonl.c
  prep/sample.c
  prep/interleave.c
  prep/prep.c
  prep/progress.c
)
target_include_directories(lcc_prep PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/prep)
target_link_libraries(lcc_prep PUBLIC lcc_shard lcc_media lcc_model Threads::Threads)
