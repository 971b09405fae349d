// GNU extensions that the header declares with layout-identical types.
#define _GNU_SOURCE 1
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include "CSocketShims.h"

_Static_assert(sizeof(struct cshim_ucred) == sizeof(struct ucred), "ucred layout");
_Static_assert(sizeof(struct cshim_mmsghdr) == sizeof(struct mmsghdr), "mmsghdr layout");

int cshim_accept4(int fd, struct sockaddr *address, socklen_t *length, int flags) {
    return accept4(fd, address, length, flags);
}

int cshim_sendmmsg(int fd, struct cshim_mmsghdr *vector, unsigned int count, int flags) {
    return sendmmsg(fd, (struct mmsghdr *)vector, count, flags);
}

int cshim_recvmmsg(int fd, struct cshim_mmsghdr *vector, unsigned int count, int flags, struct timespec *timeout) {
    return recvmmsg(fd, (struct mmsghdr *)vector, count, flags, timeout);
}

int cshim_setns(int fd, int type) {
    return setns(fd, type);
}

int cshim_unshare(int flags) {
    return unshare(flags);
}

int cshim_name_current_thread(const char *name) {
    return pthread_setname_np(pthread_self(), name);
}
