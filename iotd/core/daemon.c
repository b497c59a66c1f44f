/*
 * daemon.c - start, run, reload and stop the daemon (see daemon.h).
 *
 * Start-up steps may block (they run before the loop serves anyone): creating the database,
 * migrating, loading the first snapshot. From READY on, the main loop never blocks except
 * during the stop sequence, where joining threads is the point.
 */
#include "core/daemon.h"
#include "db/backup.h"

#include "base/log.h"
#include "ctl_proto.h"
#include "registry/admin.h"
#include "stats/stats.h"
#include "iot_error.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#define MARIADB_START_TIMEOUT_MS 60000
#define MARIADB_STOP_TIMEOUT_MS  30000

static cJSON *daemon_status(void *arg)
{
    struct iotd *d = arg;
    cJSON *st = cJSON_CreateObject();
    if (!st)
        return NULL;
    size_t tenants, devices, users, rules;
    registry_snapshot_t *snap = registry_acquire(d->registry);
    registry_counts(snap, &tenants, &devices, &users, &rules);
    registry_release(snap);

    cJSON_AddStringToObject(st, "version", IOTD_VERSION);
    cJSON_AddNumberToObject(st, "pid", getpid());
    cJSON_AddNumberToObject(st, "uptime_s", (double)((uv_hrtime() - d->started_ns) / 1000000000));
    cJSON_AddStringToObject(st, "state_dir", d->cfg.state_dir);
    cJSON_AddNumberToObject(st, "io_threads", d->io_count);
    cJSON_AddNumberToObject(st, "control_clients", control_server_clients(d->control));

    cJSON *db = cJSON_AddObjectToObject(st, "database");
    size_t depth, high, cap;
    uint64_t done, failed;
    unsigned connected;
    db_pool_stats(d->db, &depth, &high, &cap, &done, &failed, &connected);
    cJSON_AddStringToObject(db, "url", d->cfg.db_url);
    cJSON_AddNumberToObject(db, "schema_version", d->schema_version);
    cJSON_AddNumberToObject(db, "threads", d->cfg.db_threads);
    cJSON_AddNumberToObject(db, "connected", connected);
    cJSON_AddNumberToObject(db, "queue_depth", (double)depth);
    cJSON_AddNumberToObject(db, "jobs_done", (double)done);
    cJSON_AddNumberToObject(db, "jobs_failed", (double)failed);
    if (d->mariadb)
        cJSON_AddNumberToObject(db, "local_restarts", mariadb_local_restarts(d->mariadb));

    cJSON *dev = cJSON_AddObjectToObject(st, "devices");
    cJSON_AddNumberToObject(dev, "online", (double)presence_online(d->presence));
    if (d->listener)
        cJSON_AddNumberToObject(dev, "port", net_listener_port(d->listener));
    if (d->tls_listener)
        cJSON_AddNumberToObject(dev, "tls_port", net_listener_port(d->tls_listener));
    cJSON *web = d->web ? cJSON_AddObjectToObject(st, "web") : NULL;
    if (web && web_port(d->web))
        cJSON_AddNumberToObject(web, "port", web_port(d->web));
    if (web && web_tls_port(d->web))
        cJSON_AddNumberToObject(web, "tls_port", web_tls_port(d->web));
    uint64_t sessions = 0, failures = 0, limited = 0;
    for (unsigned i = 0; d->sessions && i < d->io_count; i++) {
        const struct session_counters *c = sessions_counters(d->sessions, i);
        sessions += atomic_load(&c->sessions);
        failures += atomic_load(&c->auth_failures);
        limited += atomic_load(&c->rate_limited);
    }
    cJSON_AddNumberToObject(dev, "connections", (double)sessions);
    cJSON_AddNumberToObject(dev, "auth_failures", (double)failures);
    cJSON_AddNumberToObject(dev, "rate_limited", (double)limited);

    cJSON *relay = cJSON_AddObjectToObject(st, "relay");
    uint64_t outcomes[RELAY_OUTCOME_COUNT] = {0}, late = 0, users_online = 0, holds = 0,
             output_holds = 0;
    control_server_outcomes(d->control, outcomes, RELAY_OUTCOME_COUNT);
    for (unsigned i = 0; d->sessions && i < d->io_count; i++) {
        const struct session_counters *c = sessions_counters(d->sessions, i);
        for (unsigned k = 0; k < RELAY_OUTCOME_COUNT; k++)
            outcomes[k] += atomic_load(&c->outcomes[k]);
        late += atomic_load(&c->late_answers);
        holds += atomic_load(&c->audit_holds);
        output_holds += atomic_load(&c->output_holds);
        users_online += atomic_load(&c->users);
    }
    cJSON *oc = cJSON_AddObjectToObject(relay, "outcomes");
    for (unsigned k = 0; k < RELAY_OUTCOME_COUNT; k++)
        cJSON_AddNumberToObject(oc, relay_outcome_name(k), (double)outcomes[k]);
    cJSON_AddNumberToObject(relay, "late_answers", (double)late);
    cJSON_AddNumberToObject(relay, "audit_holds", (double)holds);
    cJSON_AddNumberToObject(relay, "output_holds", (double)output_holds);
    cJSON_AddNumberToObject(relay, "users_online", (double)users_online);

    if (d->cluster)
        cJSON_AddItemToObject(st, "cluster", cluster_status(d->cluster));

    cJSON *reg = cJSON_AddObjectToObject(st, "registry");
    cJSON_AddNumberToObject(reg, "generation", (double)registry_generation(d->registry));
    cJSON_AddNumberToObject(reg, "tenants", (double)tenants);
    cJSON_AddNumberToObject(reg, "devices", (double)devices);
    cJSON_AddNumberToObject(reg, "users", (double)users);
    cJSON_AddNumberToObject(reg, "rules", (double)rules);
    return st;
}

