/*
 * query_registry.c - what=devices and what=catalogue, answered from the registry snapshot and
 * presence on the asking session's io thread (no database, no other thread).
 *
 * devices: the tenant's devices in id order from the cursor (registry_devices_after), those
 * the user may see and that pass the filters, until the page is full. catalogue: the messages
 * of one type, commands first then events, each by name; allowed= is this user's right on the
 * device (or, with type= alone, what the role allows).
 */
#include "query/query_internal.h"

#include "iot_error.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

bool query_device_named(const registry_snapshot_t *snap, const struct query_origin *who,
                        const char *device)
{
    return registry_device_visible(snap, who->principal, device);
}

/* Case-insensitive substring (ASCII letters fold; other bytes compare as they are). */
static bool contains_folded(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] &&
               tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n)
            return true;
    }
    return n == 0;
}

struct devices_walk {
    const struct query_request *r;
    const struct query_origin *who;
    const registry_snapshot_t *snap;
    presence_t *presence;
    struct query_page *page;
    char last[65]; /* the last device on the page: the next page's cursor */
    bool more;
};

static bool device_row(const struct registry_device_entry *d, void *arg)
{
    struct devices_walk *w = arg;
    const struct query_request *r = w->r;
    struct presence_entry e;
    if (r->device[0] && strcmp(r->device, d->id) != 0)
        return true;
    if (r->type[0] && strcmp(r->type, d->type) != 0)
        return true;
    if (r->group[0] && !registry_device_in_group(w->snap, d->id, r->group))
        return true;
    if (r->match[0] && !contains_folded(d->id, r->match) &&
        !contains_folded(d->display_name, r->match))
        return true;
    bool seen = presence_lookup(w->presence, d->id, &e);
    bool online = seen && e.online;
    if (r->online >= 0 && online != (r->online == 1))
        return true;
    if (!w->who->admin && !registry_device_visible(w->snap, w->who->principal, d->id))
        return true;

    char device[80], dtype[80], name[300], groups[16 * 66 + 8], on[16], last_seen[40], since[40];
    snprintf(device, sizeof(device), "device=%s", d->id);
    snprintf(dtype, sizeof(dtype), "dtype=%s", d->type);
    snprintf(name, sizeof(name), "name=%s", d->display_name);
    size_t len = (size_t)snprintf(groups, sizeof(groups), "groups=");
    for (size_t i = 0; i < d->ngroups && len < sizeof(groups); i++)
        len += (size_t)snprintf(groups + len, sizeof(groups) - len, "%s%s", i ? "," : "",
                                d->groups[i]);
    snprintf(on, sizeof(on), "online=%d", online ? 1 : 0);
    snprintf(last_seen, sizeof(last_seen), "last_seen=");
    snprintf(since, sizeof(since), "since=");
    if (seen)
        snprintf(last_seen, sizeof(last_seen), "last_seen=%lld", (long long)e.last_seen_ms);
    if (online)
        snprintf(since, sizeof(since), "since=%lld", (long long)e.since_ms);
    const char *args[] = {device, dtype, name, groups, on, last_seen, since};
    if (!query_page_row(w->page, args, sizeof(args) / sizeof(args[0]))) {
        w->more = true;
        return false;
    }
    snprintf(w->last, sizeof(w->last), "%s", d->id);
    return !w->page->error;
}

static void list_devices(const struct query_request *r, const struct query_origin *who,
                         const registry_snapshot_t *snap, presence_t *presence,
                         struct query_page *p)
{
    if (r->device[0] && !query_device_named(snap, who, r->device)) {
        query_page_error(p, "denied", 0, "no such device in your tenant");
        return;
    }
    if (r->group[0] && !registry_group_exists(snap, who->tenant, r->group)) {
        query_page_error(p, "bad_args", 0, "no such group in your tenant");
        return;
    }
    if (r->type[0] && !registry_type_exists(snap, who->tenant, r->type)) {
        query_page_error(p, "bad_args", 0, "no such device type in your tenant");
        return;
    }
    struct devices_walk w = {.r = r, .who = who, .snap = snap, .presence = presence, .page = p};
    registry_devices_after(snap, who->tenant, r->has_cursor ? r->cursor_text : NULL, device_row,
                           &w);
    query_page_ok(p, w.more ? w.last : NULL);
}

