/*
 * pending.c - the relay's device side: routing, pending tables, deadlines, answers (see
 * pending.h).
 *
 * Each io thread keeps, by the slot presence names a device session with, the requests waiting
 * at that device (a small array: at most max_in_flight, usually a handful, searched by id), and
 * all of them in one list by deadline with one timer for its head. Everything here runs on the
 * device's thread, but relay_deliver (the sender's thread) and relay_answer_send (any).
 */
#include "relay/pending.h"

#include "iot_error.h"
#include "iotp/iotp.h"
#include "relay/relay_internal.h"

#include <stdlib.h>
#include <string.h>

int relay_start(relay_t **out, const struct relay_options *opts)
{
    relay_t *relay = calloc(1, sizeof(*relay));
    if (!relay)
        return IOT_ENOMEM;
    relay->opts = *opts;
    relay->threads = calloc(opts->io_count ? opts->io_count : 1, sizeof(*relay->threads));
    if (!relay->threads) {
        free(relay);
        return IOT_ENOMEM;
    }
    for (unsigned i = 0; i < opts->io_count; i++) {
        relay->threads[i].relay = relay;
        relay->threads[i].io = &opts->io[i];
    }
    *out = relay;
    return IOT_OK;
}

relay_thread_t *relay_thread(relay_t *relay, unsigned index)
{
    return index < relay->opts.io_count ? &relay->threads[index] : NULL;
}

int relay_thread_start(relay_thread_t *rt, const struct relay_port *port)
{
    rt->port = *port;
    int rc = uv_timer_init(&rt->io->loop, &rt->timer);
    if (rc != 0)
        return IOT_EIO;
    rt->timer.data = rt;
    rt->started = true;
    return IOT_OK;
}

void relay_thread_stop(relay_thread_t *rt)
{
    if (rt->started)
        uv_close((uv_handle_t *)&rt->timer, NULL);
    rt->started = false;
}

void relay_stop(relay_t *relay)
{
    if (!relay)
        return;
    for (unsigned i = 0; i < relay->opts.io_count; i++) {
        struct relay_thread *rt = &relay->threads[i];
        for (uint32_t k = 0; k < rt->ndevices; k++)
            free(rt->devices[k].pending);
        free(rt->devices);
    }
    free(relay->threads);
    free(relay);
}

static void on_timer(uv_timer_t *timer);

/* (Re)arm the thread's timer if the head of the deadlines comes before it fires. */
static void deadlines_arm(struct relay_thread *rt)
{
    const struct deadline_node *head = rt->deadlines.head;
    uint64_t now = uv_now(&rt->io->loop);
    if (!head || !rt->started ||
        (uv_is_active((uv_handle_t *)&rt->timer) &&
         now + uv_timer_get_due_in(&rt->timer) <= head->at))
        return;
    uv_timer_start(&rt->timer, on_timer, head->at > now ? head->at - now : 0, 0);
}

/* The device table of slot, for serial: NULL when the slot holds another connection's
 * requests (so this serial's session is gone), or when out of memory (*oom set). A slot with
 * nothing waiting is taken over by the new serial. */
static struct relay_device *device_at(struct relay_thread *rt, uint32_t slot, uint64_t serial,
                                      bool *oom)
{
    if (slot >= rt->ndevices) {
        uint32_t n = rt->ndevices ? rt->ndevices : 64;
        while (n <= slot)
            n *= 2;
        struct relay_device *grown = realloc(rt->devices, n * sizeof(*grown));
        if (!grown) {
            *oom = true;
            return NULL;
        }
        memset(grown + rt->ndevices, 0, (n - rt->ndevices) * sizeof(*grown));
        rt->devices = grown;
        rt->ndevices = n;
    }
    struct relay_device *d = &rt->devices[slot];
    if (d->serial != serial) {
        if (d->npending > 0)
            return NULL;
        d->serial = serial; /* next_id goes on: a late answer to the slot's earlier
                             * connection must not match a new request */
    }
    return d;
}

/* The device table of (slot, serial) if it is there. */
static struct relay_device *device_find(const struct relay_thread *rt, uint32_t slot,
                                        uint64_t serial)
{
    struct relay_device *d = slot < rt->ndevices ? &rt->devices[slot] : NULL;
    return d && d->serial == serial && serial != 0 ? d : NULL;
}

/* Take req out of d's pending table. An emptied table stays until relay_trim finds it still
 * empty: a device answering one request at a time would otherwise free and grow it again for
 * every request. */
static void pending_remove(struct relay_device *d, struct relay_request *req)
{
    for (uint32_t i = 0; i < d->npending; i++) {
        if (d->pending[i] == req) {
            d->pending[i] = d->pending[--d->npending];
            break;
        }
    }
}

