/*
 * iotdev_net.c - TCP or TLS to iotd for iotdev (see iotdev_net.h). TLS runs over memory BIOs
 * (sim_tls, shared with iotsim): ciphertext moves between them and the socket here.
 */
#include "iotdev_net.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "iotp/iotp_error.h"

/* How long one send may wait for the socket to take bytes. */
#define SEND_WAIT_MS 10000

static uint64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Wait for events on fd until deadline. Returns 1 (ready), 0 (deadline) or -1. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
    for (;;) {
        struct pollfd p = {fd, events, 0};
        uint64_t now = mono_ms();
        int r;

        if (now >= deadline)
            return 0;
        r = poll(&p, 1, (int)(deadline - now));
        if (r < 0 && errno == EINTR)
            continue;
        return r < 0 ? -1 : r > 0;
    }
}

/* Write all of buf to the socket by deadline. Returns 0 or -1. */
static int write_all(int fd, const uint8_t *buf, size_t len, uint64_t deadline)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            if (wait_fd(fd, POLLOUT, deadline) <= 0)
                return -1;
            continue;
        }
        if (n < 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Put the ciphertext TLS produced on the socket. */
static int flush_tls(struct iotdev_net *n, uint64_t deadline)
{
    uint8_t buf[4096];
    size_t len;

    while ((len = sim_tls_take(&n->tls, buf, sizeof(buf))) > 0)
        if (write_all(n->fd, buf, len, deadline) < 0)
            return -1;
    return 0;
}

int iotdev_net_init(struct iotdev_net *n, const char *tls_ca, char *err, size_t errlen)
{
    memset(n, 0, sizeof(*n));
    n->fd = -1;
    if (*tls_ca == '\0')
        return 0;
    n->tls_ctx = sim_tls_ctx_new(strcmp(tls_ca, "system") == 0 ? NULL : tls_ca, 0, err, errlen);
    return n->tls_ctx ? 0 : -1;
}

int iotdev_net_open(struct iotdev_net *n, const char *host, uint16_t port, unsigned timeout_ms,
                    char *err, size_t errlen)
{
    struct addrinfo hints, *res = NULL, *ai;
    uint64_t deadline = mono_ms() + timeout_ms;
    char service[8];
    int r, rc = -1;

    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    snprintf(service, sizeof(service), "%u", (unsigned)port);
    r = getaddrinfo(host, service, &hints, &res);
    if (r != 0) {
        snprintf(err, errlen, "%s: %s", host, gai_strerror(r));
        return -1;
    }
    snprintf(err, errlen, "%s:%u: no address", host, (unsigned)port);
    for (ai = res; ai && n->fd < 0; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int soerr = 0;
        socklen_t sl = sizeof(soerr);

        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
            snprintf(err, errlen, "connect %s:%u: %s", host, (unsigned)port, strerror(errno));
            close(fd);
            continue;
        }
        if (wait_fd(fd, POLLOUT, deadline) <= 0 ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr != 0) {
            snprintf(err, errlen, "connect %s:%u: %s", host, (unsigned)port,
                     soerr ? strerror(soerr) : "timed out");
            close(fd);
            continue;
        }
        n->fd = fd;
    }
    freeaddrinfo(res);
    if (n->fd < 0)
        return -1;
    if (!n->tls_ctx)
        return 0;
    if (sim_tls_open(&n->tls, n->tls_ctx, host) < 0) {
        snprintf(err, errlen, "TLS: cannot start a session");
        goto out;
    }
    for (;;) {
        uint8_t buf[4096];
        ssize_t got;

        r = sim_tls_handshake(&n->tls);
        if (flush_tls(n, deadline) < 0 || r < 0) {
            char why[256];
            snprintf(err, errlen, "TLS handshake with %s: %s", host,
                     r < 0 ? sim_tls_error(why, sizeof(why)) : "send failed");
            goto out;
        }
        if (r == 1)
            break;
        if (wait_fd(n->fd, POLLIN, deadline) <= 0) {
            snprintf(err, errlen, "TLS handshake with %s: timed out", host);
            goto out;
        }
        got = recv(n->fd, buf, sizeof(buf), 0);
        if (got <= 0 && !(got < 0 && (errno == EAGAIN || errno == EINTR))) {
            snprintf(err, errlen, "TLS handshake with %s: connection closed", host);
            goto out;
        }
        if (got > 0 && sim_tls_feed(&n->tls, buf, (size_t)got) < 0) {
            snprintf(err, errlen, "TLS handshake with %s: out of memory", host);
            goto out;
        }
    }
    rc = 0;
out:
    if (rc < 0)
        iotdev_net_close(n);
    return rc;
}

void iotdev_net_close(struct iotdev_net *n)
{
    if (n->tls.ssl && n->fd >= 0) {
        sim_tls_shutdown(&n->tls);
        flush_tls(n, mono_ms() + 100);
    }
    sim_tls_close(&n->tls);
    memset(&n->tls, 0, sizeof(n->tls));
    if (n->fd >= 0)
        close(n->fd);
    n->fd = -1;
}

void iotdev_net_free(struct iotdev_net *n)
{
    iotdev_net_close(n);
    if (n->tls_ctx)
        sim_tls_ctx_free(n->tls_ctx);
    n->tls_ctx = NULL;
}

int iotdev_net_pending(const struct iotdev_net *n)
{
    return n->tls.ssl && SSL_pending(n->tls.ssl) > 0;
}

static int32_t net_send(void *ctx, const uint8_t *buf, size_t len)
{
    struct iotdev_net *n = ctx;
    uint64_t deadline = mono_ms() + SEND_WAIT_MS;

    if (n->fd < 0)
        return IOTP_EIO;
    if (len > 0x40000000u)
        len = 0x40000000u;
    if (n->tls.ssl) {
        if (sim_tls_write(&n->tls, buf, len) < 0 || flush_tls(n, deadline) < 0)
            return IOTP_EIO;
    } else if (write_all(n->fd, buf, len, deadline) < 0) {
        return IOTP_EIO;
    }
    return (int32_t)len;
}

static int32_t net_recv(void *ctx, uint8_t *buf, size_t len)
{
    struct iotdev_net *n = ctx;
    uint8_t cipher[4096];
    ssize_t got;
    int r;

    if (n->fd < 0)
        return IOTP_EIO;
    if (len > 0x40000000u)
        len = 0x40000000u;
    if (!n->tls.ssl) {
        got = recv(n->fd, buf, len, 0);
        if (got < 0)
            return errno == EAGAIN || errno == EINTR ? 0 : IOTP_EIO;
        return got == 0 ? IOTP_EIO : (int32_t)got;
    }
    for (;;) {
        r = sim_tls_read(&n->tls, buf, len);
        if (flush_tls(n, mono_ms() + SEND_WAIT_MS) < 0 || r < 0)
            return IOTP_EIO;
        if (r > 0)
            return r;
        got = recv(n->fd, cipher, sizeof(cipher), 0);
        if (got < 0)
            return errno == EAGAIN || errno == EINTR ? 0 : IOTP_EIO;
        if (got == 0 || sim_tls_feed(&n->tls, cipher, (size_t)got) < 0)
            return IOTP_EIO;
    }
}

void iotdev_net_transport(struct iotdev_net *n, struct iotp_transport *t)
{
    t->ctx = n;
    t->send = net_send;
    t->recv = net_recv;
}