static int make_state_dir(const char *path, char *err, size_t errlen)
{
    if (mkdir(path, 0750) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "state_dir %s: %s", path, strerror(errno));
        return IOT_EIO;
    }
    return IOT_OK;
}

/* Connect once from the main thread, create and migrate the schema, load the first snapshot. */
static int prepare_database(struct iotd *d, char *err, size_t errlen)
{
    MYSQL *conn = NULL;
    registry_snapshot_t *snap = NULL;
    int rc = db_connect(&d->target, true, &conn, err, errlen);
    if (rc != 0)
        goto out;
    if ((rc = db_migrate(conn, &d->schema_version, err, errlen)) != 0)
        goto out;
    uint64_t t0 = uv_hrtime();
    if ((rc = registry_load(conn, &snap, err, errlen)) != 0)
        goto out;
    size_t devices, rules;
    registry_counts(snap, NULL, &devices, NULL, &rules);
    registry_publish(d->registry, snap);
    log_info("database ready: schema version %d; registry of %zu devices and %zu rules loaded in "
             "%llu ms",
             d->schema_version, devices, rules, (unsigned long long)((uv_hrtime() - t0) / 1000000));
out:
    if (conn)
        mysql_close(conn);
    return rc;
}

static void log_mariadb_notice(void *arg, const char *sentence)
{
    (void)arg;
    log_warn("local MariaDB: %s", sentence);
}

/* Where the database is: the local mariadbd (started here) or [database] url. */
static int open_target(struct iotd *d, char *err, size_t errlen)
{
    int rc;
    if (strcmp(d->cfg.db_url, "local") == 0) {
        log_info("starting the local MariaDB under %s/mariadb", d->cfg.state_dir);
        rc = mariadb_local_start(&d->mariadb, &d->loop, d->cfg.state_dir, MARIADB_START_TIMEOUT_MS,
                                 err, errlen);
        if (rc != 0)
            return rc;
        mariadb_local_set_notify(d->mariadb, log_mariadb_notice, d);
        rc = db_target_for_socket(mariadb_local_socket(d->mariadb), "iotd", &d->target);
    } else {
        rc = db_target_parse(d->cfg.db_url, d->cfg.db_password_file, &d->target, err, errlen);
    }
    if (rc != 0)
        return rc;
    d->target.timeout_ms = d->cfg.db_timeout_ms;
    d->target.statement_timeout_s = d->cfg.db_statement_timeout_s;
    return IOT_OK;
}

static int open_database(struct iotd *d, char *err, size_t errlen)
{
    int rc;
    if ((rc = open_target(d, err, errlen)) != 0 || (rc = prepare_database(d, err, errlen)) != 0)
        return rc;
    return db_pool_start(&d->db, &d->target, d->cfg.db_threads, d->cfg.db_queue);
}

/* The restore proper (see iotd_restore): the database must hold no table yet. */
static int restore_into(struct iotd *d, FILE *in, int version, char *err, size_t errlen)
{
    MYSQL *conn = NULL;
    MYSQL_RES *res = NULL;
    struct backup_summary s;
    int rc = db_connect(&d->target, true, &conn, err, errlen);
    if (rc != 0)
        goto out;
    static const char count[] =
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE()";
    MYSQL_ROW row;
    if (mysql_real_query(conn, count, sizeof count - 1) != 0 || !(res = mysql_store_result(conn)) ||
        !(row = mysql_fetch_row(res))) {
        snprintf(err, errlen, "cannot inspect the database: %s", mysql_error(conn));
        rc = IOT_EDB;
        goto out;
    }
    if (atoi(row[0] ? row[0] : "0") != 0) {
        snprintf(err, errlen,
                 "the database is not empty (%s tables): a restore needs a fresh state_dir, or "
                 "an empty database for [database] url",
                 row[0]);
        rc = IOT_EEXIST;
        goto out;
    }
    if ((rc = db_migrate(conn, &d->schema_version, err, errlen)) != 0)
        goto out;
    if (d->schema_version != version) {
        snprintf(err, errlen,
                 "the backup has schema version %d and this iotd %d: restore it with the iotd "
                 "that made it, then start this one (it migrates)",
                 version, d->schema_version);
        rc = IOT_ESCHEMA;
        goto out;
    }
    if ((rc = backup_load(conn, in, &s, err, errlen)) != 0)
        goto out;
    log_info("restored %u tables, %llu rows (schema version %d)", s.tables,
             (unsigned long long)s.rows, version);
out:
    if (res)
        mysql_free_result(res);
    if (conn)
        mysql_close(conn);
    return rc;
}

