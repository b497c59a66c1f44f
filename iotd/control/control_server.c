/*
 * control_server.c - the control socket's listener (see control_server.h): bind with a safe
 * mode, refuse to replace a live socket, apply mode and admin group (again on SIGHUP), and stop:
 * streams told "shutdown", connections closed, the socket file removed. Connections are
 * control_conn.c's; control_internal.h lists the other files and the lifetimes.
 */
#include "control/control_internal.h"

#include "iot_error.h"

#include <errno.h>
#include <grp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

void control_server_unref(control_server_t *srv)
{
    if (--srv->refs > 0)
        return;
    free(srv->path);
    free(srv);
}

static void on_listener_closed(uv_handle_t *handle)
{
    control_server_unref(handle->data);
}

static int apply_permissions(control_server_t *srv, const struct control_options *opts, char *err,
                             size_t errlen)
{
    srv->has_admin_gid = false;
    gid_t gid = (gid_t)-1;
    if (opts->group && opts->group[0]) {
        struct group *gr = getgrnam(opts->group);
        if (!gr) {
            snprintf(err, errlen, "control_group '%s' does not exist", opts->group);
            return IOT_EINVAL;
        }
        gid = gr->gr_gid;
        srv->admin_gid = gid;
        srv->has_admin_gid = true;
    }
    if (chmod(srv->path, opts->mode) != 0 || (gid != (gid_t)-1 && chown(srv->path, -1, gid) != 0)) {
        snprintf(err, errlen, "%s: cannot set mode/group: %s", srv->path, strerror(errno));
        return IOT_EIO;
    }
    return IOT_OK;
}

/* True if a process accepts connections on path (another iotd). */
static bool socket_is_live(const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    bool live = connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0;
    close(fd);
    return live;
}

int control_server_start(control_server_t **out, const struct control_options *opts,
                         const struct control_deps *deps, char *err, size_t errlen)
{
    int rc = IOT_ENOMEM;
    control_server_t *srv = calloc(1, sizeof(*srv));
    if (!srv || !(srv->path = strdup(opts->path))) {
        free(srv);
        return IOT_ENOMEM;
    }
    srv->deps = *deps;
    srv->refs = 1;
    uv_pipe_init(deps->loop, &srv->listener, 0);
    srv->listener.data = srv;

    if (socket_is_live(opts->path)) {
        snprintf(err, errlen, "%s: another iotd is already listening there", opts->path);
        rc = IOT_EEXIST;
        goto fail;
    }
    unlink(opts->path); /* stale socket of a previous run */
    /* Create the socket file with no permissions for others from the start, then chmod. */
    mode_t old = umask(0177);
    int uvrc = uv_pipe_bind(&srv->listener, opts->path);
    umask(old);
    if (uvrc == 0)
        uvrc = uv_listen((uv_stream_t *)&srv->listener, 128, control_conn_accept);
    if (uvrc != 0) {
        snprintf(err, errlen, "%s: %s", opts->path, uv_strerror(uvrc));
        rc = IOT_EIO;
        goto fail;
    }
    if ((rc = apply_permissions(srv, opts, err, errlen)) != 0)
        goto fail;
    *out = srv;
    return IOT_OK;

fail:
    uv_close((uv_handle_t *)&srv->listener, on_listener_closed);
    return rc;
}

int control_server_reconfigure(control_server_t *srv, const struct control_options *opts, char *err,
                               size_t errlen)
{
    return apply_permissions(srv, opts, err, errlen);
}

void control_server_outcomes(const control_server_t *srv, uint64_t *counts, unsigned n)
{
    for (unsigned i = 0; i < n && i < RELAY_OUTCOME_COUNT; i++)
        counts[i] = srv->outcomes[i];
}

unsigned control_server_clients(const control_server_t *srv)
{
    return srv->clients;
}

void control_server_stop(control_server_t *srv)
{
    srv->stopping = true;
    for (struct control_conn *c = srv->conns; c; c = c->next)
        control_streams_end_all(c, "shutdown");
    /* A small reply such as a stream's "end" is written at once by uv_write when nothing is
     * queued before it, so closing now still delivers it in practice; waiting for slow clients
     * would hold up the daemon's stop. */
    while (srv->conns)
        control_conn_close(srv->conns);
    unlink(srv->path);
    uv_close((uv_handle_t *)&srv->listener, on_listener_closed);
}
