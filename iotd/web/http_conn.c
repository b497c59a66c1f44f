/*
 * http_conn.c - one HTTP/1.1 connection on its io thread: buffer what arrives, parse one
 * request head at a time (http_parser.h), dispatch it by method and path from two tables,
 * write the answer, and go on with the next pipelined request or wait (keep-alive).
 *
 * Requests are handled strictly one after the other, so answers leave in order: while one
 * waits on the main loop (an ask) the connection stops reading, and so it does while its
 * output is more than half its bound (a slow reader), resuming on the loop's tick. Timeouts,
 * checked by the same tick: a request head must be complete within head_timeout_ms of its
 * first byte, or of the accept for the first request (408, close); an idle keep-alive
 * connection is closed after idle_timeout_ms. A malformed or oversized head is answered with
 * its status and the connection is closed, since what follows it cannot be framed. After a
 * successful GET /ws the connection is a WebSocket, and a user session's from then on: its
 * conn becomes the WebSocket conn type and is handed to the session layer (ws_session.h), and
 * the http_conn is freed. POST /api/session and /api/logout set and clear the session cookie
 * (iot-websocket(7)); they carry no body.
 */
#include "web/web_internal.h"

#include "base/log.h"
#include "ctl_time.h"
#include "iot_error.h"
#include "web/response.h"
#include "web/static_files.h"
#include "web/web_path.h"
#include "web/ws_session.h"
#include "web/ws_handshake.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum http_deadline { DEADLINE_NONE, DEADLINE_HEAD, DEADLINE_IDLE, DEADLINE_ASK, DEADLINE_PLACE };

struct http_conn {
    struct web_loop *loop;
    conn_t *conn;
    struct http_parser parser;
    uint8_t *in; /* received, not yet consumed: in[0, in_len) */
    size_t in_len, in_cap;
    struct http_conn *prev, *next; /* the loop's connections */
    uint64_t deadline_ms;
    enum http_deadline deadline;
    uint64_t ask;    /* sequence number of the request waiting on the main loop, or 0 */
    bool keep_alive; /* of the request being answered */
    bool head_only;  /* ...and whether it was a HEAD */
    bool held;       /* not reading: output above half its bound */
    bool closing;
    bool upgrade; /* /ws answered 101: hand the conn over once the request is consumed */
    char upgrade_user[WEB_TOKEN_USER_MAX]; /* ...logged in by its cookie as this user, or "" */
    uint64_t upgrade_family;               /* ...of this token family (0: none) */
    bool placing; /* upgraded without a cookie: waiting for the first message (ws_place.c) */
};

static void http_conn_on_data(conn_t *c, const uint8_t *data, size_t len);
static void http_conn_on_close(conn_t *c, const char *reason);
static const struct conn_callbacks http_callbacks = {http_conn_on_data, http_conn_on_close};

static void http_conn_process(struct http_conn *h);
static void http_conn_free(struct http_conn *h);

static void set_deadline(struct http_conn *h, enum http_deadline kind)
{
    const struct web_options *o = &h->loop->web->opts;
    unsigned ms = kind == DEADLINE_IDLE    ? o->idle_timeout_ms
                  : kind == DEADLINE_PLACE ? NET_PLACE_WAIT_MS
                                           : o->head_timeout_ms;
    h->deadline = kind;
    h->deadline_ms = uv_now(&h->loop->io->loop) + ms;
}

void http_conn_accept(struct web_loop *wl, conn_t *c)
{
    struct http_conn *h = calloc(1, sizeof(*h));
    if (!h)
        return; /* no owner: the net module closes it */
    h->loop = wl;
    h->conn = c;
    h->next = wl->conns;
    if (h->next)
        h->next->prev = h;
    wl->conns = h;
    set_deadline(h, DEADLINE_HEAD); /* a connection that says nothing is not kept idle */
    conn_set_owner(c, &http_callbacks, h);
}

static void http_conn_on_close(conn_t *c, const char *reason)
{
    struct http_conn *h = conn_owner(c);
    log_debug("web: %s closed: %s", conn_peer(c, (char[PEER_ADDR_TEXT]){0}), reason);
    http_conn_free(h);
}

static void http_conn_free(struct http_conn *h)
{
    if (h->prev)
        h->prev->next = h->next;
    else
        h->loop->conns = h->next;
    if (h->next)
        h->next->prev = h->prev;
    free(h->in);
    free(h);
}

