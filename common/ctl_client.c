/*
 * ctl_client.c - blocking client of iotd's control socket (see ctl_client.h, ctl_proto.h).
 *
 * One connected AF_UNIX stream socket and one receive buffer. Requests are serialized with
 * ctl_serialize_line and written whole; replies are read into the buffer and cut at '\n'. A line
 * may not exceed CTL_MAX_LINE bytes: the buffer never grows past that bound, so a misbehaving
 * peer cannot make a client allocate without limit.
 *
 * Waiting is done with poll() against a deadline on CLOCK_MONOTONIC, so a timeout covers the
 * whole reply, however it is split into reads. A signal that interrupts the wait is not retried:
 * the caller gets IOT_EIO with errno == EINTR, which is how `iotctl watch`-style streams stop on
 * SIGINT (the handler is installed without SA_RESTART). Writes, which only ever carry one small
 * request, are retried on EINTR so that a request is never sent half.
 *
 * Request lines may carry passwords (user.add, user.passwd), so every buffer that held a
 * request is wiped before it is freed.
 */
#include "ctl_client.h"

#include "ctl_proto.h"
#include "iot_error.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Read granularity; the buffer grows by doubling up to CTL_MAX_LINE + 1. */
#define CLIENT_READ_CHUNK 4096

struct ctl_client {
    int fd;
    uint32_t next_id;
    char *buf;   /* received bytes not yet returned as lines */
    size_t len;  /* bytes used in buf */
    size_t cap;  /* bytes allocated in buf */
    bool broken; /* a framing error left the stream unusable: every later read fails */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Map a connect()/send()/recv() errno onto the project's vocabulary. */
static int errno_to_code(int err)
{
    switch (err) {
    case ENOENT:
    case ENOTDIR:
    case ECONNREFUSED:
    case ECONNRESET:
    case EPIPE:
    case ENOTCONN:
        return IOT_EUNREACHABLE;
    case EACCES:
    case EPERM:
        return IOT_EDENIED;
    case ENOMEM:
    case ENOBUFS:
        return IOT_ENOMEM;
    default:
        return IOT_EIO;
    }
}

/* Overwrite every string of a request tree before it is freed (it may hold a password). */
static void wipe_strings(cJSON *item)
{
    for (; item; item = item->next) {
        if (cJSON_IsString(item) && item->valuestring)
            explicit_bzero(item->valuestring, strlen(item->valuestring));
        wipe_strings(item->child);
    }
}

int ctl_client_connect(ctl_client_t **out, const char *path)
{
    int rc = IOT_OK;
    ctl_client_t *client = NULL;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};

    *out = NULL;
    if (!path || !*path)
        path = getenv("IOTD_SOCKET");
    if (!path || !*path)
        path = CTL_DEFAULT_SOCKET;
    if (strlen(path) >= sizeof(addr.sun_path)) {
        rc = IOT_EINVAL;
        goto out;
    }
    memcpy(addr.sun_path, path, strlen(path) + 1);

    client = calloc(1, sizeof(*client));
    if (!client) {
        rc = IOT_ENOMEM;
        goto out;
    }
    client->next_id = 1;
    client->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (client->fd < 0) {
        rc = errno_to_code(errno);
        goto out;
    }
    while (connect(client->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        if (errno == EINTR)
            continue;
        rc = errno_to_code(errno);
        goto out;
    }
    *out = client;
    client = NULL;
out:
    if (client) {
        if (client->fd >= 0)
            close(client->fd);
        free(client);
    }
    return rc;
}

/* Write all of buf. MSG_NOSIGNAL: a daemon that went away must be an error code, not SIGPIPE. */
static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno_to_code(errno);
        }
        buf += n;
        len -= (size_t)n;
    }
    return IOT_OK;
}

int ctl_client_send(ctl_client_t *client, const char *cmd, cJSON *args, uint32_t *id)
{
    int rc = IOT_OK;
    char *line = NULL;
    uint32_t request_id = client->next_id++;
    if (client->next_id == 0) /* id 0 is the daemon's "could not tell which request" */
        client->next_id = 1;

    cJSON *request = ctl_request_new(request_id, cmd, args); /* owns args, even on failure */
    if (!request) {
        rc = IOT_ENOMEM;
        goto out;
    }
    /* Sent as given or not at all: the serializer would repair bad bytes into U+FFFD. */
    if (!ctl_json_valid(request)) {
        rc = IOT_EINVAL;
        goto out;
    }
    line = ctl_serialize_line(request);
    if (!line) {
        rc = IOT_ENOMEM;
        goto out;
    }
    rc = write_all(client->fd, line, strlen(line));
    if (rc == IOT_OK && id)
        *id = request_id;
out:
    if (line) {
        explicit_bzero(line, strlen(line));
        free(line);
    }
    if (request) {
        wipe_strings(request->child);
        cJSON_Delete(request);
    }
    return rc;
}

