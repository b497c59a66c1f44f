/*
 * sim_device.h - one simulated device: its connection, handshake, keepalive and backoff.
 *
 * A state machine driven by libuv callbacks:
 *
 *   IDLE/BACKOFF --(pacer grants a slot)--> CONNECTING --TCP up--> [TLS] --> HANDSHAKE
 *   HANDSHAKE --WELCOME verified--> AUTHENTICATED --(close, error, missed PONG)--> CLOSING
 *   CLOSING --handle closed--> BACKOFF --(jittered delay)--> QUEUED --> CONNECTING ...
 *   any state --sim_device_stop--> (BYE if authenticated) --> STOPPED
 *
 * The device uses the same library a microcontroller does: iotp_device_hs_* for the handshake
 * (HMAC or the ATECC508A software chip), an iotp_parser over a fixed per-device buffer and,
 * for events, an iotp_outbox. Its main timer's meaning follows the state: the handshake
 * deadline while connecting, the PING period when authenticated, the backoff delay, the BYE
 * grace at stop. Two more timers belong to events and run regardless of the connection: the
 * generation period (events made while disconnected wait in the outbox) and the end of a
 * pause after `ERROR code=busy retry=<s>`.
 *
 * Events: generation starts at the device's first WELCOME (iotsim --events, or a start_events
 * command later); the --alarm frames are queued at that moment too. On every WELCOME the
 * outbox rewinds and everything not yet acknowledged is sent again, oldest first, then new
 * events as they come. ACK removes one event (and writes the --ack-log line); a permanent
 * ERROR drops it; busy pauses sending for retry= seconds (1 s without it).
 *
 * Three files implement it: sim_device.c (the connection, timers, backoff and stop),
 * sim_device_frames.c (the handshake and the session's frames) and sim_device_events.c (the
 * events); sim_device_internal.h is how they call each other.
 */
#ifndef SIM_DEVICE_H
#define SIM_DEVICE_H

#include <stdint.h>

#include <uv.h>

#include "iotp/iotp.h"
#include "sim_backoff.h"
#include "sim_devices_file.h"
#include "sim_events.h"
#include "sim_handlers.h"
#include "sim_tls.h"

struct sim_fleet;

enum sim_device_state {
    SIM_DEVICE_IDLE = 0,
    SIM_DEVICE_QUEUED,     /* waiting for the connect pacer */
    SIM_DEVICE_CONNECTING, /* TCP connect */
    SIM_DEVICE_TLS,        /* TLS handshake */
    SIM_DEVICE_HANDSHAKE,  /* HELLO sent, waiting for CHALLENGE / WELCOME */
    SIM_DEVICE_AUTHENTICATED,
    SIM_DEVICE_CLOSING, /* the socket is being closed */
    SIM_DEVICE_BACKOFF, /* waiting before the next attempt */
    SIM_DEVICE_STOPPED,
};

struct sim_device {
    struct sim_fleet *fleet;
    const struct sim_device_entry *entry;
    enum sim_device_state state;

    /* The library's view of the device. */
    struct iotp_device_hs hs;
    struct iotp_atecc_soft chip_soft;
    struct iotp_atecc_chip chip;
    struct iotp_parser parser;
    uint8_t rx[IOTP_MAX_FRAME];

    /* The connection. */
    uv_tcp_t tcp;
    uv_connect_t connect_req;
    uv_shutdown_t shutdown_req;
    uv_timer_t timer;
    struct sim_tls tls;
    int tcp_open;    /* tcp is initialised and not yet closed */
    int tcp_closing; /* uv_close was called on tcp */
    int timer_open;

    struct sim_backoff backoff;
    uint32_t retry_hint_s;     /* the server's retry= from the last refusal */
    uint32_t ping_s;           /* keepalive period of this connection (0 = none) */
    uint32_t ping_id;          /* last PING id sent (increasing, never 0) */
    uint32_t ping_outstanding; /* id of a PING without PONG yet, 0 if none */
    unsigned attempts;         /* connection attempts so far */

    struct sim_device *next_queued; /* connect queue link (owned by the fleet) */
    int queued;

    /* Events (when the fleet has an event configuration). */
    struct sim_device_control control; /* what start_events / stop_events act on */
    struct iotp_outbox outbox;
    uint8_t *outbox_storage; /* allocated at the first event; NULL until then */
    int outbox_failed;       /* the sequence file could not be read: events are refused */
    uv_timer_t event_timer;  /* generation */
    uv_timer_t resume_timer; /* end of a busy pause */
    int event_timers_open;
    int events_started;       /* the first WELCOME came: alarms queued, generation begun */
    int events_on;            /* periodic generation switched on */
    int events_settled;       /* all events made and acknowledged (counted by the fleet) */
    int alarm_raised;         /* --alarm-every: the last scheduled alarm said raised */
    double events_rate;       /* events per second while on */
    double events_t0;         /* loop time (ms) from which generation is counted */
    uint64_t events_ticks;    /* events due since events_t0 that were generated or refused */
    uint32_t events_max_sent; /* highest seq sent so far (a lower one is a retransmission) */
    struct sim_event_state gen;
};

/* Prepare dev for entry on fleet's loop (initialises its timer). Returns 0 or a UV_E* code. */
int sim_device_init(struct sim_device *dev, struct sim_fleet *fleet,
                    const struct sim_device_entry *entry);

/* The pacer's go-ahead: open the TCP connection now. */
void sim_device_connect(struct sim_device *dev);

/* Stop for good: BYE if authenticated, close the socket and the timers. Idempotent. */
void sim_device_stop(struct sim_device *dev);

/* Close the handles of a device that was initialised but never started (a fleet whose set-up
 * failed); the loop must run once more for the close callbacks. */
void sim_device_close(struct sim_device *dev);

/* Release what the device allocated (its outbox). Call after the loop closed its handles. */
void sim_device_free(struct sim_device *dev);

/* Send a delayed answer (a sim_delayed_send_fn; dev is the struct sim_device *). Dropped
 * unless dev is authenticated. */
void sim_device_send_answer(void *dev, const uint8_t *frame, size_t len, void *arg);

/* A name for the state, for logs and tests. */
const char *sim_device_state_name(enum sim_device_state state);

#endif
