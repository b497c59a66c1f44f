/*
 * engine.c - evaluation of alarm rules: the engine's state per device and the transitions
 * events, time and device alarms make it go through (see engine.h for the semantics). What one
 * rule says on its own (validity, condition, clear condition) is rule.c; the words of alarms
 * are alarm_names.c.
 *
 * State lives per device: a hash table of devices (id -> tenant, type, tracked), each with a
 * short list of watches, one per (rule, device) or (device alarm name, device) that has
 * something to remember: a pending threshold condition, an open alarm, or a silence clock.
 * Threshold watches exist only while pending or open, so a fleet that behaves costs nothing
 * but its silence clocks. Rules are an array sorted by id (bsearch when a rule set is
 * replaced); an event walks the rules, cheap string filters (tenant, event) first.
 *
 * Deadlines: next_deadline is a lower bound of the earliest pending or silence deadline. It is
 * lowered whenever a deadline is armed and recomputed by the scan a tick does once it has
 * passed; deadlines that moved later in between (a silence clock reset by an event) only cause a
 * scan that finds nothing. With devices reporting well within their silence periods a tick scans
 * about once per silence period, not once per tick.
 */
#include "alarm/engine.h"

#include "alarm/rule.h"
#include "iot_error.h"
#include "iot_strmap.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum watch_kind { WATCH_THRESHOLD, WATCH_SILENCE, WATCH_DEVICE };

struct device;

struct watch {
    struct watch *next, *prev; /* the device's list */
    struct device *dev;
    enum watch_kind kind;
    uint64_t rule_id;              /* 0 for device alarms */
    const struct alarm_rule *rule; /* into the engine's array; NULL for device alarms */
    int64_t since_ms;              /* threshold: pending since; silence: last event (or start) */
    bool pending, open;
    enum alarm_severity severity; /* device alarms */
    char value[ALARM_VALUE_MAX + 1];
    char name[]; /* device alarms: the alarm's name; "" otherwise */
};

struct device {
    struct iot_strmap_node node; /* keyed by id */
    bool tracked;
    char id[ALARM_NAME_MAX + 1];
    char tenant[ALARM_NAME_MAX + 1];
    char type[ALARM_NAME_MAX + 1];
    struct watch *watches;
};

struct alarm_engine {
    struct alarm_engine_hooks hooks;
    struct alarm_rule *rules; /* active rules (enabled, valid), sorted by id */
    size_t nrules;
    iot_strmap_t devices;
    int64_t next_deadline;
    struct alarm_engine_stats stats;
};

/* ---- small helpers ---- */

static void copy_str(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
}

static void arm(alarm_engine_t *e, int64_t due)
{
    if (due < e->next_deadline)
        e->next_deadline = due;
}

static int64_t silence_due(const struct watch *w)
{
    return w->since_ms + (int64_t)w->rule->silence_s * 1000;
}

/* ---- transitions ---- */

__attribute__((format(printf, 6, 7))) static void emit(alarm_engine_t *e, const struct watch *w,
                                                       enum alarm_transition_kind kind,
                                                       int64_t ts_ms, const char *value,
                                                       const char *fmt, ...)
{
    struct alarm_transition t = {.kind = kind, .ts_ms = ts_ms};
    va_list ap;
    if (w->rule) {
        t.source = ALARM_SOURCE_RULE;
        t.rule_id = w->rule_id;
        copy_str(t.name, sizeof(t.name), w->rule->name);
        t.severity = w->rule->severity;
    } else {
        t.source = ALARM_SOURCE_DEVICE;
        copy_str(t.name, sizeof(t.name), w->name);
        t.severity = w->severity;
    }
    copy_str(t.tenant, sizeof(t.tenant), w->dev->tenant);
    copy_str(t.device, sizeof(t.device), w->dev->id);
    copy_str(t.value, sizeof(t.value), value);
    va_start(ap, fmt);
    vsnprintf(t.message, sizeof(t.message), fmt, ap);
    va_end(ap);
    if (kind == ALARM_RAISE)
        e->stats.raised++;
    else
        e->stats.cleared++;
    e->hooks.emit(&t, e->hooks.arg);
}

