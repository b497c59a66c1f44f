/*
 * epoll_relay.c - the physical limit: the least a 2-hop relay can do, to compare iotd with.
 *
 *   epoll_relay [--port P] [--duration S]        prints "port=N" once listening
 *
 * One thread, one epoll set, plain TCP on 127.0.0.1. Clients and "devices" connect alike;
 * the FROM of a connection's first frame becomes its address. Every frame is forwarded, bytes
 * unchanged, to the connection whose address is its TO, and dropped when there is none. No
 * authentication, no catalogue, no access map, no correlation, no timeouts: whatever iotd
 * costs beyond this relay is the price of those checks and of its threads.
 *
 * It does what any serious relay does and nothing more: reads as much as the socket has,
 * splits frames at EOT by scanning bytes (no parser state beyond the first two fields), appends
 * each frame to the destination's output buffer, and writes every touched connection once per
 * epoll pass (write coalescing).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define US          0x1F
#define EOT         0x04
#define MAX_FD      65536
#define MAX_FRAME   4096
#define ROUTES      8192 /* open-addressing slots: a power of two, far above the bench's peers */
#define ADDRESS_MAX 128
#define READ_ROOM   (64 * 1024)

struct conn {
    int open;
    int dirty; /* on the dirty list: output waits for this pass's flush */
    int registered;
    uint8_t *in; /* received bytes not yet forming a whole frame */
    size_t in_len, in_cap;
    uint8_t *out;
    size_t out_len, out_cap;
};

struct route {
    char address[ADDRESS_MAX];
    int fd; /* 0: free slot (fd 0 is stdin, never a connection here) */
};

struct relay {
    int epfd, listen_fd;
    struct conn *conns; /* indexed by fd */
    struct route routes[ROUTES];
    int dirty[MAX_FD];
    int ndirty;
    uint64_t frames, dropped;
};

static volatile sig_atomic_t stop_requested;

static void on_signal(int signum)
{
    (void)signum;
    stop_requested = 1;
}

static uint32_t hash_bytes(const uint8_t *s, size_t n)
{
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 16777619u;
    return h;
}

/* The slot for address (len bytes): where it is, or the free slot where it would go; NULL
 * when the table is full. */
static struct route *route_slot(struct relay *r, const uint8_t *address, size_t len)
{
    uint32_t h = hash_bytes(address, len);

    for (uint32_t i = 0; i < ROUTES; i++) {
        struct route *s = &r->routes[(h + i) & (ROUTES - 1)];
        if (s->fd == 0 || (strlen(s->address) == len && memcmp(s->address, address, len) == 0))
            return s;
    }
    return NULL;
}

/* Append len bytes to a growing buffer. Returns 0 or -1 (out of memory). */
static int append(uint8_t **buf, size_t *used, size_t *cap, const uint8_t *data, size_t len)
{
    if (*cap - *used < len) {
        size_t ncap = *cap ? *cap : 16 * 1024;
        while (ncap - *used < len)
            ncap *= 2;
        uint8_t *p = realloc(*buf, ncap);
        if (!p)
            return -1;
        *buf = p;
        *cap = ncap;
    }
    memcpy(*buf + *used, data, len);
    *used += len;
    return 0;
}

static void close_conn(struct relay *r, int fd)
{
    struct conn *c = &r->conns[fd];

    /* Forget the addresses that pointed here, so a reconnecting peer can claim them. */
    for (size_t i = 0; i < ROUTES; i++)
        if (r->routes[i].fd == fd)
            r->routes[i].fd = -1; /* a tombstone keeps later probes of the chain working */
    close(fd);
    free(c->in);
    free(c->out);
    memset(c, 0, sizeof(*c));
}

/* Forward one frame (from..EOT) that arrived on fd. */
static void forward(struct relay *r, int fd, const uint8_t *frame, size_t len)
{
    const uint8_t *from_end = memchr(frame, US, len), *to, *to_end;
    struct route *dst;
    struct conn *d;

    r->frames++;
    if (!from_end)
        goto drop;
    to = from_end + 1;
    to_end = memchr(to, US, len - (size_t)(to - frame));
    if (!to_end)
        goto drop;
    if (!r->conns[fd].registered && (size_t)(from_end - frame) < ADDRESS_MAX) {
        struct route *s = route_slot(r, frame, (size_t)(from_end - frame));
        if (s) {
            memcpy(s->address, frame, (size_t)(from_end - frame));
            s->address[from_end - frame] = '\0';
            s->fd = fd;
            r->conns[fd].registered = 1;
        }
    }
    dst = route_slot(r, to, (size_t)(to_end - to));
    if (!dst || dst->fd <= 0)
        goto drop;
    d = &r->conns[dst->fd];
    if (append(&d->out, &d->out_len, &d->out_cap, frame, len) < 0)
        goto drop;
    if (!d->dirty) {
        d->dirty = 1;
        r->dirty[r->ndirty++] = dst->fd;
    }
    return;
drop:
    r->dropped++;
}

