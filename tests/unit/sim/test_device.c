/*
 * test_device.c - simulated devices against a fake server in this process.
 *
 * The fake server is a thread with a poll() loop on 127.0.0.1 (port 0) that runs the library's
 * own server handshake (iotp_server_hs_*). It knows the right key for dev-a, dev-b, dev-close
 * and dev-chip (an ATECC508A device) and a wrong key for dev-bad. After WELCOME (ping=1) it
 * sends each device, in one write, `PING 77`, a user's `ping 5` and an unknown `frobnicate 6`,
 * records the answers, answers the devices' own PINGs, and closes dev-close's first session.
 * dev-bad is refused with `ERROR code=auth retry=1`.
 *
 * The test checks that the good devices authenticate, PING/PONG works both ways, `ping` gets
 * `OK 5 pong`, the unknown type gets `ERROR 6 code=unknown_type`, dev-bad comes back no sooner
 * than 1 s after its refusal, dev-close reconnects after the server closed it, and a stop sends
 * BYE from every authenticated device.
 *
 * In its events mode the server records every EVENT and ALARM (seq, session, time) and answers
 * per device: dev-a ACKs everything; dev-b answers its first event `ERROR code=busy retry=1`,
 * then ACKs; dev-close ACKs only seqs 1 and 2 of its first session and hangs up after the fifth
 * event, then ACKs everything on the next; dev-chip refuses its first event for good
 * (unknown_type). The tests check the rate, that acknowledged events leave and the rest come
 * again after a reconnect in order, that busy is honoured, the ACK log, sequence numbers that
 * continue above the reserved mark after a restart (--state-dir), and start_events /
 * stop_events.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "iotp/iotp.h"
#include "iotp_posix.h"
#include "sim_device.h"
#include "sim_events.h"
#include "sim_fleet.h"

#define MAX_CONNS 32

/* cmocka's asserts longjmp and must stay on the test's thread; the server thread records the
 * first failed check instead, and the test asserts there was none. */
static atomic_int server_failed_line;
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            atomic_compare_exchange_strong(&server_failed_line, &(int){0}, __LINE__);              \
    } while (0)

enum { DEV_A, DEV_B, DEV_CLOSE, DEV_CHIP, DEV_BAD, NDEV };

static const char *const ids[NDEV] = {"dev-a", "dev-b", "dev-close", "dev-chip", "dev-bad"};
static const uint8_t serial[IOTP_ATECC_SERIAL_LEN] = {0x01, 0x23, 0xa1, 0xb2, 0xc3,
                                                      0xd4, 0xe5, 0xf6, 0xee};

/* What the server saw of one device (guarded by the server mutex). */
struct observed {
    int hellos;
    int welcomes;
    int refusals;
    uint64_t refused_ms;             /* when the first refusal was sent */
    uint64_t hello_after_refusal_ms; /* the first HELLO after it, 0 if none yet */
    int pong_77;                     /* answered the server's PING 77 with PONG 77 */
    int ok_pong;                     /* answered `ping 5` with `OK 5 pong` */
    int unknown_type;                /* answered `frobnicate 6` with ERROR code=unknown_type */
    int device_pings;                /* PINGs from the device the server answered */
    int byes;
    int closed_by_server;
    /* Events mode: every EVENT/ALARM received, in order. */
    struct received {
        uint32_t seq;
        char kind; /* 'E' or 'A' */
        int session;
        int acked; /* the server answered ACK */
        uint64_t ms;
    } events[128];
    int nevents;
    int busy_sent;         /* dev-b: its first event was answered busy */
    int rejected_sent;     /* dev-chip: its first event was refused for good */
    uint32_t busy_seq;     /* the seq answered busy */
    uint64_t busy_ms;      /* when */
    int commands_sent;     /* restart mode: start_events / stop_events sent */
    int ok_start, ok_stop; /* their OKs */
    uint64_t stop_ok_ms;
};

enum server_mode {
    MODE_BASIC,   /* the script above */
    MODE_EVENTS,  /* events answered per device as above */
    MODE_COMMAND, /* dev-a: ACK everything; start_events 20 after WELCOME, stop_events after the
                     third event */
};

