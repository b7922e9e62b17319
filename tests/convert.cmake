# livecc-convert (launch/convert*.c, base/gguf.c): HF and GGUF exports of the TINY-B fixture, the GGUF round
# trip, checkpoint inputs and bad inputs. tests/reference/check_hf_export.py and check_gguf.py check the same
# exports against transformers and llama.cpp's gguf package (not run by ctest: CI has no Python).
lcc_test(test_convert SOURCES test_convert.c LIBS lcc_convert LABELS integration TIMEOUT 120)
