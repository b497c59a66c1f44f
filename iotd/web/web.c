/*
 * web.c - the web module's life and its two threads' meeting point (see web.h): start a net
 * loop and a timeout tick on every io thread and the listener on the main loop; carry asks
 * (/healthz, /metrics) to the main loop and their answers back; build the /metrics answer
 * from the daemon's stats sample.
 */
#include "web/web_internal.h"

#include "base/log.h"
#include "iot_error.h"
#include "web/metrics.h"
#include "web/ws_session.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void on_accept(net_loop_t *nl, conn_t *c, void *arg)
{
    (void)nl;
    http_conn_accept(arg, c);
}

static void on_tick(uv_timer_t *timer)
{
    struct web_loop *wl = timer->data;
    http_conn_tick(wl, uv_now(timer->loop));
}

/* On the io thread (io_thread_call). */
static int loop_start(io_thread_t *io, void *arg)
{
    struct web_loop *wl = arg;
    int rc = net_loop_init(&wl->net, io, on_accept, wl);
    if (rc != 0)
        return rc;
    uv_timer_init(&io->loop, &wl->tick);
    wl->tick.data = wl;
    uv_timer_start(&wl->tick, on_tick, WEB_TICK_MS, WEB_TICK_MS);
    return 0;
}

/* On the io thread: close every connection; the net loop frees itself once they are closed.
 * wl itself lives until web_free (the tick's close callback may run after this returns). */
static int loop_stop(io_thread_t *io, void *arg)
{
    struct web_loop *wl = arg;
    (void)io;
    wl->stopped = true;
    uv_close((uv_handle_t *)&wl->tick, NULL);
    net_loop_close(wl->net);
    return 0;
}

/* ---- logout: one io thread -> every io thread ---- */

struct end_family_msg {
    inbox_msg_t msg;
    struct web_loop *loop;
    uint64_t family;
};

static void on_end_family(inbox_msg_t *msg, void *loop_data)
{
    struct end_family_msg *m = container_of(msg, struct end_family_msg, msg);
    (void)loop_data;
    size_t n = ws_session_end_family(&m->loop->ws, m->family, "logout");
    if (n)
        log_debug("web: logout ended %zu WebSocket%s", n, n == 1 ? "" : "s");
    free(m);
}

void web_end_family(web_t *w, uint64_t family)
{
    for (unsigned i = 0; family && i < w->deps.io_count; i++) {
        struct end_family_msg *m = malloc(sizeof(*m));
        if (m)
            *m = (struct end_family_msg){
                .msg.handle = on_end_family, .loop = &w->loops[i], .family = family};
        /* The token is gone already: a WebSocket left open here cannot log in again. */
        if (!m || inbox_push(&w->loops[i].io->inbox, &m->msg) != 0) {
            log_warn("web: io thread %u busy: its WebSockets of a logout stay open", i);
            free(m);
        }
    }
}

/* ---- asks: io thread -> main loop -> io thread ---- */

void web_ask_free(struct web_ask *a)
{
    web_buf_free(&a->body);
    free(a);
}

static void on_ask_back(inbox_msg_t *msg, void *loop_data)
{
    struct web_ask *a = container_of(msg, struct web_ask, msg);
    (void)loop_data;
    http_conn_answer(a);
    web_ask_free(a);
}

void web_ask_reply(struct web_ask *a)
{
    a->msg.handle = on_ask_back;
    if (inbox_push(&a->loop->io->inbox, &a->msg) != 0)
        web_ask_free(a); /* the connection gives up waiting on its own (its deadline) */
}

static void answer_text(struct web_ask *a, int status, const char *text)
{
    a->status = status;
    a->content_type = "text/plain; charset=utf-8";
    web_buf_puts(&a->body, text);
    web_ask_reply(a);
}

static void on_sample(cJSON *sample, void *arg)
{
    struct web_ask *a = arg;
    if (!sample) {
        answer_text(a, 503, "no stats sample now\n");
        return;
    }
    int rc = metrics_format(sample, &a->body);
    cJSON_Delete(sample);
    if (rc != 0) {
        web_buf_free(&a->body);
        answer_text(a, 500, "out of memory\n");
        return;
    }
    a->status = 200;
    a->content_type = METRICS_CONTENT_TYPE;
    web_ask_reply(a);
}