/* Read everything fd has and forward each whole frame. Returns 0 or -1 (close it). */
static int on_readable(struct relay *r, int fd)
{
    struct conn *c = &r->conns[fd];
    ssize_t n;

    for (;;) {
        if (c->in_cap - c->in_len < READ_ROOM) {
            uint8_t *p = realloc(c->in, c->in_len + READ_ROOM);
            if (!p)
                return -1;
            c->in = p;
            c->in_cap = c->in_len + READ_ROOM;
        }
        n = read(fd, c->in + c->in_len, c->in_cap - c->in_len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return 0;
        if (n <= 0)
            return -1;
        size_t start = 0, scan = c->in_len;
        c->in_len += (size_t)n;
        for (uint8_t *eot; (eot = memchr(c->in + scan, EOT, c->in_len - scan)) != NULL;) {
            size_t end = (size_t)(eot - c->in) + 1;
            forward(r, fd, c->in + start, end - start);
            start = scan = end;
        }
        memmove(c->in, c->in + start, c->in_len - start);
        c->in_len -= start;
        if (c->in_len > MAX_FRAME)
            return -1; /* no EOT within a frame's length: not a peer of ours */
        if ((size_t)n < READ_ROOM)
            return 0;
    }
}

/* Write a connection's output; what the kernel does not take waits for EPOLLOUT. */
static int flush(struct relay *r, int fd)
{
    struct conn *c = &r->conns[fd];
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    size_t off = 0;
    ssize_t n;

    while (off < c->out_len) {
        n = write(fd, c->out + off, c->out_len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n <= 0)
            return -1;
        off += (size_t)n;
    }
    memmove(c->out, c->out + off, c->out_len - off);
    c->out_len -= off;
    if (c->out_len > 0) {
        ev.events |= EPOLLOUT;
        epoll_ctl(r->epfd, EPOLL_CTL_MOD, fd, &ev);
    }
    return 0;
}

static void on_accept(struct relay *r)
{
    int one = 1;

    for (int i = 0; i < 64; i++) {
        int fd = accept4(r->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        if (fd < 0)
            return;
        if (fd >= MAX_FD) {
            close(fd);
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        r->conns[fd].open = 1;
        epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev);
    }
}

static int listen_on(int port)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    socklen_t len = sizeof(addr);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;

    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(fd, 1024) != 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &len) != 0) {
        close(fd);
        return -1;
    }
    printf("port=%d\n", ntohs(addr.sin_port));
    fflush(stdout);
    return fd;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"port", required_argument, NULL, 'p'},
        {"duration", required_argument, NULL, 'd'},
        {NULL, 0, NULL, 0},
    };
    static struct relay relay;
    struct relay *r = &relay;
    struct epoll_event events[256];
    struct epoll_event lev = {.events = EPOLLIN};
    double duration_s = 600;
    int port = 0, c;
    time_t deadline;

    while ((c = getopt_long(argc, argv, "p:d:", longopts, NULL)) != -1) {
        if (c == 'p')
            port = atoi(optarg);
        else if (c == 'd')
            duration_s = atof(optarg);
        else {
            fprintf(stderr, "usage: epoll_relay [--port P] [--duration S]\n");
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    r->conns = calloc(MAX_FD, sizeof(*r->conns));
    r->epfd = epoll_create1(EPOLL_CLOEXEC);
    r->listen_fd = listen_on(port);
    if (!r->conns || r->epfd < 0 || r->listen_fd < 0) {
        fprintf(stderr, "epoll_relay: cannot start: %s\n", strerror(errno));
        return 3;
    }
    lev.data.fd = r->listen_fd;
    epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->listen_fd, &lev);
    /* Bounded: a forgotten relay goes away by itself. */
    deadline = time(NULL) + (time_t)duration_s;
    while (!stop_requested && time(NULL) < deadline) {
        int n = epoll_wait(r->epfd, events, 256, 200);
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd == r->listen_fd) {
                on_accept(r);
                continue;
            }
            if (!r->conns[fd].open)
                continue;
            if ((events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && on_readable(r, fd) < 0)
                close_conn(r, fd);
        }
        /* One write per touched connection per pass, however many frames it got. */
        for (int i = 0; i < r->ndirty; i++) {
            int fd = r->dirty[i];
            r->conns[fd].dirty = 0;
            if (r->conns[fd].open && r->conns[fd].out_len > 0 && flush(r, fd) < 0)
                close_conn(r, fd);
        }
        r->ndirty = 0;
        /* EPOLLOUT connections: flush when the kernel has room again. */
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd != r->listen_fd && (events[i].events & EPOLLOUT) && r->conns[fd].open &&
                flush(r, fd) < 0)
                close_conn(r, fd);
        }
    }
    fprintf(stderr, "epoll_relay: %llu frames, %llu dropped\n", (unsigned long long)r->frames,
            (unsigned long long)r->dropped);
    for (int fd = 0; fd < MAX_FD; fd++)
        if (r->conns[fd].open)
            close_conn(r, fd);
    close(r->listen_fd);
    close(r->epfd);
    free(r->conns);
    return 0;
}
