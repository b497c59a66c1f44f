/*
 * control_conn.c - one client of the control socket: accepted and checked (root, our uid or the
 * admin group), its request lines read and handed to control_dispatch_line, its replies queued
 * (a client that stops reading is cut off), and its close: at once, or after the last reply
 * (a refused or misbehaving client still reads why). See control_internal.h for lifetimes.
 */
#include "control/control_internal.h"

#include "base/log.h"
#include "ctl_proto.h"
#include "iot_error.h"
#include "iot_grow.h"

#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* A client that stops reading its replies is cut off past this much queued output. */
#define CONTROL_MAX_PENDING_OUTPUT (8u * 1024 * 1024)
#define CONTROL_READ_CHUNK         65536

void control_conn_unref(struct control_conn *conn)
{
    if (--conn->refs > 0)
        return;
    control_server_t *srv = conn->srv;
    free(conn->buf);
    free(conn);
    control_server_unref(srv);
}

static void on_conn_closed(uv_handle_t *handle)
{
    control_conn_unref(handle->data);
}

void control_conn_close(struct control_conn *conn)
{
    if (conn->closed)
        return;
    control_streams_end_all(conn, NULL); /* the client is gone: nobody to tell */
    conn->closed = true;
    if (conn->finishing)
        uv_close((uv_handle_t *)&conn->linger, on_conn_closed);
    control_server_t *srv = conn->srv;
    if (conn->prev)
        conn->prev->next = conn->next;
    else
        srv->conns = conn->next;
    if (conn->next)
        conn->next->prev = conn->prev;
    srv->clients--;
    uv_close((uv_handle_t *)&conn->pipe, on_conn_closed);
}

/* How long a refused or cut-off client may take to read its last reply and hang up. */
#define CONTROL_LINGER_MS 2000

static void on_linger_timeout(uv_timer_t *timer)
{
    control_conn_close(timer->data);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)req;
    (void)status;
}

/* Close after the last reply has reached the client. Closing at once would reset the
 * connection while the client still has a request in flight, and it would never see why. */
static void client_finish(struct control_conn *conn)
{
    if (conn->closed || conn->finishing)
        return;
    conn->finishing = true;
    conn->refs++; /* held by the linger timer until its close callback */
    uv_timer_init(conn->srv->deps.loop, &conn->linger);
    conn->linger.data = conn;
    uv_timer_start(&conn->linger, on_linger_timeout, CONTROL_LINGER_MS, 0);
    if (uv_shutdown(&conn->shutdown, (uv_stream_t *)&conn->pipe, on_shutdown) != 0)
        control_conn_close(conn);
}

struct write_req {
    uv_write_t req;
    char *data;
};

static void on_written(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    free(w->data);
    free(w);
    (void)status; /* a failed write shows up as a read error/EOF and closes the connection */
}

/* Queue one message (consumed) to the client. */
void control_send(struct control_conn *conn, cJSON *msg)
{
    char *line = msg ? ctl_serialize_line(msg) : NULL;
    cJSON_Delete(msg);
    if (!line || conn->closed) {
        free(line);
        return;
    }
    if (uv_stream_get_write_queue_size((uv_stream_t *)&conn->pipe) > CONTROL_MAX_PENDING_OUTPUT) {
        log_warn("control: %s does not read its replies; disconnecting", conn->actor);
        free(line);
        control_conn_close(conn);
        return;
    }
    struct write_req *w = malloc(sizeof(*w));
    if (!w) {
        free(line);
        control_conn_close(conn);
        return;
    }
    w->data = line;
    uv_buf_t buf = uv_buf_init(line, (unsigned)strlen(line));
    if (uv_write(&w->req, (uv_stream_t *)&conn->pipe, &buf, 1, on_written) != 0) {
        free(line);
        free(w);
        control_conn_close(conn);
    }
}

