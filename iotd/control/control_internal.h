/*
 * control_internal.h - what the files of the control server share; nothing outside iotd/control
 * (and its unit tests) includes it.
 *
 *   control_server.c    the listening socket: start, reconfigure, stop, the server's lifetime
 *   control_conn.c      one client connection: accept and peer check, request lines in, replies
 *                       out, close after the last reply, the connection's lifetime
 *   control_dispatch.c  a request line to its executor (control_dispatch.h), the db jobs, and
 *                       the executors that hand a command to the registry or the events store
 *   control_commands.c  the executor table: for every command, where it runs and what runs it
 *   control_streams.c   stats and watch streams, and leases
 *   control_send.c      "send": the control connection as a relay sender
 *
 * Lifetimes: a connection is referenced by its open pipe, by each request still at the database
 * or the relay and by each stream; the server is referenced by its listener and by each
 * connection. Whoever drops the last reference frees, so a client that disconnects mid-request,
 * or a daemon that stops while jobs are queued, never leaves a completion pointing at freed
 * memory. Everything here runs on the main loop unless it says otherwise.
 */
#ifndef IOTD_CONTROL_INTERNAL_H
#define IOTD_CONTROL_INTERNAL_H

#include "control/control_server.h"
#include "relay/relay.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

struct control_server {
    uv_pipe_t listener;
    struct control_deps deps;
    char *path;
    gid_t admin_gid;
    bool has_admin_gid;
    bool stopping;
    unsigned refs;
    unsigned clients;
    struct control_conn *conns;             /* list of open connections */
    uint64_t outcomes[RELAY_OUTCOME_COUNT]; /* of "send", main loop only */
};

struct control_stream; /* control_streams.c */

/* Who a client is: "root (uid=0 pid=14871)" (control_conn.c), with room for any login name. */
#define CONTROL_ACTOR_LEN 160

struct control_conn {
    uv_pipe_t pipe;
    struct control_stream *streams;
    control_server_t *srv;
    struct control_conn *prev, *next;
    char actor[CONTROL_ACTOR_LEN];
    char *buf;
    size_t len, cap;
    unsigned refs;
    bool closed;
    bool finishing; /* last reply sent: discard input until the client hangs up */
    uv_timer_t linger;
    uv_shutdown_t shutdown;
};

/* ---- control_server.c ---- */

/* Drop a reference to the server; the last one frees it. */
void control_server_unref(control_server_t *srv);

/* ---- control_conn.c ---- */

/* The listener's connection callback: accept, check the peer, start reading. */
void control_conn_accept(uv_stream_t *listener, int status);
/* Queue one message (consumed, may be NULL) to the client; a client that does not read its
 * replies, or a failed write, closes the connection. */
void control_send(struct control_conn *conn, cJSON *msg);
/* Queue an error reply (message NULL: the code's own words). */
void control_send_error(struct control_conn *conn, uint32_t id, int code, const char *message);
/* Close now: streams end silently, the pipe closes; references keep the memory. */
void control_conn_close(struct control_conn *conn);
/* Drop a reference to the connection (taken with conn->refs++); the last one frees it. */
void control_conn_unref(struct control_conn *conn);

/* ---- control_dispatch.c ---- */

/* Answer one request line (without its '\n'). */
void control_dispatch_line(struct control_conn *conn, const char *line, size_t len);

/* ---- control_streams.c ---- */

/* End every stream of conn, telling the client why (reason NULL: it is gone). */
void control_streams_end_all(struct control_conn *conn, const char *reason);

#endif
