/*
 * relay_load.c - closed-loop load over the iotp wire protocol, and the echo devices behind it.
 *
 *   relay_load -c HOST:PORT --from alice@bench [--password PW] --devices dev1,dev2
 *              [--conns N] [--inflight K] [--duration S] [--warmup S] [--payload BYTES]
 *              [--label NAME]
 *   relay_load --responder -c HOST:PORT --devices dev1,dev2 [--duration S]
 *   relay_load --websocket -c HOST:PORT --from alice@bench --password PW --devices ... [as above]
 *
 * Load mode opens N connections; each (after LOGIN when --password is given, as iotd wants)
 * keeps K `echo` requests in flight, spread round robin over the devices, and sends the next
 * one as soon as an answer arrives. Latency is measured from the moment a request is queued to
 * the moment its answer is parsed, and recorded for every round trip after the warm-up (see
 * bench_stats.h); the result is one key=value line on stdout. A "%d" in --from is replaced by
 * the connection number, for relays that route answers by address only (epoll_relay).
 *
 * Responder mode is the device side for epoll_relay: one connection per device, announced by
 * a first frame `DEV relay HELLO 0` (the relay learns addresses from FROM), answering every
 * lower-case request with `DEV FROM OK id args...`. For iotd the devices are iotsim, which
 * also answers echo but authenticates first.
 *
 * With --websocket the load connections are browsers on iotd's web listener: each upgrades
 * GET /ws (RFC 6455), then speaks iot-websocket(7): the same LOGIN, echo requests and PONGs as
 * JSON text messages in masked client frames, and reads the server's unmasked frames, taking
 * from each JSON answer only what the load needs (type, id, code) with a scan, not a parser:
 * the generator must not be what limits the figure.
 *
 * Frames are parsed and written with the firmware library (iotp_parser, iotp_writer), as a
 * device or an app would. One thread and one epoll set carry every connection; a pass of the
 * loop reads what arrived, queues the answers or next requests, and writes each connection's
 * output once: the same write coalescing the relays under test do.
 *
 * Exit status: 0 after a run with answers, 1 when nothing was answered, 2 for usage, 3 when a
 * connection or the LOGIN failed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench_stats.h"
#include "iotp/iotp.h"

/* Send times are kept in a ring indexed by request id: ids are consecutive per connection, so
 * with fewer than RING requests in flight an answer always finds its own slot. */
#define RING          4096
#define MAX_DEVICES   1024
#define MAX_CONNS     1024
#define READ_CHUNK    (64 * 1024)
#define DRAIN_SECONDS 1.0 /* how long to wait for the last answers before calling them lost */
#define LOGIN_SECONDS 30  /* how long every connection may take to be logged in */
#define WS_IN_MAX     (64 * 1024) /* server frames not yet whole, per WebSocket connection */

struct options {
    const char *connect;
    const char *from;
    const char *password;
    const char *label;
    char *devices[MAX_DEVICES];
    unsigned ndevices;
    unsigned conns;
    unsigned inflight;
    double duration_s;
    double warmup_s;
    unsigned payload;
    int responder;
    int websocket;
};

struct conn {
    int fd;
    char from[IOTP_MAX_ADDRESS_LEN + 1]; /* our address; the device id in responder mode */
    struct iotp_parser parser;
    uint8_t rx[IOTP_MAX_FRAME];
    uint8_t *out; /* bytes waiting for the socket */
    size_t out_len, out_cap;
    int logged_in;
    uint32_t next_id;
    unsigned inflight;
    unsigned next_device;
    uint64_t sent_ns[RING];
    struct bench_latencies lat;
    uint8_t *ws_in; /* --websocket: received bytes of frames not yet whole */
    size_t ws_in_len;
};

struct load {
    struct options opt;
    struct conn *conns;
    unsigned nconns;
    int epfd;
    char payload[IOTP_MAX_FRAME];
    uint64_t measure_from_ns; /* answers before this are warm-up */
    uint64_t end_ns;          /* the end of the measured window */
    unsigned logged_in;       /* connections past LOGIN: the clock starts when all are */
    int sending;              /* 0 once the window closed: answers are taken, nothing sent */
    uint64_t errors;
    unsigned logged_errors;
    int failed;
};

