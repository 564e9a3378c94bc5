// SIGINT / SIGTERM for a training run. Two rules:
// - No handler may run on a thread that computes: oneDNN 2.x's JIT GEMM kernels point rsp
//   into the heap while they run (oneDNN issue #4845, fixed upstream in 2026 by PR #4855,
//   not in Debian's 2.6), so a signal frame pushed there corrupts the heap. Measured: a
//   SIGTERM during a step crashed 1 in 8 (libdispatch's handler) to 1 in 2 (a plain
//   handler) interrupted runs; with the signals blocked on the computing threads, none.
//   The main thread blocks them (threads it starts later inherit the mask; libdispatch's
//   workers block them already), and a watcher thread unblocks them for itself.
// - The handler does the one async-signal-safe thing, a write(2) of the signal number to
//   a pipe, which the watcher reads to do the rest.

#include "stop_signals.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop_fd = -1;

static void on_stop_signal(int sig) {
    int saved = errno;
    unsigned char byte = (unsigned char)sig;
    if (stop_fd >= 0) (void)write(stop_fd, &byte, 1);
    errno = saved;
}

int mtp_stop_signals_block_here(int block) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    return pthread_sigmask(block ? SIG_BLOCK : SIG_UNBLOCK, &set, NULL) == 0 ? 0 : -1;
}

int mtp_stop_signals_install(int fd) {
    stop_fd = fd;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    if (sigaction(SIGINT, &action, NULL) != 0) return -1;
    if (sigaction(SIGTERM, &action, NULL) != 0) return -1;
    return 0;
}
