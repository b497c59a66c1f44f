/*
 * control_server.h - the server side of the control socket (protocol: common/ctl_proto.h).
 *
 * Runs on the main loop. Each request is validated against the shared command table, then
 * answered where the executor table (control_dispatch.h) says: from the registry snapshot
 * (reads), by the daemon (status), or by a db job (changes: committed, snapshot reloaded and
 * published, then answered — so a change is visible to the next request of any client). Stream
 * commands (stats) answer {"stream": true} and then one {"item"} per interval until their count,
 * the client's disconnect, or the daemon's stop
 * ({"end": true, "reason": ...}). Garbage gets an error reply, never a crash.
 */
#ifndef IOTD_CONTROL_SERVER_H
#define IOTD_CONTROL_SERVER_H

#include "db/db.h"
#include "loop/inbox.h"
#include "registry/registry.h"
#include "relay/presence.h"
#include "session/session.h"
#include "hub/hub.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

typedef struct control_server control_server_t;

/* Where a stats stream is in the daemon's recent-event rings. */
struct stats_cursors {
    uint64_t connections; /* connection events (conn_log) */
    uint64_t items;       /* device events and alarm changes (hub) */
};

struct control_options {
    const char *path;  /* socket path */
    unsigned mode;     /* file mode of the socket */
    const char *group; /* admin group allowed besides root and our own uid, or NULL */
};

struct control_deps {
    uv_loop_t *loop; /* the main loop */
    inbox_t *inbox;  /* the main loop's inbox: db completions come back here */
    db_pool_t *db;
    registry_t *registry;
    const uint8_t *secret_key; /* seals device secrets */
    /* Builds the result of "status" (daemon-wide facts). */
    cJSON *(*status)(void *arg);
    void *status_arg;
    presence_t *presence; /* online state added to device list/show */
    /* Builds one sample of the "stats" stream from its args; done(sample or NULL, cb_arg) runs
     * exactly once on the main loop. *cursors is the stream's position in the recent
     * connection events and device events, advanced by each sample. */
    int (*stats)(void *arg, const cJSON *args, struct stats_cursors *cursors,
                 void (*done)(cJSON *sample, void *cb_arg), void *cb_arg);
    void *stats_arg;
    sessions_t *sessions; /* for "send": the relay's device side */
    relay_audit_t *audit; /* records each "send" */
    uint32_t max_timeout_ms;
    hub_t *hub;           /* "watch" streams, leases, alarm changes; NULL: those commands fail */
    size_t watch_backlog; /* unread output past which a watcher's items drop (0: 1 MiB) */
    /* Revokes user@tenant's browser session tokens when a change or kick ends the user's
     * sessions (the web listener's); NULL: no browsers. */
    void (*revoke_user)(void *arg, const char *user);
    /* The same for every user of a tenant, when the tenant is removed. */
    void (*revoke_tenant)(void *arg, const char *tenant);
    void *revoke_arg;
    /* A change committed here (and published in this node's snapshot, registry false: only
     * the alarm rules or alarms changed): tell the other nodes of a cluster, which cut off
     * ends (a principal, or with ends_tenant a tenant, NULL: none) with reason as this node
     * does, and call done(done_arg) on the main loop once they have it. The answer to the
     * change waits for it. NULL: a single node. */
    void (*changed)(void *arg, bool registry, const char *ends, bool ends_tenant,
                    const char *reason, void (*done)(void *done_arg), void *done_arg);
    void *changed_arg;
};

/* Bind and listen. A stale socket file is replaced; a live one (another iotd) is an error. */
int control_server_start(control_server_t **out, const struct control_options *opts,
                         const struct control_deps *deps, char *err, size_t errlen);
/* Apply a reloaded mode/group (SIGHUP). */
int control_server_reconfigure(control_server_t *srv, const struct control_options *opts, char *err,
                               size_t errlen);
/* Outcomes of the "send" requests answered so far, indexed by enum relay_outcome. */
void control_server_outcomes(const control_server_t *srv, uint64_t *counts, unsigned n);
/* Number of open client connections. */
unsigned control_server_clients(const control_server_t *srv);
/* Close the listener and every connection; requests still at the db complete silently.
 * The memory is released once the last of them has come back. */
void control_server_stop(control_server_t *srv);

#endif
