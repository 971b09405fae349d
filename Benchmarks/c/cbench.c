// The C reference for the benchmarks (gcc -O2), and the common load generators.
//
// Servers print "port N" on standard output once listening, then serve until killed:
//   cbench server echo-blocking      one connection at a time, blocking recv/send
//   cbench server discard-blocking   one connection at a time, reads until end-of-file
//   cbench server echo-epoll         non-blocking, level-triggered epoll, any number of connections
//   cbench server udp-sink [--mmsg]  counts datagrams (recvfrom, or recvmmsg 64 at a time)
// Clients print one JSON object on standard output:
//   cbench pingpong --port P --size S --duration SECS [--epoll] round trips, p50/p99 (--epoll:
//                                                             wait for replies with epoll_wait)
//   cbench bulk --port P --size S --duration SECS             bytes/s
//   cbench load --port P --conns N --size S --warmup SECS --duration SECS --server-pid PID
//               [--malloc-counter FILE]                       echo load: messages/s, server CPU
//   cbench accept --port P --parallel K --warmup SECS --duration SECS --server-pid PID
//   cbench idle --port P --conns N --server-pid PID           server memory per idle connection
//   cbench udp-send --port P --size S --duration SECS [--mmsg]
// The UDP sink prints its JSON when the sender's end marker (a 1-byte datagram) arrives.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what) {
    fprintf(stderr, "cbench: %s: %s\n", what, strerror(errno));
    exit(1);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

// ---- options ----
static int opt_port, opt_size = 64, opt_conns = 100, opt_parallel = 4, opt_mmsg, opt_epoll, opt_server_pid;
static double opt_duration = 2, opt_warmup = 0.5;
static const char *opt_malloc_counter;

static void parse(int argc, char **argv, int first) {
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : "0";
        if (!strcmp(a, "--mmsg")) { opt_mmsg = 1; continue; }
        if (!strcmp(a, "--epoll")) { opt_epoll = 1; continue; }
        if (!strcmp(a, "--port")) opt_port = atoi(v);
        else if (!strcmp(a, "--size")) opt_size = atoi(v);
        else if (!strcmp(a, "--conns")) opt_conns = atoi(v);
        else if (!strcmp(a, "--parallel")) opt_parallel = atoi(v);
        else if (!strcmp(a, "--server-pid")) opt_server_pid = atoi(v);
        else if (!strcmp(a, "--duration")) opt_duration = atof(v);
        else if (!strcmp(a, "--warmup")) opt_warmup = atof(v);
        else if (!strcmp(a, "--malloc-counter")) opt_malloc_counter = v;
        else { fprintf(stderr, "cbench: unknown option %s\n", a); exit(64); }
        i++;
    }
}

static struct sockaddr_in loopback(int port) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static void nodelay(int fd) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static int tcp_connect(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    struct sockaddr_in a = loopback(port);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) die("connect");
    nodelay(fd);
    return fd;
}

static void send_all(int fd, const char *buf, size_t n) {
    while (n > 0) {
        ssize_t s = send(fd, buf, n, MSG_NOSIGNAL);
        if (s < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) {
                struct pollfd p = {.fd = fd, .events = POLLOUT};
                poll(&p, 1, -1);
                continue;
            }
            die("send");
        }
        buf += s;
        n -= (size_t)s;
    }
}

// Receives exactly n bytes; returns fewer at end-of-file.
static size_t recv_all(int fd, char *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = recv(fd, buf + got, n - got, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            die("recv");
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    return got;
}

// ---- the server process's counters (from /proc) ----
static double proc_cpu_seconds(int pid) {
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p) return -1;
    // Fields after the command: state(3) ... utime(14) stime(15).
    unsigned long utime = 0, stime = 0;
    int field = 2;
    for (char *tok = strtok(p + 1, " "); tok; tok = strtok(NULL, " ")) {
        field++;
        if (field == 14) utime = strtoul(tok, NULL, 10);
        if (field == 15) { stime = strtoul(tok, NULL, 10); break; }
    }
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static long proc_status_kb(int pid, const char *key) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long value = -1;
    size_t klen = strlen(key);
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, key, klen) && line[klen] == ':') { value = atol(line + klen + 1); break; }
    }
    fclose(f);
    return value;
}

