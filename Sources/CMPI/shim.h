// Private shim: exposes OpenMPI's C interface to Swift. Not API.
//
// OpenMPI's handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, MPI_IN_PLACE, …) are macros
// over the addresses of predefined objects, which Swift cannot import; these inline
// functions return them.
#pragma once
#include <mpi.h>

static inline MPI_Comm mtp_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Comm mtp_mpi_comm_null(void) { return MPI_COMM_NULL; }
static inline MPI_Datatype mtp_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype mtp_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Op mtp_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op mtp_mpi_max(void) { return MPI_MAX; }
static inline MPI_Op mtp_mpi_min(void) { return MPI_MIN; }
static inline void *mtp_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Status *mtp_mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline MPI_Errhandler mtp_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline int mtp_mpi_success(void) { return MPI_SUCCESS; }
static inline int mtp_mpi_thread_multiple(void) { return MPI_THREAD_MULTIPLE; }
static inline int mtp_mpi_max_error_string(void) { return MPI_MAX_ERROR_STRING; }
