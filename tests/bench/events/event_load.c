/*
 * event_load.c - closed-loop EVENT load through real iotd device sessions.
 *
 *   event_load -c HOST:PORT --devices FILE [--type TYPE] [--window W] [--duration S]
 *              [--warmup S] [--seq-start N] [--event NAME] [--label NAME]
 *
 * FILE has one device a line, "ID SECRET_HEX" (what run.sh extracts from `iotctl --json device
 * add`). Each device opens its own TCP connection, runs the mutual handshake of iot-protocol(7)
 * with the firmware library's device machine (HELLO, AUTH, WELCOME whose mac is checked), and,
 * once every device is authenticated, keeps W EVENTs un-acknowledged: each ACK (iotd sends it
 * only once the event is durable: committed by the group commit, or spooled and fsync'ed)
 * releases the next EVENT, with the next sequence number. The frames are
 *
 *   ID iotd EVENT SEQ NAME value=V unit=C
 *
 * as iotsim's default temperature events. Sequence numbers start at --seq-start (default 1):
 * iotd acknowledges an event at or below a device's stored high-water without storing it, so a
 * second run with the same devices must start above the first run's numbers.
 *
 * Latency is measured from the moment an EVENT is queued to the moment its ACK is parsed, for
 * every ACK after the warm-up (bench_stats.h, shared with the relay benchmark); the result is
 * the one key=value line of bench_report (rt = events acknowledged, rt_s = ACKs per second,
 * lost = events still un-acknowledged 2 s after the window closed), then a line "busy=N
 * devices=N": ERROR code=busy answers (the event is sent again after the retry= delay, its
 * latency counted from the resend; other ERRORs count as errors and the event is dropped).
 *
 * One thread and one epoll set carry every connection; a pass of the loop reads what arrived,
 * queues the answers, and writes each connection's output once.
 *
 * Exit status: 0 after a run with ACKs, 1 when nothing was acknowledged, 2 for usage, 3 when a
 * connection or a handshake failed.
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
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench_stats.h"
#include "iotp/iotp.h"

/* Send times in a ring indexed by sequence number: consecutive per device, so with fewer than
 * RING events in flight an ACK always finds its own slot. */
#define RING              4096
#define MAX_DEVICES       20000
#define READ_CHUNK        (64 * 1024)
#define DRAIN_SECONDS     2.0 /* how long to wait for the last ACKs before calling them lost */
#define HANDSHAKE_SECONDS 60  /* how long every device may take to be authenticated */

struct options {
    const char *connect;
    const char *devices_file;
    const char *type;
    const char *event;
    const char *label;
    unsigned window;
    double duration_s;
    double warmup_s;
    uint32_t seq_start;
};

struct dev {
    int fd;
    char id[IOTP_MAX_ADDRESS_LEN + 1];
    uint8_t key[IOTP_KEY_LEN];
    struct iotp_device_hs hs;
    struct iotp_parser parser;
    uint8_t rx[IOTP_MAX_FRAME];
    uint8_t *out; /* bytes waiting for the socket */
    size_t out_len, out_cap;
    int authenticated;
    uint32_t next_seq;     /* the next new event's number */
    uint32_t acked_upto;   /* every seq below this one is acknowledged (for resends) */
    unsigned inflight;     /* sent, not yet ACKed (busy ones included until resent) */
    uint64_t resume_ns;    /* after ERROR code=busy: resend the busy events at this time */
    uint32_t busy_seq[64]; /* events told busy, waiting for resume_ns */
    unsigned nbusy;
    uint64_t sent_ns[RING];
    struct bench_latencies lat;
};

struct load {
    struct options opt;
    struct dev *devs;
    unsigned ndevs;
    int epfd;
    uint64_t measure_from_ns; /* ACKs before this are warm-up */
    uint64_t end_ns;          /* the end of the measured window */
    unsigned authenticated;   /* the clock starts when all are */
    int sending;              /* 0 once the window closed: ACKs are taken, nothing sent */
    uint64_t errors, busy;
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
    fprintf(out, "usage: event_load -c HOST:PORT --devices FILE [--type TYPE] [--window W]\n"
                 "                  [--duration S] [--warmup S] [--seq-start N] [--event NAME]\n"
                 "                  [--label NAME]\n"
                 "FILE: one device a line, \"ID SECRET_HEX\".\n");
}

