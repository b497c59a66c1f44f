/*
 * web_internal.h - what the files of iotd/web share and nobody else may rely on: the module's
 * state (web.c), each io thread's part of it, an HTTP connection (http_conn.c) and a request
 * that waits on the main loop (an "ask": /healthz and /metrics, answered by health.c and
 * web.c).
 */
#ifndef IOTD_WEB_INTERNAL_H
#define IOTD_WEB_INTERNAL_H

#include "web/web.h"

#include "web/allowlist.h"
#include "web/http_parser.h"
#include "web/web_buf.h"
#include "web/web_tokens.h"
#include "web/ws_session.h"

#define WEB_DEFAULT_HEAD_TIMEOUT 10000 /* ms */
#define WEB_DEFAULT_IDLE_TIMEOUT 60000 /* ms */
#define WEB_DEFAULT_OUTPUT_LIMIT (16 * 1024 * 1024)
#define WEB_TICK_MS              250  /* granularity of the head and idle timeouts */
#define WEB_HEALTH_TIMEOUT_MS    3000 /* a database that does not answer a probe by then is down */
/* Received bytes a connection may hold unparsed: one head, plus what one socket read brings
 * (requests pipelined behind it); a peer that sends more before reading answers is closed. */
#define WEB_INPUT_MAX (HTTP_MAX_HEAD + 65536)

struct http_conn;

/* One io thread's part: its net loop, its connections (for the timeouts) and their tick. */
struct web_loop {
    web_t *web;
    io_thread_t *io;
    net_loop_t *net;
    uv_timer_t tick;
    struct http_conn *conns;
    struct ws_session_list ws; /* the /ws connections upgraded here */
    bool stopped;              /* loop_stop ran: net is gone, a moved /ws is closed */
    uint64_t next_ask;         /* the last ask sequence number given out */
};

enum web_ask_kind { WEB_ASK_HEALTH, WEB_ASK_METRICS };

/* A request answered on the main loop. Allocated on the io thread, pushed to the main inbox,
 * answered there (status, content type, body), pushed back. Whoever holds it owns it; the
 * connection keeps only the sequence number, and the answer finds its connection again by
 * (client, seq) among the loop's live ones: one that closed or gave up waiting meanwhile is
 * not found, and the answer is dropped. So an answer that cannot go back (inbox full or
 * closing) is simply freed on the main loop. */
struct web_ask {
    inbox_msg_t msg;
    enum web_ask_kind kind;
    web_t *web;
    struct web_loop *loop;
    const struct http_conn *client; /* compared, never dereferenced, until found again */
    uint64_t seq;
    /* Main loop side: */
    int status;
    const char *content_type;
    struct web_buf body;
    struct web_ask *next; /* waiting for the same database probe */
};

struct web {
    struct web_deps deps;
    struct web_options opts; /* strings point into the copies below */
    char *root, *server, *listen, *tls_listen, *tls_cert, *tls_key, *allowed_origins;
    web_allowlist_t *metrics_allow; /* NULL: anyone may read /metrics */
    net_listener_t *listener;       /* plain HTTP, or NULL */
    net_listener_t *tls_listener;   /* HTTPS, or NULL */
    web_tokens_t *tokens;           /* browsers' session tokens */
    struct conn_ws_codec ws_codec;  /* of every /ws connection (ws_session.h) */
    struct web_loop *loops;         /* io_count of them */
    unsigned loops_started;
    /* Health (main loop, health.c): the probe in flight and the asks waiting for it. */
    struct health_probe *probe;
    struct web_ask *health_waiters;
    uv_timer_t health_timer;
    bool stopping;
    net_listener_t *listeners[4];     /* deps.listeners points here (a copy) */
    uint64_t listener_errors_seen[4]; /* accept errors of each device listener at the last check */
};

/* http_conn.c: take a new connection of wl (on its io thread). */
void http_conn_accept(struct web_loop *wl, conn_t *c);
/* http_conn.c: close connections past their deadline (the loop's tick). */
void http_conn_tick(struct web_loop *wl, uint64_t now_ms);
/* http_conn.c: the answer of an ask came back (io thread): send it, go on reading. */
void http_conn_answer(struct web_ask *a);

/* ws_place.c: the io thread (an index into the loops) a /ws connection's session belongs on:
 * by the user its cookie logged in, or else by the first message in[0, len) (LOGIN); -1:
 * anywhere; NET_PLACE_MORE: not a whole message yet. */
int ws_place_target(const web_t *w, const char *user, const uint8_t *in, size_t len);
/* ws_place.c, on wl's thread: make c (open, the 101 written) a WebSocket and a user session
 * on io thread target (-1: here), moving it there first (see the file). user: logged in by
 * the cookie, or NULL; family: of that token (0: none); early: what the browser sent behind
 * the upgrade request (taken). Neither c nor early is the caller's afterwards. */
void ws_place_start(struct web_loop *wl, conn_t *c, int target, const char *user, uint64_t family,
                    uint8_t *early, size_t early_len);

/* web.c: end the WebSockets logged in by token family on every io thread (a logout). Any io
 * thread of the module. */
void web_end_family(web_t *w, uint64_t family);

/* web.c: send a to the main loop (io thread). IOT_EBUSY/IOT_EINVAL when it cannot go. */
int web_ask_send(struct web_ask *a);
/* web.c: a is answered (main loop): back to its io thread, or freed if that is gone. */
void web_ask_reply(struct web_ask *a);
void web_ask_free(struct web_ask *a);

/* health.c (main loop): answer a /healthz ask, probing the database first. */
void health_ask(web_t *w, struct web_ask *a);
/* health.c: answer every waiting ask with 503 (stopping). */
void health_stop(web_t *w);

#endif
