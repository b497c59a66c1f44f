/*
 * test_ctl_client.c - the control socket client against a fake iotd.
 *
 * Each test starts a listener on a Unix socket in a fresh temporary directory and serves exactly
 * one connection from a thread with a scripted behaviour (answer, fail, hang up, stay silent,
 * send garbage...). The client runs on the test's own thread, as iotctl would.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ctl_client.h"
#include "ctl_proto.h"
#include "iot_error.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

struct fake_server;
typedef void (*serve_fn)(struct fake_server *server, int fd);

struct fake_server {
    char dir[64];
    char path[96];
    int listen_fd;
    pthread_t thread;
    pthread_t client_thread; /* the test's thread, for the EINTR test */
    serve_fn serve;
    char request[4096]; /* the last request line the server read */
};

/* Read one '\n'-terminated line (byte by byte: the server must not read past the request). */
static int read_line(int fd, char *buf, size_t len)
{
    size_t used = 0;
    while (used + 1 < len) {
        char c;
        ssize_t n = read(fd, &c, 1);
        if (n <= 0)
            return -1;
        if (c == '\n')
            break;
        buf[used++] = c;
    }
    buf[used] = '\0';
    return (int)used;
}

static void write_text(int fd, const char *text)
{
    size_t len = strlen(text);
    while (len > 0) {
        ssize_t n = write(fd, text, len);
        if (n <= 0)
            return;
        text += n;
        len -= (size_t)n;
    }
}

/* Read the request and return its id (or -1). */
static long read_request(struct fake_server *server, int fd)
{
    if (read_line(fd, server->request, sizeof(server->request)) < 0)
        return -1;
    cJSON *req = cJSON_Parse(server->request);
    long id = (long)ctl_get_int(req, "id", -1);
    cJSON_Delete(req);
    return id;
}

static void *server_main(void *arg)
{
    struct fake_server *server = arg;
    int fd = accept(server->listen_fd, NULL, NULL);
    if (fd >= 0) {
        server->serve(server, fd);
        close(fd);
    }
    return NULL;
}