// Context switches of every thread of the process.
static long proc_context_switches(int pid) {
    char path[300], line[256];
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    DIR *dir = opendir(path);
    if (!dir) return -1;
    long total = 0;
    for (struct dirent *d; (d = readdir(dir));) {
        if (d->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "/proc/%d/task/%s/status", pid, d->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        while (fgets(line, sizeof line, f)) {
            if (strstr(line, "ctxt_switches:")) total += atol(strchr(line, ':') + 1);
        }
        fclose(f);
    }
    closedir(dir);
    return total;
}

// The shared counter that libmalloccount.so increments (see malloccount.c).
static volatile uint64_t *malloc_counter(void) {
    if (!opt_malloc_counter) return NULL;
    int fd = open(opt_malloc_counter, O_RDONLY);
    if (fd < 0) die("open malloc counter");
    void *p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) die("mmap malloc counter");
    return (volatile uint64_t *)p;
}

// ---- servers ----
static int listen_tcp(void) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = loopback(0);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
    if (listen(fd, 4096) < 0) die("listen");
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    printf("port %d\n", ntohs(a.sin_port));
    fflush(stdout);
    return fd;
}

static void server_blocking(int echo) {
    int lfd = listen_tcp();
    // 64 KiB reads, swift-nio's largest: here 256 KiB reads gave half the bulk rate.
    static char buf[64 * 1024];
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            die("accept");
        }
        nodelay(fd);
        for (;;) {
            ssize_t r = recv(fd, buf, sizeof buf, 0);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) break;
            if (echo) send_all(fd, buf, (size_t)r);
        }
        close(fd);
    }
}

static void server_epoll(void) {
    int lfd = listen_tcp();
    fcntl(lfd, F_SETFL, O_NONBLOCK);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    static struct epoll_event events[256];
    static char buf[64 * 1024];
    for (;;) {
        int n = epoll_wait(ep, events, 256, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd == lfd) {
                for (;;) {
                    int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                    if (c < 0) break;
                    nodelay(c);
                    struct epoll_event cev = {.events = EPOLLIN, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
                }
                continue;
            }
            ssize_t r = recv(fd, buf, sizeof buf, 0);
            if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            if (r <= 0) {
                close(fd);  // also leaves the epoll set
                continue;
            }
            send_all(fd, buf, (size_t)r);
        }
    }
}

#define BATCH 64
static void server_udp_sink(void) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    int size = 4 * 1024 * 1024;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    struct sockaddr_in a = loopback(0);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    printf("port %d\n", ntohs(a.sin_port));
    fflush(stdout);

    static char bufs[BATCH][2048];
    static struct sockaddr_in from[BATCH];
    static struct iovec iov[BATCH];
    static struct mmsghdr msgs[BATCH];
    for (int i = 0; i < BATCH; i++) {
        iov[i] = (struct iovec){bufs[i], sizeof bufs[i]};
        msgs[i].msg_hdr = (struct msghdr){.msg_name = &from[i], .msg_namelen = sizeof from[i], .msg_iov = &iov[i], .msg_iovlen = 1};
    }
    long count = 0;
    double first = 0, last = 0;
    for (;;) {
        int n;
        if (opt_mmsg) {
            for (int i = 0; i < BATCH; i++) msgs[i].msg_hdr.msg_namelen = sizeof from[i];
            n = recvmmsg(fd, msgs, BATCH, MSG_WAITFORONE, NULL);
        } else {
            socklen_t flen = sizeof from[0];
            ssize_t r = recvfrom(fd, bufs[0], sizeof bufs[0], 0, (struct sockaddr *)&from[0], &flen);
            n = r < 0 ? -1 : 1;
            msgs[0].msg_len = r < 0 ? 0 : (unsigned)r;
        }
        if (n < 0) {
            if (errno == EINTR) continue;
            die("recv");
        }
        double t = now();
        for (int i = 0; i < n; i++) {
            if (msgs[i].msg_len == 1) {
                // The end marker: report once per run, then start counting again.
                if (count > 0) {
                    double secs = last - first;
                    printf("{\"datagrams\":%ld,\"seconds\":%.6f,\"rate\":%.1f}\n", count, secs, secs > 0 ? count / secs : 0);
                    fflush(stdout);
                }
                count = 0;
                continue;
            }
            if (count == 0) first = t;
            count++;
            last = t;
        }
    }
}

// ---- clients ----
static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