int iotd_restore(struct iotd *d, const char *file, char *err, size_t errlen)
{
    uint8_t key[SECRETBOX_KEY_LEN];
    char path[4200];
    int version = 0, rc;
    bool loop = false;
    FILE *in = fopen(file, "re");
    if (!in) {
        snprintf(err, errlen, "cannot open %s: %s", file, strerror(errno));
        return IOT_EIO;
    }
    if ((rc = backup_read_header(in, &version, key, err, errlen)) != 0)
        goto out;
    if ((rc = make_state_dir(d->cfg.state_dir, err, errlen)) != 0)
        goto out;
    snprintf(path, sizeof(path), "%s/secret.key", d->cfg.state_dir);
    if (access(path, F_OK) == 0) {
        snprintf(err, errlen, "%s exists: restore into a fresh state_dir", path);
        rc = IOT_EEXIST;
        goto out;
    }
    if ((rc = uv_loop_init(&d->loop)) != 0) {
        snprintf(err, errlen, "uv_loop_init: %s", uv_strerror(rc));
        rc = IOT_EIO;
        goto out;
    }
    loop = true;
    if ((rc = open_target(d, err, errlen)) != 0 ||
        (rc = restore_into(d, in, version, err, errlen)) != 0)
        goto out;
    /* The key last: a state_dir without it was not restored (iotd(8) says to start over). */
    rc = secretbox_key_store(path, key, err, errlen);
out:
    OPENSSL_cleanse(key, sizeof key);
    fclose(in);
    if (d->mariadb) {
        mariadb_local_stop(d->mariadb, MARIADB_STOP_TIMEOUT_MS);
        d->mariadb = NULL;
    }
    if (loop) {
        uv_run(&d->loop, UV_RUN_DEFAULT);
        uv_loop_close(&d->loop);
    }
    db_target_free(&d->target);
    return rc;
}

static unsigned control_clients(void *arg)
{
    struct iotd *d = arg;
    return d->control ? control_server_clients(d->control) : 0;
}

static void control_outcomes(void *arg, uint64_t *counts, unsigned n)
{
    struct iotd *d = arg;
    if (d->control)
        control_server_outcomes(d->control, counts, n);
}

/* The cluster section of a stats sample: what iotctl status shows of it. */
static cJSON *stats_cluster(void *arg)
{
    struct iotd *d = arg;
    return d->cluster ? cluster_status(d->cluster) : NULL;
}

/* Where a stats sample reads from: the same for the control socket and /metrics. */
static struct stats_sources stats_sources_of(struct iotd *d)
{
    return (struct stats_sources){
        .version = IOTD_VERSION,
        .started_ns = d->started_ns,
        .main_inbox = &d->inbox,
        .main_tid = d->main_tid,
        .main_busy_ns = &d->meter.busy_ns,
        .io = d->io,
        .io_count = d->io_count,
        .sessions = d->sessions,
        .db = d->db,
        .conn_log = d->conn_log,
        .audit = d->audit,
        .presence = d->presence,
        .events = d->events,
        .alarm_writer = d->alarm_writer,
        .hub = d->hub,
        .control_clients = control_clients,
        .control_outcomes = control_outcomes,
        .cluster_status = stats_cluster,
        .control_arg = d,
    };
}

/* The "stats" stream's provider: one sample per call (see stats.h). */
static int daemon_stats(void *arg, const cJSON *args, struct stats_cursors *cursors,
                        void (*done)(cJSON *sample, void *cb_arg), void *cb_arg)
{
    struct iotd *d = arg;
    struct stats_sources src = stats_sources_of(d);
    long long top = ctl_get_int(args, "top", 50);
    struct stats_query q = {.top = top < 0 ? 0 : (size_t)top,
                            .sort = ctl_get_string(args, "sort"),
                            .event_seq = &cursors->connections,
                            .item_seq = &cursors->items};
    int rc = stats_collect(&src, &q, done, cb_arg);
    if (rc != 0)
        done(NULL, cb_arg);
    return rc;
}