/* Send a built response; close after it when the request (or an error) says so. */
static void http_conn_send(struct http_conn *h, struct web_buf *b, bool keep_alive)
{
    if (web_buf_failed(b)) {
        conn_close(h->conn, "out of memory building a response");
        h->closing = true;
        return;
    }
    int rc = conn_write(h->conn, b->data, b->len);
    if (rc != 0) {
        conn_close(h->conn, rc == IOT_EBUSY ? "output bound reached" : "cannot write");
        h->closing = true;
        return;
    }
    if (!keep_alive) {
        conn_close(h->conn, "request said Connection: close");
        h->closing = true;
    }
}

static struct http_response response_for(struct http_conn *h, int status, bool keep_alive)
{
    return (struct http_response){.status = status,
                                  .keep_alive = keep_alive,
                                  .server = h->loop->web->opts.server,
                                  .now = time(NULL)};
}

/* A short text answer. extra: more header lines or NULL. */
static void send_text(struct http_conn *h, int status, const char *text, bool keep_alive,
                      bool head_only, const char *extra)
{
    struct web_buf b = {0};
    struct http_response r = response_for(h, status, keep_alive);
    r.extra = extra;
    http_response_text(&b, &r, text, head_only);
    http_conn_send(h, &b, keep_alive);
    web_buf_free(&b);
}

/* ---- routes ---- */

struct route_request {
    struct http_conn *h;
    const struct http_request *req;
    bool head_only;
};

static void route_static(const struct route_request *rr)
{
    struct http_conn *h = rr->h;
    char path[1024];
    bool directory;
    int rc = web_path_from_target(rr->req->target.ptr, rr->req->target.len, path, sizeof(path),
                                  &directory);
    if (rc < 0) {
        send_text(h, -rc, rc == -404 ? "not found\n" : "bad path\n", rr->req->keep_alive,
                  rr->head_only, NULL);
        return;
    }
    struct static_request s = {.root = h->loop->web->root,
                               .path = path,
                               .directory = directory,
                               .if_none_match = http_request_header(rr->req, "if-none-match"),
                               .accept_encoding = http_request_header(rr->req, "accept-encoding"),
                               .head_only = rr->head_only};
    struct web_buf b = {0};
    struct http_response r = response_for(h, 200, rr->req->keep_alive);
    static_serve(&s, &r, &b);
    http_conn_send(h, &b, rr->req->keep_alive);
    web_buf_free(&b);
}

/* Hand the request to the main loop; the connection waits for the answer. */
static void route_ask(const struct route_request *rr, enum web_ask_kind kind)
{
    struct http_conn *h = rr->h;
    struct web_ask *a = calloc(1, sizeof(*a));
    if (a) {
        uint64_t seq = ++h->loop->next_ask;
        *a = (struct web_ask){
            .kind = kind, .web = h->loop->web, .loop = h->loop, .client = h, .seq = seq};
        if (web_ask_send(a) == 0) {
            h->ask = seq;
            h->keep_alive = rr->req->keep_alive;
            h->head_only = rr->head_only;
            set_deadline(h, DEADLINE_ASK);
            conn_pause(h->conn);
            return;
        }
        free(a);
    }
    send_text(h, 503, "busy\n", rr->req->keep_alive, rr->head_only, "Retry-After: 1\r\n");
}

static void route_healthz(const struct route_request *rr)
{
    route_ask(rr, WEB_ASK_HEALTH);
}

static void route_metrics(const struct route_request *rr)
{
    const web_t *w = rr->h->loop->web;
    if (!w->opts.metrics) {
        send_text(rr->h, 404, "not found\n", rr->req->keep_alive, rr->head_only, NULL);
        return;
    }
    if (w->metrics_allow &&
        !web_allowlist_permits(w->metrics_allow,
                               conn_peer(rr->h->conn, (char[PEER_ADDR_TEXT]){0}))) {
        send_text(rr->h, 403, "forbidden\n", rr->req->keep_alive, rr->head_only, NULL);
        return;
    }
    route_ask(rr, WEB_ASK_METRICS);
}

/* The user a request's session cookie logs in, into user, and its token family; false without
 * a live one. */