static volatile sig_atomic_t stop_requested;

static void on_signal(int signum)
{
    (void)signum;
    stop_requested = 1;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: relay_load -c HOST:PORT --from ADDR [--password PW] --devices D1,D2...\n"
                 "                  [--conns N] [--inflight K] [--duration S] [--warmup S]\n"
                 "                  [--payload BYTES] [--label NAME]\n"
                 "       relay_load --responder -c HOST:PORT --devices D1,D2... [--duration S]\n"
                 "       relay_load --websocket ... (the load mode's options: over iotd's /ws)\n");
}

/* Open a blocking TCP connection to spec (HOST:PORT), then make it non-blocking. Returns the
 * fd or -1 with a message. */
static int dial(const char *spec)
{
    char host[256];
    const char *colon = strrchr(spec, ':');
    struct addrinfo hints, *res = NULL;
    int fd = -1, one = 1;

    if (!colon || (size_t)(colon - spec) >= sizeof(host)) {
        fprintf(stderr, "relay_load: -c wants HOST:PORT\n");
        return -1;
    }
    memcpy(host, spec, (size_t)(colon - spec));
    host[colon - spec] = '\0';
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0) {
        fprintf(stderr, "relay_load: cannot resolve %s\n", spec);
        return -1;
    }
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
        fprintf(stderr, "relay_load: connect %s: %s\n", spec, strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    } else {
        /* Requests are small and latency is the point: no Nagle delay. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        fcntl(fd, F_SETFL, O_NONBLOCK);
    }
    freeaddrinfo(res);
    return fd;
}

/* Room for one more frame at the end of c->out. Returns the place to write or NULL. */
static uint8_t *out_reserve(struct conn *c)
{
    if (c->out_cap - c->out_len < IOTP_MAX_FRAME) {
        size_t cap = c->out_cap ? c->out_cap * 2 : 64 * 1024;
        uint8_t *p = realloc(c->out, cap);
        if (!p)
            return NULL;
        c->out = p;
        c->out_cap = cap;
    }
    return c->out + c->out_len;
}

/* Finish a frame begun in out_reserve's space. Returns 0 or -1 (frame could not be built). */
static int out_commit(struct conn *c, struct iotp_writer *w)
{
    int n = iotp_writer_end(w);

    if (n < 0) {
        fprintf(stderr, "relay_load: cannot build a frame: %s\n", iotp_strerror(n));
        return -1;
    }
    c->out_len += (size_t)n;
    return 0;
}

/* --websocket: one masked text frame of json[0, len) at the end of c->out. The mask is a cheap
 * pseudo-random word: RFC 6455 wants it unpredictable to a page's script, not secret here. */
static int ws_out(struct conn *c, const char *json, size_t len)
{
    static uint32_t seed = 2463534242u;
    uint8_t *at = out_reserve(c), *p, mask[4];
    size_t n = 0;

    if (!at || len > IOTP_MAX_FRAME - 8)
        return -1;
    seed ^= seed << 13, seed ^= seed >> 17, seed ^= seed << 5;
    memcpy(mask, &seed, 4);
    at[n++] = 0x81; /* FIN, text */
    if (len < 126) {
        at[n++] = (uint8_t)(0x80 | len);
    } else {
        at[n++] = 0x80 | 126;
        at[n++] = (uint8_t)(len >> 8);
        at[n++] = (uint8_t)len;
    }
    memcpy(at + n, mask, 4);
    p = at + n + 4;
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)json[i] ^ mask[i & 3];
    c->out_len += n + 4 + len;
    return 0;
}

/* Write what is queued; keep the rest for the next pass. Returns 0 or -1 (connection lost). */
static int flush(struct load *ld, struct conn *c)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    size_t off = 0;
    ssize_t n;

    while (off < c->out_len) {
        n = write(c->fd, c->out + off, c->out_len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n <= 0) {
            fprintf(stderr, "relay_load: %s: write: %s\n", c->from, strerror(errno));
            return -1;
        }
        off += (size_t)n;
    }
    memmove(c->out, c->out + off, c->out_len - off);
    c->out_len -= off;
    /* Ask for EPOLLOUT only while the kernel is full: the common case costs no epoll_ctl. */
    if (c->out_len > 0) {
        ev.events |= EPOLLOUT;
        epoll_ctl(ld->epfd, EPOLL_CTL_MOD, c->fd, &ev);
    }
    return 0;
}

