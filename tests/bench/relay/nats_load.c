/*
 * nats_load.c - the relay benchmark's load shape over NATS request-reply (nats.c).
 *
 *   nats_load -c HOST:PORT --devices dev1,dev2 [--conns N] [--inflight K] [--duration S]
 *             [--warmup S] [--payload BYTES]
 *   nats_load --responder -c HOST:PORT --devices dev1,dev2 [--duration S]
 *
 * NATS request-reply as its users write it with K requests in flight: each load connection
 * subscribes once to its own inbox wildcard (_INBOX.<conn>.*) and publishes requests to
 * req.<device> with the reply subject _INBOX.<conn>.<id>; the id in the reply subject is the
 * correlation. (natsConnection_Request is the same exchange with one request in flight per
 * calling thread; the asynchronous form keeps K in flight on one connection like the others.)
 * A responder connection per device subscribes to req.<device> and publishes the payload back
 * to the reply subject.
 *
 * nats.c delivers each subscription's messages on its own thread; a connection's counters are
 * touched only there until the main thread closes the connection. Measurement as in
 * relay_load (bench_stats.h).
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nats/nats.h>

#include "bench_stats.h"

#define RING        4096
#define MAX_DEVICES 1024
#define MAX_CONNS   256

struct options {
    char url[300];
    char *devices[MAX_DEVICES];
    unsigned ndevices;
    unsigned conns;
    unsigned inflight;
    double duration_s, warmup_s;
    unsigned payload;
    int responder;
};

struct shared {
    const struct options *opt;
    char payload[1024];
    atomic_int sending;
    uint64_t measure_from_ns;
};

struct nconn {
    struct shared *shared;
    natsConnection *nc;
    natsSubscription *sub;
    char inbox[64];
    uint32_t next_id;
    unsigned next_device;
    atomic_uint inflight;
    uint64_t errors;
    uint64_t sent_ns[RING];
    struct bench_latencies lat;
};

static volatile sig_atomic_t stop_requested;

static void on_signal(int signum)
{
    (void)signum;
    stop_requested = 1;
}

static void send_request(struct nconn *c)
{
    const struct options *opt = c->shared->opt;
    char subject[160], reply[96];
    uint32_t id = ++c->next_id;

    snprintf(subject, sizeof(subject), "req.%s", opt->devices[c->next_device++ % opt->ndevices]);
    snprintf(reply, sizeof(reply), "%s.%u", c->inbox, (unsigned)id);
    c->sent_ns[id % RING] = bench_now_ns();
    atomic_fetch_add(&c->inflight, 1);
    if (natsConnection_PublishRequest(c->nc, subject, reply, c->shared->payload,
                                      (int)opt->payload) != NATS_OK) {
        atomic_fetch_sub(&c->inflight, 1);
        c->errors++;
    }
}

/* An answer on our inbox: the id is the last token of its subject. */
static void on_answer(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *arg)
{
    struct nconn *c = arg;
    uint64_t now = bench_now_ns();
    const char *dot = strrchr(natsMsg_GetSubject(msg), '.');
    uint32_t id = dot ? (uint32_t)strtoul(dot + 1, NULL, 10) : 0;

    (void)nc;
    (void)sub;
    natsMsg_Destroy(msg);
    atomic_fetch_sub(&c->inflight, 1);
    if (id == 0) {
        c->errors++;
    } else if (now >= c->shared->measure_from_ns) {
        bench_latencies_add(&c->lat, c->sent_ns[id % RING], now);
    } else {
        c->lat.warmup++;
    }
    if (atomic_load(&c->shared->sending))
        send_request(c);
}

/* A device: echo the payload to the reply subject. */
static void on_request(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *arg)
{
    const char *reply = natsMsg_GetReply(msg);

    (void)sub;
    (void)arg;
    if (reply)
        natsConnection_Publish(nc, reply, natsMsg_GetData(msg), natsMsg_GetDataLength(msg));
    natsMsg_Destroy(msg);
}