static bool cookie_user(const struct route_request *rr, char *user, uint64_t *family)
{
    const struct http_slice *cookie = http_request_header(rr->req, "cookie");
    struct http_slice token;
    return cookie && web_cookie_find(cookie, WEB_TOKEN_COOKIE, &token) &&
           web_tokens_lookup(rr->h->loop->web->tokens, token.ptr, token.len, ctl_wall_ms(), user,
                             family) == 0;
}

/* Whether the request came over TLS: its own origin is https://, its cookie Secure. */
static bool over_tls(const struct http_conn *h)
{
    return conn_info(h->conn)->encrypted;
}

/* GET /ws: the WebSocket opening handshake; the session comes once the request is consumed
 * (http_conn_upgrade). */
static void route_ws(const struct route_request *rr)
{
    struct http_conn *h = rr->h;
    const web_t *w = h->loop->web;
    char accept[WS_ACCEPT_LEN + 1];
    struct ws_handshake hs = {.allowed_origins = w->opts.allowed_origins,
                              .scheme = over_tls(h) ? "https" : "http"};
    int status = ws_handshake_check(&hs, rr->req, accept);
    if (status == 426) {
        send_text(h, 426, "WebSocket version 13 only\n", rr->req->keep_alive, rr->head_only,
                  "Sec-WebSocket-Version: 13\r\n");
        return;
    }
    if (status != 101) {
        send_text(h, status, status == 403 ? "origin not allowed\n" : "not a WebSocket upgrade\n",
                  rr->req->keep_alive, rr->head_only, NULL);
        return;
    }
    if (!w->deps.ws_session) {
        send_text(h, 503, "no sessions\n", false, false, NULL);
        return;
    }
    if (!cookie_user(rr, h->upgrade_user, &h->upgrade_family)) {
        h->upgrade_user[0] = '\0';
        h->upgrade_family = 0;
    }
    struct web_buf b = {0};
    web_buf_printf(&b,
                   "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\nServer: %s\r\n\r\n",
                   accept, w->opts.server);
    http_conn_send(h, &b, true);
    web_buf_free(&b);
    h->upgrade = !h->closing;
}

/* The cookie's attributes: never readable by scripts, never sent by another site's page, and
 * over TLS never sent without it (Secure). */
#define COOKIE_ATTRIBUTES "; Path=/; HttpOnly; SameSite=Strict"
static const char *cookie_secure(const struct http_conn *h)
{
    return over_tls(h) ? "; Secure" : "";
}

/* The requests that set and clear the cookie come from the console's own pages: the same
 * Origin rule as /ws (a request without Origin is refused too). */
static bool api_origin_ok(const struct route_request *rr)
{
    const web_t *w = rr->h->loop->web;
    struct ws_handshake hs = {.allowed_origins = w->opts.allowed_origins,
                              .scheme = over_tls(rr->h) ? "https" : "http"};
    if (ws_origin_allowed(&hs, rr->req))
        return true;
    send_text(rr->h, 403, "origin not allowed\n", rr->req->keep_alive, false, NULL);
    return false;
}

/* POST /api/session with X-Iotd-Ticket: the ticket of a WELCOME for a session cookie. */
static void route_api_session(const struct route_request *rr)
{
    struct http_conn *h = rr->h;
    const web_t *w = h->loop->web;
    if (!api_origin_ok(rr))
        return;
    const struct http_slice *ticket = http_request_header(rr->req, "x-iotd-ticket");
    char token[WEB_TOKEN_LEN + 1];
    if (!ticket ||
        web_tokens_redeem(w->tokens, ticket->ptr, ticket->len, ctl_wall_ms(), token) != 0) {
        send_text(h, 403, "no valid ticket\n", rr->req->keep_alive, false, NULL);
        return;
    }
    char extra[256];
    snprintf(extra, sizeof(extra),
             "Set-Cookie: " WEB_TOKEN_COOKIE "=%s; Max-Age=%u" COOKIE_ATTRIBUTES
             "%s\r\nCache-Control: no-store\r\n",
             token, web_tokens_ttl(w->tokens), cookie_secure(h));
    send_text(h, 200, "cookie set\n", rr->req->keep_alive, false, extra);
}

/* POST /api/logout: the cookie's token ends, and the cookie with it, and so do the WebSockets
 * it logged in (and the one whose ticket bought it). */
