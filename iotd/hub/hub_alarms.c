/*
 * hub_alarms.c - alarm rules in the hub: the engine (iotd/alarm) fed with durable events,
 * presence and time; its transitions stored in order (alarm writer) and published on every
 * stream as alarm items.
 *
 * Rules and the alarms still open are loaded from MariaDB at start and the rules again after
 * every change (hub_alarm_rules_changed); until the first load has come back, events are not
 * evaluated (a restart must not re-raise what is open). Every registered device is tracked for
 * silence rules, and tracked again when the registry changes (a device added, or moved between
 * groups, is re-scoped). A change to devices only re-tracks the devices it touched
 * (registry_devices_diff): with 100,000 devices, re-tracking them all on the main loop after
 * every change would cost more than the change itself.
 */
#include "hub/hub_internal.h"

#include "alarm/alarm_db.h"
#include "alarm/alarm_writer.h"
#include "alarm/engine.h"
#include "base/log.h"
#include "ctl_time.h"
#include "iot_error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct hub_alarm_state {
    hub_t *hub;
    alarm_engine_t *engine;
    struct alarm_rule *rules; /* the set in force (for the event name of a rule's alarm) */
    size_t nrules;
    uint64_t tracked_generation;  /* registry generation whose devices are tracked */
    registry_snapshot_t *tracked; /* that snapshot, to find what the next change removed */
    bool loaded;                  /* the first load came back */
    bool loading;                 /* a load job is at the database */
    bool reload;                  /* rules changed while loading: load again */
};

struct load_job {
    db_job_t job;
    hub_t *hub;
    bool with_open; /* the first load also restores the open alarms */
    struct alarm_rule *rules;
    size_t nrules;
    struct alarm_open *open;
    size_t nopen;
    char err[256];
};

static const char *rule_event(const struct hub_alarm_state *a, uint64_t rule_id)
{
    for (size_t i = 0; i < a->nrules; i++)
        if (a->rules[i].id == rule_id)
            return a->rules[i].event;
    return "";
}

/* An alarm transition as a stream item. */
static void publish_transition(hub_t *hub, const struct alarm_transition *t)
{
    struct registry_device_info d;
    registry_snapshot_t *snap = registry_acquire(hub->deps.registry);
    const char *type = registry_device_lookup(snap, t->device, &d) == 0 ? d.type : "";
    char state[32], severity[32], source[32], event[96], value[160], msg[300];
    snprintf(state, sizeof(state), "state=%s", t->kind == ALARM_RAISE ? "raised" : "cleared");
    snprintf(severity, sizeof(severity), "severity=%s", alarm_severity_name(t->severity));
    snprintf(source, sizeof(source), "source=%s", alarm_source_name(t->source));
    snprintf(event, sizeof(event), "event=%s",
             t->source == ALARM_SOURCE_RULE ? rule_event(hub->alarm_state, t->rule_id) : t->name);
    snprintf(value, sizeof(value), "value=%s", t->value);
    snprintf(msg, sizeof(msg), "msg=%s", t->message);
    const char *fields[] = {state, severity, source, event, value, msg};
    struct event *item =
        event_new(EVENT_KIND_ALARM, t->tenant, t->device, type, t->name, 0, t->ts_ms, 6, fields);
    registry_release(snap);
    if (!item) {
        log_warn("alarms: out of memory publishing %s of %s", state, t->name);
        return;
    }
    hub_fanout(hub, item);
    event_unref(item);
}

static void on_transition(const struct alarm_transition *t, void *arg)
{
    hub_t *hub = arg;
    log_info("alarm %s: %s on %s (%s)%s%s", t->kind == ALARM_RAISE ? "raised" : "cleared", t->name,
             t->device, alarm_severity_name(t->severity), t->message[0] ? ": " : "", t->message);
    if (hub->deps.alarm_writer)
        alarm_writer_add(hub->deps.alarm_writer, t);
    publish_transition(hub, t);
}