static void metrics_ask(web_t *w, struct web_ask *a)
{
    /* The sample comes back through on_sample exactly once, perhaps before this returns. */
    w->deps.sample(w->deps.sample_arg, on_sample, a);
}

static void (*const ask_handlers[])(web_t *w, struct web_ask *a) = {
    [WEB_ASK_HEALTH] = health_ask,
    [WEB_ASK_METRICS] = metrics_ask,
};

static void on_ask_main(inbox_msg_t *msg, void *loop_data)
{
    struct web_ask *a = container_of(msg, struct web_ask, msg);
    (void)loop_data;
    if (a->web->stopping) {
        /* What the sample and the probe read may be gone already. */
        answer_text(a, 503, "shutting down\n");
        return;
    }
    ask_handlers[a->kind](a->web, a);
}

int web_ask_send(struct web_ask *a)
{
    a->msg.handle = on_ask_main;
    return inbox_push(a->web->deps.main_inbox, &a->msg);
}

/* ---- start and stop ---- */

static int loop_barrier(io_thread_t *io, void *arg)
{
    (void)io;
    (void)arg;
    return 0;
}

/* Stop every started loop. The second call returns only after the io loop has been through
 * the closing phase of the pass that ran loop_stop, so the tick's handle is closed by then and
 * web_free may release it even on start-up failure, while the io threads keep running. */
static void close_loops(web_t *w)
{
    for (unsigned i = 0; i < w->loops_started; i++)
        io_thread_call(w->loops[i].io, loop_stop, &w->loops[i]);
    for (unsigned i = 0; i < w->loops_started; i++)
        io_thread_call(w->loops[i].io, loop_barrier, NULL);
    w->loops_started = 0;
}

/* Copy the options the module keeps; the root as its real path when it exists. */
static int copy_options(web_t *w, const struct web_options *o, char *err, size_t errlen)
{
    char real[PATH_MAX];
    w->opts = *o;
    if (!o->root || !realpath(o->root, real)) {
        log_warn("web: root %s: %m; static files will be 404", o->root ? o->root : "(none)");
        snprintf(real, sizeof(real), "%s", o->root ? o->root : "/nonexistent");
    }
    w->root = strdup(real);
    w->server = strdup(o->server ? o->server : "iotd");
    w->listen = strdup(o->listen ? o->listen : "");
    w->tls_listen = strdup(o->tls_listen ? o->tls_listen : "");
    w->tls_cert = strdup(o->tls_cert ? o->tls_cert : "");
    w->tls_key = strdup(o->tls_key ? o->tls_key : "");
    w->allowed_origins = strdup(o->allowed_origins ? o->allowed_origins : "");
    if (!w->root || !w->server || !w->listen || !w->tls_listen || !w->tls_cert || !w->tls_key ||
        !w->allowed_origins) {
        snprintf(err, errlen, "out of memory");
        return IOT_ENOMEM;
    }
    w->opts.root = w->root;
    w->opts.server = w->server;
    w->opts.listen = w->listen;
    w->opts.tls_listen = w->tls_listen;
    w->opts.tls_cert = w->tls_cert;
    w->opts.tls_key = w->tls_key;
    w->opts.allowed_origins = w->allowed_origins;
    w->opts.metrics_allow = NULL; /* parsed below, not kept as text */
    if (!w->opts.head_timeout_ms)
        w->opts.head_timeout_ms = WEB_DEFAULT_HEAD_TIMEOUT;
    if (!w->opts.idle_timeout_ms)
        w->opts.idle_timeout_ms = WEB_DEFAULT_IDLE_TIMEOUT;
    if (!w->opts.output_limit)
        w->opts.output_limit = WEB_DEFAULT_OUTPUT_LIMIT;
    if (!w->opts.max_frame)
        w->opts.max_frame = 4096;
    ws_session_codec(&w->ws_codec, w->opts.max_frame);
    if (web_tokens_new(&w->tokens, o->session_ttl_s, 0) != 0) {
        snprintf(err, errlen, "out of memory");
        return IOT_ENOMEM;
    }
    if (o->metrics_allow && o->metrics_allow[0]) {
        char why[160];
        int rc = web_allowlist_parse(o->metrics_allow, &w->metrics_allow, why, sizeof(why));
        if (rc != 0) {
            snprintf(err, errlen, "[web] metrics_allow: %s",
                     rc == IOT_ENOMEM ? "out of memory" : why);
            return rc;
        }
    }
    return 0;
}

