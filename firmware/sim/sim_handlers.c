/*
 * sim_handlers.c - the message table of a simulated device (contract in sim_handlers.h).
 *
 * The table is searched linearly: it holds a handful of types, and a device answers at most a
 * few requests a second. To add a type, write `static void handle_x(...)` and add
 * `{"x", handle_x}` to the table.
 *
 * Handlers are pure functions of (device, request): the simulator keeps no per-device sensor
 * state, so what a "sensor" reads is derived from the device id and the request id, which
 * keeps the answers reproducible in tests. The exceptions act on the device through its
 * sim_device_control hooks (start_events, stop_events) and only answer what the hook said.
 *
 * Delayed answers (iotsim --slow) live in a doubly linked list, one malloc'ed entry per
 * answer holding a uv_timer_t and a copy of the frame. An entry leaves the list when its timer
 * fires or it is cancelled, and is freed only in the timer's close callback, as libuv requires.
 */
#include "sim_handlers.h"

#include "sim_script.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
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
                        const struct sim_device_control *control, struct sim_answer *answer)
{
    (void)device_id;
    (void)request;
    (void)control;
    answer->args[answer->nargs++] = "pong";
}

/* FNV-1a: spreads device ids over the base temperatures. */
static uint32_t hash_text(const char *s)
{
    uint32_t h = 2166136261u;

    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

/* `read_temp` -> `OK id 21.5 C`. Each device has its own base between 18.0 and 25.9 degrees;
 * the reading wanders +-0.5 around it as a triangle wave over the request id, so consecutive
 * requests (the relay's ids grow) see a slow drift, and the same request always reads the
 * same. Computed in tenths so the text is exact. */
static void handle_read_temp(const char *device_id, const struct iotp_frame *request,
                             const struct sim_device_control *control, struct sim_answer *answer)
{
    int base = 180 + (int)(hash_text(device_id) % 80);
    (void)control;
    int step = (int)(request->id % 20);
    int wave = step < 10 ? step : 20 - step; /* 0..10..0 */
    int tenths = base + wave - 5;

    sim_answer_addf(answer, "%d.%d", tenths / 10, tenths % 10);
    answer->args[answer->nargs++] = "C";
}

/* A coordinate of the 8x8 matrix: strict decimal 0..7 ("07", "+1", "1.0" are refused). */
static int parse_coordinate(const char *s)
{
    return s[0] >= '0' && s[0] <= '7' && s[1] == '\0' ? s[0] - '0' : -1;
}

/* `set_pixel X Y COLOR` -> `OK id`: the demo's LED matrix. The colour is the device's business
 * (a name or #rrggbb), so only its presence is checked. */
static void handle_set_pixel(const char *device_id, const struct iotp_frame *request,
                             const struct sim_device_control *control, struct sim_answer *answer)
{
    (void)device_id;
    (void)control;
    if (request->nargs != 3 || parse_coordinate(request->args[0]) < 0 ||
        parse_coordinate(request->args[1]) < 0 || request->args[2][0] == '\0') {
        answer->error_code = "bad_args";
        answer->error_msg = "want X Y COLOR with X and Y in 0..7";
    }
}

/* `echo TEXT...` -> `OK id TEXT...`: the benchmark's payload and a check that args survive
 * the relay byte for byte. The args point into the request, which outlives the answer. */
static void handle_echo(const char *device_id, const struct iotp_frame *request,
                        const struct sim_device_control *control, struct sim_answer *answer)
{
    (void)device_id;
    (void)control;
    for (unsigned i = 0; i < request->nargs && i < SIM_ANSWER_MAX_ARGS; i++)
        answer->args[answer->nargs++] = request->args[i];
}

/* Switch the device's periodic events through its control hook. */
static void set_events(const struct sim_device_control *control, int on, uint32_t period_ms,
                       struct sim_answer *answer)
{
    if (!control || !control->set_events) {
        answer->error_code = "device";
        answer->error_msg = "this device sends no events";
        return;
    }
    if (control->set_events(control->ctx, on, period_ms) < 0) {
        answer->error_code = "device";
        answer->error_msg = "cannot switch events";
    }
}

/* `start_events [PERIOD_MS]` -> `OK id`: one event every PERIOD_MS milliseconds (1..86400000),
 * or at the device's configured rate without it. Idempotent; a new period replaces the old. */
static void handle_start_events(const char *device_id, const struct iotp_frame *request,
                                const struct sim_device_control *control, struct sim_answer *answer)
{
    uint32_t period_ms = 0;

    (void)device_id;
    if (request->nargs > 1 ||
        (request->nargs == 1 &&
         (iotp_parse_u32(request->args[0], strlen(request->args[0]), &period_ms) != 0 ||
          period_ms == 0 || period_ms > 86400000))) {
        answer->error_code = "bad_args";
        answer->error_msg = "want an optional period in ms, 1..86400000";
        return;
    }
    set_events(control, 1, period_ms, answer);
}

/* `stop_events` -> `OK id`: no more periodic events (those queued are still delivered). */
static void handle_stop_events(const char *device_id, const struct iotp_frame *request,
                               const struct sim_device_control *control, struct sim_answer *answer)
{
    (void)device_id;
    (void)request;
    set_events(control, 0, 0, answer);
}

static const struct sim_handler handlers[] = {
    {"ping", handle_ping},
    {"read_temp", handle_read_temp},
    {"set_pixel", handle_set_pixel},
    {"echo", handle_echo},
    {"start_events", handle_start_events},
    {"stop_events", handle_stop_events},
};

const struct sim_handler *sim_handler_find(const char *type)
{
    for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++)
        if (strcmp(handlers[i].type, type) == 0)
            return &handlers[i];
    return NULL;
}