static int fill_random(void *ctx, uint8_t *buf, size_t len)
{
    (void)ctx;
    while (len > 0) {
        ssize_t n = getrandom(buf, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Open a blocking TCP connection to spec (HOST:PORT), then make it non-blocking. */
static int dial(const char *spec)
{
    char host[256];
    const char *colon = strrchr(spec, ':');
    struct addrinfo hints, *res = NULL;
    int fd = -1, one = 1;

    if (!colon || (size_t)(colon - spec) >= sizeof(host)) {
        fprintf(stderr, "event_load: -c wants HOST:PORT\n");
        return -1;
    }
    memcpy(host, spec, (size_t)(colon - spec));
    host[colon - spec] = '\0';
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0) {
        fprintf(stderr, "event_load: cannot resolve %s\n", spec);
        return -1;
    }
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
        fprintf(stderr, "event_load: connect %s: %s\n", spec, strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    } else {
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        fcntl(fd, F_SETFL, O_NONBLOCK);
    }
    freeaddrinfo(res);
    return fd;
}

/* Room for one more frame at the end of d->out. */
static uint8_t *out_reserve(struct dev *d)
{
    if (d->out_cap - d->out_len < IOTP_MAX_FRAME) {
        size_t cap = d->out_cap ? d->out_cap * 2 : 16 * 1024;
        uint8_t *p = realloc(d->out, cap);
        if (!p)
            return NULL;
        d->out = p;
        d->out_cap = cap;
    }
    return d->out + d->out_len;
}

static int out_commit(struct dev *d, struct iotp_writer *w)
{
    int n = iotp_writer_end(w);

    if (n < 0) {
        fprintf(stderr, "event_load: cannot build a frame: %s\n", iotp_strerror(n));
        return -1;
    }
    d->out_len += (size_t)n;
    return 0;
}

/* Write what is queued; keep the rest for the next pass. */
static int flush(struct load *ld, struct dev *d)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = d};
    size_t off = 0;
    ssize_t n;

    while (off < d->out_len) {
        n = write(d->fd, d->out + off, d->out_len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n <= 0) {
            fprintf(stderr, "event_load: %s: write: %s\n", d->id, strerror(errno));
            return -1;
        }
        off += (size_t)n;
    }
    memmove(d->out, d->out + off, d->out_len - off);
    d->out_len -= off;
    if (d->out_len > 0) {
        ev.events |= EPOLLOUT;
        epoll_ctl(ld->epfd, EPOLL_CTL_MOD, d->fd, &ev);
    }
    return 0;
}

/* Queue EVENT seq of d (a new one, or one told busy). */
static int send_event(struct load *ld, struct dev *d, uint32_t seq)
{
    uint8_t *at = out_reserve(d);
    struct iotp_writer w;
    char value[16];

    if (!at)
        return -1;
    snprintf(value, sizeof(value), "%u.%u", 18 + seq % 8, seq % 10);
    iotp_writer_begin(&w, at, IOTP_MAX_FRAME, d->id, IOTP_SERVER_ADDRESS, "EVENT", seq);
    iotp_writer_arg(&w, ld->opt.event);
    iotp_writer_kv(&w, "value", value);
    iotp_writer_kv(&w, "unit", "C");
    d->sent_ns[seq % RING] = bench_now_ns();
    return out_commit(d, &w);
}

static int send_new_event(struct load *ld, struct dev *d)
{
    uint32_t seq = d->next_seq++;

    d->inflight++;
    return send_event(ld, d, seq);
}

/* Start the warm-up and the measured window now: handshakes must not eat into either. */
static void start_clock(struct load *ld)
{
    ld->measure_from_ns = bench_now_ns() + (uint64_t)(ld->opt.warmup_s * 1e9);
    ld->end_ns = ld->measure_from_ns + (uint64_t)(ld->opt.duration_s * 1e9);
}

static int on_ack(struct load *ld, struct dev *d, const struct iotp_frame *f)
{
    uint64_t now = bench_now_ns();

    if (d->inflight == 0)
        return 0;
    d->inflight--;
    if (now >= ld->measure_from_ns)
        bench_latencies_add(&d->lat, d->sent_ns[f->id % RING], now);
    else
        d->lat.warmup++;
    return ld->sending ? send_new_event(ld, d) : 0;
}

