/*
 * cluster_relay.c - relay_deliver's remote path: a request for a device online on another node.
 *
 * The sender's node has made every check (tenant, catalogue, arguments, access map) before
 * relay_deliver, as for a local device. The request then comes here (cluster_deliver, on the
 * sender's thread), goes through the main loop's inbox into the batch of requests for the
 * device's node, and waits on the main loop under its own id (a hash table, cluster_ids.h)
 * and a deadline: the request's timeout plus ANSWER_GRACE_MS (the device's node times the
 * device out itself and answers timeout; the grace covers the way back). The device's node
 * hands each request of a batch to its own relay as if a local sender had asked (with
 * audited_elsewhere, so that it is audited once, here) and puts the outcome in its batch of
 * answers for the sender's node. Here the answer, or the deadline (timeout), or the node's
 * death (offline) finishes the request: audited, answered to its origin, freed.
 *
 * Batching: the requests (and answers) for one node that the main loop meets in one turn (one
 * drain of its inbox, one NATS message of requests) go in one NATS message
 * (cluster_wire.h): iotd.n.<node>.relays, and the answers iotd.n.<sender>.answers. The batches
 * are sent from a uv_check handle, which runs right after the loop's I/O callbacks: at the end
 * of the turn that filled them, so that a lone request waits for nothing (an idle handle keeps
 * the loop from sleeping in between, for a batch filled outside the poll phase). Publishing
 * from the main loop writes straight to the socket (SendAsap): the client's threads carry
 * only what arrives. A batch is sent before it would pass its bounds, and the requests of a
 * batch that cannot be sent end offline, as a lone request did. Order is kept: a node's
 * requests leave in the order the main loop took them, on one connection, and the device's
 * node hands them on in that order.
 */
#include "cluster/cluster_internal.h"

#include "base/log.h"
#include "iot_error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ANSWER_GRACE_MS 250

/* Audit req's outcome here, answer its origin and free it (main loop). */
static void finish(cluster_t *c, struct relay_request *req, enum relay_outcome outcome,
                   const char *why, unsigned nargs, const char *const *args)
{
    uint64_t now = uv_hrtime();
    uint64_t latency_ns = now > req->started_ns ? now - req->started_ns : 0;
    relay_audit_record(c->deps.audit, req->tenant, req->from, req->device, req->type, outcome,
                       latency_ns, 0);
    struct relay_answer *a = relay_answer_new(&req->origin, outcome, req->device, why, nargs, args);
    if (a) {
        a->latency_ns = latency_ns;
        relay_answer_send(a, c->deps.inbox);
    }
    /* Waiting requests are in both the deadline list and the table of ids, or in neither. */
    if (deadline_list_contains(&c->requests_out, &req->deadline)) {
        deadline_list_remove(&c->requests_out, &req->deadline);
        cluster_ids_take(&c->requests_by_id, req->relay_id);
    }
    free(req);
}

static void on_deadline(uv_timer_t *timer);

static void deadline_arm(cluster_t *c)
{
    const struct deadline_node *head = c->requests_out.head;
    if (!head || c->stopping) {
        uv_timer_stop(&c->deadline);
        return;
    }
    uint64_t now = uv_now(c->deps.loop);
    uv_timer_start(&c->deadline, on_deadline, head->at > now ? head->at - now : 0, 0);
}

static void on_deadline(uv_timer_t *timer)
{
    cluster_t *c = timer->data;
    uint64_t now = uv_now(c->deps.loop);
    while (c->requests_out.head && c->requests_out.head->at <= now) {
        struct relay_request *req =
            container_of(c->requests_out.head, struct relay_request, deadline);
        c->traffic.timeouts++;
        finish(c, req, RELAY_TIMEOUT, "its node did not answer in time", 0, NULL);
    }
    deadline_arm(c);
}

/* ---- the batches ---- */

/* The peer of presence id, live or not (an answer still goes to a node declared dead: if it
 * is alive after all, its request is finished by it rather than by its timeout). */
static struct cluster_peer *peer_of(cluster_t *c, uint16_t id)
{
    for (size_t i = 0; i < c->npeers; i++)
        if (c->peers[i].id == id)
            return &c->peers[i];
    return NULL;
}

static void on_flush(uv_check_t *check);