struct conn {
    int fd;
    int dev; /* index once HELLO named a known id, else -1 */
    int authed;
    struct iotp_server_hs hs;
    struct iotp_parser parser;
    uint8_t buf[IOTP_MAX_FRAME];
};

struct fake_server {
    enum server_mode mode;
    int listen_fd;
    uint16_t port;
    pthread_t thread;
    atomic_int stop;
    pthread_mutex_t mu;
    struct observed seen[NDEV];
    struct conn conns[MAX_CONNS];
    uint8_t keys[NDEV][IOTP_KEY_LEN]; /* what the devices hold */
};

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int device_index(const char *id)
{
    for (int i = 0; i < NDEV; i++)
        if (strcmp(ids[i], id) == 0)
            return i;
    return -1;
}

static void send_all(int fd, const uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n <= 0)
            return;
        buf += n;
        len -= (size_t)n;
    }
}

static void close_conn(struct conn *c)
{
    close(c->fd);
    c->fd = -1;
}

/* After WELCOME: three requests in one write, so the device's parser sees several frames in one
 * read. */
static void send_session_script(struct conn *c)
{
    uint8_t out[3 * 256];
    size_t len = 0;
    struct iotp_writer w;
    int n;

    iotp_writer_begin(&w, out, 256, "iotd", ids[c->dev], "PING", 77);
    n = iotp_writer_end(&w);
    CHECK(n > 0);
    len += (size_t)n;
    iotp_writer_begin(&w, out + len, 256, "alice@acme", ids[c->dev], "ping", 5);
    n = iotp_writer_end(&w);
    CHECK(n > 0);
    len += (size_t)n;
    iotp_writer_begin(&w, out + len, 256, "alice@acme", ids[c->dev], "frobnicate", 6);
    iotp_writer_arg(&w, "x");
    n = iotp_writer_end(&w);
    CHECK(n > 0);
    len += (size_t)n;
    send_all(c->fd, out, len);
}

/* A user's request to the device (arg may be NULL). */
static void send_request(struct conn *c, const char *type, uint32_t id, const char *arg)
{
    uint8_t out[256];
    struct iotp_writer w;
    int n;

    iotp_writer_begin(&w, out, sizeof(out), "alice@acme", ids[c->dev], type, id);
    if (arg)
        iotp_writer_arg(&w, arg);
    n = iotp_writer_end(&w);
    CHECK(n > 0);
    send_all(c->fd, out, (size_t)n);
}

/* `iotd <dev> ACK <seq>` or `iotd <dev> ERROR <seq> code=<code> [retry=<retry_s>]`. */
static void answer_event(struct conn *c, uint32_t seq, const char *code, uint32_t retry_s)
{
    uint8_t out[256];
    struct iotp_writer w;
    int n;

    if (code) {
        n = iotp_frame_write_error(out, sizeof(out), "iotd", ids[c->dev], seq, code, retry_s, NULL);
    } else {
        iotp_writer_begin(&w, out, sizeof(out), "iotd", ids[c->dev], "ACK", seq);
        n = iotp_writer_end(&w);
    }
    CHECK(n > 0);
    send_all(c->fd, out, (size_t)n);
}

/* An EVENT or ALARM: record it and answer as the device's rule says. Returns -1 to hang up. */
static int on_event(struct fake_server *s, struct conn *c, struct observed *o,
                    const struct iotp_frame *f)
{
    struct received *r;
    int first_session_events = 0;

    CHECK(strcmp(f->to, "iotd") == 0 && f->nargs >= 1);
    CHECK(o->nevents < (int)(sizeof(o->events) / sizeof(o->events[0])));
    if (o->nevents >= (int)(sizeof(o->events) / sizeof(o->events[0])))
        return -1;
    r = &o->events[o->nevents++];
    r->seq = f->id;
    r->kind = f->type[0];
    r->session = o->welcomes;
    r->ms = now_ms();
    for (int i = 0; i < o->nevents; i++)
        first_session_events += o->events[i].session == 1;

    if (s->mode == MODE_COMMAND) {
        if (o->nevents == 3)
            send_request(c, "stop_events", 42, NULL);
    } else if (c->dev == DEV_B && !o->busy_sent) {
        o->busy_sent = 1;
        o->busy_seq = f->id;
        o->busy_ms = r->ms;
        answer_event(c, f->id, "busy", 1);
        return 0;
    } else if (c->dev == DEV_CHIP && !o->rejected_sent) {
        o->rejected_sent = 1;
        answer_event(c, f->id, "unknown_type", 0);
        return 0;
    } else if (c->dev == DEV_CLOSE && o->welcomes == 1) {
        if (f->id <= 2) {
            r->acked = 1;
            answer_event(c, f->id, NULL, 0);
        }
        if (first_session_events == 5) {
            o->closed_by_server = 1;
            return -1;
        }
        return 0;
    }
    r->acked = 1;
    answer_event(c, f->id, NULL, 0);
    return 0;
}

