# livecc-prep: LiveCC JSONL + videos -> HDF5 shards (loader/prep). It takes the run-config parser's source
# directly rather than lcc_train, which would pull the trainer's libraries into a data tool; MPI only for its
# ranks (prep_mpi.c: mpirun -n N livecc-prep, srun).
add_executable(livecc-prep prep_main.c prep_mpi.c runconfig.c)
target_link_libraries(livecc-prep PRIVATE lcc_prep)
if(LCC_WITH_MPI)
  target_link_libraries(livecc-prep PRIVATE MPI::MPI_C)
  target_compile_definitions(livecc-prep PRIVATE LCC_HAVE_MPI)
endif()
set_target_properties(livecc-prep PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/bin)
