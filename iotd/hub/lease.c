/*
 * lease.c - periodic events as leases (see hub.h).
 *
 * One lease per (device, event) with its holders, each with an expiry. The first holder makes
 * iotd send the catalogue's start command to the device; when the last holder is gone (it
 * released, its session or stream ended, or its lease expired) iotd sends the stop command and
 * forgets the lease. The commands go through the relay like any other message, as sender
 * "iotd" with operator rights in the device's tenant. A device that is offline when its lease
 * starts gets the start command when it comes online; a start that failed (timeout, error) is
 * tried again at most every LEASE_RETRY_MS while the device is online.
 *
 * In a cluster the node the device is online on is the lease's authority: a lease here on a
 * device online on another node sends no command but holds the lease there, in this node's
 * name (hub_cluster_port), renewed every HUB_LEASE_RENEW_MS and released when its last holder
 * here is gone. That node counts this node as one holder among its own, so that the start goes
 * once for the first holder anywhere and the stop once for the last. A renewal that finds the
 * device gone from that node releases it there and holds the lease where the device is now.
 */
#include "hub/hub_internal.h"

#include "base/log.h"
#include "iot_error.h"
#include "iot_grow.h"
#include "relay/relay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LEASE_RETRY_MS 10000

struct lease_command {
    hub_t *hub;
    char tenant[65], device[65], event[65], command[65];
    bool start;
};

static struct lease *lease_find(hub_t *hub, const char *device, const char *event, size_t *index)
{
    for (size_t i = 0; i < hub->nleases; i++) {
        struct lease *l = hub->leases[i];
        if (strcmp(l->device, device) == 0 && strcmp(l->event, event) == 0) {
            if (index)
                *index = i;
            return l;
        }
    }
    return NULL;
}

static void on_command_answer(inbox_msg_t *msg, void *loop_data)
{
    struct relay_answer *a = container_of(msg, struct relay_answer, msg);
    struct lease_command *cmd = a->origin.cookie;
    hub_t *hub = cmd->hub;
    (void)loop_data;
    if (!hub->stopping) {
        struct lease *l = lease_find(hub, cmd->device, cmd->event, NULL);
        if (a->outcome != RELAY_OK)
            log_warn("lease: %s of %s on %s: %s%s%s", cmd->start ? "start" : "stop", cmd->event,
                     cmd->device, relay_outcome_name(a->outcome), a->why[0] ? ": " : "", a->why);
        else
            log_info("lease: %s of %s on %s acknowledged", cmd->start ? "start" : "stop",
                     cmd->event, cmd->device);
        if (l && cmd->start) {
            l->sending = false;
            l->started = a->outcome == RELAY_OK;
        }
    }
    free(cmd);
    free(a);
    hub_unref(hub);
}

/* Relay the start or stop command of lease l to its device. False if it could not be sent
 * (offline, busy, no longer in the catalogue). */
static bool send_command(hub_t *hub, const struct lease *l, bool start)
{
    const char *name = start ? l->start : l->stop;
    sessions_t *sessions = hub->deps.sessions;
    uint32_t timeout_ms = 0;
    char why[96];
    if (!sessions)
        return false;
    registry_snapshot_t *snap = registry_acquire(hub->deps.registry);
    enum relay_outcome outcome = relay_check(snap, NULL, l->tenant, l->device, name, 0, NULL, 0,
                                             60000, &timeout_ms, why, sizeof(why));
    registry_release(snap);
    if (outcome != RELAY_OK) {
        log_warn("lease: cannot send %s to %s: %s", name, l->device, why);
        return false;
    }
    struct lease_command *cmd = calloc(1, sizeof(*cmd));
    if (!cmd)
        return false;
    cmd->hub = hub;
    cmd->start = start;
    snprintf(cmd->tenant, sizeof(cmd->tenant), "%s", l->tenant);
    snprintf(cmd->device, sizeof(cmd->device), "%s", l->device);
    snprintf(cmd->event, sizeof(cmd->event), "%s", l->event);
    snprintf(cmd->command, sizeof(cmd->command), "%s", name);
    struct relay_origin origin = {
        .inbox = hub->deps.inbox, .on_answer = on_command_answer, .cookie = cmd, .id = 1};
    struct relay_request *req =
        relay_request_new(&origin, IOTP_SERVER_ADDRESS, l->tenant, l->device, name, 0, NULL,
                          timeout_ms, NULL, uv_hrtime());
    outcome = req ? hub->deps.port.relay(sessions, -1, req) : RELAY_INTERNAL;
    if (outcome != RELAY_OK) {
        /* Audited like any relayed command (who: iotd); one that reached the device is audited
         * where its outcome is known, on the device's thread. */
        relay_audit_record(hub->deps.audit, l->tenant, IOTP_SERVER_ADDRESS, l->device, name,
                           outcome, 0, 0);
        free(req);
        free(cmd);
        return false;
    }
    hub->refs++; /* until the answer is back */
    return true;
}