static int on_error(struct load *ld, struct dev *d, const struct iotp_frame *f)
{
    const char *code = iotp_frame_arg(f, "code");
    uint32_t retry = 1;

    if (code && strcmp(code, "busy") == 0 &&
        d->nbusy < sizeof(d->busy_seq) / sizeof(d->busy_seq[0])) {
        /* Keep the event; send it again after retry= (the device's rule). */
        ld->busy++;
        iotp_frame_arg_u32(f, "retry", &retry);
        d->busy_seq[d->nbusy++] = f->id;
        d->resume_ns = bench_now_ns() + (uint64_t)(retry ? retry : 1) * 1000000000ull;
        return 0;
    }
    ld->errors++;
    if (ld->logged_errors++ < 5)
        fprintf(stderr, "event_load: %s: EVENT %u: ERROR code=%s\n", d->id, (unsigned)f->id,
                code ? code : "?");
    if (d->inflight > 0)
        d->inflight--;
    return ld->sending ? send_new_event(ld, d) : 0;
}

static int on_frame(struct load *ld, struct dev *d, const struct iotp_frame *f)
{
    if (!d->authenticated) {
        uint8_t *at = out_reserve(d);
        size_t len = 0;
        int r;

        if (!at)
            return -1;
        r = iotp_device_hs_on_frame(&d->hs, f, at, IOTP_MAX_FRAME, &len);
        if (r < 0) {
            fprintf(stderr, "event_load: %s: handshake: %s (%s code=%s)\n", d->id, iotp_strerror(r),
                    f->type, iotp_frame_arg(f, "code") ? iotp_frame_arg(f, "code") : "-");
            ld->failed = 1;
            return -1;
        }
        d->out_len += len;
        if (r == IOTP_HS_DONE) {
            d->authenticated = 1;
            if (++ld->authenticated == ld->ndevs) {
                start_clock(ld);
                /* Everyone starts together: the window of every device at once. */
                for (unsigned i = 0; i < ld->ndevs; i++)
                    for (unsigned k = 0; k < ld->opt.window; k++)
                        if (send_new_event(ld, &ld->devs[i]) < 0)
                            return -1;
            }
        }
        return 0;
    }
    if (strcmp(f->type, "ACK") == 0)
        return on_ack(ld, d, f);
    if (strcmp(f->type, "ERROR") == 0)
        return on_error(ld, d, f);
    if (strcmp(f->type, "PING") == 0) {
        uint8_t *at = out_reserve(d);
        struct iotp_writer w;
        if (!at)
            return -1;
        iotp_writer_begin(&w, at, IOTP_MAX_FRAME, d->id, f->from, "PONG", f->id);
        return out_commit(d, &w);
    }
    if (strcmp(f->type, "BYE") == 0) {
        fprintf(stderr, "event_load: %s: BYE from the server\n", d->id);
        return -1;
    }
    return 0;
}

static int on_readable(struct load *ld, struct dev *d)
{
    static uint8_t chunk[READ_CHUNK];
    const struct iotp_frame *f;
    size_t off, used;
    ssize_t n;
    int r;

    for (;;) {
        n = read(d->fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return 0;
        if (n <= 0) {
            fprintf(stderr, "event_load: %s: connection %s\n", d->id,
                    n == 0 ? "closed by the server" : strerror(errno));
            return -1;
        }
        for (off = 0; off < (size_t)n; off += used) {
            r = iotp_parser_feed(&d->parser, chunk + off, (size_t)n - off, &used, &f, NULL);
            if (r < 0) {
                fprintf(stderr, "event_load: %s: malformed frame: %s\n", d->id, iotp_strerror(r));
                continue;
            }
            if (r == 1 && on_frame(ld, d, f) < 0)
                return -1;
        }
        if ((size_t)n < sizeof(chunk))
            return 0;
    }
}

/* Read FILE: "ID SECRET_HEX" a line; blank lines and # comments skipped. */
static int load_devices(struct load *ld)
{
    FILE *fp = fopen(ld->opt.devices_file, "r");
    char line[512], id[IOTP_MAX_ADDRESS_LEN + 1], hex[129];
    unsigned cap = 0, lineno = 0;

    if (!fp) {
        fprintf(stderr, "event_load: %s: %s\n", ld->opt.devices_file, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), fp)) {
        lineno++;
        if (line[0] == '#' || line[strspn(line, " \t\r\n")] == '\0')
            continue;
        if (sscanf(line, "%128s %128s", id, hex) != 2 || strlen(hex) != 2 * IOTP_KEY_LEN) {
            fprintf(stderr, "event_load: %s:%u: want \"ID SECRET_HEX\" (64 hex digits)\n",
                    ld->opt.devices_file, lineno);
            fclose(fp);
            return -1;
        }
        if (ld->ndevs == MAX_DEVICES) {
            fprintf(stderr, "event_load: at most %d devices\n", MAX_DEVICES);
            fclose(fp);
            return -1;
        }
        if (ld->ndevs == cap) {
            unsigned ncap = cap ? cap * 2 : 64;
            struct dev *p = realloc(ld->devs, ncap * sizeof(*p));
            if (!p) {
                fclose(fp);
                return -1;
            }
            memset(p + cap, 0, (ncap - cap) * sizeof(*p));
            ld->devs = p;
            cap = ncap;
        }
        struct dev *d = &ld->devs[ld->ndevs];
        d->fd = -1;
        snprintf(d->id, sizeof(d->id), "%s", id);
        if (iotp_hex_decode(hex, strlen(hex), d->key, sizeof(d->key)) != IOTP_KEY_LEN) {
            fprintf(stderr, "event_load: %s:%u: bad secret\n", ld->opt.devices_file, lineno);
            fclose(fp);
            return -1;
        }
        ld->ndevs++;
    }
    fclose(fp);
    if (ld->ndevs == 0) {
        fprintf(stderr, "event_load: no device in %s\n", ld->opt.devices_file);
        return -1;
    }
    return 0;
}