// The event-loop way to wait for the reply: non-blocking socket, epoll_wait, then recv.
static int ep_fd = -1;
static size_t recv_reply(int fd, char *buf, size_t n) {
    if (ep_fd < 0) return recv_all(fd, buf, n);
    size_t got = 0;
    struct epoll_event ev;
    while (got < n) {
        if (epoll_wait(ep_fd, &ev, 1, -1) < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        ssize_t r = recv(fd, buf + got, n - got, 0);
        if (r < 0) {
            if (errno == EAGAIN || errno == EINTR) continue;
            die("recv");
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    return got;
}

static void client_pingpong(void) {
    int fd = tcp_connect(opt_port);
    if (opt_epoll) {
        fcntl(fd, F_SETFL, O_NONBLOCK);
        ep_fd = epoll_create1(EPOLL_CLOEXEC);
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        epoll_ctl(ep_fd, EPOLL_CTL_ADD, fd, &ev);
    }
    char *buf = calloc(1, (size_t)opt_size);
    size_t cap = 1 << 24, count = 0;
    uint32_t *samples = malloc(cap * sizeof *samples);
    double warm_end = now() + opt_warmup, start = 0, end = 0;
    int measuring = 0;
    for (;;) {
        double t0 = now();
        if (!measuring && t0 >= warm_end) { measuring = 1; start = t0; end = t0 + opt_duration; }
        if (measuring && t0 >= end) break;
        send_all(fd, buf, (size_t)opt_size);
        if (recv_reply(fd, buf, (size_t)opt_size) < (size_t)opt_size) { fprintf(stderr, "cbench: server closed early\n"); exit(1); }
        double t1 = now();
        if (measuring && count < cap) samples[count++] = (uint32_t)((t1 - t0) * 1e9);
    }
    double secs = now() - start;
    shutdown(fd, SHUT_WR);
    while (recv_reply(fd, buf, (size_t)opt_size) > 0) {}
    close(fd);
    qsort(samples, count, sizeof *samples, cmp_u32);
    printf("{\"round_trips\":%zu,\"seconds\":%.6f,\"rate\":%.1f,\"p50_us\":%.2f,\"p99_us\":%.2f}\n", count, secs,
           count / secs, count ? samples[count / 2] / 1e3 : 0, count ? samples[count * 99 / 100] / 1e3 : 0);
}

static void client_bulk(void) {
    int fd = tcp_connect(opt_port);
    // Filled like the Swift and NIO clients' buffers: untouched calloc pages all map the one
    // zero page, which stays in cache and made C's copies cheaper than theirs.
    char *buf = malloc((size_t)opt_size);
    if (!buf) die("malloc");
    memset(buf, 'a', (size_t)opt_size);
    double start = now(), end = start + opt_duration;
    long long bytes = 0;
    while (now() < end) {
        send_all(fd, buf, (size_t)opt_size);
        bytes += opt_size;
    }
    shutdown(fd, SHUT_WR);
    while (recv(fd, buf, (size_t)opt_size, 0) > 0) {}  // the server closes once it has read everything
    double secs = now() - start;
    close(fd);
    printf("{\"bytes\":%lld,\"seconds\":%.6f,\"rate\":%.1f}\n", bytes, secs, bytes / secs);
}

// N connections, one message in flight each; counts echoed messages in the measured window.
static void client_load(void) {
    int n = opt_conns;
    int *fds = calloc((size_t)n, sizeof *fds);
    int *got = calloc((size_t)n, sizeof *got);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    char msg[65536] = {0}, buf[65536];
    for (int i = 0; i < n; i++) {
        fds[i] = tcp_connect(opt_port);
        fcntl(fds[i], F_SETFL, O_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
    }
    for (int i = 0; i < n; i++) send_all(fds[i], msg, (size_t)opt_size);
    volatile uint64_t *mc = malloc_counter();
    static struct epoll_event events[1024];
    long messages = 0, m0 = 0;
    double cpu0 = 0, t0 = 0, warm_end = now() + opt_warmup, end = 0;
    long ctx0 = 0;
    uint64_t mallocs0 = 0;
    int measuring = 0;
    for (;;) {
        double t = now();
        if (!measuring && t >= warm_end) {
            measuring = 1;
            m0 = messages;
            cpu0 = proc_cpu_seconds(opt_server_pid);
            ctx0 = proc_context_switches(opt_server_pid);
            if (mc) mallocs0 = *mc;
            t0 = now();
            end = t0 + opt_duration;
        }
        if (measuring && t >= end) break;
        int k = epoll_wait(ep, events, 1024, 100);
        if (k < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (int e = 0; e < k; e++) {
            int i = (int)events[e].data.u32;
            ssize_t r = recv(fds[i], buf, sizeof buf, 0);
            if (r < 0 && errno == EAGAIN) continue;
            if (r <= 0) { fprintf(stderr, "cbench: connection %d closed by the server\n", i); exit(1); }
            got[i] += (int)r;
            while (got[i] >= opt_size) {
                got[i] -= opt_size;
                messages++;
                send_all(fds[i], msg, (size_t)opt_size);
            }
        }
    }
    double secs = now() - t0;
    uint64_t mallocs = mc ? *mc - mallocs0 : 0;
    double cpu = proc_cpu_seconds(opt_server_pid) - cpu0;
    long ctx = proc_context_switches(opt_server_pid) - ctx0;
    long count = messages - m0;
    for (int i = 0; i < n; i++) close(fds[i]);
    printf("{\"messages\":%ld,\"seconds\":%.6f,\"rate\":%.1f,\"server_cpu_s\":%.3f,\"cpu_us_per_msg\":%.3f,"
           "\"ctx_per_msg\":%.4f,\"mallocs\":%llu,\"mallocs_per_msg\":%.4f}\n",
           count, secs, count / secs, cpu, count ? cpu * 1e6 / count : 0, count ? (double)ctx / count : 0,
           (unsigned long long)mallocs, count ? (double)mallocs / count : 0);
}

// K connections at a time: connect, send 8 bytes, read them back, close (with an RST, so
// that no TIME_WAIT piles up over repeated runs).
enum { ST_CONNECTING, ST_WAITING };
static void client_accept(void) {
    int k = opt_parallel;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int *fds = calloc((size_t)k, sizeof *fds), *state = calloc((size_t)k, sizeof *state), *got = calloc((size_t)k, sizeof *got);
    char msg[8] = "12345678", buf[64];
    struct sockaddr_in a = loopback(opt_port);
    long done = 0, d0 = 0;
    double warm_end = now() + opt_warmup, t0 = 0, end = 0, cpu0 = 0;
    int measuring = 0;
    for (int i = 0; i < k; i++) fds[i] = -1;
    static struct epoll_event events[256];
    for (;;) {
        for (int i = 0; i < k; i++) {
            if (fds[i] >= 0) continue;
            int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
            if (fd < 0) die("socket");
            nodelay(fd);
            struct linger lg = {1, 0};
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS) die("connect");
            fds[i] = fd;
            state[i] = ST_CONNECTING;
            got[i] = 0;
            struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = (uint32_t)i};
            epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        }
        double t = now();
        if (!measuring && t >= warm_end) { measuring = 1; d0 = done; cpu0 = proc_cpu_seconds(opt_server_pid); t0 = t; end = t + opt_duration; }
        if (measuring && t >= end) break;
        int n = epoll_wait(ep, events, 256, 100);
        for (int e = 0; e < n; e++) {
            int i = (int)events[e].data.u32;
            int fd = fds[i];
            if (state[i] == ST_CONNECTING) {
                int err = 0;
                socklen_t len = sizeof err;
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
                if (err) { errno = err; die("connect"); }
                send_all(fd, msg, sizeof msg);
                state[i] = ST_WAITING;
                struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
                epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
                continue;
            }
            ssize_t r = recv(fd, buf, sizeof buf, 0);
            if (r < 0 && errno == EAGAIN) continue;
            if (r <= 0) { fprintf(stderr, "cbench: the server closed a connection early\n"); exit(1); }
            got[i] += (int)r;
            if (got[i] >= (int)sizeof msg) {
                close(fd);
                fds[i] = -1;
                done++;
            }
        }
    }
    double secs = now() - t0;
    double cpu = proc_cpu_seconds(opt_server_pid) - cpu0;
    long count = done - d0;
    for (int i = 0; i < k; i++) if (fds[i] >= 0) close(fds[i]);
    printf("{\"connections\":%ld,\"seconds\":%.6f,\"rate\":%.1f,\"server_cpu_s\":%.3f,\"cpu_us_per_conn\":%.2f}\n", count,
           secs, count / secs, cpu, count ? cpu * 1e6 / count : 0);
}

// Opens N connections, each with one 1-byte exchange, and reads the server's resident memory
// before (after 100 warm-up connections) and after.
static void client_idle(void) {
    int warm = 100, n = opt_conns;
    int *fds = calloc((size_t)(n + warm), sizeof *fds);
    char b = 'x';
    for (int i = 0; i < warm; i++) {
        fds[i] = tcp_connect(opt_port);
        send_all(fds[i], &b, 1);
        if (recv_all(fds[i], &b, 1) != 1) { fprintf(stderr, "cbench: no echo\n"); exit(1); }
    }
    usleep(200000);
    long before = proc_status_kb(opt_server_pid, "VmRSS");
    double t0 = now();
    for (int i = warm; i < warm + n; i++) {
        fds[i] = tcp_connect(opt_port);
        send_all(fds[i], &b, 1);
        if (recv_all(fds[i], &b, 1) != 1) { fprintf(stderr, "cbench: no echo on connection %d\n", i); exit(1); }
    }
    double secs = now() - t0;
    usleep(200000);
    long after = proc_status_kb(opt_server_pid, "VmRSS");
    for (int i = 0; i < warm + n; i++) close(fds[i]);
    printf("{\"connections\":%d,\"seconds\":%.3f,\"rss_before_kb\":%ld,\"rss_after_kb\":%ld,\"bytes_per_conn\":%.1f}\n", n,
           secs, before, after, (after - before) * 1024.0 / n);
}

static void client_udp_send(void) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    struct sockaddr_in a = loopback(opt_port);
    static char bufs[BATCH][2048];
    static struct iovec iov[BATCH];
    static struct mmsghdr msgs[BATCH];
    for (int i = 0; i < BATCH; i++) {
        iov[i] = (struct iovec){bufs[i], (size_t)opt_size};
        msgs[i].msg_hdr = (struct msghdr){.msg_name = &a, .msg_namelen = sizeof a, .msg_iov = &iov[i], .msg_iovlen = 1};
    }
    long sent = 0;
    double start = now(), end = start + opt_duration;
    while (now() < end) {
        if (opt_mmsg) {
            int n = sendmmsg(fd, msgs, BATCH, 0);
            if (n < 0) { if (errno == EINTR || errno == ENOBUFS || errno == EAGAIN) continue; die("sendmmsg"); }
            sent += n;
        } else {
            if (sendto(fd, bufs[0], (size_t)opt_size, 0, (struct sockaddr *)&a, sizeof a) < 0) {
                if (errno == EINTR || errno == ENOBUFS || errno == EAGAIN) continue;
                die("sendto");
            }
            sent++;
        }
    }
    double secs = now() - start;
    // End markers, spaced so that the receiver has drained its queue (a full queue drops them).
    for (int i = 0; i < 10; i++) {
        usleep(50000);
        sendto(fd, "e", 1, 0, (struct sockaddr *)&a, sizeof a);
    }
    close(fd);
    printf("{\"sent\":%ld,\"seconds\":%.6f,\"rate\":%.1f}\n", sent, secs, sent / secs);
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2) { fprintf(stderr, "usage: see cbench.c\n"); return 64; }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "server")) {
        if (argc < 3) return 64;
        parse(argc, argv, 3);
        const char *kind = argv[2];
        if (!strcmp(kind, "echo-blocking")) server_blocking(1);
        else if (!strcmp(kind, "discard-blocking")) server_blocking(0);
        else if (!strcmp(kind, "echo-epoll")) server_epoll();
        else if (!strcmp(kind, "udp-sink")) server_udp_sink();
        else { fprintf(stderr, "cbench: unknown server %s\n", kind); return 64; }
        return 0;
    }
    parse(argc, argv, 2);
    if (!strcmp(cmd, "pingpong")) client_pingpong();
    else if (!strcmp(cmd, "bulk")) client_bulk();
    else if (!strcmp(cmd, "load")) client_load();
    else if (!strcmp(cmd, "accept")) client_accept();
    else if (!strcmp(cmd, "idle")) client_idle();
    else if (!strcmp(cmd, "udp-send")) client_udp_send();
    else { fprintf(stderr, "cbench: unknown command %s\n", cmd); return 64; }
    return 0;
}
