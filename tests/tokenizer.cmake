# The byte-level BPE tokenizer (base/tokenizer.c): parity with HF tokenizers on the committed fixtures
# (tests/reference/make_tokenizer_fixtures.py), and its benchmark program (bench/tokenizer_vs_hf.sh runs it).
lcc_test(test_tokenizer SOURCES test_tokenizer.c LIBS lcc_model Threads::Threads LABELS unit TIMEOUT 120)

add_executable(bench_tokenizer ${PROJECT_SOURCE_DIR}/bench/tokenizer_bench.c)
target_link_libraries(bench_tokenizer PRIVATE lcc_model)
set_target_properties(bench_tokenizer PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/bin)
