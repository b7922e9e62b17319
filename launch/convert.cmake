# livecc-convert: checkpoints, HF folders and GGUF pairs to HF folders (transformers, vLLM) and GGUF (llama.cpp).
# The conversion itself is a library so tests/test_convert.c can drive it.
add_library(lcc_convert STATIC convert.c convert_hf.c convert_gguf.c)
target_include_directories(lcc_convert PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(lcc_convert PUBLIC lcc_train)
target_compile_definitions(lcc_convert PRIVATE
  LCC_TINY_TOKENIZER="${PROJECT_SOURCE_DIR}/configs/tokenizer/tiny/tokenizer.json")

add_executable(livecc-convert convert_main.c)
target_link_libraries(livecc-convert PRIVATE lcc_convert)
set_target_properties(livecc-convert PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/bin)
