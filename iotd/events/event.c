/*
 * event.c - the event record (see event.h).
 */
#include "events/event.h"

#include <stdlib.h>
#include <string.h>

static bool copy_in(char *dst, size_t n, const char *src)
{
    size_t len = src ? strlen(src) : 0;
    if (len >= n)
        return false;
    memcpy(dst, src ? src : "", len + 1);
    return true;
}

struct event *event_new(enum event_kind kind, const char *tenant, const char *device,
                        const char *type, const char *name, uint32_t seq, int64_t ts_ms,
                        unsigned nfields, const char *const *fields)
{
    size_t len = 0;
    for (unsigned i = 0; i < nfields; i++)
        len += strlen(fields[i]) + 1;
    struct event *ev = calloc(1, sizeof(*ev) + len);
    if (!ev)
        return NULL;
    atomic_init(&ev->refs, 1);
    ev->kind = kind;
    ev->seq = seq;
    ev->ts_ms = ts_ms;
    if (!copy_in(ev->tenant, sizeof(ev->tenant), tenant) ||
        !copy_in(ev->device, sizeof(ev->device), device) ||
        !copy_in(ev->type, sizeof(ev->type), type) || !copy_in(ev->name, sizeof(ev->name), name)) {
        free(ev);
        return NULL;
    }
    char *p = ev->fields;
    for (unsigned i = 0; i < nfields; i++) {
        size_t n = strlen(fields[i]) + 1;
        memcpy(p, fields[i], n);
        p += n;
    }
    ev->nfields = nfields;
    ev->fields_len = len;
    return ev;
}

struct event *event_ref(struct event *ev)
{
    atomic_fetch_add_explicit(&ev->refs, 1, memory_order_relaxed);
    return ev;
}

void event_unref(struct event *ev)
{
    if (ev && atomic_fetch_sub_explicit(&ev->refs, 1, memory_order_acq_rel) == 1)
        free(ev);
}

const char *event_field_at(const struct event *ev, unsigned i)
{
    const char *p = ev->fields;
    for (unsigned k = 0; k < i; k++)
        p += strlen(p) + 1;
    return p;
}

const char *event_field(const struct event *ev, const char *key)
{
    size_t klen = strlen(key);
    const char *p = ev->fields;
    for (unsigned i = 0; i < ev->nfields; i++) {
        if (strncmp(p, key, klen) == 0 && p[klen] == '=')
            return p + klen + 1;
        p += strlen(p) + 1;
    }
    return NULL;
}

const char *event_kind_name(enum event_kind kind)
{
    static const char *const names[] = {[EVENT_KIND_EVENT] = "event",
                                        [EVENT_KIND_ALARM] = "alarm",
                                        [EVENT_KIND_PRESENCE] = "presence"};
    return (unsigned)kind < sizeof(names) / sizeof(names[0]) ? names[kind] : "event";
}
