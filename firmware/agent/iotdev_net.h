/*
 * iotdev_net.h - iotdev's connection to iotd: TCP, or TLS verified against a CA file (or the
 * system's trust store), presented to iotp_device as its transport. Opening (name lookup,
 * connect, TLS handshake) blocks up to a deadline; afterwards the socket is non-blocking and
 * the main loop polls iotdev_net_fd().
 */
#ifndef IOTDEV_NET_H
#define IOTDEV_NET_H

#include <stddef.h>
#include <stdint.h>

#include "iotp/iotp_platform.h"
#include "sim_tls.h"

struct iotdev_net {
    int fd;           /* -1: closed */
    SSL_CTX *tls_ctx; /* NULL: plain TCP */
    struct sim_tls tls;
};

/* tls_ca: "" for plain TCP, "system" for the system's trust store, else a CA file. Returns 0 or
 * -1 with the reason in err. */
int iotdev_net_init(struct iotdev_net *n, const char *tls_ca, char *err, size_t errlen);

/* Connect to host:port and finish the TLS handshake within timeout_ms. Returns 0 or -1 with
 * the reason in err. */
int iotdev_net_open(struct iotdev_net *n, const char *host, uint16_t port, unsigned timeout_ms,
                    char *err, size_t errlen);

void iotdev_net_close(struct iotdev_net *n);
void iotdev_net_free(struct iotdev_net *n);

/* 1 when decrypted bytes wait inside TLS (the socket may be quiet): do not sleep. */
int iotdev_net_pending(const struct iotdev_net *n);

void iotdev_net_transport(struct iotdev_net *n, struct iotp_transport *t);

#endif
