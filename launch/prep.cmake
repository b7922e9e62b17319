# livecc-prep: LiveCC JSONL + videos -> HDF5 shards (loader/prep). It takes the run-config parser's source
# directly rather than lcc_train, which would pull the trainer's libraries (MPI, ...) into a data tool.
add_executable(livecc-prep prep_main.c runconfig.c)
target_link_libraries(livecc-prep PRIVATE lcc_prep)
set_target_properties(livecc-prep PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/bin)