/* A restored rule alarm whose rule is gone: there is no watch to describe it. */
static void emit_orphan_clear(alarm_engine_t *e, const struct alarm_open *o, int64_t now_ms)
{
    struct alarm_transition t = {.kind = ALARM_CLEAR,
                                 .source = o->source,
                                 .rule_id = o->rule_id,
                                 .severity = o->severity,
                                 .ts_ms = now_ms};
    copy_str(t.name, sizeof(t.name), o->name);
    copy_str(t.tenant, sizeof(t.tenant), o->tenant);
    copy_str(t.device, sizeof(t.device), o->device);
    copy_str(t.message, sizeof(t.message), "rule removed");
    e->stats.cleared++;
    e->hooks.emit(&t, e->hooks.arg);
}

/* ---- watches ---- */

static struct watch *watch_new(alarm_engine_t *e, struct device *dev, enum watch_kind kind,
                               const struct alarm_rule *rule, const char *name)
{
    size_t name_len = name ? strlen(name) : 0;
    struct watch *w = calloc(1, sizeof(*w) + name_len + 1);
    if (!w) {
        e->stats.no_memory++;
        return NULL;
    }
    w->dev = dev;
    w->kind = kind;
    w->rule = rule;
    w->rule_id = rule ? rule->id : 0;
    memcpy(w->name, name ? name : "", name_len + 1);
    /* Appended: the lists are short, and transitions of one device then come in rule order. */
    struct watch **link = &dev->watches;
    while (*link) {
        w->prev = *link;
        link = &(*link)->next;
    }
    *link = w;
    e->stats.watches++;
    return w;
}

static void watch_set_open(alarm_engine_t *e, struct watch *w, bool open)
{
    if (w->open != open)
        e->stats.open += open ? 1 : (size_t)-1;
    w->open = open;
}

static void watch_set_pending(alarm_engine_t *e, struct watch *w, bool pending)
{
    if (w->pending != pending)
        e->stats.pending += pending ? 1 : (size_t)-1;
    w->pending = pending;
}

static void watch_free(alarm_engine_t *e, struct watch *w)
{
    watch_set_open(e, w, false);
    watch_set_pending(e, w, false);
    if (w->prev)
        w->prev->next = w->next;
    else
        w->dev->watches = w->next;
    if (w->next)
        w->next->prev = w->prev;
    e->stats.watches--;
    free(w);
}

static struct watch *watch_find_rule(struct device *dev, uint64_t rule_id)
{
    for (struct watch *w = dev->watches; w; w = w->next)
        if (w->rule_id == rule_id && w->kind != WATCH_DEVICE)
            return w;
    return NULL;
}

static struct watch *watch_find_device_alarm(struct device *dev, const char *name)
{
    for (struct watch *w = dev->watches; w; w = w->next)
        if (w->kind == WATCH_DEVICE && strcmp(w->name, name) == 0)
            return w;
    return NULL;
}

/* ---- devices ---- */

static struct device *device_of(struct iot_strmap_node *node)
{
    return node ? (struct device *)((char *)node - offsetof(struct device, node)) : NULL;
}

static struct device *device_find(const alarm_engine_t *e, const char *id)
{
    return device_of(iot_strmap_find(&e->devices, id));
}

/* The next device of a walk over all of them (see iot_strmap_walk). */
static struct device *device_walk(const alarm_engine_t *e, struct iot_strmap_walk *w)
{
    return device_of(iot_strmap_walk(&e->devices, w));
}