void control_send_error(struct control_conn *conn, uint32_t id, int code, const char *message)
{
    control_send(conn, ctl_reply_error(id, code, message));
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct control_conn *conn = handle->data;
    (void)suggested;
    while (conn->cap - conn->len < CONTROL_READ_CHUNK) {
        /* n = cap: always room for more, doubling from one chunk */
        char *grown = iot_grow(conn->buf, conn->cap, &conn->cap, CONTROL_READ_CHUNK, 1);
        if (!grown) {
            *buf = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS: we close */
            return;
        }
        conn->buf = grown;
    }
    *buf = uv_buf_init(conn->buf + conn->len, (unsigned)(conn->cap - conn->len));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct control_conn *conn = stream->data;
    (void)buf;
    if (nread < 0) {
        control_conn_close(conn);
        return;
    }
    if (conn->finishing)
        return; /* input after the last reply is discarded */
    conn->len += (size_t)nread;
    size_t start = 0;
    char *nl;
    while (!conn->closed && (nl = memchr(conn->buf + start, '\n', conn->len - start))) {
        size_t line_len = (size_t)(nl - (conn->buf + start));
        if (line_len > 0)
            control_dispatch_line(conn, conn->buf + start, line_len);
        start += line_len + 1;
    }
    if (conn->closed)
        return;
    memmove(conn->buf, conn->buf + start, conn->len - start);
    conn->len -= start;
    if (conn->len > CTL_MAX_LINE) {
        control_send_error(conn, 0, IOT_EPROTO, "request line too long");
        log_warn("control: %s sent a line over %u bytes; disconnecting", conn->actor,
                 (unsigned)CTL_MAX_LINE);
        conn->len = 0;
        client_finish(conn);
    }
}

/* Whether the peer may administer: root, our own uid, or a member of the admin group. */
static bool peer_allowed(control_server_t *srv, int fd, struct ucred *cred)
{
    socklen_t len = sizeof(*cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, &len) != 0)
        return false;
    if (cred->uid == 0 || cred->uid == geteuid())
        return true;
    if (!srv->has_admin_gid)
        return false;
    if (cred->gid == srv->admin_gid)
        return true;
    gid_t groups[256];
    socklen_t glen = sizeof(groups);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &glen) != 0)
        return false;
    for (size_t i = 0; i < glen / sizeof(gid_t); i++)
        if (groups[i] == srv->admin_gid)
            return true;
    return false;
}

/* Who the peer is, for logs and audit records: "root (uid=0 pid=14871)", or "uid=1000
 * pid=14871" for a uid without a passwd entry. getpwuid_r may read /etc/passwd or ask NSS: a
 * local administrator's connection is rare enough for that to be fine on the main loop. */
static void peer_actor(const struct ucred *cred, char *out, size_t outlen)
{
    struct passwd pw, *found = NULL;
    char buf[1024];
    if (getpwuid_r(cred->uid, &pw, buf, sizeof(buf), &found) == 0 && found && found->pw_name[0])
        snprintf(out, outlen, "%s (uid=%u pid=%d)", found->pw_name, (unsigned)cred->uid,
                 (int)cred->pid);
    else
        snprintf(out, outlen, "uid=%u pid=%d", (unsigned)cred->uid, (int)cred->pid);
}

void control_conn_accept(uv_stream_t *listener, int status)
{
    control_server_t *srv = listener->data;
    if (status < 0 || srv->stopping)
        return;
    struct control_conn *conn = calloc(1, sizeof(*conn));
    if (!conn)
        return; /* the client stays in the backlog and is retried on the next connection */
    conn->srv = srv;
    conn->refs = 1;
    srv->refs++;
    uv_pipe_init(srv->deps.loop, &conn->pipe, 0);
    conn->pipe.data = conn;
    conn->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = conn;
    srv->conns = conn;
    srv->clients++;
    if (uv_accept(listener, (uv_stream_t *)&conn->pipe) != 0) {
        control_conn_close(conn);
        return;
    }
    uv_os_fd_t fd;
    struct ucred cred = {0};
    uv_fileno((uv_handle_t *)&conn->pipe, &fd);
    bool allowed = peer_allowed(srv, fd, &cred);
    peer_actor(&cred, conn->actor, sizeof(conn->actor));
    if (!allowed) {
        log_warn("control: refused %s (not root, not our uid, not in the admin group)",
                 conn->actor);
        control_send_error(conn, 0, IOT_EDENIED, "not allowed to administer this iotd");
        uv_read_start((uv_stream_t *)&conn->pipe, on_alloc, on_read);
        client_finish(conn);
        return;
    }
    uv_read_start((uv_stream_t *)&conn->pipe, on_alloc, on_read);
}
