/*
 * pending.h - the relay's device side: the routing step, the requests waiting at devices,
 * their deadlines and timeouts, and the answers routed back to their senders.
 *
 * relay_deliver finds the device through presence and hands the request to the device's io
 * thread, where it gets iotd's own id, a place in the device's pending table and a deadline
 * on the thread's one timer, and is written to the device. The device's OK or ERROR (or the
 * deadline, or the device going away) finishes it: audited, then answered to its origin, in
 * place when the sender lives on the same thread, else through the sender's inbox.
 *
 * The relay knows nothing of sessions: the session layer gives each io thread a port (struct
 * relay_port: write a frame to a device session, answer a sender of this thread) and tells
 * the relay what it sees on the wire (an answer from a device; a device session closed).
 * Devices are named by presence's route: (io thread, slot, serial).
 */
#ifndef IOTD_RELAY_PENDING_H
#define IOTD_RELAY_PENDING_H

#include "loop/io_thread.h"
#include "relay/audit.h"
#include "relay/presence.h"
#include "relay/relay.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct relay relay_t;
typedef struct relay_thread relay_thread_t;

/* What the session layer provides on each io thread. Every call comes from that thread. */
struct relay_port {
    void *arg;
    /* Queue frame (len bytes) on the connection of the established device session (slot,
     * serial) of this thread. 0: queued; IOT_ENOTFOUND: no such session (gone, or closing);
     * IOT_EBUSY: its output is full. */
    int (*write)(void *arg, uint32_t slot, uint64_t serial, const uint8_t *frame, size_t len);
    /* The inbox handler the session layer puts in its senders' relay_origin (NULL: none). An
     * answer to such an origin on this thread is given to answer instead, with no allocation. */
    inbox_handler_fn on_answer;
    /* Answer a sender of this thread in place: what on_answer would do with a relay_answer
     * made of these (args: the device's OK or ERROR args). */
    void (*answer)(void *arg, const struct relay_origin *origin, enum relay_outcome outcome,
                   const char *device, const char *why, unsigned nargs, const char *const *args);
};

/* The way to devices online on other nodes (iotd/cluster), for relay_deliver's remote path:
 * deliver takes req (then RELAY_OK: its answer will reach req's origin) or refuses it
 * (RELAY_OFFLINE, RELAY_BUSY: the caller still owns it). node: presence's id of the node. Any
 * thread. */
struct relay_remote {
    void *arg;
    enum relay_outcome (*deliver)(void *arg, uint16_t node, struct relay_request *req);
};

struct relay_options {
    presence_t *presence;
    relay_audit_t *audit;       /* may be NULL */
    io_thread_t *io;            /* the io threads... */
    unsigned io_count;          /* ...and how many */
    unsigned max_in_flight;     /* requests waiting at one device (1..65535) */
    struct relay_remote remote; /* deliver NULL: a single node */
};

/* The relay of io_count threads; each must then be started on its own thread. */
int relay_start(relay_t **out, const struct relay_options *opts);
/* The device side of io thread index. */
relay_thread_t *relay_thread(relay_t *relay, unsigned index);
/* On its io thread: set up its timer and take the port. */
int relay_thread_start(relay_thread_t *rt, const struct relay_port *port);
/* On its io thread: close the timer. Requests still waiting are failed by the closes of their
 * device sessions (relay_device_closed); requests arriving later are answered offline. */
void relay_thread_stop(relay_thread_t *rt);
/* Free the relay, after every thread was stopped and its loop ran on (the timers' closes). */
void relay_stop(relay_t *relay);

/* The routing step, "deliver to device X": find the device through presence and hand the
 * request to its io thread. When that is the caller's own thread (current, or -1 for none),
 * it is handled at once: a cross-thread wake-up costs more than the whole relay. routes: the
 * calling io thread's remembered routes (presence_route), NULL for none. RELAY_OK: the request
 * now belongs to the relay and its answer will reach req's origin (perhaps before this
 * returns). RELAY_OFFLINE / RELAY_BUSY (inbox full): the caller still owns req. A device online
 * on another node goes to opts.remote (the cluster): one more branch here, nowhere else. */
enum relay_outcome relay_deliver(relay_t *relay, struct presence_route_cache *routes, int current,
                                 struct relay_request *req);

/* Send an answer to its origin's loop: by a direct call when that is the calling thread's
 * (current_inbox), else through the inbox. If the inbox refuses (stopping), it is freed. */
void relay_answer_send(struct relay_answer *answer, inbox_t *current_inbox);

/* The device session (slot, serial) of rt's thread answered request id with OK (RELAY_OK) or
 * ERROR (RELAY_ERROR) and these args. false if no request of it waits under that id (too late:
 * it timed out, or never asked). */
bool relay_device_answer(relay_thread_t *rt, uint32_t slot, uint64_t serial, uint32_t id,
                         enum relay_outcome outcome, unsigned nargs, const char *const *args);
/* The device session (slot, serial) is closing: the requests waiting at it fail at once
 * (offline) rather than at their timeouts. Harmless for a session with none. */
void relay_device_closed(relay_thread_t *rt, uint32_t slot, uint64_t serial);
/* Give back the tables of devices with nothing waiting (a periodic trim: a device answering
 * one request at a time keeps its table between requests). */
void relay_trim(relay_thread_t *rt);

/* Requests waiting at the device session (slot, serial). */
uint32_t relay_in_flight(const relay_thread_t *rt, uint32_t slot, uint64_t serial);

/* One request waiting at a device (iottop's Requests panel). */
struct request_row {
    char origin[129];
    char device[65];
    char type[65];
    uint64_t age_ms;
    int64_t deadline_ms; /* left until the timeout */
};
/* Requests waiting at rt's devices. */
size_t relay_waiting(const relay_thread_t *rt);
/* Up to max of them as rows (ages at now_ns, uv_hrtime()), by deadline; returns how many. */
size_t relay_request_rows(const relay_thread_t *rt, struct request_row *rows, size_t max,
                          uint64_t now_ns);

#endif
