# livecc-prep (lcc_prep): JSONL index, sample parser, interleave, the job. Sources are relative to
# tests/loader/. The tests make real videos with the ffmpeg CLI and use the tiny tokenizer.
add_library(lcc_prep_testutil STATIC prep_util.c)
target_include_directories(lcc_prep_testutil PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(lcc_prep_testutil PUBLIC lcc_prep)

lcc_test(test_prep_jsonl SOURCES test_prep_jsonl.c LIBS lcc_prep_testutil LABELS unit)
lcc_test(test_prep_sample SOURCES test_prep_sample.c LIBS lcc_prep_testutil LABELS unit)
lcc_test(test_prep_golden SOURCES test_prep_golden.c LIBS lcc_prep_testutil LABELS integration TIMEOUT 120)
lcc_test(test_prep_qa SOURCES test_prep_qa.c LIBS lcc_prep_testutil LABELS integration TIMEOUT 120)
lcc_test(test_prep_errors SOURCES test_prep_errors.c LIBS lcc_prep_testutil LABELS integration TIMEOUT 120)
lcc_test(test_prep_roundtrip SOURCES test_prep_roundtrip.c LIBS lcc_prep_testutil LABELS integration TIMEOUT 120)
lcc_test(test_prep_resume SOURCES test_prep_resume.c LIBS lcc_prep_testutil LABELS integration TIMEOUT 120)
