/*
 * slots.c - where an io thread keeps its sessions (a table of slots, addressed by slot and
 * serial from other threads) and its tick: handshake and keepalive deadlines of every session,
 * and the heap given back after a connect storm.
 *
 * Deadlines have no timer per session: one tick per io thread walks its sessions, which at
 * tens of thousands of sessions costs less than a timer handle each.
 */
#include "iot_error.h"
#include "iot_grow.h"
#include "session/session_internal.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

/* One session's deadlines at loop time now: an unfinished handshake, a silent peer (pinged
 * after ping_s of silence, dropped after keepalive_timeout_s). */
static void check_deadlines(struct session *s, uint64_t now)
{
    const struct session_options *o = &s->env->all->opts;
    if (s->state == SESSION_HANDSHAKE) {
        if (now - s->accepted_ms >= o->handshake_timeout_ms) {
            atomic_fetch_add(&s->env->counters.handshake_timeouts, 1);
            if (s->principal[0])
                session_record(s, CONN_EVENT_AUTH_FAILURE, "handshake timeout");
            session_close(s, "handshake timeout");
        }
        return;
    }
    if (s->state != SESSION_ESTABLISHED || s->held)
        return;
    uint64_t idle = now - s->last_rx_ms;
    uint64_t period = (uint64_t)o->ping_s * 1000;
    if (idle >= (uint64_t)o->keepalive_timeout_s * 1000) {
        atomic_fetch_add(&s->env->counters.keepalive_timeouts, 1);
        session_close(s, "keepalive timeout");
    } else if (idle >= period && now - s->last_ping_ms >= period) {
        s->last_ping_ms = now;
        session_send_system(s, IOTP_TYPE_PING, ++s->ping_seq ? s->ping_seq : ++s->ping_seq, NULL,
                            NULL);
    }
}

/* Connects since the last trim after which a quiet thread gives its free heap back. */
#define TRIM_AFTER_ACCEPTS 1024

/* A connect storm leaves this thread's malloc arena full of freed handshake state, parser
 * buffers and first output buffers, interleaved with what stays: glibc keeps those pages
 * resident. Once the storm is over (no handshake in progress on this thread), give them back,
 * once per storm: malloc_trim walks the arenas (a few milliseconds at 10,000 devices), which
 * is cheap next to the storm itself and saves about 200 bytes of RSS per connected device. */
static void trim_after_storm(struct session_env *env)
{
    size_t sessions = atomic_load_explicit(&env->counters.sessions, memory_order_relaxed);
    size_t settled = atomic_load_explicit(&env->counters.devices, memory_order_relaxed) +
                     atomic_load_explicit(&env->counters.users, memory_order_relaxed);
    if (env->accepts_since_trim < TRIM_AFTER_ACCEPTS || sessions != settled)
        return;
    env->accepts_since_trim = 0;
    malloc_trim(0);
}

/* The io thread's tick: every session's deadlines. Closing only starts here (on_close comes
 * from a later callback), so the walk never meets a freed session. */
void session_on_tick(uv_timer_t *timer)
{
    struct session_env *env = timer->data;
    uint64_t now = uv_now(&env->io->loop);
    for (uint32_t i = 0; i < env->nslots; i++)
        if (env->slots[i])
            check_deadlines(env->slots[i], now);
    relay_trim(env->relay); /* idle devices keep no table of requests */
    trim_after_storm(env);
}

/* A free slot index in env->slots, growing the table if needed. */
int session_slot_take(struct session_env *env, struct session *s)
{
    for (uint32_t i = env->free_hint; i < env->nslots; i++) {
        if (!env->slots[i]) {
            env->slots[i] = s;
            s->slot = i;
            env->free_hint = i + 1;
            return 0;
        }
    }
    size_t n = env->nslots; /* every slot is taken: the table doubles */
    struct session **grown = iot_grow(env->slots, env->nslots, &n, 1024, sizeof(*grown));
    if (!grown)
        return IOT_ENOMEM;
    memset(grown + env->nslots, 0, (n - env->nslots) * sizeof(*grown));
    env->slots = grown;
    s->slot = env->nslots;
    env->slots[s->slot] = s;
    env->free_hint = s->slot + 1;
    env->nslots = (uint32_t)n;
    return 0;
}

struct session *session_at(struct session_env *env, uint32_t slot, uint64_t serial)
{
    struct session *s = slot < env->nslots ? env->slots[slot] : NULL;
    return s && s->serial == serial ? s : NULL;
}