/* /metrics: the same sample without the sessions table and the recent-events tail. */
static int web_sample(void *arg, void (*done)(cJSON *sample, void *done_arg), void *done_arg)
{
    struct iotd *d = arg;
    struct stats_sources src = stats_sources_of(d);
    uint64_t no_events = UINT64_MAX; /* past every connection event: none in the sample */
    struct stats_query q = {.top = 0, .event_seq = &no_events};
    int rc = stats_collect(&src, &q, done, done_arg);
    if (rc != 0)
        done(NULL, done_arg);
    return rc;
}

/* web_deps.ws_session: a browser's WebSocket becomes a user session on its io thread. */
static void web_ws_session(void *arg, unsigned io, conn_t *c, const char *user)
{
    struct iotd *d = arg;
    sessions_adopt(d->sessions, io, c, user);
}

/* The HTTP server, when [web] listen is set: after the sessions (whose net loops are the io
 * threads' first) and the device listeners it reports on. */
static int start_web(struct iotd *d, char *err, size_t errlen)
{
    if ((!d->cfg.web_listen || !d->cfg.web_listen[0]) &&
        (!d->cfg.web_tls_listen || !d->cfg.web_tls_listen[0]))
        return IOT_OK;
    net_listener_t *listeners[2];
    unsigned nlisteners = 0;
    if (d->listener)
        listeners[nlisteners++] = d->listener;
    if (d->tls_listener)
        listeners[nlisteners++] = d->tls_listener;
    struct web_deps deps = {.main_loop = &d->loop,
                            .main_inbox = &d->inbox,
                            .io = d->io,
                            .io_count = d->io_count,
                            .db = d->db,
                            .events = d->events,
                            .spool_max_bytes = (uint64_t)d->cfg.events_spool_max_mb * 1024 * 1024,
                            .mariadb = d->mariadb,
                            .listeners = listeners,
                            .listener_count = nlisteners,
                            .sample = web_sample,
                            .sample_arg = d,
                            .ws_session = d->sessions ? web_ws_session : NULL,
                            .ws_session_arg = d};
    /* A browser's session joins its tenant's io thread, like a native one (placement.c). */
    if (d->sessions && strcmp(d->cfg.placement, "tenant") == 0) {
        deps.place = sessions_place;
        deps.place_user = sessions_place_user;
        deps.place_arg = d->sessions;
    }
    struct web_options o = {.listen = d->cfg.web_listen,
                            .tls_listen = d->cfg.web_tls_listen,
                            .tls_cert = d->cfg.web_tls_cert,
                            .tls_key = d->cfg.web_tls_key,
                            .root = d->cfg.web_root,
                            .metrics = strcmp(d->cfg.web_metrics, "on") == 0,
                            .metrics_allow = d->cfg.web_metrics_allow,
                            .allowed_origins = d->cfg.web_allowed_origins,
                            .head_timeout_ms = d->cfg.web_head_timeout_ms,
                            .idle_timeout_ms = d->cfg.web_idle_timeout_s * 1000,
                            .max_frame = d->cfg.max_frame,
                            .session_ttl_s = d->cfg.web_session_ttl_s,
                            .server = "iotd/" IOTD_VERSION};
    int rc = web_start(&d->web, &deps, &o, err, errlen);
    if (rc == 0)
        log_info("web: listening on %s (port %u), TLS on %s (port %u), files from %s",
                 d->cfg.web_listen ? d->cfg.web_listen : "", web_port(d->web),
                 d->cfg.web_tls_listen ? d->cfg.web_tls_listen : "", web_tls_port(d->web),
                 d->cfg.web_root);
    return rc;
}

static void on_events_stopped(void *arg);
static void on_alarm_writer_released(void *arg);

/* The store's completion: durable events go to the hub (ACKs, alarms, subscribers). */
static void on_events_durable(struct event *const *events, size_t n, void *arg)
{
    struct iotd *d = arg;
    hub_durable(events, n, d->hub);
    if (d->cluster)
        cluster_events_durable(d->cluster, events, n);
}

/* With [cluster] nats: the cluster, before the first presence claim (it observes them). */
static int new_cluster(struct iotd *d)
{
    if (!d->cfg.cluster_nats || !d->cfg.cluster_nats[0])
        return IOT_OK;
    struct cluster_options o = {.nats = d->cfg.cluster_nats,
                                .node = d->cfg.cluster_node,
                                .heartbeat_ms = d->cfg.cluster_heartbeat_ms,
                                .node_timeout_ms = d->cfg.cluster_node_timeout_ms,
                                .replace_duplicate = strcmp(d->cfg.duplicate, "replace") == 0};
    return cluster_new(&d->cluster, &o, d->presence);
}

/* The cluster's link, once the sessions (which it relays to) and the hub run. */
static int start_cluster(struct iotd *d, char *err, size_t errlen)
{
    if (!d->cluster)
        return IOT_OK;
    struct cluster_deps deps = {.loop = &d->loop,
                                .inbox = &d->inbox,
                                .registry = d->registry,
                                .db = d->db,
                                .sessions = d->sessions,
                                .hub = d->hub,
                                .audit = d->audit};
    return cluster_start(d->cluster, &deps, err, errlen);
}