static int parse_options(int argc, char **argv, struct options *opt)
{
    static const struct option longopts[] = {
        {"connect", required_argument, NULL, 'c'},
        {"devices", required_argument, NULL, 'D'},
        {"conns", required_argument, NULL, 'n'},
        {"inflight", required_argument, NULL, 'k'},
        {"duration", required_argument, NULL, 'd'},
        {"warmup", required_argument, NULL, 'w'},
        {"payload", required_argument, NULL, 'p'},
        {"responder", no_argument, NULL, 'r'},
        {NULL, 0, NULL, 0},
    };
    char *save = NULL;
    int c;

    opt->conns = 1;
    opt->inflight = 1;
    opt->duration_s = 5;
    opt->warmup_s = 0.5;
    opt->payload = 64;
    while ((c = getopt_long(argc, argv, "c:", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            snprintf(opt->url, sizeof(opt->url), "nats://%s", optarg);
            break;
        case 'D':
            for (char *d = strtok_r(optarg, ",", &save); d && opt->ndevices < MAX_DEVICES;
                 d = strtok_r(NULL, ",", &save))
                opt->devices[opt->ndevices++] = d;
            break;
        case 'n':
            opt->conns = (unsigned)atoi(optarg);
            break;
        case 'k':
            opt->inflight = (unsigned)atoi(optarg);
            break;
        case 'd':
            opt->duration_s = atof(optarg);
            break;
        case 'w':
            opt->warmup_s = atof(optarg);
            break;
        case 'p':
            opt->payload = (unsigned)atoi(optarg);
            break;
        case 'r':
            opt->responder = 1;
            break;
        default:
            return -1;
        }
    }
    if (!opt->url[0] || opt->ndevices == 0 || opt->conns < 1 || opt->conns > MAX_CONNS ||
        opt->inflight < 1 || opt->inflight >= RING / 2 || opt->duration_s <= 0 ||
        opt->duration_s > 3600 || opt->payload < 1 || opt->payload > 1024)
        return -1;
    return 0;
}

/* Connect c and subscribe: to its inbox (load) or to req.<device> (responder). */
static int start_conn(struct nconn *c, const struct options *opt, unsigned index)
{
    char subject[160];
    natsOptions *nopts = NULL;
    natsStatus s = natsOptions_Create(&nopts);

    if (s == NATS_OK)
        s = natsOptions_SetURL(nopts, opt->url);
    /* nats.c otherwise hands publishes to a flusher thread that batches them, which costs
     * every round trip about 1 ms here: with SendAsap each publish is written at once, the
     * fair setting for a latency benchmark (the batching relays do their own coalescing). */
    if (s == NATS_OK)
        s = natsOptions_SetSendAsap(nopts, true);
    if (s == NATS_OK)
        s = natsConnection_Connect(&c->nc, nopts);
    natsOptions_Destroy(nopts);
    if (s != NATS_OK) {
        fprintf(stderr, "nats_load: connect %s: %s\n", opt->url, natsStatus_GetText(s));
        return -1;
    }
    if (opt->responder) {
        snprintf(subject, sizeof(subject), "req.%s", opt->devices[index]);
        s = natsConnection_Subscribe(&c->sub, c->nc, subject, on_request, c);
    } else {
        snprintf(c->inbox, sizeof(c->inbox), "_INBOX.load%d_%u", (int)getpid(), index);
        snprintf(subject, sizeof(subject), "%s.*", c->inbox);
        s = natsConnection_Subscribe(&c->sub, c->nc, subject, on_answer, c);
    }
    /* The round trip to the server makes sure the subscription exists before requests go. */
    if (s == NATS_OK)
        s = natsConnection_Flush(c->nc);
    if (s != NATS_OK) {
        fprintf(stderr, "nats_load: subscribe: %s\n", natsStatus_GetText(s));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static struct shared shared;
    struct options opt;
    struct nconn *conns = NULL;
    struct bench_latencies *lat = NULL;
    unsigned n = 0;
    uint64_t start, end, errors = 0, lost = 0;
    int rc = 3;

    memset(&opt, 0, sizeof(opt));
    if (parse_options(argc, argv, &opt) < 0) {
        fprintf(stderr, "usage: nats_load [--responder] -c HOST:PORT --devices D1,D2... "
                        "[--conns N] [--inflight K] [--duration S] [--warmup S] [--payload B]\n");
        return 2;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    shared.opt = &opt;
    for (unsigned i = 0; i < opt.payload; i++)
        shared.payload[i] = (char)('a' + i % 26);
    atomic_store(&shared.sending, 1);
    n = opt.responder ? opt.ndevices : opt.conns;
    conns = calloc(n, sizeof(*conns));
    lat = calloc(n, sizeof(*lat));
    if (!conns || !lat)
        goto out;
    for (unsigned i = 0; i < n; i++) {
        conns[i].shared = &shared;
        if (!opt.responder &&
            bench_latencies_init(&conns[i].lat, bench_samples_for(opt.duration_s) / n + 1) < 0)
            goto out;
        if (start_conn(&conns[i], &opt, i) < 0)
            goto out;
    }
    start = bench_now_ns();
    shared.measure_from_ns = start + (uint64_t)(opt.warmup_s * 1e9);
    end = shared.measure_from_ns + (uint64_t)(opt.duration_s * 1e9);
    if (opt.responder) {
        fprintf(stderr, "nats_load: %u responders up\n", n);
        while (!stop_requested && bench_now_ns() < end)
            usleep(100000);
        rc = 0;
        goto out;
    }
    for (unsigned i = 0; i < n; i++)
        for (unsigned k = 0; k < opt.inflight; k++)
            send_request(&conns[i]);
    while (!stop_requested && bench_now_ns() < end)
        usleep(10000);
    atomic_store(&shared.sending, 0);
    end = bench_now_ns();
    for (int t = 0; t < 100; t++) {
        unsigned pending = 0;
        for (unsigned i = 0; i < n; i++)
            pending += atomic_load(&conns[i].inflight);
        if (pending == 0)
            break;
        usleep(10000);
    }
    /* Unsubscribing waits for the delivery thread: after it, the counters are ours. */
    for (unsigned i = 0; i < n; i++) {
        natsSubscription_Unsubscribe(conns[i].sub);
        natsSubscription_Destroy(conns[i].sub);
        conns[i].sub = NULL;
        lat[i] = conns[i].lat;
        errors += conns[i].errors;
        lost += atomic_load(&conns[i].inflight);
    }
    rc = bench_report("nats", opt.inflight, lat, n, (double)(end - shared.measure_from_ns) / 1e9,
                      errors, lost) == 0
             ? 0
             : 1;
out:
    for (unsigned i = 0; conns && i < n; i++) {
        natsSubscription_Destroy(conns[i].sub);
        natsConnection_Destroy(conns[i].nc);
        bench_latencies_free(&conns[i].lat);
    }
    free(conns);
    free(lat);
    nats_Close();
    return rc;
}