/* Queue the next echo request of c. */
static int send_request(struct load *ld, struct conn *c)
{
    const char *device = ld->opt.devices[c->next_device++ % ld->opt.ndevices];
    uint8_t *at = out_reserve(c);
    struct iotp_writer w;
    uint32_t id;

    if (!at)
        return -1;
    if (++c->next_id == 0)
        c->next_id = 1; /* 0 is not a request id */
    id = c->next_id;
    c->sent_ns[id % RING] = bench_now_ns();
    c->inflight++;
    if (ld->opt.websocket) {
        char json[IOTP_MAX_FRAME];
        int n = snprintf(json, sizeof(json),
                         "{\"type\":\"echo\",\"to\":\"%s\",\"id\":%u,\"args\":[\"%s\"]}", device,
                         (unsigned)id, ld->payload);
        return ws_out(c, json, (size_t)n);
    }
    iotp_writer_begin(&w, at, IOTP_MAX_FRAME, c->from, device, "echo", id);
    iotp_writer_arg(&w, ld->payload);
    return out_commit(c, &w);
}

/* An answer for c: time it, and keep the loop closed by sending the next request. */
static int on_answer(struct load *ld, struct conn *c, const struct iotp_frame *f)
{
    uint64_t now = bench_now_ns();

    if (c->inflight == 0)
        return 0; /* an answer we no longer wait for */
    c->inflight--;
    if (strcmp(f->type, "OK") != 0) {
        const char *code = iotp_frame_arg(f, "code");
        ld->errors++;
        if (ld->logged_errors++ < 5)
            fprintf(stderr, "relay_load: %s: request %u: %s code=%s\n", c->from, (unsigned)f->id,
                    f->type, code ? code : "?");
    } else if (now >= ld->measure_from_ns) {
        bench_latencies_add(&c->lat, c->sent_ns[f->id % RING], now);
    } else {
        c->lat.warmup++;
    }
    return ld->sending ? send_request(ld, c) : 0;
}

/* Start the warm-up and the measured window now: password checks (Argon2id) take a while and
 * must not eat into either. */
static void start_clock(struct load *ld)
{
    ld->measure_from_ns = bench_now_ns() + (uint64_t)(ld->opt.warmup_s * 1e9);
    ld->end_ns = ld->measure_from_ns + (uint64_t)(ld->opt.duration_s * 1e9);
}

/* A frame on a load connection: WELCOME/ERROR to the LOGIN, PING from the server, answers. */
static int on_load_frame(struct load *ld, struct conn *c, const struct iotp_frame *f)
{
    if (!c->logged_in) {
        if (strcmp(f->type, "WELCOME") == 0 && f->id == 1) {
            c->logged_in = 1;
            if (++ld->logged_in == ld->opt.conns)
                start_clock(ld);
            for (unsigned i = 0; i < ld->opt.inflight; i++)
                if (send_request(ld, c) < 0)
                    return -1;
            return 0;
        }
        fprintf(stderr, "relay_load: %s: LOGIN refused: %s code=%s\n", c->from, f->type,
                iotp_frame_arg(f, "code") ? iotp_frame_arg(f, "code") : "?");
        ld->failed = 1;
        return -1;
    }
    if (strcmp(f->type, "PING") == 0) {
        uint8_t *at = out_reserve(c);
        struct iotp_writer w;
        if (!at)
            return -1;
        if (ld->opt.websocket) {
            char json[64];
            int n = snprintf(json, sizeof(json), "{\"type\":\"PONG\",\"id\":%u}", (unsigned)f->id);
            return ws_out(c, json, (size_t)n);
        }
        iotp_writer_begin(&w, at, IOTP_MAX_FRAME, c->from, f->from, "PONG", f->id);
        return out_commit(c, &w);
    }
    if (strcmp(f->type, "OK") == 0 || strcmp(f->type, "ERROR") == 0)
        return on_answer(ld, c, f);
    return 0; /* PONG, EVENT...: nothing to do for a load generator */
}