static void on_flush_idle(uv_idle_t *idle)
{
    (void)idle; /* only there to keep the loop from sleeping before on_flush */
}

static void flush_soon(cluster_t *c)
{
    if (c->flush_armed)
        return;
    c->flush_armed = true;
    uv_check_start(&c->flush, on_flush);
    uv_idle_start(&c->flush_idle, on_flush_idle);
}

/* Send p's batch of requests. If it cannot be sent, its requests end offline. */
static void send_requests(cluster_t *c, struct cluster_peer *p)
{
    char subject[CLUSTER_SUBJECT_LEN];
    struct cluster_wire *w = &p->requests;
    if (!w->count)
        return;
    snprintf(subject, sizeof(subject), "iotd.n.%s.relays", p->name);
    if (cluster_publish_bytes(c, subject, w->buf, w->len)) {
        c->traffic.requests_out += w->count;
    } else {
        struct cluster_wire_reader rd;
        struct cluster_wire_request r;
        const char *argv[CLUSTER_WIRE_MAX_ARGS];
        cluster_wire_open(&rd, w->buf, w->len);
        while (cluster_wire_next_request(&rd, &r, argv) == 1) {
            struct relay_request *req = cluster_ids_get(&c->requests_by_id, r.id);
            if (req)
                finish(c, req, RELAY_OFFLINE, "the cluster link is down", 0, NULL);
        }
        deadline_arm(c);
    }
    cluster_wire_clear(w);
}

/* Send p's batch of answers (lost if it cannot be: their requests time out at the sender). */
static void send_answers(cluster_t *c, struct cluster_peer *p)
{
    char subject[CLUSTER_SUBJECT_LEN];
    struct cluster_wire *w = &p->answers;
    if (!w->count)
        return;
    snprintf(subject, sizeof(subject), "iotd.n.%s.answers", p->name);
    cluster_publish_bytes(c, subject, w->buf, w->len);
    cluster_wire_clear(w);
}

static void on_flush(uv_check_t *check)
{
    cluster_t *c = check->data;
    uv_check_stop(&c->flush);
    uv_idle_stop(&c->flush_idle);
    c->flush_armed = false;
    for (size_t i = 0; i < c->npeers; i++) {
        send_requests(c, &c->peers[i]);
        send_answers(c, &c->peers[i]);
    }
}

/* ---- the sender's side ---- */

/* A request on its way from the sender's thread to the main loop. */
struct request_out {
    inbox_msg_t msg;
    cluster_t *c;
    struct relay_request *req;
};

/* Put req (checked, its node p live) in p's batch and wait for its answer. */
static void request_batch(cluster_t *c, struct cluster_peer *p, struct relay_request *req)
{
    uint64_t now_ms = uv_now(c->deps.loop);
    uint64_t elapsed_ms = (uv_hrtime() - req->started_ns) / 1000000;
    uint32_t left = elapsed_ms < req->timeout_ms ? req->timeout_ms - (uint32_t)elapsed_ms : 1;
    do
        req->relay_id = ++c->next_request_id;
    while (req->relay_id == 0 || cluster_ids_get(&c->requests_by_id, req->relay_id));
    req->device_io = p->id;
    req->deadline.prev = req->deadline.next = NULL;
    struct cluster_wire_request r = {.id = req->relay_id,
                                     .timeout_ms = left,
                                     .from = req->from,
                                     .tenant = req->tenant,
                                     .device = req->device,
                                     .type = req->type,
                                     .nargs = req->nargs,
                                     .args = req->args,
                                     .args_len = req->args_len};
    if (cluster_ids_put(&c->requests_by_id, req->relay_id, req) != IOT_OK) {
        finish(c, req, RELAY_INTERNAL, "out of memory", 0, NULL);
        return;
    }
    int rc = cluster_wire_add_request(&p->requests, c->node, &r);
    if (rc == IOT_EBUSY) {
        send_requests(c, p); /* full: this one starts the next batch */
        rc = cluster_wire_add_request(&p->requests, c->node, &r);
    }
    if (rc != IOT_OK) {
        cluster_ids_take(&c->requests_by_id, req->relay_id);
        finish(c, req, RELAY_INTERNAL,
               rc == IOT_ENOMEM ? "out of memory" : "the request does not fit a cluster message", 0,
               NULL);
        return;
    }
    deadline_list_insert(&c->requests_out, &req->deadline, now_ms + left + ANSWER_GRACE_MS);
    if (c->requests_out.head == &req->deadline)
        deadline_arm(c);
    flush_soon(c);
}