/* control's changed: a committed change reaches the other nodes before it is answered. */
static void cluster_changed(void *arg, bool registry, const char *ends, bool ends_tenant,
                            const char *reason, void (*done)(void *done_arg), void *done_arg)
{
    struct iotd *d = arg;
    cluster_registry_changed(d->cluster, registry, ends, ends_tenant, reason, done, done_arg);
}

/* The event side: the hub (alarm rules, subscribers, leases), the alarm writer and the durable
 * store whose completions feed the hub. Before the sessions, which hand events to them. */
static int start_events(struct iotd *d, char *err, size_t errlen)
{
    int rc;
    char spool[4200];
    struct alarm_writer_options awo = {.released = on_alarm_writer_released, .arg = d};
    if ((rc = presence_new(&d->presence)) != 0 || (rc = new_cluster(d)) != 0 ||
        (rc = alarm_writer_start(&d->alarm_writer, &d->loop, &d->inbox, d->db, &awo)) != 0)
        return rc;
    struct hub_deps hd = {.loop = &d->loop,
                          .inbox = &d->inbox,
                          .registry = d->registry,
                          .presence = d->presence,
                          .db = d->db,
                          .alarm_writer = d->alarm_writer,
                          .audit = d->audit,
                          .port = {sessions_ack, sessions_deliver, sessions_reply, sessions_relay}};
    struct hub_options ho = {.lease_max_s = d->cfg.events_lease_max_s};
    if ((rc = hub_start(&d->hub, &hd, &ho)) != 0) {
        snprintf(err, errlen, "cannot start the event hub");
        return rc;
    }
    struct query_deps qd = {.registry = d->registry,
                            .presence = d->presence,
                            .db = d->db,
                            .inbox = &d->inbox,
                            .hub = d->hub};
    if ((rc = query_start(&d->query, &qd)) != 0)
        return rc;
    snprintf(spool, sizeof(spool), "%s/events.spool", d->cfg.state_dir);
    struct event_store_options so = {
        .spool_path = spool,
        .spool_max_bytes = (uint64_t)d->cfg.events_spool_max_mb * 1024 * 1024,
        .queue_max = d->cfg.events_queue,
        .batch_max = d->cfg.events_batch_max,
        .flush_ms = d->cfg.events_flush_ms,
        .retention_days = d->cfg.events_retention_days,
        .deadline_ms = d->cfg.db_timeout_ms,
        .stopped = on_events_stopped,
    };
    if ((rc = event_store_start(&d->events, &d->loop, &d->inbox, d->db, &so, on_events_durable, d,
                                err, errlen)) != 0)
        return rc;
    hub_set_store(d->hub, d->events);
    return IOT_OK;
}

static void trust_last_address(const char *id, const char *address, void *arg)
{
    struct ratelimit_auth a = {.kind = 'd', .id = id, .peer = address};
    ratelimit_auth_succeeded(arg, &a);
}

/* The addresses devices last authenticated from are where the per-id limit never refuses them
 * (session/ratelimit.h). They are remembered in the database, so that a restart does not
 * forget them: an attacker flooding a device's id right after a restart must not lock the
 * device out at its usual address. */
static void trust_known_addresses(struct iotd *d)
{
    registry_snapshot_t *snap = registry_acquire(d->registry);
    if (!snap)
        return;
    registry_devices_last_address(snap, trust_last_address, d->ratelimit);
    registry_release(snap);
}

