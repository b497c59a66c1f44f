/*
 * iotp_posix.c - POSIX implementations of the iotp transport, random and clock interfaces.
 *
 * send and recv retry on EINTR and report EAGAIN as "nothing now" (0), which the library reads
 * as an idle transport; a closed peer is IOTP_EIO on recv, like any socket error. send uses
 * MSG_NOSIGNAL so a device whose server vanished gets an error, not SIGPIPE.
 */
#include "iotp_posix.h"

#include "iotp/iotp_error.h"

#include <errno.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>

/* The interface counts in int32_t; never ask the kernel for more than that at once. */
#define MAX_IO 0x40000000u

static int32_t posix_send(void *ctx, const uint8_t *buf, size_t len)
{
    struct iotp_posix_socket *s = ctx;
    ssize_t n;

    if (len > MAX_IO)
        len = MAX_IO;
    do {
        n = send(s->fd, buf, len, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : IOTP_EIO;
    return (int32_t)n;
}

static int32_t posix_recv(void *ctx, uint8_t *buf, size_t len)
{
    struct iotp_posix_socket *s = ctx;
    ssize_t n;

    if (len > MAX_IO)
        len = MAX_IO;
    do {
        n = recv(s->fd, buf, len, 0);
    } while (n < 0 && errno == EINTR);
    if (n == 0 && len > 0)
        return IOTP_EIO; /* orderly shutdown by the peer */
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : IOTP_EIO;
    return (int32_t)n;
}

void iotp_posix_transport(struct iotp_posix_socket *s, int fd, struct iotp_transport *t)
{
    s->fd = fd;
    t->ctx = s;
    t->send = posix_send;
    t->recv = posix_recv;
}

static int posix_fill(void *ctx, uint8_t *buf, size_t len)
{
    (void)ctx;
    while (len > 0) {
        ssize_t n = getrandom(buf, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return IOTP_ERANDOM;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

void iotp_posix_random(struct iotp_random *r)
{
    r->ctx = NULL;
    r->fill = posix_fill;
}

static uint64_t posix_now_ms(void *ctx)
{
    struct timespec ts;

    (void)ctx;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void iotp_posix_clock(struct iotp_clock *c)
{
    c->ctx = NULL;
    c->now_ms = posix_now_ms;
}
