/*
 * relay_internal.h - the relay's own state, shared by the files of iotd/relay (relay.c: checks
 * and messages; pending.c: routing, pending tables, deadlines and answers). Nothing outside
 * iotd/relay includes it.
 */
#ifndef IOTD_RELAY_INTERNAL_H
#define IOTD_RELAY_INTERNAL_H

#include "relay/pending.h"

/* The requests waiting at one device, by the token presence gives its session (the slot). The
 * serial tells a device's table from that of an earlier connection in the same slot. */
struct relay_device {
    uint64_t serial; /* 0: no device */
    struct relay_request **pending;
    uint32_t next_id;
    /* the table is bounded by max_in_flight (at most 65535) */
    uint16_t npending, cap;
};

/* One io thread's device side. */
struct relay_thread {
    relay_t *relay;
    io_thread_t *io;
    struct relay_port port;
    struct relay_device *devices; /* by slot; grown to the highest slot asked for */
    uint32_t ndevices;
    /* The requests waiting at this thread's devices, by deadline (oldest first: timeouts are
     * mostly alike, so a new one goes at the tail), and one timer for them, armed for the
     * head or earlier (it is not moved when an answer takes the head away). */
    struct deadline_list deadlines;
    uv_timer_t timer;
    bool started;
};

struct relay {
    struct relay_options opts;
    struct relay_thread *threads; /* opts.io_count of them */
};

#endif