/* Sessions on the io threads, then the listeners that feed them. */
static int start_devices(struct iotd *d, char *err, size_t errlen)
{
    int rc;
    struct ratelimit_options rlo = {0};
    if ((rc = ratelimit_new(&d->ratelimit, &rlo)) != 0)
        return rc;
    trust_known_addresses(d);
    if ((rc = conn_log_start(&d->conn_log, &d->loop, &d->inbox, d->db, 0)) != 0 ||
        (rc = relay_audit_start(&d->audit, d->cfg.relay_audit, d->cfg.relay_audit_retention_days,
                                &d->loop, &d->inbox, d->db)) != 0 ||
        (rc = start_events(d, err, errlen)) != 0)
        return rc;
    struct session_deps deps = {.registry = d->registry,
                                .presence = d->presence,
                                .ratelimit = d->ratelimit,
                                .conn_log = d->conn_log,
                                .audit = d->audit,
                                .secret_key = d->secret_key,
                                .io = d->io,
                                .io_count = d->io_count,
                                .events = hub_session_hooks(d->hub),
                                .query = query_session_hooks(d->query),
                                .remote = d->cluster ? cluster_relay_remote(d->cluster)
                                                     : (struct relay_remote){0}};
    struct session_options opts = {
        .handshake_timeout_ms = d->cfg.handshake_timeout_ms,
        .ping_s = d->cfg.ping_s,
        .keepalive_timeout_s = d->cfg.keepalive_timeout_s,
        .replace_duplicate = strcmp(d->cfg.duplicate, "replace") == 0,
        .max_bad_frames = d->cfg.max_bad_frames,
        .max_frame = d->cfg.max_frame,
        .auth_fail_limit = d->cfg.auth_fail_limit,
        .max_in_flight = d->cfg.max_in_flight,
        .max_timeout_ms = d->cfg.max_timeout_ms,
        .login_plain = strcmp(d->cfg.login_plain, "yes") == 0,
        /* Below the output bound, or a subscriber's connection would be closed as overflowing
         * rather than skip items. */
        .subscriber_backlog = (size_t)d->cfg.events_backlog_kb * 1024 < d->cfg.output_limit / 2
                                  ? (size_t)d->cfg.events_backlog_kb * 1024
                                  : d->cfg.output_limit / 2,
    };
    if ((rc = sessions_start(&d->sessions, &deps, &opts)) != 0) {
        snprintf(err, errlen, "cannot start device sessions");
        return rc;
    }
    hub_set_sessions(d->hub, d->sessions);
    query_set_sessions(d->query, d->sessions);
    net_loop_t *loops[256];
    sessions_net_loops(d->sessions, loops);
    bool by_tenant = strcmp(d->cfg.placement, "tenant") == 0;
    /* What every device listener shares; each adds only its address and transport, so that a
     * setting cannot reach one listener and be forgotten for the other (the TLS listener once
     * ran on the 10 s default handshake timeout whatever handshake_timeout_ms said). */
    const struct net_listener_options common = {
        .output_limit = d->cfg.output_limit,
        .handshake_timeout_ms = d->cfg.handshake_timeout_ms,
        .place = by_tenant ? sessions_place : NULL,
        .place_arg = d->sessions,
    };
    if (d->cfg.listen && d->cfg.listen[0]) {
        struct net_listener_options lo = common;
        lo.address = d->cfg.listen;
        lo.transport = CONN_TCP;
        if ((rc = net_listener_start(&d->listener, &d->loop, &lo, loops, d->io_count, err,
                                     errlen)) != 0)
            return rc;
        log_info("devices: listening on %s (port %u)", d->cfg.listen,
                 net_listener_port(d->listener));
    }
    if (d->cfg.tls_listen && d->cfg.tls_listen[0]) {
        struct net_listener_options lo = common;
        lo.address = d->cfg.tls_listen;
        lo.transport = CONN_TLS;
        lo.tls_cert = d->cfg.tls_cert;
        lo.tls_key = d->cfg.tls_key;
        if ((rc = net_listener_start(&d->tls_listener, &d->loop, &lo, loops, d->io_count, err,
                                     errlen)) != 0)
            return rc;
        log_info("devices: TLS on %s (port %u)", d->cfg.tls_listen,
                 net_listener_port(d->tls_listener));
    }
    return IOT_OK;
}

static void on_stop_signal(uv_signal_t *sig, int signum);
/* control's revoke_user: a user cut off loses the browser tokens that would log it in again. */
static void revoke_browser_tokens(void *arg, const char *user)
{
    size_t n = web_revoke_user(arg, user);
    if (n)
        log_info("web: %zu browser session%s of %s revoked", n, n == 1 ? "" : "s", user);
}
/* control's revoke_tenant: a removed tenant's users lose theirs too. */
static void revoke_tenant_tokens(void *arg, const char *tenant)
{
    size_t n = web_revoke_tenant(arg, tenant);
    if (n)
        log_info("web: %zu browser session%s of tenant %s revoked", n, n == 1 ? "" : "s", tenant);
}
static void on_reload_signal(uv_signal_t *sig, int signum);

