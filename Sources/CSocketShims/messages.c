// GNU extensions for advanced I/O; see CSocketShimsMessages.h.
#define _GNU_SOURCE 1
#include <fcntl.h>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include "CSocketShims.h"

_Static_assert(sizeof(struct cshim_in6_pktinfo) == sizeof(struct in6_pktinfo), "in6_pktinfo layout");
_Static_assert(CSHIM_SCM_CREDENTIALS == SCM_CREDENTIALS, "SCM_CREDENTIALS");
_Static_assert(CSHIM_SPLICE_F_MOVE == SPLICE_F_MOVE && CSHIM_SPLICE_F_NONBLOCK == SPLICE_F_NONBLOCK
               && CSHIM_SPLICE_F_MORE == SPLICE_F_MORE, "SPLICE_F_*");
_Static_assert(sizeof(loff_t) == sizeof(int64_t), "loff_t");

ssize_t cshim_splice(int fd_in, int64_t *offset_in, int fd_out, int64_t *offset_out, size_t length, unsigned int flags) {
    return splice(fd_in, (loff_t *)offset_in, fd_out, (loff_t *)offset_out, length, flags);
}

ssize_t cshim_tee(int fd_in, int fd_out, size_t length, unsigned int flags) {
    return tee(fd_in, fd_out, length, flags);
}

int cshim_pipe2(int fds[2], int flags) {
    return pipe2(fds, flags);
}