/* The device's record, created (untracked) if needed; NULL when out of memory. */
static struct device *device_get(alarm_engine_t *e, const char *tenant, const char *id)
{
    struct device *d = device_find(e, id);
    if (d)
        return d;
    d = calloc(1, sizeof(*d));
    if (!d) {
        e->stats.no_memory++;
        return NULL;
    }
    copy_str(d->id, sizeof(d->id), id);
    copy_str(d->tenant, sizeof(d->tenant), tenant);
    if (iot_strmap_insert(&e->devices, &d->node, d->id) != IOT_OK) {
        free(d);
        e->stats.no_memory++;
        return NULL;
    }
    return d;
}

static void device_remove(alarm_engine_t *e, struct device *d)
{
    iot_strmap_remove(&e->devices, &d->node);
    while (d->watches)
        watch_free(e, d->watches);
    free(d);
}

/* ---- rules ---- */

static bool rule_in_scope(const alarm_engine_t *e, const struct alarm_rule *r,
                          const struct device *d)
{
    if (strcmp(r->tenant, d->tenant) != 0)
        return false;
    switch (r->scope) {
    case ALARM_SCOPE_TENANT:
        return true;
    case ALARM_SCOPE_DEVICE:
        return strcmp(r->target, d->id) == 0;
    case ALARM_SCOPE_TYPE:
        return strcmp(r->target, d->type) == 0;
    case ALARM_SCOPE_GROUP:
        return e->hooks.in_scope && e->hooks.in_scope(r, d->tenant, d->id, d->type, e->hooks.arg);
    }
    return false;
}

static void raise_threshold(alarm_engine_t *e, struct watch *w, int64_t ts_ms)
{
    const struct alarm_rule *r = w->rule;
    watch_set_pending(e, w, false);
    watch_set_open(e, w, true);
    if (r->for_ms)
        emit(e, w, ALARM_RAISE, ts_ms, w->value, "%s %s %s %.15g for %u ms", r->field, w->value,
             alarm_op_name(r->op), r->threshold, (unsigned)r->for_ms);
    else
        emit(e, w, ALARM_RAISE, ts_ms, w->value, "%s %s %s %.15g", r->field, w->value,
             alarm_op_name(r->op), r->threshold);
}

static void raise_silence(alarm_engine_t *e, struct watch *w, int64_t ts_ms, bool offline)
{
    watch_set_open(e, w, true);
    if (offline)
        emit(e, w, ALARM_RAISE, ts_ms, "", "device offline");
    else
        emit(e, w, ALARM_RAISE, ts_ms, "", "no %s for %u s", w->rule->event,
             (unsigned)w->rule->silence_s);
}

/* Clear (if open) and free a watch, saying why. */
static void watch_drop(alarm_engine_t *e, struct watch *w, int64_t now_ms, const char *why)
{
    if (w->open)
        emit(e, w, ALARM_CLEAR, now_ms, "", "%s", why);
    watch_free(e, w);
}

/* (Re)evaluate which rule watches of a device are in scope: drop those that are not, start the
 * silence clocks of the silence rules that are. */
static void device_rescope(alarm_engine_t *e, struct device *d, int64_t now_ms)
{
    /* An untracked device (known only from a restored alarm or an ALARM frame) has no known
     * type yet: its restored alarms wait for tracking to be judged. */
    if (!d->tracked)
        return;
    for (struct watch *w = d->watches, *next; w; w = next) {
        next = w->next;
        if (w->rule && !rule_in_scope(e, w->rule, d))
            watch_drop(e, w, now_ms, "device out of scope");
    }
    for (size_t i = 0; i < e->nrules; i++) {
        const struct alarm_rule *r = &e->rules[i];
        if (!alarm_rule_is_silence(r) || !rule_in_scope(e, r, d) || watch_find_rule(d, r->id))
            continue;
        struct watch *w = watch_new(e, d, WATCH_SILENCE, r, NULL);
        if (!w)
            continue;
        w->since_ms = now_ms;
        arm(e, silence_due(w));
    }
}

