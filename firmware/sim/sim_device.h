/*
 * sim_device.h - one simulated device: a libuv driver of the library's device engine.
 *
 * The session itself (handshake, keepalive, requests, the event outbox, BYE, backoff) is
 * iotp_device, the very code a microcontroller links; this driver gives it a socket (and TLS),
 * a clock (the loop's), getrandom(2), the --state-dir sequence file, and one timer set to
 * whatever the engine says it waits for next. The driver's own states are the connection's:
 *
 *   QUEUED --(pacer grants a slot)--> CONNECTING --TCP up--> [TLS] --> HANDSHAKE
 *   HANDSHAKE --WELCOME verified--> AUTHENTICATED --(close, error, engine's CLOSE)--> CLOSING
 *   CLOSING --handle closed--> BACKOFF --(the engine's jittered delay)--> QUEUED ...
 *   any state --sim_device_stop--> (BYE if authenticated) --> STOPPED
 *
 * Events: generation starts at the device's first WELCOME (iotsim --events, or a start_events
 * command later; its own timer runs regardless of the connection); the --alarm frames are
 * queued at that moment too. The engine sends, resends after a reconnect, and honours busy;
 * the driver counts, logs and writes the --ack-log line from the engine's notes.
 *
 * Three files implement it: sim_device.c (the connection, the timer and stop),
 * sim_device_engine.c (the engine's platform, its notes and the request handler) and
 * sim_device_events.c (the events); sim_device_internal.h is how they call each other.
 */
#ifndef SIM_DEVICE_H
#define SIM_DEVICE_H

#include <stdint.h>

#include <uv.h>

#include "iotp/iotp.h"
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

    /* The library's engine and what it keeps of the device. */
    struct iotp_device engine;
    struct iotp_atecc_soft chip_soft;
    struct iotp_atecc_chip chip;
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

    unsigned attempts; /* connection attempts so far */
    int write_error;   /* the UV_E* code of the last failed write, for the log */

    struct sim_device *next_queued; /* connect queue link (owned by the fleet) */
    int queued;

    /* Events (when the fleet has an event configuration). */
    struct sim_device_control control; /* what start_events / stop_events act on */
    uint8_t *outbox_storage; /* the engine's, allocated at the first event; NULL until then */
    int outbox_failed;       /* the sequence file could not be read: events are refused */
    uv_timer_t event_timer;  /* generation */
    int event_timer_open;
    int events_started;    /* the first WELCOME came: alarms queued, generation begun */
    int events_on;         /* periodic generation switched on */
    int events_settled;    /* all events made and acknowledged (counted by the fleet) */
    int alarm_raised;      /* --alarm-every: the last scheduled alarm said raised */
    double events_rate;    /* events per second while on */
    double events_t0;      /* loop time (ms) from which generation is counted */
    uint64_t events_ticks; /* events due since events_t0 that were generated or refused */
    struct sim_event_state gen;
};

/* Prepare dev for entry on fleet's loop (its engine and timers). Returns 0, a UV_E* code, or
 * UV_EINVAL when the engine refuses the entry. */
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