static void route_api_logout(const struct route_request *rr)
{
    struct http_conn *h = rr->h;
    if (!api_origin_ok(rr))
        return;
    const struct http_slice *cookie = http_request_header(rr->req, "cookie");
    struct http_slice token;
    uint64_t family = 0;
    if (cookie && web_cookie_find(cookie, WEB_TOKEN_COOKIE, &token) &&
        web_tokens_revoke(h->loop->web->tokens, token.ptr, token.len, &family) == 0)
        web_end_family(h->loop->web, family);
    char extra[160];
    snprintf(extra, sizeof(extra),
             "Set-Cookie: " WEB_TOKEN_COOKIE "=; Max-Age=0" COOKIE_ATTRIBUTES
             "%s\r\nCache-Control: no-store\r\n",
             cookie_secure(h));
    send_text(h, 200, "logged out\n", rr->req->keep_alive, false, extra);
}

struct route {
    const char *path; /* exact, without the query */
    void (*handle)(const struct route_request *rr);
    bool post; /* POST only (else GET and HEAD only) */
};

/* Anything else is a static file (GET and HEAD). */
static const struct route routes[] = {
    {"/healthz", route_healthz, false},
    {"/metrics", route_metrics, false},
    {"/ws", route_ws, false},
    {"/api/session", route_api_session, true},
    {"/api/logout", route_api_logout, true},
};

struct method {
    const char *name;
    bool head_only;
    bool post;
};

static const struct method methods[] = {
    {"GET", false, false}, {"HEAD", true, false}, {"POST", false, true}};

static void http_conn_dispatch(struct http_conn *h, const struct http_request *req)
{
    const struct method *m = NULL;
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (req->method.len == strlen(methods[i].name) &&
            memcmp(req->method.ptr, methods[i].name, req->method.len) == 0)
            m = &methods[i];
    const char *q = memchr(req->target.ptr, '?', req->target.len);
    size_t path_len = q ? (size_t)(q - req->target.ptr) : req->target.len;
    const struct route *route = NULL;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        if (path_len == strlen(routes[i].path) &&
            memcmp(req->target.ptr, routes[i].path, path_len) == 0)
            route = &routes[i];
    bool post = route && route->post;
    if (!m || m->post != post) {
        send_text(h, 405, "method not allowed\n", req->keep_alive, false,
                  post ? "Allow: POST\r\n" : "Allow: GET, HEAD\r\n");
        return;
    }
    struct route_request rr = {h, req, m->head_only};
    if (route)
        route->handle(&rr);
    else
        route_static(&rr);
}

/* ---- input ---- */

static void http_conn_consume(struct http_conn *h, size_t n)
{
    memmove(h->in, h->in + n, h->in_len - n);
    h->in_len -= n;
    http_parser_reset(&h->parser);
}

/* After /ws's 101 (and, without a cookie, the first message: see ws_place.c): the conn
 * becomes a WebSocket and a user session's on the io thread target (-1: this one), and h is
 * freed (with it the http callbacks: nothing of h may be used after this). What the browser
 * sent behind the upgrade request goes along. */
static void http_conn_upgrade_to(struct http_conn *h, int target)
{
    struct web_loop *wl = h->loop;
    conn_t *c = h->conn;
    uint8_t *early = h->in;
    size_t early_len = h->in_len;
    h->in = NULL;
    char user[WEB_TOKEN_USER_MAX];
    memcpy(user, h->upgrade_user, sizeof(user));
    uint64_t family = h->upgrade_family;
    conn_set_owner(c, NULL, NULL);
    http_conn_free(h);
    ws_place_start(wl, c, target, user[0] ? user : NULL, family, early, early_len);
}

/* Where the session goes is decided now (a cookie, or the first message is here), or the
 * connection waits for its first message, at most NET_PLACE_WAIT_MS. */
static void http_conn_upgrade(struct http_conn *h)
{
    int target = ws_place_target(h->loop->web, h->upgrade_user[0] ? h->upgrade_user : NULL, h->in,
                                 h->in_len);
    if (target != NET_PLACE_MORE) {
        http_conn_upgrade_to(h, target);
        return;
    }
    if (!h->placing) {
        h->placing = true;
        h->upgrade = false;
        set_deadline(h, DEADLINE_PLACE);
    }
}