/* The device, tracked with this tenant and type (rescoped if either changed). */
static struct device *device_track(alarm_engine_t *e, const char *tenant, const char *id,
                                   const char *type, int64_t now_ms, bool force_rescope)
{
    struct device *d = device_get(e, tenant, id);
    if (!d)
        return NULL;
    bool changed = !d->tracked || strcmp(d->tenant, tenant) != 0 || strcmp(d->type, type) != 0;
    if (!changed && !force_rescope)
        return d;
    copy_str(d->tenant, sizeof(d->tenant), tenant);
    copy_str(d->type, sizeof(d->type), type);
    d->tracked = true;
    device_rescope(e, d, now_ms);
    return d;
}

/* ---- API ---- */

int alarm_engine_new(alarm_engine_t **out, const struct alarm_engine_hooks *hooks)
{
    *out = NULL;
    if (!hooks || !hooks->emit)
        return IOT_EINVAL;
    alarm_engine_t *e = calloc(1, sizeof(*e));
    if (!e)
        return IOT_ENOMEM;
    e->hooks = *hooks;
    e->next_deadline = INT64_MAX;
    *out = e;
    return IOT_OK;
}

void alarm_engine_free(alarm_engine_t *e)
{
    if (!e)
        return;
    struct iot_strmap_walk w = {0};
    for (struct device *d; (d = device_walk(e, &w));)
        device_remove(e, d);
    iot_strmap_free(&e->devices);
    free(e->rules);
    free(e);
}

int alarm_engine_set_rules(alarm_engine_t *e, const struct alarm_rule *rules, size_t n,
                           int64_t now_ms)
{
    struct alarm_rule *all = NULL, *active = NULL;
    size_t nactive = 0, skipped = 0;
    struct iot_strmap_walk walk = {0};
    int rc = IOT_OK;
    if (n) {
        all = malloc(n * sizeof(*all));
        active = malloc(n * sizeof(*active));
        if (!all || !active) {
            rc = IOT_ENOMEM;
            goto out;
        }
        memcpy(all, rules, n * sizeof(*all));
        qsort(all, n, sizeof(*all), alarm_rule_cmp);
        for (size_t i = 0; i < n; i++) {
            if (!alarm_rule_valid(&all[i]))
                skipped++;
            else if (all[i].enabled && (i == 0 || all[i].id != all[i - 1].id))
                active[nactive++] = all[i];
        }
    }
    /* Re-point the watches of remaining rules into the new array; drop the others. */
    for (struct device *d; (d = device_walk(e, &walk));)
        for (struct watch *w = d->watches, *next; w; w = next) {
            next = w->next;
            if (!w->rule)
                continue;
            const struct alarm_rule *r = alarm_rule_by_id(active, nactive, w->rule_id);
            if (r && alarm_rule_is_silence(r) == (w->kind == WATCH_SILENCE)) {
                w->rule = r;
                continue;
            }
            /* w->rule still points into the old array (freed below): names for emit */
            const struct alarm_rule *old = alarm_rule_by_id(all, n, w->rule_id);
            watch_drop(e, w, now_ms, old && !old->enabled ? "rule disabled" : "rule removed");
        }
    free(e->rules);
    e->rules = active;
    e->nrules = nactive;
    active = NULL;
    e->stats.rules = nactive;
    e->stats.rules_skipped = skipped;
    /* Silence clocks of new silence rules (and scope changes of group rules). */
    walk = (struct iot_strmap_walk){0};
    for (struct device *d; (d = device_walk(e, &walk));)
        device_rescope(e, d, now_ms);
out:
    free(all);
    free(active);
    return rc;
}