static int parse_options(int argc, char **argv, struct options *opt)
{
    enum {
        OPT_DEVICES = 256,
        OPT_TYPE,
        OPT_WINDOW,
        OPT_DURATION,
        OPT_WARMUP,
        OPT_SEQ,
        OPT_EVENT,
        OPT_LABEL
    };
    static const struct option longopts[] = {
        {"connect", required_argument, NULL, 'c'},
        {"devices", required_argument, NULL, OPT_DEVICES},
        {"type", required_argument, NULL, OPT_TYPE},
        {"window", required_argument, NULL, OPT_WINDOW},
        {"duration", required_argument, NULL, OPT_DURATION},
        {"warmup", required_argument, NULL, OPT_WARMUP},
        {"seq-start", required_argument, NULL, OPT_SEQ},
        {"event", required_argument, NULL, OPT_EVENT},
        {"label", required_argument, NULL, OPT_LABEL},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    opt->type = "thermo";
    opt->event = "temperature";
    opt->label = "iotd_events";
    opt->window = 16;
    opt->duration_s = 10;
    opt->warmup_s = 1;
    opt->seq_start = 1;
    while ((c = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            opt->connect = optarg;
            break;
        case OPT_DEVICES:
            opt->devices_file = optarg;
            break;
        case OPT_TYPE:
            opt->type = optarg;
            break;
        case OPT_WINDOW:
            opt->window = (unsigned)atoi(optarg);
            break;
        case OPT_DURATION:
            opt->duration_s = atof(optarg);
            break;
        case OPT_WARMUP:
            opt->warmup_s = atof(optarg);
            break;
        case OPT_SEQ:
            opt->seq_start = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case OPT_EVENT:
            opt->event = optarg;
            break;
        case OPT_LABEL:
            opt->label = optarg;
            break;
        case 'h':
            usage(stdout);
            return 1;
        default:
            usage(stderr);
            return -1;
        }
    }
    if (!opt->connect || !opt->devices_file) {
        usage(stderr);
        return -1;
    }
    if (opt->window < 1 || opt->window >= RING / 2 || opt->duration_s <= 0 ||
        opt->duration_s > 3600 || opt->warmup_s < 0 || opt->seq_start == 0) {
        fprintf(stderr, "event_load: window 1..%d, duration 0..3600 s, seq-start > 0\n",
                RING / 2 - 1);
        return -1;
    }
    return 0;
}

static int open_conns(struct load *ld)
{
    struct iotp_device_config cfg;

    for (unsigned i = 0; i < ld->ndevs; i++) {
        struct dev *d = &ld->devs[i];
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = d};
        uint8_t *at;
        size_t len = 0;
        int r;

        d->fd = dial(ld->opt.connect);
        if (d->fd < 0)
            return -1;
        d->next_seq = ld->opt.seq_start;
        iotp_parser_init(&d->parser, d->rx, sizeof(d->rx), 0, 0);
        if (bench_latencies_init(&d->lat, bench_samples_for(ld->opt.duration_s) / ld->ndevs + 1) <
            0)
            return -1;
        epoll_ctl(ld->epfd, EPOLL_CTL_ADD, d->fd, &ev);
        memset(&cfg, 0, sizeof(cfg));
        cfg.device_id = d->id;
        cfg.device_type = ld->opt.type;
        cfg.fw_version = "event_load-1";
        cfg.alg = IOTP_ALG_HMAC_SHA256;
        cfg.key = d->key;
        cfg.random.fill = fill_random;
        at = out_reserve(d);
        if (!at)
            return -1;
        r = iotp_device_hs_start(&d->hs, &cfg, at, IOTP_MAX_FRAME, &len);
        if (r < 0) {
            fprintf(stderr, "event_load: %s: HELLO: %s\n", d->id, iotp_strerror(r));
            return -1;
        }
        d->out_len += len;
        if (flush(ld, d) < 0)
            return -1;
    }
    return 0;
}

