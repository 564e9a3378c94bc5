// Async-signal-safe delivery of SIGINT and SIGTERM to a pipe (see stop_signals.c).
#ifndef MTP_STOP_SIGNALS_H
#define MTP_STOP_SIGNALS_H

/// Installs handlers for SIGINT and SIGTERM that only write the signal number (one byte) to
/// `fd` and restore errno: nothing else runs on the interrupted thread. Returns 0, or -1
/// with errno set when sigaction fails.
int mtp_stop_signals_install(int fd);

/// Blocks (`block` != 0) or unblocks SIGINT and SIGTERM for the calling thread. Returns 0,
/// or -1 when pthread_sigmask fails.
int mtp_stop_signals_block_here(int block);

#endif
