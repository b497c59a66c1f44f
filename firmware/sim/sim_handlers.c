/*
 * sim_handlers.c - the message table of a simulated device (contract in sim_handlers.h).
 *
 * The table is searched linearly: it holds a handful of types, and a device answers at most a
 * few requests a second. To add a type, write `static void handle_x(...)` and add
 * `{"x", handle_x}` to the table.
 */
#include "sim_handlers.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void sim_answer_addf(struct sim_answer *answer, const char *fmt, ...)
{
    size_t room = sizeof(answer->text) - answer->text_used;
    char *at = answer->text + answer->text_used;
    va_list ap;
    int n;

    if (answer->nargs >= SIM_ANSWER_MAX_ARGS || room == 0)
        return;
    va_start(ap, fmt);
    n = vsnprintf(at, room, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    answer->text_used += (size_t)n < room ? (size_t)n + 1 : room;
    answer->args[answer->nargs++] = at;
}

/* `ping`: a user checking that the device is alive and answering. */
static void handle_ping(const char *device_id, const struct iotp_frame *request,
                        struct sim_answer *answer)
{
    (void)device_id;
    (void)request;
    answer->args[answer->nargs++] = "pong";
}

static const struct sim_handler handlers[] = {
    {"ping", handle_ping},
};

const struct sim_handler *sim_handler_find(const char *type)
{
    for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++)
        if (strcmp(handlers[i].type, type) == 0)
            return &handlers[i];
    return NULL;
}

int sim_handle_request(const char *device_id, const struct iotp_frame *request, uint8_t *out,
                       size_t cap)
{
    const struct sim_handler *h = sim_handler_find(request->type);
    struct sim_answer answer;
    struct iotp_writer w;

    memset(&answer, 0, sizeof(answer));
    if (h)
        h->fn(device_id, request, &answer);
    else
        answer.error_code = "unknown_type";
    if (answer.error_code)
        return iotp_frame_write_error(out, cap, device_id, request->from, request->id,
                                      answer.error_code, 0);
    iotp_writer_begin(&w, out, cap, device_id, request->from, "OK", request->id);
    for (unsigned i = 0; i < answer.nargs; i++)
        iotp_writer_arg(&w, answer.args[i]);
    return iotp_writer_end(&w);
}