int iotd_start(struct iotd *d, char *err, size_t errlen)
{
    int rc;
    char path[4200];

    d->started_ns = uv_hrtime();
    d->main_tid = (int)syscall(SYS_gettid);
    if ((rc = uv_loop_init(&d->loop)) != 0) {
        snprintf(err, errlen, "uv_loop_init: %s", uv_strerror(rc));
        return IOT_EIO;
    }
    if ((rc = inbox_init(&d->inbox, &d->loop, d->cfg.inbox_capacity, d)) != 0)
        return rc;
    loop_meter_start(&d->loop, &d->meter);
    if ((rc = make_state_dir(d->cfg.state_dir, err, errlen)) != 0)
        return rc;
    snprintf(path, sizeof(path), "%s/secret.key", d->cfg.state_dir);
    if ((rc = secretbox_key_load(path, d->secret_key, err, errlen)) != 0)
        return rc;
    if ((rc = registry_new(&d->registry)) != 0)
        return rc;
    if ((rc = open_database(d, err, errlen)) != 0)
        return rc;

    d->io = calloc(d->cfg.threads, sizeof(*d->io));
    if (!d->io)
        return IOT_ENOMEM;
    for (unsigned i = 0; i < d->cfg.threads; i++) {
        if ((rc = io_thread_start(&d->io[i], i, d->cfg.inbox_capacity)) != 0) {
            snprintf(err, errlen, "cannot start io thread %u", i);
            return rc;
        }
        d->io_count++;
    }

    if ((rc = start_devices(d, err, errlen)) != 0 || (rc = start_web(d, err, errlen)) != 0 ||
        (rc = start_cluster(d, err, errlen)) != 0)
        return rc;

    struct control_options copts = {d->cfg.control_socket, d->cfg.control_mode,
                                    d->cfg.control_group};
    struct control_deps deps = {.loop = &d->loop,
                                .inbox = &d->inbox,
                                .db = d->db,
                                .registry = d->registry,
                                .secret_key = d->secret_key,
                                .status = daemon_status,
                                .status_arg = d,
                                .presence = d->presence,
                                .stats = daemon_stats,
                                .stats_arg = d,
                                .sessions = d->sessions,
                                .audit = d->audit,
                                .max_timeout_ms = d->cfg.max_timeout_ms,
                                .hub = d->hub,
                                .watch_backlog = (size_t)d->cfg.events_backlog_kb * 1024,
                                .revoke_user = d->web ? revoke_browser_tokens : NULL,
                                .revoke_tenant = d->web ? revoke_tenant_tokens : NULL,
                                .revoke_arg = d->web,
                                .changed = d->cluster ? cluster_changed : NULL,
                                .changed_arg = d};
    if ((rc = control_server_start(&d->control, &copts, &deps, err, errlen)) != 0)
        return rc;

    uv_signal_init(&d->loop, &d->sigterm);
    uv_signal_init(&d->loop, &d->sigint);
    uv_signal_init(&d->loop, &d->sighup);
    d->sigterm.data = d->sigint.data = d->sighup.data = d;
    uv_signal_start(&d->sigterm, on_stop_signal, SIGTERM);
    uv_signal_start(&d->sigint, on_stop_signal, SIGINT);
    uv_signal_start(&d->sighup, on_reload_signal, SIGHUP);

    log_info("iotd %s ready: %u io threads, %u db threads, control socket %s", IOTD_VERSION,
             d->io_count, d->cfg.db_threads, d->cfg.control_socket);
    sd_notifyf(0, "READY=1\nSTATUS=serving\nMAINPID=%lu", (unsigned long)getpid());
    return IOT_OK;
}

/* The registry reload of SIGHUP, on a db thread (nobody waits for it). */
struct reload_job {
    db_job_t job;
    registry_t *registry;
};

static int run_registry_reload(db_job_t *job, MYSQL *conn)
{
    struct reload_job *r = (struct reload_job *)job;
    char err[256];
    uint64_t t0 = uv_hrtime();
    int rc = admin_reload(r->registry, conn, err, sizeof(err));
    if (rc == IOT_OK)
        log_info("reload: registry reloaded from the database in %llu ms",
                 (unsigned long long)((uv_hrtime() - t0) / 1000000));
    else if (rc != IOT_EDB) /* IOT_EDB: the pool reconnects and runs it once more */
        log_error("reload: registry: %s", err);
    return rc;
}

static void free_registry_reload(db_job_t *job)
{
    free(job);
}

/* Changes publish only what they touched: a reload reads rows changed behind iotd's back. */
static void reload_registry(struct iotd *d)
{
    struct reload_job *r = calloc(1, sizeof(*r));
    if (!r) {
        log_error("reload: registry: out of memory");
        return;
    }
    r->job.run = run_registry_reload;
    r->job.destroy = free_registry_reload;
    r->registry = d->registry;
    if (db_pool_submit(d->db, &r->job) != IOT_OK) {
        log_error("reload: registry: the database queue refused the reload (full or stopping)");
        free(r);
    }
}

/* SIGHUP: re-read the file; apply what can change at run time, say what needs a restart; and
 * reload the registry from the database. */