/* Resend the events told busy whose retry delay is over. */
static int resume_busy(struct load *ld)
{
    uint64_t now = bench_now_ns();

    for (unsigned i = 0; i < ld->ndevs; i++) {
        struct dev *d = &ld->devs[i];
        if (d->nbusy == 0 || now < d->resume_ns)
            continue;
        for (unsigned k = 0; k < d->nbusy; k++)
            if (send_event(ld, d, d->busy_seq[k]) < 0)
                return -1;
        d->nbusy = 0;
    }
    return 0;
}

static int run_once(struct load *ld, int timeout_ms)
{
    struct epoll_event events[256];
    int n = epoll_wait(ld->epfd, events, 256, timeout_ms);

    if (n < 0 && errno != EINTR)
        return -1;
    for (int i = 0; i < n; i++) {
        struct dev *d = events[i].data.ptr;
        if ((events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && on_readable(ld, d) < 0)
            return -1;
    }
    if (ld->busy && resume_busy(ld) < 0)
        return -1;
    for (unsigned i = 0; i < ld->ndevs; i++)
        if (ld->devs[i].out_len > 0 && flush(ld, &ld->devs[i]) < 0)
            return -1;
    return 0;
}

int main(int argc, char **argv)
{
    struct load ld;
    struct bench_latencies *lat = NULL;
    uint64_t end, lost = 0;
    struct rlimit rl;
    int rc = 2, r;

    memset(&ld, 0, sizeof(ld));
    ld.epfd = -1;
    r = parse_options(argc, argv, &ld.opt);
    if (r != 0) {
        rc = r > 0 ? 0 : 2;
        goto out;
    }
    if (load_devices(&ld) < 0)
        goto out;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    ld.sending = 1;
    rc = 3;
    ld.epfd = epoll_create1(EPOLL_CLOEXEC);
    ld.measure_from_ns = UINT64_MAX;
    ld.end_ns = bench_now_ns() + HANDSHAKE_SECONDS * 1000000000ull;
    if (ld.epfd < 0 || open_conns(&ld) < 0)
        goto out;
    while (!stop_requested && bench_now_ns() < ld.end_ns && !ld.failed)
        if (run_once(&ld, 10) < 0)
            goto out;
    if (ld.authenticated < ld.ndevs) {
        fprintf(stderr, "event_load: %u of %u devices authenticated within %d s\n",
                ld.authenticated, ld.ndevs, HANDSHAKE_SECONDS);
        goto out;
    }
    /* The window is closed: stop sending and give the last ACKs a moment. */
    ld.sending = 0;
    end = bench_now_ns();
    for (uint64_t until = end + (uint64_t)(DRAIN_SECONDS * 1e9); bench_now_ns() < until;) {
        unsigned pending = 0;
        for (unsigned i = 0; i < ld.ndevs; i++)
            pending += ld.devs[i].inflight;
        if (pending == 0 || run_once(&ld, 10) < 0)
            break;
    }
    lat = calloc(ld.ndevs, sizeof(*lat));
    if (!lat)
        goto out;
    for (unsigned i = 0; i < ld.ndevs; i++) {
        lat[i] = ld.devs[i].lat;
        lost += ld.devs[i].inflight;
    }
    if (ld.failed)
        goto out;
    fflush(stdout);
    rc = bench_report(ld.opt.label, ld.opt.window, lat, ld.ndevs,
                      (double)(end - ld.measure_from_ns) / 1e9, ld.errors, lost) == 0
             ? 0
             : 1;
    /* bench_report ends its line; the extra counters go on a line of their own. */
    printf("busy=%llu devices=%u\n", (unsigned long long)ld.busy, ld.ndevs);
out:
    for (unsigned i = 0; i < ld.ndevs; i++) {
        if (ld.devs[i].fd >= 0)
            close(ld.devs[i].fd);
        free(ld.devs[i].out);
        bench_latencies_free(&ld.devs[i].lat);
    }
    free(ld.devs);
    free(lat);
    if (ld.epfd >= 0)
        close(ld.epfd);
    return rc;
}