/* The other node the device of l is online on; 0 if it is here, offline, or there is no
 * cluster. */
static uint16_t device_node(hub_t *hub, const struct lease *l)
{
    struct presence_entry e;
    if (!hub->cluster.lease || !presence_lookup(hub->deps.presence, l->device, &e) || !e.online)
        return 0;
    return e.node;
}

/* Hold (renew) l at the device's node, or release it there (not once the cluster has
 * stopped: its node then drops our leases itself). */
static void remote_hold(hub_t *hub, struct lease *l, bool hold)
{
    if (hub->cluster.lease)
        hub->cluster.lease(hub->cluster.arg, l->node, l->tenant, l->device, l->event, hold);
    l->renewed_ms = hub_now(hub);
}

/* Release l at the node that held it: the device is no longer there. Not started, so that the
 * next try starts (or holds) it where the device is now. */
static void remote_unhold(hub_t *hub, struct lease *l)
{
    if (!l->node)
        return;
    remote_hold(hub, l, false);
    l->node = 0;
    l->started = false;
}

static void try_start(hub_t *hub, struct lease *l)
{
    if (l->started || l->sending)
        return;
    l->last_try_ms = hub_now(hub);
    uint16_t node = device_node(hub, l);
    if (node) {
        l->node = node;
        l->started = true; /* there: its node sends the command */
        remote_hold(hub, l, true);
        return;
    }
    l->sending = send_command(hub, l, true);
}

/* Forget lease i, sending its stop if it was started (or releasing it at its node). */
static void lease_end(hub_t *hub, size_t i)
{
    struct lease *l = hub->leases[i];
    if (l->node)
        remote_hold(hub, l, false);
    else if (l->started || l->sending)
        send_command(hub, l, false);
    log_info("lease: %s on %s ended", l->event, l->device);
    hub->leases[i] = hub->leases[--hub->nleases];
    free(l->holders);
    free(l);
}

int hub_lease(hub_t *hub, uint64_t holder, const char *tenant, const char *device,
              const char *event, uint32_t ttl_ms, char *err, size_t errlen)
{
    struct registry_device_info d;
    struct registry_message_info m;
    registry_snapshot_t *snap = registry_acquire(hub->deps.registry);
    int rc = IOT_OK;
    struct lease *l = NULL;

    if (registry_device_lookup(snap, device, &d) != 0 ||
        (tenant && tenant[0] && strcmp(d.tenant, tenant) != 0)) {
        bool scoped = tenant && tenant[0];
        snprintf(err, errlen, "no device %s%s%s", device, scoped ? " in tenant " : "",
                 scoped ? tenant : "");
        rc = IOT_ENOTFOUND;
        goto out;
    }
    if (registry_message_lookup(snap, device, event, &m) != 0 || !m.event) {
        snprintf(err, errlen, "%s is not an event of type %s", event, d.type);
        rc = IOT_ENOTFOUND;
        goto out;
    }
    if (!m.start || !m.stop) {
        snprintf(err, errlen,
                 "event %s of type %s has no start/stop commands (message add --start)", event,
                 d.type);
        rc = IOT_EINVAL;
        goto out;
    }
    l = lease_find(hub, device, event, NULL);
    if (!l) {
        struct lease **grown =
            iot_grow(hub->leases, hub->nleases, &hub->cap_leases, 16, sizeof(*grown));
        if (!grown) {
            rc = IOT_ENOMEM;
            goto out;
        }
        hub->leases = grown;
        if (!(l = calloc(1, sizeof(*l)))) {
            rc = IOT_ENOMEM;
            goto out;
        }
        snprintf(l->tenant, sizeof(l->tenant), "%s", d.tenant);
        snprintf(l->device, sizeof(l->device), "%s", device);
        snprintf(l->event, sizeof(l->event), "%s", event);
        snprintf(l->start, sizeof(l->start), "%s", m.start);
        snprintf(l->stop, sizeof(l->stop), "%s", m.stop);
        hub->leases[hub->nleases++] = l;
    }
    uint64_t expires = hub_now(hub) + ttl_ms;
    for (size_t i = 0; i < l->nholders; i++) {
        if (l->holders[i].holder == holder) {
            l->holders[i].expires_ms = expires; /* renewed */
            goto out;
        }
    }
    struct lease_holder *holders = iot_grow(l->holders, l->nholders, &l->cap, 4, sizeof(*holders));
    if (!holders) {
        rc = IOT_ENOMEM;
        goto out;
    }
    l->holders = holders;
    l->holders[l->nholders++] = (struct lease_holder){holder, expires};
    if (l->nholders == 1)
        log_info("lease: %s on %s started (first holder)", event, device);
    try_start(hub, l);
out:
    if (rc != IOT_OK && l && l->nholders == 0) {
        size_t i;
        if (lease_find(hub, device, event, &i) == l) {
            hub->leases[i] = hub->leases[--hub->nleases];
            free(l->holders);
            free(l);
        }
    }
    registry_release(snap);
    return rc;
}

