// livecc-prep's ranks over MPI (loader/prep/group.h): one job spread over mpirun or srun processes.
#ifndef LCC_PREP_MPI_H
#define LCC_PREP_MPI_H

#include "group.h"

// 1 when an MPI launcher (mpirun, srun) started this process.
int lcc_prep_launched(void);
// MPI_Init and the group over MPI_COMM_WORLD; NULL with lcc_error() when this build has no MPI.
lcc_prep_group *lcc_prep_group_mpi(int *argc, char ***argv);
// MPI_Finalize (every rank, at the end of a job that went well).
void lcc_prep_group_end(lcc_prep_group *g);

#endif
