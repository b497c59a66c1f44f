/*
 * sim_fleet.h - all simulated devices of one iotsim process, on one libuv loop.
 *
 * The fleet owns what its devices share: the server addresses and TLS context, the counters the
 * stats lines print, the connect pacer (a token bucket that lets at most --rate-connect
 * connection attempts start per second, in request order, so 10,000 devices starting at once
 * do not SYN-flood the server), one read buffer (the loop is single-threaded and every read is
 * consumed before the next one starts) and a cheap PRNG for backoff jitter.
 *
 * Life cycle: sim_fleet_init, sim_fleet_start, run the loop; sim_fleet_stop asks every device
 * to say BYE and close, after which the loop runs out of fleet handles; sim_fleet_free once
 * uv_run has returned.
 */
#ifndef SIM_FLEET_H
#define SIM_FLEET_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include <openssl/ssl.h>
#include <uv.h>

#include "sim_devices_file.h"
#include "sim_events.h"
#include "sim_handlers.h"

struct sim_device;

/* Addresses of one service (the nodes of a cluster) a fleet may know. */
#define SIM_FLEET_MAX_SERVERS 16

struct sim_fleet_config {
    /* The servers, resolved: device i of the fleet starts at servers[i mod nservers] and moves
     * to the next after every attempt that ends (the engine's rotation, iotp_device.h). host
     * is the name TLS sends as SNI and the certificate must carry; the strings must outlive
     * the fleet. */
    struct sockaddr_storage addrs[SIM_FLEET_MAX_SERVERS];
    struct iotp_server servers[SIM_FLEET_MAX_SERVERS];
    unsigned nservers;
    /* The local address every device connects from (port 0: the kernel's choice), or
     * AF_UNSPEC for the system's. One address has one ephemeral port range (about 28,000
     * ports): a fleet larger than that runs in several processes with a source each. */
    struct sockaddr_storage source;
    SSL_CTX *tls;                       /* NULL: plain TCP */
    const char *fw_version;             /* HELLO fw= */
    uint32_t ping_s;                    /* keepalive period; 0 = the one WELCOME asks for */
    double connect_rate;                /* connection attempts per second (> 0) */
    uint64_t handshake_timeout_ms;      /* connect + TLS + HELLO..WELCOME must fit in this */
    struct iotp_backoff_params backoff; /* zeros: the library's defaults */
    int verbose; /* log every device event to stderr, not only the first few problems */
    const struct sim_answer_rules *answers; /* NULL: answer every request at once */
    const struct sim_event_config *events;  /* NULL: no events, start_events refused */
};

/* Counters; the first three are gauges, the rest only grow. */
struct sim_stats {
    uint64_t configured;
    uint64_t connecting; /* TCP connect, TLS or iotp handshake under way */
    uint64_t authenticated;
    uint64_t auth_failures; /* refused by the server, or the server failed to prove the key */
    uint64_t connect_failures;
    uint64_t disconnects; /* authenticated connections that ended */
    uint64_t reconnects;  /* attempts after a device's first one */
    uint64_t pings_sent;
    uint64_t pongs_received;
    uint64_t requests_answered;
    uint64_t events_generated; /* events and alarms queued in the outboxes */
    uint64_t events_sent;      /* EVENT/ALARM frames sent, retransmissions included */
    uint64_t events_resent;    /* of those, retransmissions */
    uint64_t events_acked;
    uint64_t events_rejected; /* permanent ERROR: dropped */
    uint64_t events_busy;     /* transient ERROR (busy): sending paused */
    uint64_t events_refused;  /* not queued: outbox full, or no sequence number */
    uint64_t events_pending;  /* gauge: queued and not yet acknowledged */
};

struct sim_fleet {
    uv_loop_t *loop;
    struct sim_fleet_config cfg;
    struct sim_device *devices;
    size_t count;
    struct sim_stats stats;
    uint64_t started_ms;          /* loop time at sim_fleet_start */
    int64_t all_authenticated_ms; /* ms from start until every device was authenticated at
                                     once, -1 until that happened */
    size_t events_settled;        /* devices that made all their events and saw them acknowledged */
    /* Called (if set) whenever the number of authenticated devices changes. */
    void (*on_authenticated_change)(struct sim_fleet *fleet, void *arg);
    /* Called (if set) whenever events_settled grows. */
    void (*on_events_settled)(struct sim_fleet *fleet, void *arg);
    void *arg;
    int stopping;
    struct sim_stats at_stop; /* the counters when sim_fleet_stop began: the final stats line
                                 shows how many devices were up, not the zero after closing */

    /* Private: */
    struct sim_device *queue_head, *queue_tail; /* devices waiting for a connect slot */
    uv_timer_t pacer;
    int pacer_open;
    double tokens;
    uint64_t tokens_ms;
    struct sim_delayed_answers delayed; /* --slow answers waiting for their time */
    uint64_t rng;
    unsigned logged; /* problems logged so far without --verbose */
    uint8_t read_buf[64 * 1024];
    /* Answers to one read, sent as one write (see send_raw): the device whose read is being
     * handled (NULL outside a read) and what it has said so far. */
    struct sim_device *out_dev;
    size_t out_len;
    uint8_t out_buf[64 * 1024];
    /* Where every device's engine writes the frame it sends: engines run one at a time on
     * this loop and send what they write before returning, so one buffer serves them all. */
    uint8_t tx_buf[IOTP_MAX_FRAME];
};

/* Set the fleet up over entries (count > 0; entries must outlive the fleet). Allocates the
 * devices and initialises their handles on loop. Returns 0, UV_ENOMEM or another UV_E* code;
 * on failure nothing is left to free. */
int sim_fleet_init(struct sim_fleet *fleet, uv_loop_t *loop, const struct sim_fleet_config *cfg,
                   const struct sim_device_entry *entries, size_t count);

/* Queue every device for its first connection. */
void sim_fleet_start(struct sim_fleet *fleet);

/* Begin a graceful stop: authenticated devices send BYE, every connection and handle closes.
 * Idempotent. The loop returns once all of it is done (plus whatever the caller still owns). */
void sim_fleet_stop(struct sim_fleet *fleet);

/* Free the devices. Call after uv_run returned following sim_fleet_stop. */
void sim_fleet_free(struct sim_fleet *fleet);

/* Print one stats line (JSON object when json) to out. final adds "final" and, if reached,
 * all_authenticated_ms, and after a stop reports the gauges as they were when it began. */
void sim_fleet_print_stats(const struct sim_fleet *fleet, FILE *out, int json, int final);

/* ---- for sim_device.c ---- */

/* Put dev at the end of the connect queue; the pacer calls sim_device_connect when its turn
 * comes. */
void sim_fleet_enqueue(struct sim_fleet *fleet, struct sim_device *dev);
/* Take dev out of the connect queue if it is there. */
void sim_fleet_dequeue(struct sim_fleet *fleet, struct sim_device *dev);
/* A uniformly distributed 32-bit value for jitter (not for keys or nonces). */
uint32_t sim_fleet_random(struct sim_fleet *fleet);
/* Log a device problem: always with verbose, otherwise only the first few. */
void sim_fleet_log(struct sim_fleet *fleet, const char *device_id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The number of authenticated devices changed (the fleet checks "all authenticated"). */
void sim_fleet_authenticated_changed(struct sim_fleet *fleet);
/* One more device's events are all made and acknowledged. */
void sim_fleet_events_settled(struct sim_fleet *fleet);

#endif