/* Drop the holders matching (holder, or every expired one when holder is 0; of the lease of
 * event on device only when device is not NULL), ending leases left without any. */
static void drop_holders(hub_t *hub, uint64_t holder, uint64_t now, const char *device,
                         const char *event)
{
    for (size_t i = 0; i < hub->nleases;) {
        struct lease *l = hub->leases[i];
        if (device && (strcmp(l->device, device) != 0 || strcmp(l->event, event) != 0)) {
            i++;
            continue;
        }
        for (size_t k = 0; k < l->nholders;) {
            bool gone = holder ? l->holders[k].holder == holder : l->holders[k].expires_ms <= now;
            if (gone)
                l->holders[k] = l->holders[--l->nholders];
            else
                k++;
        }
        if (l->nholders == 0)
            lease_end(hub, i); /* moves the last lease to i: look at i again */
        else
            i++;
    }
}

void hub_release(hub_t *hub, uint64_t holder)
{
    drop_holders(hub, holder, 0, NULL, NULL);
}

void hub_release_one(hub_t *hub, uint64_t holder, const char *device, const char *event)
{
    drop_holders(hub, holder, 0, device, event);
}

void hub_set_cluster(hub_t *hub, const struct hub_cluster_port *port)
{
    hub->cluster = port ? *port : (struct hub_cluster_port){0};
}

uint64_t hub_node_holder(uint16_t node)
{
    return (3ull << 62) | node;
}

void hub_release_device(hub_t *hub, const char *device)
{
    for (size_t i = 0; i < hub->nleases;) {
        struct lease *l = hub->leases[i];
        if (strcmp(l->device, device) != 0) {
            i++;
            continue;
        }
        /* Its session has just ended: there is nobody to send the stop to (its node, if
         * another, ends its leases itself). */
        l->started = l->sending = false;
        l->node = 0;
        lease_end(hub, i); /* moves the last lease to i: look at i again */
    }
}

void lease_tick(hub_t *hub)
{
    uint64_t now = hub_now(hub);
    drop_holders(hub, 0, now, NULL, NULL);
    for (size_t i = 0; i < hub->nleases; i++) {
        struct lease *l = hub->leases[i];
        if (l->node && now - l->renewed_ms >= HUB_LEASE_RENEW_MS) {
            if (device_node(hub, l) == l->node) {
                remote_hold(hub, l, true);
                continue;
            }
            /* The device left that node: held again where it is, once it is online. */
            remote_unhold(hub, l);
            l->last_try_ms = 0;
        }
        if (!l->started && !l->sending && now - l->last_try_ms >= LEASE_RETRY_MS) {
            struct presence_entry e;
            if (presence_lookup(hub->deps.presence, l->device, &e) && e.online)
                try_start(hub, l);
        }
    }
}

void lease_device_online(hub_t *hub, const char *device)
{
    for (size_t i = 0; i < hub->nleases; i++) {
        struct lease *l = hub->leases[i];
        if (strcmp(l->device, device) == 0) {
            /* A device that reconnects has forgotten what it was told: start again (here,
             * where it now is). */
            remote_unhold(hub, l);
            l->started = false;
            l->sending = false;
            try_start(hub, l);
        }
    }
}

void lease_free_all(hub_t *hub)
{
    for (size_t i = 0; i < hub->nleases; i++) {
        free(hub->leases[i]->holders);
        free(hub->leases[i]);
    }
    hub->nleases = 0;
}