/* If a complete line is buffered, parse it into *out, drop it from the buffer and return 1. */
static int take_line(ctl_client_t *client, cJSON **out, int *rc)
{
    char *newline = memchr(client->buf, '\n', client->len);
    if (!newline)
        return 0;
    size_t line_len = (size_t)(newline - client->buf);
    *newline = '\0';
    /* JSON has no raw NUL; one would cut a string in two without the parser noticing. */
    cJSON *msg =
        memchr(client->buf, '\0', line_len) ? NULL : cJSON_ParseWithLength(client->buf, line_len);
    memmove(client->buf, newline + 1, client->len - line_len - 1);
    client->len -= line_len + 1;
    if (!msg || !cJSON_IsObject(msg)) {
        cJSON_Delete(msg);
        *rc = IOT_EPROTO;
        return 1;
    }
    *out = msg;
    *rc = IOT_OK;
    return 1;
}

/* Make room for at least one more read, within the line bound. */
static int reserve(ctl_client_t *client)
{
    if (client->cap - client->len >= CLIENT_READ_CHUNK / 2)
        return IOT_OK;
    size_t limit = CTL_MAX_LINE + 1; /* a maximal line plus its '\n' */
    if (client->cap >= limit)
        return client->len < client->cap ? IOT_OK : IOT_EPROTO;
    size_t cap = client->cap ? client->cap * 2 : CLIENT_READ_CHUNK;
    if (cap > limit)
        cap = limit;
    char *buf = realloc(client->buf, cap);
    if (!buf)
        return IOT_ENOMEM;
    client->buf = buf;
    client->cap = cap;
    return IOT_OK;
}

int ctl_client_read(ctl_client_t *client, int timeout_ms, cJSON **out)
{
    int rc = IOT_OK;
    int64_t deadline = timeout_ms >= 0 ? now_ms() + timeout_ms : -1;

    *out = NULL;
    if (client->broken)
        return IOT_EPROTO;
    for (;;) {
        if (client->len > 0 && take_line(client, out, &rc))
            goto out;
        rc = reserve(client);
        if (rc == IOT_EPROTO) /* CTL_MAX_LINE bytes and no '\n': the stream cannot resync */
            client->broken = true;
        if (rc != IOT_OK)
            goto out;

        int wait = -1;
        if (deadline >= 0) {
            int64_t left = deadline - now_ms();
            wait = left > 0 ? (int)left : 0;
        }
        struct pollfd pfd = {.fd = client->fd, .events = POLLIN};
        int ready = poll(&pfd, 1, wait);
        if (ready < 0) {
            rc = IOT_EIO; /* errno stays EINTR for the caller to see */
            goto out;
        }
        if (ready == 0) {
            rc = IOT_EBUSY;
            goto out;
        }
        ssize_t n = recv(client->fd, client->buf + client->len, client->cap - client->len, 0);
        if (n < 0) {
            rc = errno == EINTR ? IOT_EIO : errno_to_code(errno);
            goto out;
        }
        if (n == 0) {
            rc = IOT_EUNREACHABLE;
            goto out;
        }
        client->len += (size_t)n;
    }
out:
    return rc;
}

/* The code a failure reply names; never IOT_OK, so a failure cannot read as a success. */
static int reply_error_code(const cJSON *reply)
{
    const cJSON *error = cJSON_GetObjectItemCaseSensitive(reply, "error");
    int code = iot_error_from_name(ctl_get_string(error, "code"));
    return code < 0 ? code : IOT_EINTERNAL;
}

/*
 * Send cmd and wait up to timeout_ms for its reply. On success (0) *out is the whole reply
 * ({"id", "ok": true, "result"|"stream"}); on a failure reply, the error's code is returned and
 * *out is the whole reply (its "error" holds the daemon's message); on any other error *out is
 * NULL. Replies to other ids are dropped. A failure with id 0 is taken as ours: the daemon uses
 * id 0 when it could not parse the request, and we have only one request in flight.
 */
int ctl_client_call(ctl_client_t *client, const char *cmd, cJSON *args, int timeout_ms, cJSON **out)
{
    uint32_t id = 0;
    int64_t deadline = timeout_ms >= 0 ? now_ms() + timeout_ms : -1;

    *out = NULL;
    int rc = ctl_client_send(client, cmd, args, &id);
    while (rc == IOT_OK) {
        int wait = -1;
        if (deadline >= 0) {
            int64_t left = deadline - now_ms();
            wait = left > 0 ? (int)left : 0;
        }
        cJSON *reply = NULL;
        rc = ctl_client_read(client, wait, &reply);
        if (rc != IOT_OK)
            break;
        const cJSON *reply_id = cJSON_GetObjectItemCaseSensitive(reply, "id");
        const cJSON *ok = cJSON_GetObjectItemCaseSensitive(reply, "ok");
        bool ours = cJSON_IsNumber(reply_id) && (uint32_t)reply_id->valuedouble == id;
        bool unattributed =
            cJSON_IsNumber(reply_id) && reply_id->valuedouble == 0 && cJSON_IsFalse(ok);
        if (!ours && !unattributed) {
            cJSON_Delete(reply);
            continue;
        }
        if (!cJSON_IsBool(ok)) {
            cJSON_Delete(reply);
            rc = IOT_EPROTO;
            break;
        }
        *out = reply;
        rc = cJSON_IsTrue(ok) ? IOT_OK : reply_error_code(reply);
        break;
    }
    return rc;
}

int ctl_client_fd(const ctl_client_t *client)
{
    return client->fd;
}

void ctl_client_close(ctl_client_t *client)
{
    if (!client)
        return;
    close(client->fd);
    free(client->buf);
    free(client);
}
