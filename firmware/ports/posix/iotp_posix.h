/*
 * iotp_posix.h - the iotp platform interfaces on POSIX (Linux): a transport over a connected
 * socket file descriptor, a monotonic clock and getrandom(2). Used by the device simulator and
 * tests; iotd has its own libuv-based transport.
 */
#ifndef IOTP_POSIX_H
#define IOTP_POSIX_H

#include "iotp/iotp_platform.h"

struct iotp_posix_socket {
    int fd;
};

/* Fill *t with a transport over s->fd (blocking or non-blocking; EAGAIN reads as 0 bytes).
 * The port does not own the fd: closing it stays with the caller. s must outlive t. */
void iotp_posix_transport(struct iotp_posix_socket *s, int fd, struct iotp_transport *t);

/* A random source backed by getrandom(2). */
void iotp_posix_random(struct iotp_random *r);

/* A clock backed by clock_gettime(CLOCK_MONOTONIC). */
void iotp_posix_clock(struct iotp_clock *c);

#endif