/* Audit req's outcome, answer its sender and free req. On the device's thread, whose loop pass
 * gives the time of the outcome. */
static void finish(struct relay_thread *rt, struct relay_request *req, enum relay_outcome outcome,
                   const char *why, unsigned nargs, const char *const *args)
{
    uint64_t now_ns = loop_pass_ns(&rt->io->meter);
    uint64_t latency_ns = now_ns > req->started_ns ? now_ns - req->started_ns : 0;
    if (!req->audited_elsewhere)
        relay_audit_record(rt->relay->opts.audit, req->tenant, req->from, req->device, req->type,
                           outcome, latency_ns, loop_pass_wall_ms(&rt->io->meter));
    if (req->origin.on_answer && req->origin.on_answer == rt->port.on_answer &&
        req->origin.inbox == &rt->io->inbox) {
        /* A session of this thread asked (placement by tenant makes that the rule): answered
         * in place, with no answer allocated. */
        rt->port.answer(rt->port.arg, &req->origin, outcome, req->device, why, nargs, args);
    } else {
        struct relay_answer *a =
            relay_answer_new(&req->origin, outcome, req->device, why, nargs, args);
        if (a) {
            a->latency_ns = latency_ns;
            relay_answer_send(a, &rt->io->inbox);
        }
    }
    if (deadline_list_contains(&rt->deadlines, &req->deadline))
        deadline_list_remove(&rt->deadlines, &req->deadline);
    free(req);
}

/* The thread's timer: every request past its deadline times out. */
static void on_timer(uv_timer_t *timer)
{
    struct relay_thread *rt = timer->data;
    uint64_t now = uv_now(&rt->io->loop);
    while (rt->deadlines.head && rt->deadlines.head->at <= now) {
        struct relay_request *req =
            container_of(rt->deadlines.head, struct relay_request, deadline);
        struct relay_device *d = device_find(rt, req->device_slot, req->device_serial);
        if (d)
            pending_remove(d, req); /* a late answer will find nothing and be counted */
        finish(rt, req, RELAY_TIMEOUT, NULL, 0, NULL);
    }
    deadlines_arm(rt); /* a one-shot timer: armed again for the new head, if any */
}

/* Runs on the device's thread (the inbox handler of relay_request): give the request iotd's
 * id, a place in the device's table and a deadline, and write it to the device. */
static void on_request(inbox_msg_t *msg, void *loop_data)
{
    struct relay_request *req = container_of(msg, struct relay_request, msg);
    io_thread_t *io = loop_data;
    struct relay_thread *rt = &req->relay->threads[io->index];
    bool oom = false;

    req->deadline.prev = req->deadline.next = NULL;
    struct relay_device *d = device_at(rt, req->device_slot, req->device_serial, &oom);
    if (!d) {
        if (oom)
            finish(rt, req, RELAY_INTERNAL, "out of memory", 0, NULL);
        else
            finish(rt, req, RELAY_OFFLINE, "device disconnected", 0, NULL);
        return;
    }
    if (d->npending >= rt->relay->opts.max_in_flight) {
        finish(rt, req, RELAY_BUSY, "too many requests in flight", 0, NULL);
        return;
    }
    if (d->npending == d->cap) {
        uint32_t cap = d->cap ? d->cap * 2u : 4u;
        if (cap > UINT16_MAX)
            cap = UINT16_MAX; /* npending < max_in_flight <= 65535 */
        struct relay_request **grown = realloc(d->pending, cap * sizeof(*grown));
        if (!grown) {
            finish(rt, req, RELAY_INTERNAL, "out of memory", 0, NULL);
            return;
        }
        d->pending = grown;
        d->cap = (uint16_t)cap;
    }
    /* iotd's own id toward the device: senders' ids may clash, these never do. */
    do
        req->relay_id = ++d->next_id;
    while (req->relay_id == 0);
    d->pending[d->npending++] = req;

    uint8_t buf[IOTP_MAX_FRAME];
    struct iotp_writer w;
    iotp_writer_begin(&w, buf, sizeof(buf), req->from, req->device, req->type, req->relay_id);
    for (unsigned i = 0; i < req->nargs; i++)
        iotp_writer_arg(&w, relay_arg(req->args, req->args_len, i, req->nargs));
    int len = iotp_writer_end(&w);
    int rc = len > 0 ? rt->port.write(rt->port.arg, req->device_slot, req->device_serial, buf,
                                      (size_t)len)
                     : IOT_EINVAL;
    if (rc != 0) {
        pending_remove(d, req);
        if (rc == IOT_ENOTFOUND)
            finish(rt, req, RELAY_OFFLINE, "device disconnected", 0, NULL);
        else
            finish(rt, req, len <= 0 ? RELAY_BAD_ARGS : RELAY_BUSY, NULL, 0, NULL);
        return;
    }
    /* The deadline counts from started_ns (the time on the way here, through another thread's
     * inbox, counts against the timeout), rounded up to the loop's milliseconds. The loop time
     * is the same monotonic clock, truncated and possibly coarser, so never ahead: when the
     * timer fires, at least timeout_ms have passed since started_ns by any clock read then. A
     * deadline already past fires at the next timer. */
    deadline_list_insert(&rt->deadlines, &req->deadline,
                         (req->started_ns + 999999) / 1000000 + req->timeout_ms);
    deadlines_arm(rt);
}