static void on_reload_signal(uv_signal_t *sig, int signum)
{
    struct iotd *d = sig->data;
    struct iotd_config fresh;
    char err[512];
    int rc;
    (void)signum;

    sd_notify(0, "RELOADING=1");
    /* First, so that the rest of the reload is logged in the new file after a rotation. */
    rc = log_reopen();
    if (rc != 0)
        log_error("reload: reopening the log file: %s; logging on to the old one", strerror(-rc));
    if (d->db)
        reload_registry(d);
    config_defaults(&fresh);
    rc = d->config_path ? config_load(&fresh, d->config_path, err, sizeof(err)) : 0;
    if (rc == 0)
        rc = config_finish(&fresh, err, sizeof(err));
    if (rc != 0) {
        log_error("reload: %s; keeping the running configuration", err);
        goto out;
    }
    log_configure(fresh.log_level, fresh.log_target);
    struct control_options copts = {d->cfg.control_socket, fresh.control_mode, fresh.control_group};
    if (control_server_reconfigure(d->control, &copts, err, sizeof(err)) != 0)
        log_error("reload: control socket: %s", err);
    if (d->tls_listener && net_listener_reload_tls(d->tls_listener, err, sizeof(err)) != 0)
        log_error("reload: TLS certificate: %s; keeping the old one", err);
    if (web_reload_tls(d->web, err, sizeof(err)) != 0)
        log_error("reload: [web] TLS certificate: %s; keeping the old one", err);
    if (strcmp(fresh.db_url, d->cfg.db_url) != 0 || fresh.threads != d->cfg.threads ||
        strcmp(fresh.state_dir, d->cfg.state_dir) != 0)
        log_warn("reload: state_dir, threads and [database] url take effect after a restart");
    /* Keep the reloadable values in the running configuration. */
    char *tmp;
#define SWAP_STR(field) (tmp = d->cfg.field, d->cfg.field = fresh.field, fresh.field = tmp)
    SWAP_STR(log_level);
    SWAP_STR(log_target);
    SWAP_STR(control_group);
#undef SWAP_STR
    d->cfg.control_mode = fresh.control_mode;
    log_info("reloaded configuration from %s", d->config_path ? d->config_path : "defaults");
out:
    config_free(&fresh);
    sd_notify(0, "READY=1");
}

static void on_stop_signal(uv_signal_t *sig, int signum)
{
    struct iotd *d = sig->data;
    if (d->stopping)
        return;
    d->stopping = true;
    log_info("received %s: stopping", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    sd_notify(0, "STOPPING=1");
    control_server_stop(d->control);
    cluster_stop(d->cluster);
    if (d->listener)
        net_listener_stop(d->listener);
    if (d->tls_listener)
        net_listener_stop(d->tls_listener);
    web_stop(d->web);
    hub_set_sessions(d->hub, NULL);
    query_set_sessions(d->query, NULL);
    sessions_stop(d->sessions);
    d->sessions = NULL;
    for (unsigned i = 0; i < d->io_count; i++)
        io_thread_stop(&d->io[i]);
    /* What devices sent is stored (or spooled) before the database goes: acknowledged or not,
     * an event that reached iotd is not thrown away. The store may need several more db jobs
     * for that: the rest of the stop waits for its "stopped" callback. */
    hub_stop(d->hub);
    if (d->events) {
        event_store_stop(d->events);
        d->events = NULL;
    } else {
        on_events_stopped(d);
    }
}

/* The event store is gone (its "stopped" callback, or there was none): stop the alarm
 * writer, whose last transitions need the database. */
static void on_events_stopped(void *arg)
{
    struct iotd *d = arg;
    if (d->alarm_writer) {
        alarm_writer_stop(d->alarm_writer);
        d->alarm_writer = NULL;
    } else {
        on_alarm_writer_released(d);
    }
}

/* The alarm writer is gone: the batch writers and the database go last. */
static void on_alarm_writer_released(void *arg)
{
    struct iotd *d = arg;
    conn_log_stop(d->conn_log);
    relay_audit_stop(d->audit);
    /* Queued jobs finish; their completions land in the main inbox, drained when it closes. */
    db_pool_stop(d->db);
    d->db = NULL;
    inbox_close(&d->inbox, NULL);
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    uv_close((uv_handle_t *)&d->sigint, NULL);
    uv_close((uv_handle_t *)&d->sighup, NULL);
    loop_meter_stop(&d->meter);
    /* The local mariadbd keeps the loop alive; stop it from iotd_run once we are out of it. */
    uv_stop(&d->loop);
}

int iotd_run(struct iotd *d)
{
    uv_run(&d->loop, UV_RUN_DEFAULT);
    if (d->mariadb) {
        mariadb_local_stop(d->mariadb, MARIADB_STOP_TIMEOUT_MS);
        d->mariadb = NULL;
    }
    uv_run(&d->loop, UV_RUN_DEFAULT); /* close callbacks */
    hub_free(d->hub);
    query_free(d->query); /* after the db pool: its completions held it */
    d->hub = NULL;
    web_free(d->web);
    d->web = NULL;
    free(d->io);
    cluster_free(d->cluster); /* its link closed at the stop; its threads end here */
    d->cluster = NULL;
    presence_free(d->presence);
    ratelimit_free(d->ratelimit);
    registry_free(d->registry);
    db_target_free(&d->target);
    if (uv_loop_close(&d->loop) != 0)
        log_warn("main loop closed with handles still open");
    log_info("stopped");
    return 0;
}