/* Handle every complete request in the buffer, one at a time, until one waits or the
 * connection closes. */
static void http_conn_process(struct http_conn *h)
{
    while (!h->closing && !h->ask && h->in_len > 0) {
        if (conn_pending(h->conn) > conn_output_limit(h->conn) / 2) {
            h->held = true; /* the tick resumes once the peer has read */
            conn_pause(h->conn);
            return;
        }
        struct http_request req;
        int rc = http_parse_request(&h->parser, h->in, h->in_len, &req);
        if (rc == HTTP_PARSE_MORE) {
            if (h->deadline != DEADLINE_HEAD)
                set_deadline(h, DEADLINE_HEAD);
            return;
        }
        if (rc < 0) {
            log_debug("web: %s: bad request head (%d)",
                      conn_peer(h->conn, (char[PEER_ADDR_TEXT]){0}), -rc);
            send_text(h, -rc, "bad request\n", false, false, NULL);
            return;
        }
        http_conn_dispatch(h, &req);
        http_conn_consume(h, (size_t)rc);
        if (h->upgrade) {
            http_conn_upgrade(h);
            return;
        }
        if (!h->ask)
            set_deadline(h, h->in_len > 0 ? DEADLINE_HEAD : DEADLINE_IDLE);
    }
}

static void http_conn_on_data(conn_t *c, const uint8_t *data, size_t len)
{
    struct http_conn *h = conn_owner(c);
    if (h->closing)
        return;
    if (len > WEB_INPUT_MAX - h->in_len) {
        conn_close(c, "too much input before reading the answers");
        h->closing = true;
        return;
    }
    if (h->in_len + len > h->in_cap) {
        size_t cap = h->in_cap ? h->in_cap : 4096;
        while (cap < h->in_len + len)
            cap *= 2;
        uint8_t *in = realloc(h->in, cap);
        if (!in) {
            conn_close(c, "out of memory");
            h->closing = true;
            return;
        }
        h->in = in;
        h->in_cap = cap;
    }
    memcpy(h->in + h->in_len, data, len);
    h->in_len += len;
    if (h->placing)
        http_conn_upgrade(h);
    else
        http_conn_process(h);
}

void http_conn_answer(struct web_ask *a)
{
    struct http_conn *h = a->loop->conns;
    while (h && (h != a->client || h->ask != a->seq))
        h = h->next;
    if (!h || h->closing)
        return; /* closed, or gave up waiting */
    h->ask = 0;
    struct web_buf b = {0};
    struct http_response r = response_for(h, a->status, h->keep_alive);
    r.content_type = a->content_type;
    r.content_length = a->body.len;
    r.extra = "Cache-Control: no-store\r\n";
    http_response_head(&b, &r);
    if (!h->head_only)
        web_buf_append(&b, a->body.data, a->body.len);
    http_conn_send(h, &b, h->keep_alive);
    web_buf_free(&b);
    if (h->closing)
        return;
    set_deadline(h, h->in_len > 0 ? DEADLINE_HEAD : DEADLINE_IDLE);
    conn_resume(h->conn);
    http_conn_process(h);
}

void http_conn_tick(struct web_loop *wl, uint64_t now_ms)
{
    for (struct http_conn *h = wl->conns, *next; h; h = next) {
        next = h->next;
        if (h->closing)
            continue;
        bool due = h->deadline != DEADLINE_NONE && now_ms >= h->deadline_ms;
        if (h->held) {
            if (conn_pending(h->conn) <= conn_output_limit(h->conn) / 2) {
                h->held = false;
                conn_resume(h->conn);
                http_conn_process(h);
            } else if (due) {
                conn_close(h->conn, "peer does not read its answers");
                h->closing = true;
            }
            continue;
        }
        if (!due)
            continue;
        if (h->deadline == DEADLINE_PLACE) {
            http_conn_upgrade_to(h, -1); /* said nothing decisive: a session here */
        } else if (h->deadline == DEADLINE_HEAD) {
            send_text(h, 408, "request head not received in time\n", false, false, NULL);
        } else if (h->deadline == DEADLINE_ASK) {
            h->ask = 0;
            send_text(h, 503, "no answer in time\n", false, h->head_only, NULL);
        } else {
            conn_close(h->conn, "idle");
            h->closing = true;
        }
    }
}
