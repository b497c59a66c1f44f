/*
 * relay_internal.h - the structures shared by the files of iotd/relay (relay.c: checks and
 * messages; pending.c: routing, pending tables, deadlines and answers). Nothing outside
 * iotd/relay includes it but the relay's own unit tests.
 */
#ifndef IOTD_RELAY_INTERNAL_H
#define IOTD_RELAY_INTERNAL_H

#include "loop/deadlines.h"
#include "relay/pending.h"

struct relay_request {
    inbox_msg_t msg;
    struct relay_origin origin;
    char from[129];  /* sender address: user@tenant or device id */
    char tenant[65]; /* the sender's (and so the device's) tenant, for the audit */
    char device[65];
    char type[65];
    uint32_t timeout_ms;
    uint64_t started_ns;
    relay_t *relay; /* set by relay_deliver */
    /* set by relay_deliver: where the device is (presence's route) */
    unsigned device_io;
    uint32_t device_slot;
    uint64_t device_serial;
    /* on the device's thread: iotd's id toward the device, and the request's place in its
     * thread's list of deadlines (one timer per thread, not one per request) */
    uint32_t relay_id;
    struct deadline_node deadline;
    /* args, NUL-separated, nargs of them */
    unsigned nargs;
    size_t args_len;
    char args[];
};

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