static void server_start(struct fake_server *server, serve_fn serve)
{
    memset(server, 0, sizeof(*server));
    snprintf(server->dir, sizeof(server->dir), "/tmp/iotctl-test-XXXXXX");
    assert_non_null(mkdtemp(server->dir));
    snprintf(server->path, sizeof(server->path), "%s/control.sock", server->dir);
    server->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(server->listen_fd >= 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", server->path);
    assert_int_equal(bind(server->listen_fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(listen(server->listen_fd, 4), 0);
    server->serve = serve;
    server->client_thread = pthread_self();
    assert_int_equal(pthread_create(&server->thread, NULL, server_main, server), 0);
}

static void server_stop(struct fake_server *server)
{
    pthread_join(server->thread, NULL);
    close(server->listen_fd);
    unlink(server->path);
    rmdir(server->dir);
}

/* An unrelated reply first (must be skipped), then the answer to the request. */
static void serve_ok(struct fake_server *server, int fd)
{
    long id = read_request(server, fd);
    char line[256];
    snprintf(line, sizeof(line), "{\"id\":%ld,\"ok\":true,\"result\":{\"stale\":true}}\n",
             id + 100);
    write_text(fd, line);
    snprintf(line, sizeof(line),
             "{\"id\":%ld,\"ok\":true,\"result\":{\"tenants\":[{\"name\":\"acme\"}]}}\n", id);
    write_text(fd, line);
    char rest[16];
    read_line(fd, rest, sizeof(rest)); /* wait for the client to hang up */
}

static void test_call_ok(void **state)
{
    struct fake_server server;
    server_start(&server, serve_ok);
    ctl_client_t *client = NULL;
    assert_int_equal(ctl_client_connect(&client, server.path), IOT_OK);

    cJSON *reply = NULL;
    assert_int_equal(ctl_client_call(client, "tenant.list", NULL, 2000, &reply), IOT_OK);
    assert_non_null(reply);
    const cJSON *result = cJSON_GetObjectItemCaseSensitive(reply, "result");
    const cJSON *tenants = cJSON_GetObjectItemCaseSensitive(result, "tenants");
    assert_int_equal(cJSON_GetArraySize(tenants), 1);
    assert_string_equal(ctl_get_string(cJSON_GetArrayItem(tenants, 0), "name"), "acme");
    cJSON_Delete(reply);
    ctl_client_close(client);
    server_stop(&server);

    cJSON *req = cJSON_Parse(server.request);
    assert_non_null(req);
    assert_string_equal(ctl_get_string(req, "cmd"), "tenant.list");
    assert_true(ctl_get_int(req, "id", 0) > 0);
    assert_true(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(req, "args")));
    cJSON_Delete(req);
}

/* The reply arrives in pieces, with pauses: the client must reassemble the line. */
static void serve_split(struct fake_server *server, int fd)
{
    long id = read_request(server, fd);
    char line[256];
    snprintf(line, sizeof(line), "{\"id\":%ld,\"ok\":true,\"result\":{\"n\":42}}\n", id);
    size_t half = strlen(line) / 2;
    (void)!write(fd, line, half);
    usleep(50 * 1000);
    write_text(fd, line + half);
    char rest[16];
    read_line(fd, rest, sizeof(rest));
}

static void test_call_split_reply(void **state)
{
    struct fake_server server;
    server_start(&server, serve_split);
    ctl_client_t *client = NULL;
    assert_int_equal(ctl_client_connect(&client, server.path), IOT_OK);
    cJSON *reply = NULL;
    assert_int_equal(ctl_client_call(client, "status", NULL, 2000, &reply), IOT_OK);
    assert_int_equal(ctl_get_int(cJSON_GetObjectItemCaseSensitive(reply, "result"), "n", 0), 42);
    cJSON_Delete(reply);
    ctl_client_close(client);
    server_stop(&server);
}

static void serve_error(struct fake_server *server, int fd)
{
    long id = read_request(server, fd);
    char line[256];
    snprintf(line, sizeof(line),
             "{\"id\":%ld,\"ok\":false,\"error\":{\"code\":\"not_found\","
             "\"message\":\"no tenant 'nope'\"}}\n",
             id);
    write_text(fd, line);
    char rest[16];
    read_line(fd, rest, sizeof(rest));
}

static void test_call_error_reply(void **state)
{
    struct fake_server server;
    server_start(&server, serve_error);
    ctl_client_t *client = NULL;
    assert_int_equal(ctl_client_connect(&client, server.path), IOT_OK);
    cJSON *args = cJSON_CreateObject();
    cJSON_AddStringToObject(args, "name", "nope");
    cJSON *reply = NULL;
    assert_int_equal(ctl_client_call(client, "tenant.show", args, 2000, &reply), IOT_ENOTFOUND);
    assert_non_null(reply);
    const cJSON *error = cJSON_GetObjectItemCaseSensitive(reply, "error");
    assert_string_equal(ctl_get_string(error, "message"), "no tenant 'nope'");
    cJSON_Delete(reply);
    ctl_client_close(client);
    server_stop(&server);
}

/* The daemon could not parse the request: it answers with id 0, which is still our answer. */
static void serve_unattributed_error(struct fake_server *server, int fd)
{
    read_request(server, fd);
    write_text(fd,
               "{\"id\":0,\"ok\":false,\"error\":{\"code\":\"bad_request\",\"message\":\"x\"}}\n");
    char rest[16];
    read_line(fd, rest, sizeof(rest));
}

static void test_call_unattributed_error(void **state)
{
    struct fake_server server;
    server_start(&server, serve_unattributed_error);
    ctl_client_t *client = NULL;
    assert_int_equal(ctl_client_connect(&client, server.path), IOT_OK);
    cJSON *reply = NULL;
    assert_int_equal(ctl_client_call(client, "status", NULL, 2000, &reply), IOT_EPROTO);
    assert_non_null(reply);
    cJSON_Delete(reply);
    ctl_client_close(client);
    server_stop(&server);
}

static void serve_hang_up(struct fake_server *server, int fd)
{
    read_request(server, fd);
}

static void test_call_closed_connection(void **state)
{
    struct fake_server server;
    server_start(&server, serve_hang_up);
    ctl_client_t *client = NULL;
    assert_int_equal(ctl_client_connect(&client, server.path), IOT_OK);
    cJSON *reply = NULL;
    assert_int_equal(ctl_client_call(client, "status", NULL, 2000, &reply), IOT_EUNREACHABLE);
    assert_null(reply);
    ctl_client_close(client);
    server_stop(&server);
}

static void serve_silent(struct fake_server *server, int fd)
{
    read_request(server, fd);
    char rest[16];
    read_line(fd, rest, sizeof(rest)); /* until the client gives up and closes */
}

static void test_call_timeout(void **state)
{
    struct fake_server server;
    server_start(&server, serve_silent);
    ctl_client_t *client = NULL;
    assert_int_equal(ctl_client_connect(&client, server.path), IOT_OK);
    cJSON *reply = NULL;
    assert_int_equal(ctl_client_call(client, "status", NULL, 100, &reply), IOT_EBUSY);
    assert_null(reply);
    ctl_client_close(client);
    server_stop(&server);
}

/* A line that is not JSON is reported, and the stream continues with the next line. */
static void serve_garbage_then_item(struct fake_server *server, int fd)
{
    write_text(fd, "this is not json\n{\"id\":3,\"item\":{\"n\":1}}\n");
    char rest[16];
    read_line(fd, rest, sizeof(rest));
}

/* Against serve: the first line is refused as malformed, the item after it (id 3) is read.
 * Returns the connected client for more checks. */
static ctl_client_t *refused_then_item(struct fake_server *server, serve_fn serve)
{
    server_start(server, serve);
    ctl_client_t *client = NULL;
    assert_int_equal(ctl_client_connect(&client, server->path), IOT_OK);
    cJSON *msg = NULL;
    assert_int_equal(ctl_client_read(client, 2000, &msg), IOT_EPROTO);
    assert_null(msg);
    assert_int_equal(ctl_client_read(client, 2000, &msg), IOT_OK);
    assert_int_equal(ctl_get_int(msg, "id", 0), 3);
    cJSON_Delete(msg);
    return client;
}

static void test_read_garbage_line(void **state)
{
    struct fake_server server;
    ctl_client_close(refused_then_item(&server, serve_garbage_then_item));
    server_stop(&server);
}

/* A reply whose string holds a raw NUL, then a good item: the first is refused as malformed,
 * not read as a string cut at the NUL. */
static void serve_nul_then_item(struct fake_server *server, int fd)
{
    (void)server;
    static const char bad[] = "{\"id\":2,\"item\":{\"name\":\"ab\0cd\"}}\n";
    ssize_t ignored = write(fd, bad, sizeof(bad) - 1);
    (void)ignored;
    write_text(fd, "{\"id\":3,\"item\":{}}\n");
    char rest[16];
    read_line(fd, rest, sizeof(rest));
}

static void test_read_nul_refused(void **state)
{
    struct fake_server server;
    ctl_client_t *client = refused_then_item(&server, serve_nul_then_item);
    /* A request that is not valid UTF-8 is not sent at all (nor silently repaired). */
    cJSON *args = cJSON_CreateObject();
    cJSON_AddStringToObject(args, "name", "bad\xff");
    assert_int_equal(ctl_client_send(client, "tenant.show", args, NULL), IOT_EINVAL);
    ctl_client_close(client);
    server_stop(&server);
}

/* More than CTL_MAX_LINE bytes without a newline: refused, without unbounded buffering. */
static void serve_endless_line(struct fake_server *server, int fd)
{
    char chunk[65536];
    memset(chunk, 'x', sizeof(chunk));
    for (size_t sent = 0; sent < CTL_MAX_LINE + sizeof(chunk); sent += sizeof(chunk)) {
        if (write(fd, chunk, sizeof(chunk)) < 0)
            break; /* the client gave up and closed: expected */
    }
}

static void test_read_line_too_long(void **state)
{
    signal(SIGPIPE, SIG_IGN);
    struct fake_server server;
    server_start(&server, serve_endless_line);
    ctl_client_t *client = NULL;
    assert_int_equal(ctl_client_connect(&client, server.path), IOT_OK);
    cJSON *msg = NULL;
    assert_int_equal(ctl_client_read(client, 5000, &msg), IOT_EPROTO);
    assert_null(msg);
    /* The stream cannot be resynchronised: later reads fail the same way. */
    assert_int_equal(ctl_client_read(client, 10, &msg), IOT_EPROTO);
    ctl_client_close(client);
    server_stop(&server);
}

static void on_usr1(int sig)
{
    (void)sig;
}

/* A signal during a blocking read is surfaced as IOT_EIO with errno EINTR (how Ctrl-C ends a
 * stream), not retried. */
static void serve_interrupt(struct fake_server *server, int fd)
{
    usleep(100 * 1000);
    pthread_kill(server->client_thread, SIGUSR1);
    char rest[16];
    read_line(fd, rest, sizeof(rest));
}

static void test_read_interrupted(void **state)
{
    struct sigaction action = {.sa_handler = on_usr1}; /* no SA_RESTART */
    sigemptyset(&action.sa_mask);
    sigaction(SIGUSR1, &action, NULL);
    struct fake_server server;
    server_start(&server, serve_interrupt);
    ctl_client_t *client = NULL;
    assert_int_equal(ctl_client_connect(&client, server.path), IOT_OK);
    cJSON *msg = NULL;
    errno = 0;
    assert_int_equal(ctl_client_read(client, 5000, &msg), IOT_EIO);
    assert_int_equal(errno, EINTR);
    ctl_client_close(client);
    server_stop(&server);
}

static void test_connect_errors(void **state)
{
    ctl_client_t *client = NULL;
    assert_int_equal(ctl_client_connect(&client, "/nonexistent/iotd/control.sock"),
                     IOT_EUNREACHABLE);
    assert_null(client);

    /* A socket file nobody listens on any more. */
    char dir[] = "/tmp/iotctl-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[96];
    snprintf(path, sizeof(path), "%s/stale.sock", dir);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    close(fd);
    assert_int_equal(ctl_client_connect(&client, path), IOT_EUNREACHABLE);

    /* A socket whose mode refuses us (root ignores modes, so only checked otherwise). */
    if (geteuid() != 0) {
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        unlink(path);
        assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
        assert_int_equal(listen(fd, 1), 0);
        chmod(path, 0);
        assert_int_equal(ctl_client_connect(&client, path), IOT_EDENIED);
        close(fd);
    }
    unlink(path);
    rmdir(dir);

    char too_long[200];
    memset(too_long, 'a', sizeof(too_long) - 1);
    too_long[0] = '/';
    too_long[sizeof(too_long) - 1] = '\0';
    assert_int_equal(ctl_client_connect(&client, too_long), IOT_EINVAL);
}

/* With no path, $IOTD_SOCKET is used. */
static void test_connect_env(void **state)
{
    struct fake_server server;
    server_start(&server, serve_ok);
    setenv("IOTD_SOCKET", server.path, 1);
    ctl_client_t *client = NULL;
    assert_int_equal(ctl_client_connect(&client, NULL), IOT_OK);
    cJSON *reply = NULL;
    assert_int_equal(ctl_client_call(client, "tenant.list", NULL, 2000, &reply), IOT_OK);
    cJSON_Delete(reply);
    ctl_client_close(client);
    server_stop(&server);
    unsetenv("IOTD_SOCKET");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_call_ok),
        cmocka_unit_test(test_call_split_reply),
        cmocka_unit_test(test_call_error_reply),
        cmocka_unit_test(test_call_unattributed_error),
        cmocka_unit_test(test_call_closed_connection),
        cmocka_unit_test(test_call_timeout),
        cmocka_unit_test(test_read_garbage_line),
        cmocka_unit_test(test_read_nul_refused),
        cmocka_unit_test(test_read_line_too_long),
        cmocka_unit_test(test_read_interrupted),
        cmocka_unit_test(test_connect_errors),
        cmocka_unit_test(test_connect_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
