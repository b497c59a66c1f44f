/*
 * web.h - iotd's HTTP/1.1 server ([web] in iotd.conf(5), endpoints in iotd(8)): the console's
 * static files, /healthz and /metrics, /ws (browsers' sessions, iot-websocket(7)) and the
 * session cookie's /api/session and /api/logout, on the io threads through the conn interface (no
 * second socket layer and no other web server process).
 *
 * A listener on the main loop (two: plain and TLS) hands each accepted socket to an io thread,
 * where the web module keeps its own net loop (the sessions keep theirs): connections are HTTP
 * from the first byte (after the TLS handshake on the TLS listener, where a /ws upgrade keeps
 * the TLS under its WebSocket). Static files are answered on the io thread; /healthz and /metrics
 * need what only the main loop may touch (the stats sample, the database probe), so the request
 * travels there through the main inbox and its answer comes back through the io thread's inbox,
 * while the connection waits (reading paused). Responses leave in request order.
 */
#ifndef IOTD_WEB_H
#define IOTD_WEB_H

#include "db/db.h"
#include "db/mariadb_local.h"
#include "events/store.h"
#include "loop/io_thread.h"
#include "net/conn.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct web web_t;

/* What the web module reads of the rest of iotd. All of it outlives web_stop; the pointers
 * that may be NULL say so. */
struct web_deps {
    uv_loop_t *main_loop;
    inbox_t *main_inbox;
    io_thread_t *io;
    unsigned io_count;
    db_pool_t *db;              /* probed by /healthz */
    event_store_t *events;      /* the spool's state, for /healthz; may be NULL */
    uint64_t spool_max_bytes;   /* the spool's bound: /healthz warns at 90 % */
    mariadb_local_t *mariadb;   /* the supervised local server, or NULL */
    net_listener_t **listeners; /* the device listeners, for /healthz (count may be 0) */
    unsigned listener_count;
    /* Main loop: build one stats sample (stats_collect) and hand it to done exactly once
     * (NULL if it could not be built); done owns the sample. */
    int (*sample)(void *arg, void (*done)(cJSON *sample, void *done_arg), void *done_arg);
    void *sample_arg;
    /* On io thread io: make c, a /ws connection just upgraded to a WebSocket (CONN_WS, no
     * owner), a user session (sessions_adopt); user is who its cookie logged in, or NULL (it
     * must LOGIN). From then on the connection is not the web module's. NULL: /ws is 503. */
    void (*ws_session)(void *arg, unsigned io, conn_t *c, const char *user);
    void *ws_session_arg;
    /* Where a browser's session belongs (ws_place.c), when sessions are placed by tenant:
     * place reads a native frame (the LOGIN a first message stands for), place_user a
     * user@tenant (the cookie's); both answer an io thread's index or -1 (anywhere), from any
     * io thread. NULL: a /ws connection stays on the io thread that accepted it. */
    net_place_fn place;
    int (*place_user)(const char *user, void *arg);
    void *place_arg;
};

struct web_options {
    const char *listen;     /* "host:port" (port 0: any free port), or NULL/"" (none) */
    const char *tls_listen; /* the same for HTTPS and WSS, or NULL/"" (none) */
    const char *tls_cert;   /* ...its PEM certificate chain and key */
    const char *tls_key;
    const char *root;            /* directory of the static files */
    bool metrics;                /* serve /metrics */
    const char *metrics_allow;   /* addresses and networks that may read /metrics; NULL: any */
    const char *allowed_origins; /* Origins a WebSocket may come from; NULL: the own origin */
    const char *server;          /* the Server header's value, "iotd/0.1.0" */
    unsigned head_timeout_ms;    /* a request head must arrive within this; 0: 10 s */
    unsigned idle_timeout_ms;    /* an idle keep-alive connection is closed after this; 0: 60 s */
    size_t output_limit;         /* per-connection output bound; 0: 16 MiB */
    size_t max_frame;            /* the frame limit, which is also a /ws message's; 0: 4096 */
    uint32_t session_ttl_s;      /* a browser's session cookie lives this long; 0: 1 day */
};

/* Start on the main loop's thread, after the io threads: a net loop on each, then the
 * listener. A negative IOT_E* code and a sentence in err on failure (nothing left running). */
int web_start(web_t **out, const struct web_deps *deps, const struct web_options *o, char *err,
              size_t errlen);
/* The bound ports: plain and TLS (0 for a listener not configured). */
unsigned web_port(const web_t *w);
unsigned web_tls_port(const web_t *w);
/* Reload the TLS listener's certificate and key (SIGHUP), as net_listener_reload_tls: new
 * connections use the new ones; on failure the old ones stay and err says why. Main loop. */
int web_reload_tls(web_t *w, char *err, size_t errlen);
/* Stop listening and close every HTTP connection (their io threads must still run): on the
 * main loop's thread, before the io threads stop. Requests waiting on the main loop are
 * answered into the void. */
void web_stop(web_t *w);
/* End every browser session token of user (user@tenant), returning how many ended: for
 * `user remove` and `user passwd`. Any thread. */
size_t web_revoke_user(web_t *w, const char *user);
/* The same for every user of tenant: for `tenant remove`. Any thread. */
size_t web_revoke_tenant(web_t *w, const char *tenant);
/* Free what is left, once the main loop has run its last callbacks (NULL is fine). */
void web_free(web_t *w);

#endif