void alarm_engine_event(alarm_engine_t *e, const char *tenant, const char *device, const char *type,
                        const char *event_name, alarm_field_fn field, const void *ctx,
                        int64_t now_ms)
{
    if (!alarm_name_ok(tenant) || !alarm_name_ok(device) || !type || !alarm_name_ok(event_name))
        return;
    struct device *d = device_track(e, tenant, device, type, now_ms, false);
    if (!d)
        return;
    /* Silence rules on this event: the clock restarts, an open alarm clears. */
    for (struct watch *w = d->watches; w; w = w->next) {
        if (w->kind != WATCH_SILENCE || strcmp(w->rule->event, event_name) != 0)
            continue;
        w->since_ms = now_ms;
        arm(e, silence_due(w));
        if (w->open) {
            watch_set_open(e, w, false);
            emit(e, w, ALARM_CLEAR, now_ms, "", "%s received", event_name);
        }
    }
    for (size_t i = 0; i < e->nrules; i++) {
        const struct alarm_rule *r = &e->rules[i];
        if (alarm_rule_is_silence(r) || strcmp(r->event, event_name) != 0 ||
            strcmp(r->tenant, tenant) != 0 || !rule_in_scope(e, r, d))
            continue;
        const char *text = field ? field(ctx, r->field) : NULL;
        double v;
        if (!text) {
            e->stats.missing_field++;
            continue;
        }
        if (!alarm_parse_number(text, &v)) {
            e->stats.non_numeric++;
            continue;
        }
        struct watch *w = watch_find_rule(d, r->id);
        if (alarm_condition(r->op, v, r->threshold)) {
            if (w && w->open)
                continue; /* re-raise while open: nothing */
            if (!w && !(w = watch_new(e, d, WATCH_THRESHOLD, r, NULL)))
                continue;
            copy_str(w->value, sizeof(w->value), text);
            if (!w->pending) {
                watch_set_pending(e, w, true);
                w->since_ms = now_ms;
            }
            int64_t due = w->since_ms + r->for_ms;
            if (due <= now_ms)
                raise_threshold(e, w, due);
            else
                arm(e, due);
            continue;
        }
        if (!w)
            continue;
        if (w->pending && !w->open) { /* the condition did not hold for for_ms */
            watch_free(e, w);
            continue;
        }
        double bound;
        const char *clear_op;
        if (w->open && alarm_clears(r, v, &bound, &clear_op)) {
            char value[ALARM_VALUE_MAX + 1];
            copy_str(value, sizeof(value), text);
            emit(e, w, ALARM_CLEAR, now_ms, value, "%s %s %s %.15g", r->field, value, clear_op,
                 bound);
            watch_free(e, w);
        }
    }
}

int64_t alarm_engine_tick(alarm_engine_t *e, int64_t now_ms)
{
    if (now_ms < e->next_deadline)
        return e->next_deadline;
    int64_t next = INT64_MAX;
    struct iot_strmap_walk walk = {0};
    for (struct device *d; (d = device_walk(e, &walk));)
        for (struct watch *w = d->watches; w; w = w->next) {
            if (w->kind == WATCH_THRESHOLD && w->pending) {
                int64_t due = w->since_ms + w->rule->for_ms;
                if (due <= now_ms)
                    raise_threshold(e, w, due);
                else if (due < next)
                    next = due;
            } else if (w->kind == WATCH_SILENCE && !w->open) {
                int64_t due = silence_due(w);
                if (due <= now_ms)
                    raise_silence(e, w, due, false);
                else if (due < next)
                    next = due;
            }
        }
    e->next_deadline = next;
    return next;
}

int64_t alarm_engine_next_deadline(const alarm_engine_t *e)
{
    return e->next_deadline;
}

int alarm_engine_track(alarm_engine_t *e, const char *tenant, const char *device, const char *type,
                       int64_t now_ms)
{
    if (!alarm_name_ok(tenant) || !alarm_name_ok(device) || !type || strlen(type) > ALARM_NAME_MAX)
        return IOT_EINVAL;
    return device_track(e, tenant, device, type, now_ms, true) ? IOT_OK : IOT_ENOMEM;
}

void alarm_engine_untrack(alarm_engine_t *e, const char *device, int64_t now_ms)
{
    struct device *d = device ? device_find(e, device) : NULL;
    if (!d)
        return;
    while (d->watches)
        watch_drop(e, d->watches, now_ms, "device removed");
    device_remove(e, d);
}

