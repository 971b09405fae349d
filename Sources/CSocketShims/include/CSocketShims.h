// Only what Swift cannot express: function-like macros (CMSG_*, FD_*), variadic calls
// (ioctl, fcntl), and headers that Swift's Glibc module does not export (epoll, eventfd, ...).
#ifndef CSOCKETSHIMS_H
#define CSOCKETSHIMS_H


#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <netinet/icmp6.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>
#include <linux/errqueue.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>

// O_PATH is GNU-only in <fcntl.h> (the value is the same on every Linux architecture).
#ifdef O_PATH
#define CSHIM_O_PATH O_PATH
#else
#define CSHIM_O_PATH 010000000
#endif

// fd_set helpers; callers check fd < FD_SETSIZE before calling (FD_SET past it corrupts memory).
static inline void cshim_fd_zero(fd_set *set) { FD_ZERO(set); }
static inline void cshim_fd_set(int fd, fd_set *set) { FD_SET(fd, set); }
static inline int cshim_fd_isset(int fd, const fd_set *set) { return FD_ISSET(fd, set) ? 1 : 0; }
static inline int cshim_fd_setsize(void) { return FD_SETSIZE; }

// ppoll(2), a GNU extension (readiness.c): poll with a nanosecond timeout and a signal mask.
int cshim_ppoll(struct pollfd *fds, nfds_t count, const struct timespec *timeout, const sigset_t *mask);

// Control-message macros.
static inline size_t cshim_cmsg_space(size_t length) { return CMSG_SPACE(length); }
static inline size_t cshim_cmsg_len(size_t length) { return CMSG_LEN(length); }
static inline struct cmsghdr *cshim_cmsg_firsthdr(struct msghdr *msg) { return CMSG_FIRSTHDR(msg); }
static inline struct cmsghdr *cshim_cmsg_nxthdr(struct msghdr *msg, struct cmsghdr *cmsg) { return CMSG_NXTHDR(msg, cmsg); }
static inline unsigned char *cshim_cmsg_data(struct cmsghdr *cmsg) { return CMSG_DATA(cmsg); }

// Variadic C functions Swift cannot call directly.
static inline int cshim_ioctl_pointer(int fd, unsigned long request, void *argument) { return ioctl(fd, request, argument); }
static inline int cshim_fcntl_get(int fd, int command) { return fcntl(fd, command); }
static inline int cshim_fcntl_set(int fd, int command, int value) { return fcntl(fd, command, value); }

// GNU extensions, compiled in shims.c with _GNU_SOURCE (defining it here would change fd_set's
// field names and clash with other modules that include <sys/select.h>).
int cshim_accept4(int fd, struct sockaddr *address, socklen_t *length, int flags);
/// Names the calling thread (`pthread_setname_np`); 0 or an error number.
int cshim_name_current_thread(const char *name);

/// Same layout as glibc's `struct ucred` (a GNU extension).
struct cshim_ucred { pid_t pid; uid_t uid; gid_t gid; };

/// Same layout as glibc's `struct mmsghdr` (a GNU extension).
struct cshim_mmsghdr { struct msghdr msg_hdr; unsigned int msg_len; };
int cshim_sendmmsg(int fd, struct cshim_mmsghdr *vector, unsigned int count, int flags);
int cshim_recvmmsg(int fd, struct cshim_mmsghdr *vector, unsigned int count, int flags, struct timespec *timeout);

/// `setns(2)` and `unshare(2)`: move the calling thread into another namespace.
int cshim_setns(int fd, int type);
int cshim_unshare(int flags);

#include "CSocketShimsMessages.h"

// errno, read and written without going through Swift's overlay.
static inline int cshim_errno(void) { return errno; }

#endif
