/*
 * relay_device.c - the relay's device side in a session: the port the relay writes requests
 * to devices through (relay_port), the devices' OK and ERROR handed back to the relay, and the
 * early flush of requests written during a read.
 */
#include "iot_error.h"
#include "iotp/iotp.h"
#include "session/session_internal.h"

#include <string.h>

/* A request was just written to c during a read (session_on_data): remember c for
 * session_dispatch_flush. A conn goes early once per pass at most (later reads' requests to it wait
 * for the pass's flush), so fan-in from many senders still costs a device two writes per pass, not
 * one per sender; past SESSION_DISPATCH_MAX devices in a pass, the rest wait too. */
static void dispatch_note(struct session_env *env, conn_t *c)
{
    if (!env->in_read)
        return;
    uint64_t pass = atomic_load_explicit(&env->io->meter.iterations, memory_order_relaxed);
    if (env->dispatch_pass != pass) {
        env->dispatch_pass = pass;
        env->ndispatched = env->nflushed = 0;
    }
    for (unsigned k = 0; k < env->ndispatched; k++)
        if (env->dispatched[k] == c)
            return;
    if (env->ndispatched < SESSION_DISPATCH_MAX)
        env->dispatched[env->ndispatched++] = c;
}

/* The read is handled: its requests leave now, one write per device, instead of at the end of
 * the loop pass, after the reads of every other connection that was ready. The devices start
 * on them while this thread goes on with the pass; the answers still leave once per pass, so
 * a sender gets them coalesced. Measured against flushing everything at the end of the pass,
 * in the same rounds: 1.07x, 1.01x and 1.04x the throughput with 16 in flight. The conns
 * noted in this read are alive: a conn is freed only from a close callback, never during a
 * read (those of earlier reads of the pass are only compared, never used). */
void session_dispatch_flush(struct session_env *env)
{
    for (unsigned k = env->nflushed; k < env->ndispatched; k++)
        conn_flush_now(env->dispatched[k]);
    env->nflushed = env->ndispatched;
}

/* The relay's port (relay_port.write): queue a request on a device session's connection. */
static int port_write(void *arg, uint32_t slot, uint64_t serial, const uint8_t *frame, size_t len)
{
    struct session_env *env = arg;
    struct session *s = session_at(env, slot, serial);
    if (!s || s->state != SESSION_ESTABLISHED)
        return IOT_ENOTFOUND;
    if (conn_write(s->conn, frame, len) != 0)
        return IOT_EBUSY;
    s->frames_out++;
    dispatch_note(env, s->conn);
    return IOT_OK;
}

/* The relay's port (relay_port.answer): the answer to a sender of this thread, in place. */
static void port_answer(void *arg, const struct relay_origin *origin, enum relay_outcome outcome,
                        const char *device, const char *why, unsigned nargs,
                        const char *const *args)
{
    session_answer_sender(arg, origin, outcome, device, why, nargs, args);
}

/* A device's OK or ERROR: the answer to one of its pending requests, by iotd's id. */
void session_on_device_answer(struct session *s, const struct iotp_frame *f)
{
    enum relay_outcome outcome = iotp_frame_type(f) == IOTP_TYPE_OK ? RELAY_OK : RELAY_ERROR;
    if (!relay_device_answer(s->env->relay, s->slot, s->serial, f->id, outcome, f->nargs, f->args))
        /* Too late (its request timed out) or never asked: counted, dropped. */
        atomic_fetch_add(&s->env->counters.late_answers, 1);
}

int session_relay_start(struct session_env *env)
{
    struct relay_port port = {.arg = env,
                              .write = port_write,
                              .on_answer = session_on_relay_answer,
                              .answer = port_answer};
    env->relay = relay_thread(env->all->relay, env->index);
    return relay_thread_start(env->relay, &port);
}

enum relay_outcome sessions_relay(sessions_t *all, int current, struct relay_request *req)
{
    struct presence_route_cache *routes = current >= 0 ? &all->envs[current].routes : NULL;
    return relay_deliver(all->relay, routes, current, req);
}