void alarm_engine_device_offline(alarm_engine_t *e, const char *tenant, const char *device,
                                 const char *type, int64_t now_ms)
{
    if (!alarm_name_ok(tenant) || !alarm_name_ok(device) || !type || strlen(type) > ALARM_NAME_MAX)
        return;
    struct device *d = device_track(e, tenant, device, type, now_ms, false);
    if (!d)
        return;
    for (struct watch *w = d->watches; w; w = w->next)
        if (w->kind == WATCH_SILENCE && !w->open)
            raise_silence(e, w, now_ms, true);
}

void alarm_engine_device_online(alarm_engine_t *e, const char *tenant, const char *device,
                                const char *type, int64_t now_ms)
{
    if (!alarm_name_ok(tenant) || !alarm_name_ok(device) || !type || strlen(type) > ALARM_NAME_MAX)
        return;
    (void)device_track(e, tenant, device, type, now_ms, false);
}

int alarm_engine_device_alarm(alarm_engine_t *e, const char *tenant, const char *device,
                              const char *name, const char *severity, bool clear, const char *value,
                              const char *message, int64_t now_ms)
{
    if (!alarm_name_ok(tenant) || !alarm_name_ok(device) || !alarm_name_ok(name))
        return IOT_EINVAL;
    struct device *d = clear ? device_find(e, device) : device_get(e, tenant, device);
    if (!d)
        return clear ? 0 : IOT_ENOMEM;
    struct watch *w = watch_find_device_alarm(d, name);
    if (clear) {
        if (!w)
            return 0;
        emit(e, w, ALARM_CLEAR, now_ms, value, "%s",
             message && *message ? message : "cleared by device");
        watch_free(e, w);
        return 1;
    }
    if (w)
        return 0; /* open already */
    w = watch_new(e, d, WATCH_DEVICE, NULL, name);
    if (!w)
        return IOT_ENOMEM;
    if (!alarm_severity_parse(severity, &w->severity))
        w->severity = ALARM_SEVERITY_WARNING;
    copy_str(w->value, sizeof(w->value), value);
    watch_set_open(e, w, true);
    emit(e, w, ALARM_RAISE, now_ms, w->value, "%s",
         message && *message ? message : "raised by device");
    return 1;
}

int alarm_engine_restore(alarm_engine_t *e, const struct alarm_open *open, size_t n, int64_t now_ms)
{
    int rc = IOT_OK;
    for (size_t i = 0; i < n; i++) {
        const struct alarm_open *o = &open[i];
        if (!alarm_name_ok(o->tenant) || !alarm_name_ok(o->device) || !alarm_name_ok(o->name))
            continue;
        const struct alarm_rule *r = NULL;
        if (o->source == ALARM_SOURCE_RULE) {
            r = alarm_rule_by_id(e->rules, e->nrules, o->rule_id);
            if (!r || strcmp(r->tenant, o->tenant) != 0) {
                emit_orphan_clear(e, o, now_ms);
                continue;
            }
        }
        struct device *d = device_get(e, o->tenant, o->device);
        if (!d) {
            rc = IOT_ENOMEM;
            continue;
        }
        struct watch *w = r ? watch_find_rule(d, r->id) : watch_find_device_alarm(d, o->name);
        if (w && w->open)
            continue;
        if (!w) {
            enum watch_kind kind = !r                         ? WATCH_DEVICE
                                   : alarm_rule_is_silence(r) ? WATCH_SILENCE
                                                              : WATCH_THRESHOLD;
            w = watch_new(e, d, kind, r, r ? NULL : o->name);
            if (!w) {
                rc = IOT_ENOMEM;
                continue;
            }
            w->since_ms = now_ms;
        }
        watch_set_pending(e, w, false);
        w->severity = o->severity;
        copy_str(w->value, sizeof(w->value), o->value);
        watch_set_open(e, w, true);
    }
    return rc;
}

void alarm_engine_stats(const alarm_engine_t *e, struct alarm_engine_stats *out)
{
    *out = e->stats;
    out->devices = e->devices.count;
}