/* A frame on a responder connection: echo requests back to their sender. */
static int on_responder_frame(struct conn *c, const struct iotp_frame *f)
{
    uint8_t *at;
    struct iotp_writer w;

    if (f->type[0] < 'a' || f->type[0] > 'z')
        return 0;
    at = out_reserve(c);
    if (!at)
        return -1;
    iotp_writer_begin(&w, at, IOTP_MAX_FRAME, c->from, f->from, "OK", f->id);
    for (unsigned i = 0; i < f->nargs; i++)
        iotp_writer_arg(&w, f->args[i]);
    return out_commit(c, &w);
}

/* The string value of "key":"..." in json (no escapes in what the load reads), NUL-terminated
 * into out; "" when absent. */
static void json_string(const char *json, const char *key, char *out, size_t cap)
{
    const char *p = strstr(json, key), *end;
    out[0] = '\0';
    if (!p || !(end = strchr(p += strlen(key), '"')) || (size_t)(end - p) >= cap)
        return;
    memcpy(out, p, (size_t)(end - p));
    out[end - p] = '\0';
}

/* --websocket: one server message (a JSON object, NUL-terminated) as the frame it stands for:
 * its type, id and code are all the load reads of it. */
static int on_ws_message(struct load *ld, struct conn *c, char *json)
{
    char type[32], code[64], code_arg[80];
    const char *id = strstr(json, "\"id\":");
    struct iotp_frame f = {.from = IOTP_SERVER_ADDRESS, .to = c->from, .type = type};
    json_string(json, "\"type\":\"", type, sizeof(type));
    json_string(json, "\"code\":\"", code, sizeof(code));
    f.id = id ? (uint32_t)strtoul(id + 5, NULL, 10) : 0;
    if (code[0]) {
        snprintf(code_arg, sizeof(code_arg), "code=%s", code);
        f.args[f.nargs++] = code_arg;
    }
    return on_load_frame(ld, c, &f);
}

/* --websocket: take what was read, act on every whole server frame. */
static int on_ws_bytes(struct load *ld, struct conn *c, const uint8_t *data, size_t n)
{
    size_t off = 0;
    if (n > WS_IN_MAX - c->ws_in_len) {
        fprintf(stderr, "relay_load: %s: a server frame over %d bytes\n", c->from, WS_IN_MAX);
        return -1;
    }
    memcpy(c->ws_in + c->ws_in_len, data, n);
    c->ws_in_len += n;
    while (c->ws_in_len - off >= 2) {
        const uint8_t *h = c->ws_in + off;
        size_t head = 2, len = h[1] & 0x7f;
        if (len == 126) {
            if (c->ws_in_len - off < 4)
                break;
            len = (size_t)h[2] << 8 | h[3];
            head = 4;
        } else if (len == 127) {
            fprintf(stderr, "relay_load: %s: a 64-bit frame length\n", c->from);
            return -1;
        }
        if (c->ws_in_len - off < head + len)
            break;
        if ((h[0] & 0x0f) == 0x8) {
            fprintf(stderr, "relay_load: %s: the server closed the WebSocket\n", c->from);
            return -1;
        }
        /* The byte after the payload is overwritten with a NUL, then put back. */
        uint8_t *payload = c->ws_in + off + head, saved = payload[len];
        payload[len] = '\0';
        int r = (h[0] & 0x0f) == 0x1 ? on_ws_message(ld, c, (char *)payload) : 0;
        payload[len] = saved;
        if (r < 0)
            return -1;
        off += head + len;
    }
    memmove(c->ws_in, c->ws_in + off, c->ws_in_len - off);
    c->ws_in_len -= off;
    return 0;
}

