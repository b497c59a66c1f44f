/*
 * event.h - one event or alarm a device pushed: the record that travels from the device's
 * session to the store, back as an ACK, and out to every subscriber.
 *
 * An event is one allocation, reference-counted: the store, the ACK route and each
 * subscriber's queue hold references to the same bytes (fan-out never copies). Everything in
 * it is immutable once it has been handed to event_store_add, except the fields the store sets
 * before its completion runs (id, duplicate) and which are read only after it.
 */
#ifndef IOTD_EVENT_H
#define IOTD_EVENT_H

#include "loop/inbox.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* PRESENCE items are never stored: the hub makes them from a device's connect or disconnect
 * for subscribers that asked (presence=1), with fields online= dtype= at=. */
enum event_kind { EVENT_KIND_EVENT, EVENT_KIND_ALARM, EVENT_KIND_PRESENCE };

struct event {
    inbox_msg_t msg; /* free for whoever holds the event to route it through an inbox */
    _Atomic unsigned refs;
    enum event_kind kind;
    uint32_t seq;  /* the device's sequence number (the frame's id) */
    int64_t ts_ms; /* when iotd received it, wall clock (ms since the epoch) */
    char tenant[65];
    char device[65];
    char type[65]; /* the device's type */
    char name[65]; /* the event's name in the type's catalogue */
    /* The incarnation of the device row that sent it (registry_device_info): the sequence mark
     * it is deduplicated against and raises is that incarnation's (sql/011). 0: unknown (a
     * spool record from before 011), taken as the current one's. */
    uint64_t incarnation;
    /* The device session the ACK goes back to (opaque to the store). */
    unsigned io;
    uint32_t slot;
    uint64_t serial;
    /* Set by the store before its completion runs. */
    uint64_t id;    /* events.id once in MariaDB; 0 while only in the spool */
    bool duplicate; /* (device, seq) was stored before: acknowledged, not stored again */
    /* key=value fields, NUL-separated, nfields of them, fields_len bytes in all */
    unsigned nfields;
    size_t fields_len;
    char fields[];
};

/* How an event of incarnation ev stands to a sequence mark counted for incarnation mark
 * (sql/011): 0 the same device row (or either unknown: 0, from before 011), > 0 a later row of
 * the name (the mark is an earlier device's), < 0 an earlier one (the event is history). */
static inline int event_incarnation_cmp(uint64_t ev, uint64_t mark)
{
    if (ev == 0 || mark == 0 || ev == mark)
        return 0;
    return ev > mark ? 1 : -1;
}

/* A new event with one reference; fields are "key=value" strings. NULL if out of memory or if
 * a string does not fit its member. */
struct event *event_new(enum event_kind kind, const char *tenant, const char *device,
                        const char *type, const char *name, uint32_t seq, int64_t ts_ms,
                        unsigned nfields, const char *const *fields);
struct event *event_ref(struct event *ev);
/* Drop a reference; the last one frees. NULL is allowed. */
void event_unref(struct event *ev);
/* The i-th "key=value" field (i < nfields). */
const char *event_field_at(const struct event *ev, unsigned i);
/* The value of field key, or NULL. */
const char *event_field(const struct event *ev, const char *key);
/* "event" or "alarm". */
const char *event_kind_name(enum event_kind kind);

#endif
