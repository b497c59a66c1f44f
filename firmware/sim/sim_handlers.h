/*
 * sim_handlers.h - how a simulated device answers application requests (lower-case types).
 *
 * A table maps each message type to a handler that fills in an answer: either OK with
 * positional args or ERROR with a code. Framing the answer (ids, addresses) is done once,
 * outside the handlers, so teaching the simulator a new message type is one function and one
 * table line in sim_handlers.c.
 *
 * Tests of the relay also need devices that misbehave on purpose: rules (iotsim --slow, --mute,
 * --error) say which requests are answered late, never, or refused. sim_answer_request applies
 * them and tells the caller when to send; a delayed-answer queue holds the late ones, each
 * with its own libuv timer, and forgets those of a connection that went away.
 */
#ifndef SIM_HANDLERS_H
#define SIM_HANDLERS_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "iotp/iotp.h"

/* echo returns every arg it got, so an answer holds as many as a frame may carry. */
#define SIM_ANSWER_MAX_ARGS IOTP_MAX_ARGS
#define SIM_ANSWER_TEXT     256

/* What a handler answers. args point to string literals, into the request (valid while the
 * answer is written) or into text, where sim_answer_addf formats them. */
struct sim_answer {
    const char *error_code; /* NULL: OK with args; else ERROR code=<error_code> */
    const char *error_msg;  /* with error_code: msg=<error_msg> unless NULL */
    unsigned nargs;
    const char *args[SIM_ANSWER_MAX_ARGS];
    char text[SIM_ANSWER_TEXT];
    size_t text_used;
};

/* What a handler may ask of the device it runs on beyond an answer (start_events and
 * stop_events switch the device's periodic events). NULL, or a NULL hook, stands for a device
 * without that ability: the handler answers ERROR code=device. */
struct sim_device_control {
    void *ctx;
    /* Switch periodic events on (period_ms > 0: one every period_ms; 0: the device's
     * configured rate) or off. Idempotent. Returns 0 or a negative code. */
    int (*set_events)(void *ctx, int on, uint32_t period_ms);
};

/* A handler: the request, the device it was sent to and that device's controls (may be NULL).
 * Fills *answer; returns nothing because every outcome, failures included, is an answer on the
 * wire. */
typedef void (*sim_handler_fn)(const char *device_id, const struct iotp_frame *request,
                               const struct sim_device_control *control, struct sim_answer *answer);

struct sim_handler {
    const char *type;
    sim_handler_fn fn;
};

/* The handler for type, or NULL if the simulator does not know it. */
const struct sim_handler *sim_handler_find(const char *type);

/* Build the answer to request (an application frame addressed to device_id, a device without
 * controls) into out (cap bytes): `device_id request->from OK id args...` or `... ERROR id
 * code=...` (unknown_type for a type without handler). Returns the frame length (> 0) or a negative
 * IOTP_E* code. */
int sim_handle_request(const char *device_id, const struct iotp_frame *request, uint8_t *out,
                       size_t cap);

/* Append a formatted arg to answer (silently truncated to what text can hold). */
void sim_answer_addf(struct sim_answer *answer, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- misbehaving on purpose ---- */

struct sim_script; /* sim_script.h */

/* How a fleet departs from prompt, correct answers, and how it answers the types the table
 * does not know. The type lists are borrowed (argv). */
struct sim_answer_rules {
    uint32_t slow_ms;         /* answer every request this late (0 = at once) */
    const char *const *mute;  /* types never answered (a timeout for the sender) */
    size_t nmute;             /* entries in mute */
    const char *const *error; /* types answered `ERROR id code=device msg=refused` */
    size_t nerror;            /* entries in error */
    /* --answers: scripted answers, before the table's (NULL = none) */
    const struct sim_script *script;
    /* --generic: a type neither the script nor the table knows is answered OK with the
     * request's args (as echo does) instead of ERROR code=unknown_type */
    int generic;
};

enum sim_answer_when {
    SIM_ANSWER_NOW,   /* send the frame in out now */
    SIM_ANSWER_LATER, /* send the frame in out after rules->slow_ms */
    SIM_ANSWER_NEVER, /* muted: out holds nothing, send nothing */
};

/* sim_handle_request under rules (NULL = none) with the device's controls (NULL = none): the
 * frame is built into out (cap bytes) unless the type is muted, and *when says what to do with
 * it. The answer comes from the first that applies: --mute, --error, the script, the table,
 * --generic, else unknown_type. Returns the frame length (> 0), 0 for SIM_ANSWER_NEVER, or a
 * negative IOTP_E* code. */
int sim_answer_request(const struct sim_answer_rules *rules,
                       const struct sim_device_control *control, const char *device_id,
                       const struct iotp_frame *request, uint8_t *out, size_t cap,
                       enum sim_answer_when *when);

/* Sends a delayed answer on conn (a connection the queue's user knows how to write to). */
typedef void (*sim_delayed_send_fn)(void *conn, const uint8_t *frame, size_t len, void *arg);

struct sim_delayed_answer;

/* Answers waiting for their time. Every entry owns a copy of its frame and a uv_timer_t;
 * an entry is freed in its timer's close callback, never before. */
struct sim_delayed_answers {
    uv_loop_t *loop;
    sim_delayed_send_fn send;
    void *arg;
    struct sim_delayed_answer *head; /* pending entries, newest first */
    size_t pending;                  /* entries in the list */
    size_t limit;                    /* push refuses beyond this many pending */
    uint64_t sent, dropped;          /* delivered; cancelled or refused */
    int closed;
};

/* Most answers one fleet keeps waiting at once: a flood of requests to a slow fleet costs
 * bounded memory (each entry is a frame copy plus a timer). */
#define SIM_DELAYED_LIMIT 65536

/* Prepare q on loop; send(conn, frame, len, arg) delivers each answer when its time comes. */
void sim_delayed_init(struct sim_delayed_answers *q, uv_loop_t *loop, sim_delayed_send_fn send,
                      void *arg);

/* Send frame (len bytes, copied) on conn after delay_ms. Returns 0, UV_ENOMEM, or UV_EBUSY
 * when the queue is full or closed (the answer is dropped and counted). */
int sim_delayed_push(struct sim_delayed_answers *q, void *conn, uint64_t delay_ms,
                     const uint8_t *frame, size_t len);

/* Drop every pending answer for conn: call it when conn's connection ends, before conn is
 * reused, so an old request's answer never reaches a new connection. */
void sim_delayed_cancel(struct sim_delayed_answers *q, void *conn);

/* Drop everything pending and refuse further pushes. The loop still runs the close callbacks
 * that free the entries; q itself must stay valid until then (until uv_run returns). */
void sim_delayed_close(struct sim_delayed_answers *q);

#endif