/* --websocket: the opening handshake on a fresh connection (blocking, before the load). */
static int ws_upgrade(struct conn *c, const char *spec)
{
    char req[512], answer[1024];
    size_t got = 0;
    int flags = fcntl(c->fd, F_GETFL);
    int n = snprintf(req, sizeof(req),
                     "GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                     "Origin: http://%s\r\n\r\n",
                     spec, spec);
    fcntl(c->fd, F_SETFL, flags & ~O_NONBLOCK);
    if (write(c->fd, req, (size_t)n) != n)
        return -1;
    /* The server says nothing after its 101 until LOGIN: reading past the head is safe. */
    while (got < sizeof(answer) - 1) {
        ssize_t r = read(c->fd, answer + got, sizeof(answer) - 1 - got);
        if (r <= 0)
            return -1;
        got += (size_t)r;
        answer[got] = '\0';
        if (strstr(answer, "\r\n\r\n"))
            break;
    }
    fcntl(c->fd, F_SETFL, flags);
    if (strncmp(answer, "HTTP/1.1 101", 12) != 0) {
        fprintf(stderr, "relay_load: %s: /ws upgrade refused: %.40s\n", c->from, answer);
        return -1;
    }
    c->ws_in = malloc(WS_IN_MAX);
    return c->ws_in ? 0 : -1;
}