/* Frame answer to request into out. */
static int write_answer(const char *device_id, const struct iotp_frame *request,
                        const struct sim_answer *answer, uint8_t *out, size_t cap)
{
    struct iotp_writer w;

    if (answer->error_code)
        return iotp_frame_write_error(out, cap, device_id, request->from, request->id,
                                      answer->error_code, 0, answer->error_msg);
    iotp_writer_begin(&w, out, cap, device_id, request->from, iotp_type_name(IOTP_TYPE_OK),
                      request->id);
    for (unsigned i = 0; i < answer->nargs; i++)
        iotp_writer_arg(&w, answer->args[i]);
    return iotp_writer_end(&w);
}

static int type_listed(const char *type, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], type) == 0)
            return 1;
    return 0;
}

int sim_answer_request(const struct sim_answer_rules *rules,
                       const struct sim_device_control *control, const char *device_id,
                       const struct iotp_frame *request, uint8_t *out, size_t cap,
                       enum sim_answer_when *when)
{
    const struct sim_handler *h;
    struct sim_answer answer;

    *when = SIM_ANSWER_NOW;
    if (rules && type_listed(request->type, rules->mute, rules->nmute)) {
        *when = SIM_ANSWER_NEVER;
        return 0;
    }
    memset(&answer, 0, sizeof(answer));
    if (rules && type_listed(request->type, rules->error, rules->nerror)) {
        answer.error_code = "device";
        answer.error_msg = "refused";
    } else if (rules && sim_script_answer(rules->script, device_id, request, &answer)) {
        /* scripted */
    } else if ((h = sim_handler_find(request->type)) != NULL) {
        h->fn(device_id, request, control, &answer);
    } else if (rules && rules->generic) {
        handle_echo(device_id, request, control, &answer);
    } else {
        answer.error_code = "unknown_type";
    }
    if (rules && rules->slow_ms > 0)
        *when = SIM_ANSWER_LATER;
    return write_answer(device_id, request, &answer, out, cap);
}

int sim_handle_request(const char *device_id, const struct iotp_frame *request, uint8_t *out,
                       size_t cap)
{
    enum sim_answer_when when;

    return sim_answer_request(NULL, NULL, device_id, request, out, cap, &when);
}

/* ---- delayed answers ---- */

struct sim_delayed_answer {
    uv_timer_t timer; /* first: the close callback gets the entry from the handle */
    struct sim_delayed_answers *queue;
    struct sim_delayed_answer *prev, *next;
    void *conn;
    size_t len;
    uint8_t frame[];
};

void sim_delayed_init(struct sim_delayed_answers *q, uv_loop_t *loop, sim_delayed_send_fn send,
                      void *arg)
{
    memset(q, 0, sizeof(*q));
    q->loop = loop;
    q->send = send;
    q->arg = arg;
    q->limit = SIM_DELAYED_LIMIT;
}

static void on_entry_closed(uv_handle_t *handle)
{
    free(handle);
}

/* Take e out of the list and close its timer; it is freed in on_entry_closed. */
static void retire(struct sim_delayed_answer *e)
{
    struct sim_delayed_answers *q = e->queue;

    if (e->prev)
        e->prev->next = e->next;
    else
        q->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    q->pending--;
    uv_timer_stop(&e->timer);
    uv_close((uv_handle_t *)&e->timer, on_entry_closed);
}

static void on_entry_due(uv_timer_t *timer)
{
    struct sim_delayed_answer *e = (struct sim_delayed_answer *)timer;
    struct sim_delayed_answers *q = e->queue;

    /* Unlink first: send may end the connection, which cancels conn's entries. */
    retire(e);
    q->sent++;
    q->send(e->conn, e->frame, e->len, q->arg);
}

int sim_delayed_push(struct sim_delayed_answers *q, void *conn, uint64_t delay_ms,
                     const uint8_t *frame, size_t len)
{
    struct sim_delayed_answer *e;
    int r;

    if (q->closed || q->pending >= q->limit) {
        q->dropped++;
        return UV_EBUSY;
    }
    e = malloc(sizeof(*e) + len);
    if (!e) {
        q->dropped++;
        return UV_ENOMEM;
    }
    r = uv_timer_init(q->loop, &e->timer);
    if (r < 0) {
        free(e);
        q->dropped++;
        return r;
    }
    e->queue = q;
    e->conn = conn;
    e->len = len;
    memcpy(e->frame, frame, len);
    e->prev = NULL;
    e->next = q->head;
    if (q->head)
        q->head->prev = e;
    q->head = e;
    q->pending++;
    uv_timer_start(&e->timer, on_entry_due, delay_ms, 0);
    return 0;
}

void sim_delayed_cancel(struct sim_delayed_answers *q, void *conn)
{
    struct sim_delayed_answer *e = q->head, *next;

    for (; e; e = next) {
        next = e->next;
        if (e->conn == conn) {
            retire(e);
            q->dropped++;
        }
    }
}

void sim_delayed_close(struct sim_delayed_answers *q)
{
    q->closed = 1;
    while (q->head) {
        retire(q->head);
        q->dropped++;
    }
}