/* On the main loop: send req to the node its device is on now, or deliver it here if the
 * device came here meanwhile. */
static void on_request_out(inbox_msg_t *msg, void *loop_data)
{
    struct request_out *out = container_of(msg, struct request_out, msg);
    cluster_t *c = out->c;
    struct relay_request *req = out->req;
    struct presence_entry e;
    (void)loop_data;
    free(out);

    if (c->stopping) {
        finish(c, req, RELAY_OFFLINE, "this node is stopping", 0, NULL);
        return;
    }
    if (!presence_lookup(c->presence, req->device, &e) || !e.online) {
        finish(c, req, RELAY_OFFLINE, NULL, 0, NULL);
        return;
    }
    if (e.node == 0) {
        enum relay_outcome o = sessions_relay(c->deps.sessions, -1, req);
        if (o != RELAY_OK)
            finish(c, req, o, NULL, 0, NULL);
        return;
    }
    struct cluster_peer *p = cluster_peer_by_id(c, e.node);
    if (!p) {
        finish(c, req, RELAY_OFFLINE, "its node is gone", 0, NULL);
        return;
    }
    request_batch(c, p, req);
}

/* relay_remote.deliver: any thread. */
static enum relay_outcome cluster_deliver(void *arg, uint16_t node, struct relay_request *req)
{
    cluster_t *c = arg;
    (void)node; /* looked up again on the main loop, where the node table is */
    if (!c->deps.inbox || c->stopping)
        return RELAY_OFFLINE;
    struct request_out *out = malloc(sizeof(*out));
    if (!out)
        return RELAY_BUSY;
    *out = (struct request_out){.msg.handle = on_request_out, .c = c, .req = req};
    if (inbox_push(c->deps.inbox, &out->msg) != 0) {
        free(out);
        return RELAY_BUSY;
    }
    return RELAY_OK;
}

struct relay_remote cluster_relay_remote(cluster_t *c)
{
    return (struct relay_remote){.arg = c, .deliver = cluster_deliver};
}

void cluster_on_relay_answers(cluster_t *c, struct cluster_wire_reader *rd)
{
    struct cluster_wire_answer a;
    const char *argv[CLUSTER_WIRE_MAX_ARGS];
    int rc;
    while ((rc = cluster_wire_next_answer(rd, &a, argv)) == 1) {
        struct relay_request *req = cluster_ids_get(&c->requests_by_id, a.id);
        if (!req)
            continue; /* too late: timed out here already */
        c->traffic.answers_in++;
        c->traffic.latency_ns_sum += uv_hrtime() - req->started_ns;
        finish(c, req, a.outcome, a.why[0] ? a.why : NULL, a.nargs, argv);
    }
    if (rc < 0)
        log_debug("cluster: a batch of answers from %s is malformed after %u of %u", rd->node,
                  rd->read, rd->count);
    deadline_arm(c);
}

void cluster_relay_node_gone(cluster_t *c, uint16_t id)
{
    struct deadline_node *n = c->requests_out.head;
    while (n) {
        struct deadline_node *next = n->next;
        struct relay_request *req = container_of(n, struct relay_request, deadline);
        if (id == 0 || req->device_io == id) {
            c->traffic.node_gone++;
            finish(c, req, RELAY_OFFLINE, "its node is gone", 0, NULL);
        }
        n = next;
    }
    /* Requests not sent yet were among them: they must not reach the node now. */
    for (size_t i = 0; i < c->npeers; i++)
        if (id == 0 || c->peers[i].id == id)
            cluster_wire_clear(&c->peers[i].requests);
    if (c->started)
        deadline_arm(c);
}

void cluster_relay_start(cluster_t *c)
{
    uv_check_init(c->deps.loop, &c->flush);
    uv_idle_init(c->deps.loop, &c->flush_idle);
    c->flush.data = c->flush_idle.data = c;
}

