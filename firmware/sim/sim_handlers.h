/*
 * sim_handlers.h - how a simulated device answers application requests (lower-case types).
 *
 * A table maps each message type to a handler that fills in an answer: either OK with
 * positional args or ERROR with a code. Framing the answer (ids, addresses) is done once,
 * outside the handlers, so teaching the simulator a new message type is one function and one
 * table line in sim_handlers.c.
 */
#ifndef SIM_HANDLERS_H
#define SIM_HANDLERS_H

#include <stddef.h>
#include <stdint.h>

#include "iotp/iotp.h"

#define SIM_ANSWER_MAX_ARGS 8
#define SIM_ANSWER_TEXT     256

/* What a handler answers. args point to string literals, into the request (valid while the
 * answer is written) or into text, where sim_answer_addf formats them. */
struct sim_answer {
    const char *error_code; /* NULL: OK with args; else ERROR code=<error_code> */
    unsigned nargs;
    const char *args[SIM_ANSWER_MAX_ARGS];
    char text[SIM_ANSWER_TEXT];
    size_t text_used;
};

/* A handler: the request and the device it was sent to. Fills *answer; returns nothing because
 * every outcome, failures included, is an answer on the wire. */
typedef void (*sim_handler_fn)(const char *device_id, const struct iotp_frame *request,
                               struct sim_answer *answer);

struct sim_handler {
    const char *type;
    sim_handler_fn fn;
};

/* The handler for type, or NULL if the simulator does not know it. */
const struct sim_handler *sim_handler_find(const char *type);

/* Build the answer to request (an application frame addressed to device_id) into out (cap
 * bytes): `device_id request->from OK id args...` or `... ERROR id code=...` (unknown_type for
 * a type without handler). Returns the frame length (> 0) or a negative IOTP_E* code. */
int sim_handle_request(const char *device_id, const struct iotp_frame *request, uint8_t *out,
                       size_t cap);

/* Append a formatted arg to answer (silently truncated to what text can hold). */
void sim_answer_addf(struct sim_answer *answer, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