static bool in_scope(const struct alarm_rule *r, const char *tenant, const char *device,
                     const char *type, void *arg)
{
    hub_t *hub = arg;
    (void)tenant;
    (void)type;
    registry_snapshot_t *snap = registry_acquire(hub->deps.registry);
    bool yes = registry_device_in_group(snap, device, r->target);
    registry_release(snap);
    return yes;
}

static void track_one(const char *id, const char *tenant, const char *type, void *arg)
{
    hub_t *hub = arg;
    alarm_engine_track(hub->alarm_state->engine, tenant, id, type, ctl_wall_ms());
}

struct untrack_missing {
    hub_t *hub;
    registry_snapshot_t *now;
};

static void untrack_if_gone(const char *id, const char *tenant, const char *type, void *arg)
{
    struct untrack_missing *u = arg;
    struct registry_device_info d;
    (void)tenant;
    (void)type;
    if (registry_device_lookup(u->now, id, &d) != 0)
        alarm_engine_untrack(u->hub->alarm_state->engine, id, ctl_wall_ms());
}

static void track_change(const char *id, const char *tenant, const char *type, bool removed,
                         void *arg)
{
    hub_t *hub = arg;
    if (removed)
        alarm_engine_untrack(hub->alarm_state->engine, id, ctl_wall_ms());
    else
        track_one(id, tenant, type, hub);
}

/* Track every registered device when the registry changed since the last time (a device
 * added, or moved into or out of a group, is re-scoped), and untrack removed ones, which
 * clears their open alarms. When only devices changed, only those. */
static void track_devices(hub_t *hub)
{
    struct hub_alarm_state *a = hub->alarm_state;
    uint64_t gen = registry_generation(hub->deps.registry);
    if (!a->loaded || gen == a->tracked_generation)
        return;
    registry_snapshot_t *snap = registry_acquire(hub->deps.registry);
    if (!a->tracked || !registry_devices_diff(a->tracked, snap, track_change, hub)) {
        struct untrack_missing u = {hub, snap};
        if (a->tracked)
            registry_devices_foreach(a->tracked, untrack_if_gone, &u);
        registry_devices_foreach(snap, track_one, hub);
    }
    registry_release(a->tracked);
    a->tracked = snap;
    a->tracked_generation = registry_snapshot_generation(snap);
}

static int load_run(db_job_t *job, MYSQL *conn)
{
    struct load_job *lj = container_of(job, struct load_job, job);
    free(lj->rules);
    free(lj->open);
    lj->rules = NULL;
    lj->open = NULL;
    lj->nrules = lj->nopen = 0;
    int rc = alarm_rules_load(conn, &lj->rules, &lj->nrules, lj->err, sizeof(lj->err));
    if (rc == 0 && lj->with_open)
        rc = alarm_open_load(conn, &lj->open, &lj->nopen, lj->err, sizeof(lj->err));
    return rc;
}

static void submit_load(hub_t *hub);

static void load_done(inbox_msg_t *msg, void *loop_data)
{
    struct load_job *lj = container_of(msg, struct load_job, job.done);
    hub_t *hub = lj->hub;
    struct hub_alarm_state *a = hub->alarm_state;
    (void)loop_data;
    if (a && !hub->stopping) {
        a->loading = false;
        if (lj->job.status == 0) {
            int64_t now = ctl_wall_ms();
            if (alarm_engine_set_rules(a->engine, lj->rules, lj->nrules, now) == 0) {
                free(a->rules);
                a->rules = lj->rules;
                a->nrules = lj->nrules;
                lj->rules = NULL;
            }
            if (lj->with_open)
                alarm_engine_restore(a->engine, lj->open, lj->nopen, now);
            if (!a->loaded)
                log_info("alarms: %zu rules, %zu open alarms", a->nrules, lj->nopen);
            a->loaded = true;
            track_devices(hub);
        } else {
            log_warn("alarms: loading rules failed: %s (retrying)",
                     lj->err[0] ? lj->err : "database error");
            a->reload = true;
        }
        if (a->reload && a->loaded) {
            a->reload = false;
            submit_load(hub);
        }
    }
    free(lj->rules);
    free(lj->open);
    free(lj);
    hub_unref(hub);
}