void cluster_relay_stop(cluster_t *c)
{
    cluster_relay_node_gone(c, 0);
    /* What the devices here answered other nodes so far still goes, while the link is up. */
    for (size_t i = 0; i < c->npeers; i++)
        send_answers(c, &c->peers[i]);
    if (c->started) {
        uv_close((uv_handle_t *)&c->flush, NULL);
        uv_close((uv_handle_t *)&c->flush_idle, NULL);
    }
}

void cluster_relay_free(cluster_t *c)
{
    for (size_t i = 0; i < c->npeers; i++) {
        cluster_wire_free(&c->peers[i].requests);
        cluster_wire_free(&c->peers[i].answers);
    }
    cluster_ids_free(&c->requests_by_id);
}

/* ---- the device's side: requests from another node ---- */

/* Put an answer to request id of node node_id in that node's batch. args: nargs packed. */
static void answer_back(cluster_t *c, uint16_t node_id, uint32_t id, enum relay_outcome outcome,
                        const char *why, unsigned nargs, const char *args, size_t args_len)
{
    struct cluster_peer *p = peer_of(c, node_id);
    if (!p || !atomic_load(&c->link))
        return; /* an unknown node, or the link closed (stopping): nowhere to send it */
    struct cluster_wire_answer a = {.id = id,
                                    .outcome = outcome,
                                    .why = why,
                                    .nargs = nargs,
                                    .args = args,
                                    .args_len = args_len};
    int rc = cluster_wire_add_answer(&p->answers, c->node, &a);
    if (rc == IOT_EBUSY) {
        send_answers(c, p);
        rc = cluster_wire_add_answer(&p->answers, c->node, &a);
    }
    if (rc != IOT_OK) {
        log_debug("cluster: an answer to %s could not be sent: %s", p->name, iot_strerror(rc));
        return; /* its request times out there */
    }
    flush_soon(c);
}

/* The origin of a request from another node: its answers come back to the main loop here.
 * slot: the node's presence id; id: the request's id at that node. */
static void on_answer_back(inbox_msg_t *msg, void *loop_data)
{
    struct relay_answer *a = container_of(msg, struct relay_answer, msg);
    cluster_t *c = a->origin.cookie;
    (void)loop_data;
    answer_back(c, (uint16_t)a->origin.slot, a->origin.id, a->outcome, a->why, a->nargs, a->args,
                a->args_len);
    free(a);
}

/* One request of node p_id's batch. */
static void request_in(cluster_t *c, uint16_t p_id, const struct cluster_wire_request *r,
                       const char *const *argv)
{
    struct presence_entry e;
    /* Only for a device of ours: a request that raced the device's move is not sent on (it would
     * be audited twice); the sender hears offline and its next request finds the device. */
    if (!presence_lookup(c->presence, r->device, &e) || !e.online || e.node != 0) {
        answer_back(c, p_id, r->id, RELAY_OFFLINE, "device not on this node", 0, NULL, 0);
        return;
    }
    struct relay_origin origin = {.inbox = c->deps.inbox,
                                  .on_answer = on_answer_back,
                                  .slot = p_id,
                                  .cookie = c,
                                  .id = r->id};
    struct relay_request *req = relay_request_new(&origin, r->from, r->tenant, r->device, r->type,
                                                  r->nargs, argv, r->timeout_ms, NULL, uv_hrtime());
    if (!req) {
        answer_back(c, p_id, r->id, RELAY_INTERNAL, "out of memory", 0, NULL, 0);
        return;
    }
    req->audited_elsewhere = true;
    c->traffic.requests_in++;
    enum relay_outcome o = sessions_relay(c->deps.sessions, -1, req);
    if (o != RELAY_OK) {
        answer_back(c, p_id, r->id, o, NULL, 0, NULL, 0);
        free(req);
    }
}

void cluster_on_relay_requests(cluster_t *c, struct cluster_wire_reader *rd)
{
    struct cluster_wire_request r;
    const char *argv[CLUSTER_WIRE_MAX_ARGS];
    int rc;
    struct cluster_peer *p = cluster_peer_seen(c, rd->node);
    if (!p)
        return;
    uint16_t p_id = p->id; /* p itself may move if the node table grows */
    while ((rc = cluster_wire_next_request(rd, &r, argv)) == 1)
        request_in(c, p_id, &r, argv);
    if (rc < 0)
        log_debug("cluster: a batch of requests from %s is malformed after %u of %u", rd->node,
                  rd->read, rd->count);
}
