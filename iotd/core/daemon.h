/*
 * daemon.h - the iotd process: owns the main loop and every long-lived part, starts them in
 * dependency order and stops them in reverse.
 *
 *   start: state dir -> secret key -> database (local mariadbd or url) -> migrations ->
 *          registry snapshot -> db threads -> io threads -> device sessions -> listeners ->
 *          web -> cluster (NATS) -> control socket -> READY
 *   stop (SIGTERM/SIGINT): control socket -> cluster -> listeners -> web -> device sessions -> io
 * threads -> connection log -> db threads (queued jobs finish) -> main inbox -> mariadbd
 */
#ifndef IOTD_DAEMON_H
#define IOTD_DAEMON_H

#include "control/control_server.h"
#include "base/config.h"
#include "cluster/cluster.h"
#include "crypto/secretbox.h"
#include "db/db.h"
#include "db/mariadb_local.h"
#include "alarm/alarm_writer.h"
#include "events/store.h"
#include "hub/hub.h"
#include "loop/io_thread.h"
#include "net/conn.h"
#include "query/query.h"
#include "registry/registry.h"
#include "session/session.h"
#include "web/web.h"

#include <stdbool.h>
#include <uv.h>

struct iotd {
    struct iotd_config cfg;
    const char *config_path; /* NULL: defaults only */
    uv_loop_t loop;
    inbox_t inbox; /* the main loop's inbox (db completions) */
    io_thread_t *io;
    unsigned io_count;
    mariadb_local_t *mariadb; /* NULL unless url = local */
    struct db_target target;
    db_pool_t *db;
    registry_t *registry;
    control_server_t *control;
    presence_t *presence;
    ratelimit_t *ratelimit;
    conn_log_t *conn_log;
    relay_audit_t *audit;
    sessions_t *sessions;
    event_store_t *events;
    alarm_writer_t *alarm_writer;
    hub_t *hub;
    cluster_t *cluster; /* NULL unless [cluster] nats is set */
    query_t *query;     /* QUERY and a client's ACK (iotd/query) */
    net_listener_t *listener, *tls_listener;
    web_t *web; /* NULL unless [web] listen is set */
    uint8_t secret_key[SECRETBOX_KEY_LEN];
    uv_signal_t sigterm, sigint, sighup;
    uint64_t started_ns;
    int main_tid;
    int schema_version;
    bool stopping;
    struct loop_meter meter; /* the main loop's busy time, for stats */
};

/* Restore the backup file (iotctl backup) into the configured state_dir and database, which
 * must be fresh (no secret.key, no table), then stop the local mariadbd if it started one.
 * Nothing else starts: no listener, no control socket. */
int iotd_restore(struct iotd *d, const char *file, char *err, size_t errlen);

/* Start everything; returns after READY (the caller then runs iotd_run). */
int iotd_start(struct iotd *d, char *err, size_t errlen);
/* Run the main loop until a stop signal; then finish stopping. Returns the exit status. */
int iotd_run(struct iotd *d);

#endif