int web_start(web_t **out, const struct web_deps *deps, const struct web_options *o, char *err,
              size_t errlen)
{
    net_loop_t *nets[256];
    int rc = IOT_ENOMEM;
    web_t *w = calloc(1, sizeof(*w));
    *out = NULL;
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return rc;
    }
    w->deps = *deps;
    if (deps->io_count == 0 || deps->io_count > sizeof(nets) / sizeof(nets[0]) ||
        deps->listener_count > sizeof(w->listeners) / sizeof(w->listeners[0])) {
        snprintf(err, errlen, "web: unsupported number of io threads or listeners");
        rc = IOT_EINVAL;
        goto fail;
    }
    for (unsigned i = 0; i < deps->listener_count; i++)
        w->listeners[i] = deps->listeners[i];
    w->deps.listeners = w->listeners;
    if ((rc = copy_options(w, o, err, errlen)) != 0)
        goto fail;
    if (!(w->loops = calloc(deps->io_count, sizeof(*w->loops)))) {
        snprintf(err, errlen, "out of memory");
        rc = IOT_ENOMEM;
        goto fail;
    }
    for (unsigned i = 0; i < deps->io_count; i++) {
        w->loops[i] = (struct web_loop){.web = w, .io = &deps->io[i]};
        if ((rc = io_thread_call(&deps->io[i], loop_start, &w->loops[i])) != 0) {
            snprintf(err, errlen, "web: cannot start on io thread %u", i);
            goto fail;
        }
        w->loops_started++;
        nets[i] = w->loops[i].net;
    }
    struct net_listener_options lo = {
        .address = w->listen, .transport = CONN_TCP, .output_limit = w->opts.output_limit};
    if (w->listen[0] && (rc = net_listener_start(&w->listener, deps->main_loop, &lo, nets,
                                                 deps->io_count, err, errlen)) != 0)
        goto fail;
    lo.address = w->tls_listen;
    lo.transport = CONN_TLS;
    lo.tls_cert = w->tls_cert;
    lo.tls_key = w->tls_key;
    lo.handshake_timeout_ms = w->opts.head_timeout_ms;
    if (w->tls_listen[0] && (rc = net_listener_start(&w->tls_listener, deps->main_loop, &lo, nets,
                                                     deps->io_count, err, errlen)) != 0) {
        char why[256];
        snprintf(why, sizeof(why), "%s", err);
        snprintf(err, errlen, "[web] tls_listen: %s", why);
        goto fail;
    }
    uv_timer_init(deps->main_loop, &w->health_timer);
    w->health_timer.data = w;
    *out = w;
    return 0;
fail:
    net_listener_stop(w->listener); /* NULL is fine */
    close_loops(w);
    web_free(w);
    return rc;
}

size_t web_revoke_user(web_t *w, const char *user)
{
    return w && w->tokens ? web_tokens_revoke_user(w->tokens, user) : 0;
}

size_t web_revoke_tenant(web_t *w, const char *tenant)
{
    return w && w->tokens ? web_tokens_revoke_tenant(w->tokens, tenant) : 0;
}

unsigned web_port(const web_t *w)
{
    return w->listener ? net_listener_port(w->listener) : 0;
}

unsigned web_tls_port(const web_t *w)
{
    return w->tls_listener ? net_listener_port(w->tls_listener) : 0;
}

int web_reload_tls(web_t *w, char *err, size_t errlen)
{
    return w && w->tls_listener ? net_listener_reload_tls(w->tls_listener, err, errlen) : 0;
}

void web_stop(web_t *w)
{
    if (!w || w->stopping)
        return;
    w->stopping = true;
    net_listener_stop(w->listener);
    net_listener_stop(w->tls_listener);
    w->listener = w->tls_listener = NULL;
    health_stop(w);
    uv_close((uv_handle_t *)&w->health_timer, NULL);
    close_loops(w);
}

void web_free(web_t *w)
{
    if (!w)
        return;
    web_allowlist_free(w->metrics_allow);
    web_tokens_free(w->tokens);
    free(w->loops);
    free(w->root);
    free(w->server);
    free(w->listen);
    free(w->tls_listen);
    free(w->tls_cert);
    free(w->tls_key);
    free(w->allowed_origins);
    free(w);
}
