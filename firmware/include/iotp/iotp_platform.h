/*
 * iotp_platform.h - what the library needs from its host, as small structs of function
 * pointers: a transport (send and receive bytes), a random source (nonces, jitter), a clock
 * (deadlines) and a store for the one number a device must keep across reboots. The library never
 * does I/O of its own; a port (ports/posix, an MCU port, iotd's libuv sessions) fills these in.
 * `ctx` is the port's own state, passed back on every call.
 */
#ifndef IOTP_PLATFORM_H
#define IOTP_PLATFORM_H

#include <stddef.h>
#include <stdint.h>

struct iotp_transport {
    void *ctx;
    /* Send up to len bytes. Returns bytes sent (> 0), 0 if nothing could be sent now (a
     * non-blocking transport is full) or a negative IOTP_E* code (IOTP_EIO) on failure. */
    int32_t (*send)(void *ctx, const uint8_t *buf, size_t len);
    /* Receive up to len bytes. Returns bytes received (> 0), 0 if none are available now or
     * a negative code; a peer that closed the connection is IOTP_EIO. */
    int32_t (*recv)(void *ctx, uint8_t *buf, size_t len);
};

struct iotp_random {
    void *ctx;
    /* Fill buf with len cryptographically strong random bytes. Returns 0 or a negative code. */
    int (*fill)(void *ctx, uint8_t *buf, size_t len);
};

struct iotp_clock {
    void *ctx;
    /* Monotonic milliseconds since an arbitrary origin. */
    uint64_t (*now_ms)(void *ctx);
};

struct iotp_persist {
    void *ctx;
    /* Make the event sequence high-water mark durable (flash, EEPROM, a file) before returning
     * 0; a negative code leaves the previous mark in force (iotp_outbox.h). NULL: nothing
     * survives a reboot, so numbering restarts at 1 (a server drops repeated numbers). */
    int (*store_high_water)(void *ctx, uint32_t high_water);
};

/* Send all len bytes, retrying on short writes; a transport that returns 0 is retried up to
 * max_idle times in a row before IOTP_ETIMEOUT (a blocking transport never returns 0).
 * Returns 0 or a negative code. */
int iotp_transport_send_all(const struct iotp_transport *t, const uint8_t *buf, size_t len,
                            unsigned max_idle);

#endif
