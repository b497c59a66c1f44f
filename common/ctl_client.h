/*
 * ctl_client.h - the client side of the control socket (used by iotctl and iottop).
 *
 * Blocking, one connection, line-framed JSON (see ctl_proto.h). A client is not thread-safe.
 */
#ifndef CTL_CLIENT_H
#define CTL_CLIENT_H

#include <cjson/cJSON.h>
#include <stdint.h>

typedef struct ctl_client ctl_client_t;

/* Default socket path when neither -s nor $IOTD_SOCKET is given. */
#define CTL_DEFAULT_SOCKET "/var/lib/iotd/control.sock"

/* Connect to the Unix socket at path (NULL: $IOTD_SOCKET, then CTL_DEFAULT_SOCKET).
 * Returns IOT_EUNREACHABLE when nothing listens there, IOT_EDENIED when the socket's mode
 * refuses us, IOT_ENOMEM; on success *out owns the connection. */
int ctl_client_connect(ctl_client_t **out, const char *path);

/* Send one request (args ownership taken) and return its id in *id. IOT_EINVAL, and nothing
 * sent, when a key or string of args is not valid UTF-8. */
int ctl_client_send(ctl_client_t *client, const char *cmd, cJSON *args, uint32_t *id);

/* Read the next message from the daemon; timeout_ms < 0 waits forever. *out owns the parsed
 * object. Returns IOT_EUNREACHABLE when the daemon closed the connection, IOT_EBUSY on timeout,
 * IOT_EPROTO on a line that is not JSON (or holds a raw NUL). Interrupted by a signal: IOT_EIO with
 * errno EINTR. */
int ctl_client_read(ctl_client_t *client, int timeout_ms, cJSON **out);

/* Send a request and wait for its reply (skipping unrelated ids). On an "ok": false reply,
 * returns the error's code and *out holds the whole reply (for its message). */
int ctl_client_call(ctl_client_t *client, const char *cmd, cJSON *args, int timeout_ms,
                    cJSON **out);

/* The file descriptor, for poll() in streaming clients. */
int ctl_client_fd(const ctl_client_t *client);

void ctl_client_close(ctl_client_t *client);

#endif
