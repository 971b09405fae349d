// ppoll is a GNU extension: compiled here with _GNU_SOURCE (see shims.c for why not in the header).
#define _GNU_SOURCE 1
#include <poll.h>
#include <signal.h>
#include "CSocketShims.h"

int cshim_ppoll(struct pollfd *fds, nfds_t count, const struct timespec *timeout, const sigset_t *mask) {
    return ppoll(fds, count, timeout, mask);
}