enum relay_outcome relay_deliver(relay_t *relay, struct presence_route_cache *routes, int current,
                                 struct relay_request *req)
{
    struct presence_route r;
    if (!presence_route(relay->opts.presence, routes, req->device, &r))
        return RELAY_OFFLINE;
    if (r.node != 0)
        return relay->opts.remote.deliver
                   ? relay->opts.remote.deliver(relay->opts.remote.arg, r.node, req)
                   : RELAY_OFFLINE;
    if (r.io_index >= relay->opts.io_count)
        return RELAY_OFFLINE;
    req->msg.handle = on_request;
    req->relay = relay;
    req->device_io = r.io_index;
    req->device_slot = (uint32_t)(uintptr_t)r.session;
    req->device_serial = r.serial;
    io_thread_t *io = &relay->opts.io[r.io_index];
    if (current >= 0 && (unsigned)current == r.io_index) {
        on_request(&req->msg, io);
        return RELAY_OK;
    }
    return inbox_push(&io->inbox, &req->msg) == 0 ? RELAY_OK : RELAY_BUSY;
}

void relay_answer_send(struct relay_answer *answer, inbox_t *current_inbox)
{
    answer->msg.handle = answer->origin.on_answer;
    if (answer->origin.inbox == current_inbox)
        answer->msg.handle(&answer->msg, current_inbox->loop_data);
    else if (inbox_push_wait(answer->origin.inbox, &answer->msg) != 0)
        free(answer);
}

bool relay_device_answer(relay_thread_t *rt, uint32_t slot, uint64_t serial, uint32_t id,
                         enum relay_outcome outcome, unsigned nargs, const char *const *args)
{
    struct relay_device *d = device_find(rt, slot, serial);
    for (uint32_t i = 0; d && i < d->npending; i++) {
        struct relay_request *req = d->pending[i];
        if (req->relay_id != id)
            continue;
        pending_remove(d, req);
        finish(rt, req, outcome, NULL, nargs, args);
        return true;
    }
    return false;
}

void relay_device_closed(relay_thread_t *rt, uint32_t slot, uint64_t serial)
{
    struct relay_device *d = device_find(rt, slot, serial);
    if (!d)
        return;
    while (d->npending > 0) {
        struct relay_request *req = d->pending[d->npending - 1];
        pending_remove(d, req);
        finish(rt, req, RELAY_OFFLINE, "device disconnected", 0, NULL);
    }
    d->serial = 0;
}

void relay_trim(relay_thread_t *rt)
{
    for (uint32_t i = 0; i < rt->ndevices; i++) {
        struct relay_device *d = &rt->devices[i];
        if (d->npending == 0 && d->pending) {
            free(d->pending); /* idle devices keep no table */
            d->pending = NULL;
            d->cap = 0;
        }
    }
}

uint32_t relay_in_flight(const relay_thread_t *rt, uint32_t slot, uint64_t serial)
{
    const struct relay_device *d = device_find(rt, slot, serial);
    return d ? d->npending : 0;
}

size_t relay_waiting(const relay_thread_t *rt)
{
    size_t n = 0;
    for (const struct deadline_node *node = rt->deadlines.head; node; node = node->next)
        n++;
    return n;
}

size_t relay_request_rows(const relay_thread_t *rt, struct request_row *rows, size_t max,
                          uint64_t now_ns)
{
    size_t n = 0;
    for (const struct deadline_node *node = rt->deadlines.head; node && n < max;
         node = node->next) {
        const struct relay_request *req = container_of(node, struct relay_request, deadline);
        struct request_row *r = &rows[n++];
        relay_copy(r->origin, sizeof(r->origin), req->from);
        relay_copy(r->device, sizeof(r->device), req->device);
        relay_copy(r->type, sizeof(r->type), req->type);
        r->age_ms = (now_ns - req->started_ns) / 1000000;
        r->deadline_ms = (int64_t)req->timeout_ms - (int64_t)r->age_ms;
    }
    return n;
}
