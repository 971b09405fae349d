// Shims for advanced I/O: control messages, batching, zero-copy, link-layer and netlink.
// Included from CSocketShims.h; the GNU-only functions are compiled in messages.c.
#ifndef CSOCKETSHIMS_MESSAGES_H
#define CSOCKETSHIMS_MESSAGES_H

#include <stdint.h>
#include <sys/types.h>
#include <netinet/in.h>
#include <linux/if_ether.h>
#include <linux/net_tstamp.h>

/// Same layout as glibc's `struct in6_pktinfo` (declared only under _GNU_SOURCE).
struct cshim_in6_pktinfo { struct in6_addr ipi6_addr; unsigned int ipi6_ifindex; };

/// `SCM_CREDENTIALS` (glibc declares it only under _GNU_SOURCE).
static const int CSHIM_SCM_CREDENTIALS = 2;

/// `splice(2)` flags (declared only under _GNU_SOURCE).
static const unsigned int CSHIM_SPLICE_F_MOVE = 1;
static const unsigned int CSHIM_SPLICE_F_NONBLOCK = 2;
static const unsigned int CSHIM_SPLICE_F_MORE = 4;

ssize_t cshim_splice(int fd_in, int64_t *offset_in, int fd_out, int64_t *offset_out, size_t length, unsigned int flags);
ssize_t cshim_tee(int fd_in, int fd_out, size_t length, unsigned int flags);
int cshim_pipe2(int fds[2], int flags);

#endif