/* One frame from a device. Returns -1 when the connection should close. */
static int on_frame(struct fake_server *s, struct conn *c, const struct iotp_frame *f)
{
    struct iotp_device_secret secret;
    uint8_t out[IOTP_MAX_FRAME];
    struct observed *o;
    size_t len;
    int r;

    if (c->dev < 0 && strcmp(f->type, "HELLO") == 0) {
        r = iotp_server_hs_on_hello(&c->hs, f);
        CHECK(r == 0);
        c->dev = device_index(c->hs.device_id);
        CHECK(c->dev >= 0);
        if (c->dev < 0)
            return -1;
        o = &s->seen[c->dev];
        o->hellos++;
        if (o->refusals > 0 && o->hello_after_refusal_ms == 0)
            o->hello_after_refusal_ms = now_ms();
        memset(&secret, 0, sizeof(secret));
        secret.alg = c->dev == DEV_CHIP ? IOTP_ALG_ATECC508A_MAC : IOTP_ALG_HMAC_SHA256;
        memcpy(secret.key, s->keys[c->dev], IOTP_KEY_LEN);
        if (c->dev == DEV_BAD)
            secret.key[0] ^= 0x55; /* the server holds another key than the device */
        memcpy(secret.serial, serial, sizeof(serial));
        CHECK(iotp_server_hs_challenge(&c->hs, &secret, out, sizeof(out), &len) == 0);
        send_all(c->fd, out, len);
        return 0;
    }
    if (c->dev < 0)
        return -1;
    o = &s->seen[c->dev];
    if (!c->authed) {
        r = iotp_server_hs_on_auth(&c->hs, f, 1, 1, out, sizeof(out), &len);
        send_all(c->fd, out, len);
        if (r != IOTP_HS_DONE) {
            if (o->refusals++ == 0)
                o->refused_ms = now_ms();
            return -1;
        }
        c->authed = 1;
        o->welcomes++;
        send_session_script(c);
        if (s->mode == MODE_COMMAND && c->dev == DEV_A && o->commands_sent == 0) {
            send_request(c, "start_events", 41, "20");
            o->commands_sent = 1;
        }
        return 0;
    }
    if (strcmp(f->type, "EVENT") == 0 || strcmp(f->type, "ALARM") == 0)
        return on_event(s, c, o, f);
    if (strcmp(f->type, "OK") == 0 && f->id == 41 && strcmp(f->to, "alice@acme") == 0)
        o->ok_start++;
    if (strcmp(f->type, "OK") == 0 && f->id == 42 && strcmp(f->to, "alice@acme") == 0) {
        o->ok_stop++;
        o->stop_ok_ms = now_ms();
    }
    if (strcmp(f->type, "PONG") == 0 && f->id == 77 && strcmp(f->to, "iotd") == 0)
        o->pong_77++;
    else if (strcmp(f->type, "OK") == 0 && f->id == 5 && strcmp(f->to, "alice@acme") == 0 &&
             f->nargs == 1 && strcmp(f->args[0], "pong") == 0)
        o->ok_pong++;
    else if (strcmp(f->type, "ERROR") == 0 && f->id == 6 && strcmp(f->to, "alice@acme") == 0 &&
             iotp_frame_arg(f, "code") && strcmp(iotp_frame_arg(f, "code"), "unknown_type") == 0)
        o->unknown_type++;
    else if (strcmp(f->type, "BYE") == 0)
        o->byes++;
    else if (strcmp(f->type, "PING") == 0) {
        struct iotp_writer w;
        iotp_writer_begin(&w, out, sizeof(out), "iotd", ids[c->dev], "PONG", f->id);
        r = iotp_writer_end(&w);
        CHECK(r > 0);
        send_all(c->fd, out, (size_t)r);
        o->device_pings++;
    }
    /* dev-close: once its first session has shown everything works, the server hangs up. */
    if (s->mode == MODE_BASIC && c->dev == DEV_CLOSE && o->closed_by_server == 0 && o->pong_77 &&
        o->ok_pong && o->unknown_type) {
        o->closed_by_server = 1;
        return -1;
    }
    return 0;
}