/* Read what arrived on c and act on every complete frame. Returns 0 or -1 (connection lost). */
static int on_readable(struct load *ld, struct conn *c)
{
    static uint8_t chunk[READ_CHUNK];
    const struct iotp_frame *f;
    size_t off, used;
    ssize_t n;
    int r;

    for (;;) {
        n = read(c->fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return 0;
        if (n <= 0) {
            fprintf(stderr, "relay_load: %s: connection %s\n", c->from,
                    n == 0 ? "closed by the server" : strerror(errno));
            return -1;
        }
        if (ld->opt.websocket) {
            if (on_ws_bytes(ld, c, chunk, (size_t)n) < 0)
                return -1;
            if ((size_t)n < sizeof(chunk))
                return 0;
            continue;
        }
        for (off = 0; off < (size_t)n; off += used) {
            r = iotp_parser_feed(&c->parser, chunk + off, (size_t)n - off, &used, &f, NULL);
            if (r < 0) {
                fprintf(stderr, "relay_load: %s: malformed frame: %s\n", c->from, iotp_strerror(r));
                continue;
            }
            if (r == 1 &&
                (ld->opt.responder ? on_responder_frame(c, f) : on_load_frame(ld, c, f)) < 0)
                return -1;
        }
        if ((size_t)n < sizeof(chunk))
            return 0; /* the socket is drained; epoll is level-triggered anyway */
    }
}

/* Split a comma-separated list into opt->devices (in place). */
static int parse_devices(struct options *opt, char *list)
{
    for (char *save = NULL, *d = strtok_r(list, ",", &save); d; d = strtok_r(NULL, ",", &save)) {
        if (opt->ndevices == MAX_DEVICES)
            return -1;
        opt->devices[opt->ndevices++] = d;
    }
    return opt->ndevices > 0 ? 0 : -1;
}

static int parse_options(int argc, char **argv, struct options *opt)
{
    enum {
        OPT_FROM = 256,
        OPT_PASSWORD,
        OPT_DEVICES,
        OPT_CONNS,
        OPT_INFLIGHT,
        OPT_DURATION,
        OPT_WARMUP,
        OPT_PAYLOAD,
        OPT_LABEL,
        OPT_RESPONDER,
        OPT_WEBSOCKET
    };
    static const struct option longopts[] = {
        {"connect", required_argument, NULL, 'c'},
        {"from", required_argument, NULL, OPT_FROM},
        {"password", required_argument, NULL, OPT_PASSWORD},
        {"devices", required_argument, NULL, OPT_DEVICES},
        {"conns", required_argument, NULL, OPT_CONNS},
        {"inflight", required_argument, NULL, OPT_INFLIGHT},
        {"duration", required_argument, NULL, OPT_DURATION},
        {"warmup", required_argument, NULL, OPT_WARMUP},
        {"payload", required_argument, NULL, OPT_PAYLOAD},
        {"label", required_argument, NULL, OPT_LABEL},
        {"responder", no_argument, NULL, OPT_RESPONDER},
        {"websocket", no_argument, NULL, OPT_WEBSOCKET},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    opt->conns = 1;
    opt->inflight = 1;
    opt->duration_s = 5;
    opt->warmup_s = 0.5;
    opt->payload = 64;
    opt->label = "relay";
    while ((c = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            opt->connect = optarg;
            break;
        case OPT_FROM:
            opt->from = optarg;
            break;
        case OPT_PASSWORD:
            opt->password = optarg;
            break;
        case OPT_DEVICES:
            if (parse_devices(opt, optarg) < 0) {
                fprintf(stderr, "relay_load: --devices wants 1..%d names\n", MAX_DEVICES);
                return -1;
            }
            break;
        case OPT_CONNS:
            opt->conns = (unsigned)atoi(optarg);
            break;
        case OPT_INFLIGHT:
            opt->inflight = (unsigned)atoi(optarg);
            break;
        case OPT_DURATION:
            opt->duration_s = atof(optarg);
            break;
        case OPT_WARMUP:
            opt->warmup_s = atof(optarg);
            break;
        case OPT_PAYLOAD:
            opt->payload = (unsigned)atoi(optarg);
            break;
        case OPT_LABEL:
            opt->label = optarg;
            break;
        case OPT_RESPONDER:
            opt->responder = 1;
            break;
        case OPT_WEBSOCKET:
            opt->websocket = 1;
            break;
        case 'h':
            usage(stdout);
            return 1;
        default:
            usage(stderr);
            return -1;
        }
    }
    if (!opt->connect || opt->ndevices == 0 || (!opt->responder && !opt->from) ||
        (opt->websocket && (opt->responder || !opt->password))) {
        usage(stderr);
        return -1;
    }
    if (opt->conns < 1 || opt->conns > MAX_CONNS || opt->inflight < 1 ||
        opt->inflight >= RING / 2 || opt->duration_s <= 0 || opt->duration_s > 3600 ||
        opt->warmup_s < 0 || opt->payload < 1 || opt->payload > 1024) {
        fprintf(stderr,
                "relay_load: conns 1..%d, inflight 1..%d, duration 0..3600 s, "
                "payload 1..1024 bytes\n",
                MAX_CONNS, RING / 2 - 1);
        return -1;
    }
    return 0;
}

/* Open every connection: load connections as --from (LOGIN first with --password),
 * responder connections as each device, announced by a first frame. */
static int open_conns(struct load *ld)
{
    const struct options *opt = &ld->opt;
    unsigned n = opt->responder ? opt->ndevices : opt->conns;

    ld->conns = calloc(n, sizeof(*ld->conns));
    if (!ld->conns)
        return -1;
    for (unsigned i = 0; i < n; i++) {
        struct conn *c = &ld->conns[i];
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        struct iotp_writer w;
        uint8_t *at;

        c->fd = dial(opt->connect);
        if (c->fd < 0)
            return -1;
        ld->nconns++;
        if (opt->responder)
            snprintf(c->from, sizeof(c->from), "%s", opt->devices[i]);
        else
            snprintf(c->from, sizeof(c->from), opt->from, i); /* "%d" -> connection number */
        iotp_parser_init(&c->parser, c->rx, sizeof(c->rx), 0, 0);
        if (!opt->responder &&
            bench_latencies_init(&c->lat, bench_samples_for(opt->duration_s) / n + 1) < 0)
            return -1;
        if (opt->websocket && ws_upgrade(c, opt->connect) < 0)
            return -1;
        epoll_ctl(ld->epfd, EPOLL_CTL_ADD, c->fd, &ev);
        at = out_reserve(c);
        if (!at)
            return -1;
        if (opt->websocket) {
            char json[512];
            int len = snprintf(json, sizeof(json),
                               "{\"type\":\"LOGIN\",\"id\":1,\"user\":\"%s\",\"password\":\"%s\"}",
                               c->from, opt->password);
            if (len >= (int)sizeof(json) || ws_out(c, json, (size_t)len) < 0)
                return -1;
        } else if (opt->responder) {
            iotp_writer_begin(&w, at, IOTP_MAX_FRAME, c->from, "relay", "HELLO", 0);
            if (out_commit(c, &w) < 0)
                return -1;
        } else if (opt->password) {
            iotp_writer_begin(&w, at, IOTP_MAX_FRAME, c->from, IOTP_SERVER_ADDRESS, "LOGIN", 1);
            iotp_writer_kv(&w, "proto", "1");
            iotp_writer_kv(&w, "password", opt->password);
            if (out_commit(c, &w) < 0)
                return -1;
        } else {
            c->logged_in = 1; /* a relay without LOGIN: start at once */
            if (++ld->logged_in == opt->conns)
                start_clock(ld);
            for (unsigned k = 0; k < opt->inflight; k++)
                if (send_request(ld, c) < 0)
                    return -1;
        }
        if (flush(ld, c) < 0)
            return -1;
    }
    return 0;
}

/* One pass: wait up to timeout_ms, handle what is ready, write what was queued. */
static int run_once(struct load *ld, int timeout_ms)
{
    struct epoll_event events[256];
    int n = epoll_wait(ld->epfd, events, 256, timeout_ms);

    if (n < 0 && errno != EINTR)
        return -1;
    for (int i = 0; i < n; i++) {
        struct conn *c = events[i].data.ptr;
        if ((events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && on_readable(ld, c) < 0)
            return -1;
    }
    for (unsigned i = 0; i < ld->nconns; i++)
        if (ld->conns[i].out_len > 0 && flush(ld, &ld->conns[i]) < 0)
            return -1;
    return 0;
}

int main(int argc, char **argv)
{
    struct load ld;
    struct bench_latencies *lat = NULL;
    uint64_t end, lost = 0;
    int rc = 2, r;

    memset(&ld, 0, sizeof(ld));
    ld.epfd = -1;
    r = parse_options(argc, argv, &ld.opt);
    if (r != 0) {
        rc = r > 0 ? 0 : 2;
        goto out;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    /* The payload: printable, so it is a valid ARG, and different per position. */
    for (unsigned i = 0; i < ld.opt.payload; i++)
        ld.payload[i] = (char)('a' + i % 26);
    ld.sending = 1;
    rc = 3;
    ld.epfd = epoll_create1(EPOLL_CLOEXEC);
    /* Until every LOGIN is answered the window is the LOGIN deadline. */
    ld.measure_from_ns = UINT64_MAX;
    ld.end_ns = bench_now_ns() + LOGIN_SECONDS * 1000000000ull;
    if (ld.opt.responder)
        ld.end_ns = bench_now_ns() + (uint64_t)(ld.opt.duration_s * 1e9);
    if (ld.epfd < 0 || open_conns(&ld) < 0)
        goto out;
    if (ld.opt.responder) {
        fprintf(stderr, "relay_load: %u responders up\n", ld.nconns);
        /* Bounded like everything in the bench: --duration, or a signal, ends it. */
        while (!stop_requested && bench_now_ns() < ld.end_ns)
            if (run_once(&ld, 100) < 0)
                goto out;
        rc = 0;
        goto out;
    }
    while (!stop_requested && bench_now_ns() < ld.end_ns && !ld.failed)
        if (run_once(&ld, 10) < 0)
            goto out;
    if (ld.logged_in < ld.nconns) {
        fprintf(stderr, "relay_load: no answer to LOGIN within %d s\n", LOGIN_SECONDS);
        goto out;
    }
    /* The window is closed: stop sending and give the last answers a moment before calling
     * them lost (a relay that drops requests shows here). */
    ld.sending = 0;
    end = bench_now_ns();
    for (uint64_t until = end + (uint64_t)(DRAIN_SECONDS * 1e9); bench_now_ns() < until;) {
        unsigned pending = 0;
        for (unsigned i = 0; i < ld.nconns; i++)
            pending += ld.conns[i].inflight;
        if (pending == 0 || run_once(&ld, 10) < 0)
            break;
    }
    lat = calloc(ld.nconns, sizeof(*lat));
    if (!lat)
        goto out;
    for (unsigned i = 0; i < ld.nconns; i++) {
        lat[i] = ld.conns[i].lat;
        lost += ld.conns[i].inflight;
    }
    if (ld.failed)
        goto out;
    rc = bench_report(ld.opt.label, ld.opt.inflight, lat, ld.nconns,
                      (double)(end - ld.measure_from_ns) / 1e9, ld.errors, lost) == 0
             ? 0
             : 1;
out:
    for (unsigned i = 0; i < ld.nconns; i++) {
        close(ld.conns[i].fd);
        free(ld.conns[i].out);
        free(ld.conns[i].ws_in);
        bench_latencies_free(&ld.conns[i].lat);
    }
    free(ld.conns);
    free(lat);
    if (ld.epfd >= 0)
        close(ld.epfd);
    return rc;
}