struct catalogue_walk {
    const struct query_request *r;
    const struct query_origin *who;
    const registry_snapshot_t *snap;
    bool may_act;
    bool events; /* this pass: events (else commands) */
    struct query_page *page;
    char last[80];
    bool more;
};

static void catalogue_row(const struct registry_message_info *m, void *arg)
{
    struct catalogue_walk *w = arg;
    const struct query_request *r = w->r;
    char cursor[80];
    if (w->more || m->event != w->events)
        return;
    snprintf(cursor, sizeof(cursor), "%d.%s", m->event ? 1 : 0, m->name);
    if (r->has_cursor &&
        (r->cursor_text[0] > cursor[0] ||
         (r->cursor_text[0] == cursor[0] && strcmp(m->name, r->cursor_text + 2) <= 0)))
        return; /* on an earlier page */
    bool allowed;
    if (r->device[0])
        allowed = m->event
                      ? registry_access_allows_read(w->snap, w->who->principal, r->device, m->name)
                      : registry_access_allows(w->snap, w->who->principal, r->device, m->name);
    else
        allowed = m->event || w->may_act;
    char kind[32], name[80], spec[1100], extra[40], allow[16];
    snprintf(kind, sizeof(kind), "kind=%s", m->event ? "event" : "command");
    snprintf(name, sizeof(name), "name=%s", m->name);
    /* spec=, not args=: args is the frame's positional list in iot-websocket(7)'s JSON. */
    snprintf(spec, sizeof(spec), "spec=%s", m->args ? m->args : "");
    if (m->event)
        snprintf(extra, sizeof(extra), "lease=%d", m->start && m->stop ? 1 : 0);
    else
        snprintf(extra, sizeof(extra), "timeout_ms=%u", m->timeout_ms);
    snprintf(allow, sizeof(allow), "allowed=%d", allowed ? 1 : 0);
    const char *row[] = {kind, name, spec, extra, allow};
    if (!query_page_row(w->page, row, sizeof(row) / sizeof(row[0]))) {
        w->more = true;
        return;
    }
    snprintf(w->last, sizeof(w->last), "%s", cursor);
}

static void list_catalogue(const struct query_request *r, const struct query_origin *who,
                           const registry_snapshot_t *snap, struct query_page *p)
{
    struct registry_device_info d;
    struct registry_user_info u;
    const char *type = r->type;
    if (r->device[0]) {
        if (!query_device_named(snap, who, r->device) ||
            registry_device_lookup(snap, r->device, &d) != 0) {
            query_page_error(p, "denied", 0, "no such device in your tenant");
            return;
        }
        type = d.type;
    }
    struct catalogue_walk w = {.r = r,
                               .who = who,
                               .snap = snap,
                               .may_act =
                                   registry_user_lookup(snap, who->principal, &u) == 0 && u.may_act,
                               .page = p};
    if (registry_catalogue_foreach(snap, who->tenant, type, catalogue_row, &w) != IOT_OK) {
        query_page_error(p, "bad_args", 0, "no such device type in your tenant");
        return;
    }
    w.events = true; /* commands first, then events */
    registry_catalogue_foreach(snap, who->tenant, type, catalogue_row, &w);
    query_page_ok(p, w.more ? w.last : NULL);
}

void query_registry_run(const struct query_request *r, const struct query_origin *who,
                        const registry_snapshot_t *snap, presence_t *presence, struct query_page *p)
{
    if (r->what == QUERY_DEVICES)
        list_devices(r, who, snap, presence, p);
    else
        list_catalogue(r, who, snap, p);
}
