# lcc_shard: the HDF5 shard format (writer, reader), the manifest, and the training loader (shard.h, loader.h).
add_library(lcc_shard STATIC
  shard_io.c
  shard_check.c
  shard_write.c
  shard_read.c
  manifest.c
  verify.c
  order.c
  mix.c
  pack.c
  loader.c
)
target_include_directories(lcc_shard PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(lcc_shard PUBLIC HDF5::HDF5 lcc_media lcc_model Threads::Threads)