static void submit_load(hub_t *hub)
{
    struct hub_alarm_state *a = hub->alarm_state;
    if (a->loading) {
        a->reload = true;
        return;
    }
    struct load_job *lj = calloc(1, sizeof(*lj));
    if (!lj)
        return;
    lj->hub = hub;
    lj->with_open = !a->loaded;
    lj->job.run = load_run;
    lj->job.reply_to = hub->deps.inbox;
    lj->job.done.handle = load_done;
    if (db_pool_submit(hub->deps.db, &lj->job) != 0) {
        free(lj);
        a->reload = true; /* the tick tries again */
        return;
    }
    a->loading = true;
    hub->refs++;
}

int hub_alarms_start(hub_t *hub)
{
    if (!hub->deps.db)
        return IOT_OK; /* no alarms (tests of the hub alone) */
    struct hub_alarm_state *a = calloc(1, sizeof(*a));
    if (!a)
        return IOT_ENOMEM;
    struct alarm_engine_hooks hooks = {.emit = on_transition, .in_scope = in_scope, .arg = hub};
    int rc = alarm_engine_new(&a->engine, &hooks);
    if (rc != 0) {
        free(a);
        return rc;
    }
    a->hub = hub;
    hub->alarm_state = a;
    submit_load(hub);
    return IOT_OK;
}

static const char *field_of(const void *ctx, const char *key)
{
    return event_field(ctx, key);
}

void hub_alarms_event(hub_t *hub, struct event *ev)
{
    struct hub_alarm_state *a = hub->alarm_state;
    if (!a || !a->loaded)
        return;
    if (ev->kind == EVENT_KIND_EVENT) {
        alarm_engine_event(a->engine, ev->tenant, ev->device, ev->type, ev->name, field_of, ev,
                           ev->ts_ms);
        return;
    }
    const char *state = event_field(ev, "state");
    const char *value = event_field(ev, "value");
    alarm_engine_device_alarm(a->engine, ev->tenant, ev->device, ev->name,
                              event_field(ev, "severity"), state && strcmp(state, "cleared") == 0,
                              value, event_field(ev, "msg"), ev->ts_ms);
}

void hub_alarms_presence(hub_t *hub, const char *tenant, const char *device, const char *type,
                         bool online)
{
    struct hub_alarm_state *a = hub->alarm_state;
    if (!a || !a->loaded)
        return;
    if (online)
        alarm_engine_device_online(a->engine, tenant, device, type, ctl_wall_ms());
    else
        alarm_engine_device_offline(a->engine, tenant, device, type, ctl_wall_ms());
}

void hub_alarms_tick(hub_t *hub)
{
    struct hub_alarm_state *a = hub->alarm_state;
    if (!a)
        return;
    if (a->reload && !a->loading) {
        a->reload = false;
        submit_load(hub);
    }
    if (!a->loaded)
        return;
    track_devices(hub);
    alarm_engine_tick(a->engine, ctl_wall_ms());
}

const char *hub_alarm_rule_event(const hub_t *hub, uint64_t rule_id)
{
    return hub->alarm_state ? rule_event(hub->alarm_state, rule_id) : "";
}

void hub_alarm_rules_changed(hub_t *hub)
{
    if (hub->alarm_state && !hub->stopping)
        submit_load(hub);
}

void hub_alarms_stop(hub_t *hub)
{
    struct hub_alarm_state *a = hub->alarm_state;
    if (!a)
        return;
    hub->alarm_state = NULL;
    alarm_engine_free(a->engine);
    registry_release(a->tracked);
    free(a->rules);
    free(a);
}