static void on_readable(struct fake_server *s, struct conn *c)
{
    uint8_t chunk[1024];
    const struct iotp_frame *f;
    size_t off = 0, used;
    ssize_t n = recv(c->fd, chunk, sizeof(chunk), 0);

    if (n <= 0) {
        close_conn(c);
        return;
    }
    pthread_mutex_lock(&s->mu);
    while (off < (size_t)n) {
        int r = iotp_parser_feed(&c->parser, chunk + off, (size_t)n - off, &used, &f, NULL);
        off += used;
        CHECK(r >= 0);
        if (r == 1 && on_frame(s, c, f) < 0) {
            close_conn(c);
            break;
        }
    }
    pthread_mutex_unlock(&s->mu);
}

static void *server_main(void *arg)
{
    struct fake_server *s = arg;
    struct iotp_random random;

    iotp_posix_random(&random);
    while (!atomic_load(&s->stop)) {
        struct pollfd pfd[MAX_CONNS + 1];
        int map[MAX_CONNS + 1];
        nfds_t n = 0;

        pfd[n].fd = s->listen_fd;
        pfd[n].events = POLLIN;
        map[n++] = -1;
        for (int i = 0; i < MAX_CONNS; i++) {
            if (s->conns[i].fd >= 0) {
                pfd[n].fd = s->conns[i].fd;
                pfd[n].events = POLLIN;
                map[n++] = i;
            }
        }
        if (poll(pfd, n, 50) <= 0)
            continue;
        for (nfds_t k = 0; k < n; k++) {
            if (!(pfd[k].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            if (map[k] >= 0) {
                on_readable(s, &s->conns[map[k]]);
                continue;
            }
            int fd = accept(s->listen_fd, NULL, NULL);
            int slot = -1;
            for (int i = 0; i < MAX_CONNS && fd >= 0; i++)
                if (s->conns[i].fd < 0) {
                    slot = i;
                    break;
                }
            if (slot < 0) {
                if (fd >= 0)
                    close(fd);
                continue;
            }
            struct conn *c = &s->conns[slot];
            c->fd = fd;
            c->dev = -1;
            c->authed = 0;
            iotp_server_hs_init(&c->hs, &random);
            iotp_parser_init(&c->parser, c->buf, sizeof(c->buf), 0, 0);
        }
    }
    for (int i = 0; i < MAX_CONNS; i++)
        if (s->conns[i].fd >= 0)
            close_conn(&s->conns[i]);
    return NULL;
}

static void server_start(struct fake_server *s, enum server_mode mode)
{
    struct sockaddr_in addr;
    socklen_t alen = sizeof(addr);

    s->mode = mode;
    memset(s->seen, 0, sizeof(s->seen));
    for (int i = 0; i < MAX_CONNS; i++)
        s->conns[i].fd = -1;
    for (int d = 0; d < NDEV; d++)
        for (int i = 0; i < IOTP_KEY_LEN; i++)
            s->keys[d][i] = (uint8_t)(d * 37 + i);
    pthread_mutex_init(&s->mu, NULL);
    atomic_store(&s->stop, 0);
    s->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->listen_fd >= 0);
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s->listen_fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(listen(s->listen_fd, 64), 0);
    assert_int_equal(getsockname(s->listen_fd, (struct sockaddr *)&addr, &alen), 0);
    s->port = ntohs(addr.sin_port);
    assert_int_equal(pthread_create(&s->thread, NULL, server_main, s), 0);
}

static void server_stop(struct fake_server *s)
{
    atomic_store(&s->stop, 1);
    pthread_join(s->thread, NULL);
    close(s->listen_fd);
    pthread_mutex_destroy(&s->mu);
}

/* The test's view while the loop runs. */
struct watch {
    struct fake_server *server;
    struct sim_fleet *fleet;
    uv_timer_t timer;
    uint64_t deadline_ms;
    int (*goal)(struct watch *w); /* called under the server's lock */
    int done;
};

/* Everything the test waits for, under the server's lock. */
static int goals_met(struct watch *w)
{
    const struct observed *seen = w->server->seen;

    for (int d = 0; d < NDEV; d++) {
        if (d == DEV_BAD)
            continue;
        if (!seen[d].pong_77 || !seen[d].ok_pong || !seen[d].unknown_type || !seen[d].device_pings)
            return 0;
    }
    return seen[DEV_CLOSE].welcomes >= 2 && seen[DEV_BAD].hello_after_refusal_ms != 0 &&
           w->fleet->stats.authenticated == NDEV - 1 && w->fleet->stats.pongs_received >= 4;
}

static void on_watch(uv_timer_t *timer)
{
    struct watch *w = timer->data;
    int met;

    pthread_mutex_lock(&w->server->mu);
    met = w->goal(w);
    pthread_mutex_unlock(&w->server->mu);
    if (met || now_ms() > w->deadline_ms) {
        w->done = met;
        uv_close((uv_handle_t *)&w->timer, NULL);
        sim_fleet_stop(w->fleet);
    }
}

/* The devices, holding the keys the server knows (dev-bad's differs on the server's side). */
static void make_entries(struct sim_device_entry *entries, const struct fake_server *server)
{
    memset(entries, 0, NDEV * sizeof(*entries));
    for (int d = 0; d < NDEV; d++) {
        strcpy(entries[d].id, ids[d]);
        strcpy(entries[d].type, "thermo");
        entries[d].alg = d == DEV_CHIP ? IOTP_ALG_ATECC508A_MAC : IOTP_ALG_HMAC_SHA256;
        memcpy(entries[d].key, server->keys[d], IOTP_KEY_LEN);
        memcpy(entries[d].serial, serial, sizeof(serial));
    }
}

static void make_config(struct sim_fleet_config *cfg, const struct fake_server *server)
{
    struct sockaddr_in *sin;

    memset(cfg, 0, sizeof(*cfg));
    sin = (struct sockaddr_in *)&cfg->addrs[0];
    sin->sin_family = AF_INET;
    sin->sin_port = htons(server->port);
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cfg->servers[0].host = "127.0.0.1";
    cfg->servers[0].port = server->port;
    cfg->nservers = 1;
    cfg->fw_version = "test-1";
    cfg->connect_rate = 1000;
    cfg->handshake_timeout_ms = 5000;
    cfg->verbose = 1;
}

/* Run a fleet of the first n entries until goal() holds (checked every 50 ms under the server's
 * lock) or timeout_ms passed, then stop it and run the loop empty. Returns whether the goal was
 * met; the loop is closed and the fleet is left to inspect (sim_fleet_free it afterwards). */
static int run_fleet(struct fake_server *server, struct sim_fleet *fleet,
                     const struct sim_fleet_config *cfg, const struct sim_device_entry *entries,
                     size_t n, int (*goal)(struct watch *w), uint64_t timeout_ms, uv_loop_t *loop)
{
    struct watch w;

    assert_int_equal(uv_loop_init(loop), 0);
    assert_int_equal(sim_fleet_init(fleet, loop, cfg, entries, n), 0);
    memset(&w, 0, sizeof(w));
    w.server = server;
    w.fleet = fleet;
    w.goal = goal;
    w.deadline_ms = now_ms() + timeout_ms;
    uv_timer_init(loop, &w.timer);
    w.timer.data = &w;
    uv_timer_start(&w.timer, on_watch, 50, 50);

    sim_fleet_start(fleet);
    uv_run(loop, UV_RUN_DEFAULT);
    return w.done;
}

static void devices_against_fake_server(void **state)
{
    static struct fake_server server;
    static struct sim_fleet fleet; /* big (its read buffer): keep it off the stack */
    struct sim_device_entry entries[NDEV];
    struct sim_fleet_config cfg;
    uv_loop_t loop;
    int done;

    (void)state;
    signal(SIGPIPE, SIG_IGN);
    server_start(&server, MODE_BASIC);

    make_entries(entries, &server);
    make_config(&cfg, &server);
    done = run_fleet(&server, &fleet, &cfg, entries, NDEV, goals_met, 20000, &loop);

    /* The stop closed everything the fleet owns: the loop is empty. */
    assert_int_equal(uv_loop_close(&loop), 0);
    for (int d = 0; d < NDEV; d++)
        assert_int_equal(fleet.devices[d].state, SIM_DEVICE_STOPPED);
    assert_int_equal(fleet.stats.authenticated, 0);
    assert_int_equal(fleet.stats.connecting, 0);

    /* Give the server a moment to read the BYEs. */
    for (int i = 0; i < 100; i++) {
        int byes = 0;
        pthread_mutex_lock(&server.mu);
        for (int d = 0; d < NDEV; d++)
            byes += server.seen[d].byes > 0;
        pthread_mutex_unlock(&server.mu);
        if (byes == NDEV - 1)
            break;
        usleep(20000);
    }
    server_stop(&server);

    assert_int_equal(atomic_load(&server_failed_line), 0);
    assert_true(done);
    for (int d = 0; d < NDEV; d++) {
        const struct observed *o = &server.seen[d];
        if (d == DEV_BAD) {
            assert_int_equal(o->welcomes, 0);
            assert_true(o->refusals >= 1);
            continue;
        }
        assert_true(o->welcomes >= 1);
        assert_true(o->pong_77 >= 1);
        assert_true(o->ok_pong >= 1);
        assert_true(o->unknown_type >= 1);
        assert_true(o->device_pings >= 1);
        assert_int_equal(o->byes, 1);
    }
    /* retry=1 is a floor: the second HELLO came at least a second after the refusal. */
    assert_true(server.seen[DEV_BAD].hello_after_refusal_ms - server.seen[DEV_BAD].refused_ms >=
                1000);
    assert_int_equal(server.seen[DEV_CLOSE].closed_by_server, 1);
    assert_true(server.seen[DEV_CLOSE].welcomes >= 2);

    assert_int_equal(fleet.stats.configured, NDEV);
    assert_true(fleet.stats.auth_failures >= 1);
    assert_true(fleet.stats.reconnects >= 2); /* dev-close and dev-bad */
    assert_true(fleet.stats.disconnects >= 1);
    assert_true(fleet.stats.pings_sent >= 4);
    assert_true(fleet.stats.requests_answered >= 8);
    assert_true(fleet.all_authenticated_ms < 0); /* dev-bad never got in */
    sim_fleet_free(&fleet);
}

/* ---- events ---- */

#define EVENT_COUNT 8 /* periodic events per device; each also sends one ALARM first */

static char state_dir[64];

/* Every device but dev-bad made its events and saw them acknowledged (or refused). */
static int events_settled(struct watch *w)
{
    return w->fleet->events_settled == NDEV - 1;
}

/* dev-a's stop_events was answered half a second ago. */
static int events_stopped(struct watch *w)
{
    const struct observed *o = &w->server->seen[DEV_A];

    return o->ok_stop && now_ms() > o->stop_ok_ms + 500;
}

/* The seqs of dev's lines in the ACK log at path, in file order; returns how many. */
static int ack_log_seqs(const char *path, const char *dev, uint32_t *out, int max)
{
    char line[512], name[160], kind[16], event[64];
    unsigned seq;
    int n = 0;
    FILE *f = fopen(path, "r");

    assert_non_null(f);
    while (fgets(line, sizeof(line), f)) {
        assert_int_equal(sscanf(line, "%159s %u %15s %63s", name, &seq, kind, event), 4);
        assert_string_equal(event, "temperature");
        assert_true(strcmp(kind, "EVENT") == 0 || strcmp(kind, "ALARM") == 0);
        if (strcmp(kind, "EVENT") == 0) {
            assert_non_null(strstr(line, " value="));
            assert_non_null(strstr(line, " unit=C"));
        } else {
            assert_non_null(strstr(line, " state=raised"));
        }
        if (strcmp(name, dev) == 0 && n < max)
            out[n++] = seq;
    }
    fclose(f);
    return n;
}

static uint32_t seq_file(const char *dev)
{
    char path[256], err[256];
    uint32_t hw = 0;

    snprintf(path, sizeof(path), "%s/%s.seq", state_dir, dev);
    assert_int_equal(access(path, R_OK), 0);
    assert_int_equal(sim_seq_load(state_dir, dev, &hw, err, sizeof(err)), 0);
    return hw;
}

static void events_config(struct sim_event_config *ev, FILE *ack_log)
{
    sim_event_config_init(ev);
    ev->rate = 20;
    ev->count = EVENT_COUNT;
    ev->outbox_entries = 64;
    ev->state_dir = state_dir;
    ev->ack_log = ack_log;
    ev->nalarms = 1;
    strcpy(ev->alarms[0].name, "temperature");
    strcpy(ev->alarms[0].state, "raised");
}

static void events_against_fake_server(void **state)
{
    static struct fake_server server;
    static struct sim_fleet fleet;
    static struct sim_event_config ev;
    struct sim_device_entry entries[NDEV];
    struct sim_fleet_config cfg;
    char ack_path[128];
    uint32_t logged[64];
    FILE *ack_log;
    uv_loop_t loop;
    int done;

    (void)state;
    signal(SIGPIPE, SIG_IGN);
    strcpy(state_dir, "/tmp/iotsim-test-XXXXXX");
    assert_non_null(mkdtemp(state_dir));
    snprintf(ack_path, sizeof(ack_path), "%s/ack.log", state_dir);
    ack_log = fopen(ack_path, "a");
    assert_non_null(ack_log);

    server_start(&server, MODE_EVENTS);
    make_entries(entries, &server);
    make_config(&cfg, &server);
    cfg.verbose = 0;
    events_config(&ev, ack_log);
    cfg.events = &ev;
    done = run_fleet(&server, &fleet, &cfg, entries, NDEV, events_settled, 20000, &loop);
    assert_int_equal(uv_loop_close(&loop), 0);
    server_stop(&server);
    fclose(ack_log);
    assert_int_equal(atomic_load(&server_failed_line), 0);
    assert_true(done);

    for (int d = 0; d < NDEV; d++) {
        const struct observed *o = &server.seen[d];
        int seen[EVENT_COUNT + 2] = {0}, acked[EVENT_COUNT + 2] = {0}, nlog;
        if (d == DEV_BAD) {
            assert_int_equal(o->nevents, 0);
            continue;
        }
        /* Every seq 1..9 reached the server: the ALARM first, then the events. */
        for (int i = 0; i < o->nevents; i++) {
            assert_true(o->events[i].seq >= 1 && o->events[i].seq <= EVENT_COUNT + 1);
            seen[o->events[i].seq]++;
            acked[o->events[i].seq] += o->events[i].acked;
            assert_int_equal(o->events[i].kind, o->events[i].seq == 1 ? 'A' : 'E');
        }
        for (int q = 1; q <= EVENT_COUNT + 1; q++) {
            assert_true(seen[q] >= 1);
            /* Acknowledged exactly once, but for dev-chip's refused first one. */
            assert_int_equal(acked[q], d == DEV_CHIP && q == 1 ? 0 : 1);
        }
        /* The ACK log has one line per acknowledged event, in the order of the ACKs. */
        nlog = ack_log_seqs(ack_path, ids[d], logged, 64);
        assert_int_equal(nlog, d == DEV_CHIP ? EVENT_COUNT : EVENT_COUNT + 1);
        for (int i = 0; i < nlog; i++)
            assert_int_equal(acked[logged[i]], 1);
        /* The reserved mark is on disk, covering every seq used. */
        assert_int_equal(seq_file(ids[d]), IOTP_OUTBOX_RESERVE_BLOCK);
    }

    /* dev-a, acknowledged at once: nothing sent twice, events at 20/s (8 take about 350 ms). */
    {
        const struct observed *o = &server.seen[DEV_A];
        uint64_t span = o->events[o->nevents - 1].ms - o->events[1].ms;
        assert_int_equal(o->nevents, EVENT_COUNT + 1);
        for (int i = 0; i < o->nevents; i++)
            assert_int_equal(o->events[i].seq, (uint32_t)i + 1);
        assert_true(span >= 250 && span <= 3000);
    }
    /* dev-close: 1 and 2 acknowledged, 3..5 not when the server hung up; the next session
     * sends them again first, oldest first, then the rest in order. */
    {
        const struct observed *o = &server.seen[DEV_CLOSE];
        uint32_t expect = 3;
        assert_int_equal(o->closed_by_server, 1);
        for (int i = 0; i < o->nevents; i++) {
            if (o->events[i].session == 1) {
                assert_int_equal(o->events[i].seq, (uint32_t)i + 1);
                continue;
            }
            assert_int_equal(o->events[i].seq, expect);
            expect++;
        }
        assert_int_equal(expect, EVENT_COUNT + 2);
    }
    /* dev-b: after busy retry=1 nothing new was sent for a second; then the refused event
     * first and the rest in order. */
    {
        const struct observed *o = &server.seen[DEV_B];
        int i = 0;
        assert_int_equal(o->busy_sent, 1);
        while (i < o->nevents && o->events[i].seq != o->busy_seq)
            i++;
        for (i++; i < o->nevents && o->events[i].seq != o->busy_seq; i++)
            assert_true(o->events[i].ms < o->busy_ms + 200); /* only what was on its way */
        assert_true(i < o->nevents);
        assert_true(o->events[i].ms >= o->busy_ms + 950);
        for (i++; i < o->nevents; i++)
            assert_true(o->events[i].seq > o->events[i - 1].seq);
    }
    assert_int_equal(fleet.stats.events_generated, 4 * (EVENT_COUNT + 1));
    assert_int_equal(fleet.stats.events_acked, 4 * (EVENT_COUNT + 1) - 1);
    assert_int_equal(fleet.stats.events_rejected, 1);
    assert_true(fleet.stats.events_busy >= 1);
    assert_true(fleet.stats.events_resent >= 3);
    assert_int_equal(fleet.stats.events_pending, 0);
    assert_int_equal(fleet.stats.events_refused, 0);
    sim_fleet_free(&fleet);
}

/* A second run over the same --state-dir (iotsim restarted): dev-a's numbers continue above
 * the mark the first run reserved. Events are off until the server says start_events 20, and
 * stop after stop_events. */
static void events_restart_and_commands(void **state)
{
    static struct fake_server server;
    static struct sim_fleet fleet;
    static struct sim_event_config ev;
    struct sim_device_entry entries[NDEV];
    struct sim_fleet_config cfg;
    const struct observed *o;
    char path[256];
    uv_loop_t loop;
    int done;

    (void)state;
    assert_true(state_dir[0] != '\0'); /* runs after events_against_fake_server */
    server_start(&server, MODE_COMMAND);
    make_entries(entries, &server);
    make_config(&cfg, &server);
    events_config(&ev, NULL);
    ev.rate = 0; /* until start_events */
    ev.count = 0;
    ev.nalarms = 0;
    cfg.events = &ev;
    done = run_fleet(&server, &fleet, &cfg, entries, 1, events_stopped, 20000, &loop);
    assert_int_equal(uv_loop_close(&loop), 0);
    server_stop(&server);
    assert_int_equal(atomic_load(&server_failed_line), 0);
    assert_true(done);

    o = &server.seen[DEV_A];
    assert_int_equal(o->ok_start, 1);
    assert_int_equal(o->ok_stop, 1);
    assert_true(o->nevents >= 3);
    for (int i = 0; i < o->nevents; i++) {
        assert_int_equal(o->events[i].seq, IOTP_OUTBOX_RESERVE_BLOCK + 1 + (uint32_t)i);
        assert_true(o->events[i].ms <= o->stop_ok_ms); /* nothing after stop_events */
        assert_int_equal(o->events[i].kind, 'E');
    }
    assert_int_equal(seq_file(ids[DEV_A]), 2 * IOTP_OUTBOX_RESERVE_BLOCK);
    sim_fleet_free(&fleet);

    /* Clean up the state directory. */
    for (int d = 0; d < NDEV; d++) {
        snprintf(path, sizeof(path), "%s/%s.seq", state_dir, ids[d]);
        unlink(path);
    }
    snprintf(path, sizeof(path), "%s/ack.log", state_dir);
    unlink(path);
    assert_int_equal(rmdir(state_dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(devices_against_fake_server),
        cmocka_unit_test(events_against_fake_server),
        cmocka_unit_test(events_restart_and_commands),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
