# Shards, manifest and training loader (lcc_shard). Sources are relative to tests/loader/.
add_library(lcc_shard_fixture STATIC shard_fixture.c)
target_include_directories(lcc_shard_fixture PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(lcc_shard_fixture PUBLIC lcc_shard)

lcc_test(test_shard_roundtrip SOURCES test_shard_roundtrip.c LIBS lcc_shard_fixture LABELS unit)
lcc_test(test_loader_order SOURCES test_loader_order.c LIBS lcc_shard_fixture LABELS unit)
lcc_test(test_loader_resume SOURCES test_loader_resume.c LIBS lcc_shard_fixture LABELS unit)
lcc_test(test_loader_mix SOURCES test_loader_mix.c LIBS lcc_shard_fixture LABELS unit)
lcc_test(test_shard_errors SOURCES test_shard_errors.c LIBS lcc_shard_fixture LABELS unit)
lcc_test(test_loader_expect SOURCES test_loader_expect.c LIBS lcc_shard_fixture LABELS unit)
lcc_test(test_verify SOURCES test_verify.c LIBS lcc_shard_fixture LABELS unit)
lcc_test(test_loader_scale SOURCES test_loader_scale.c LIBS lcc_shard_fixture LABELS slow TIMEOUT 120)

# Loader throughput (samples/s with 1 and 2 threads) on a synthetic JPEG dataset; bench/loader_bench.c also
# measures any dataset: loader_bench DIR [samples] [max threads].
add_executable(loader_bench ${PROJECT_SOURCE_DIR}/bench/loader_bench.c)
target_link_libraries(loader_bench PRIVATE lcc_shard_fixture)
set_target_properties(loader_bench PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/bin)
file(MAKE_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/tmp)
add_test(NAME bench_loader COMMAND loader_bench ${CMAKE_CURRENT_BINARY_DIR}/tmp/bench_loader 192 2)
set_tests_properties(bench_loader PROPERTIES LABELS unit TIMEOUT 300)
