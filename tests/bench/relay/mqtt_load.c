/*
 * mqtt_load.c - the relay benchmark's load shape over MQTT v5 request/response (Mosquitto).
 *
 *   mqtt_load -c HOST:PORT --devices dev1,dev2 [--conns N] [--inflight K] [--duration S]
 *             [--warmup S] [--payload BYTES]
 *   mqtt_load --responder -c HOST:PORT --devices dev1,dev2 [--duration S]
 *
 * This is how people build "send a command to a device and get its answer" on a broker: the
 * requester subscribes to its own response topic, publishes to req/<device> with the MQTT v5
 * Response Topic and Correlation Data properties, and the device publishes the answer to that
 * topic with the same correlation data. QoS 0 on both legs, like the iotp relay (no broker
 * acknowledgements), TCP_NODELAY on every client.
 *
 * Load mode: N client connections, each with K requests in flight, closed loop, the same
 * 64-byte payload and the same measurement as relay_load (bench_stats.h). libmosquitto runs
 * each connection's network loop in its own thread (mosquitto_loop_start); a connection's
 * counters are touched only by its thread until the main thread stops it and joins.
 * Responder mode: one connection per device, subscribed to req/<device>, echoing the payload.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mosquitto.h>
#include <mqtt_protocol.h>

#include "bench_stats.h"

#define RING        4096 /* send times by correlation id, as in relay_load */
#define MAX_DEVICES 1024
#define MAX_CONNS   256

struct options {
    char host[256];
    int port;
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

struct mq_conn {
    struct shared *shared;
    struct mosquitto *mosq;
    char topic[128]; /* load: our response topic; responder: the device's request topic */
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

/* Publish the next request of c: req/<device>, response topic, correlation = 4-byte id. */
static void send_request(struct mq_conn *c)
{
    const struct options *opt = c->shared->opt;
    mosquitto_property *props = NULL;
    char topic[160];
    uint32_t id = ++c->next_id;

    snprintf(topic, sizeof(topic), "req/%s", opt->devices[c->next_device++ % opt->ndevices]);
    mosquitto_property_add_string(&props, MQTT_PROP_RESPONSE_TOPIC, c->topic);
    mosquitto_property_add_binary(&props, MQTT_PROP_CORRELATION_DATA, &id, sizeof(id));
    c->sent_ns[id % RING] = bench_now_ns();
    atomic_fetch_add(&c->inflight, 1);
    if (mosquitto_publish_v5(c->mosq, NULL, topic, (int)opt->payload, c->shared->payload, 0, false,
                             props) != MOSQ_ERR_SUCCESS) {
        atomic_fetch_sub(&c->inflight, 1);
        c->errors++;
    }
    mosquitto_property_free_all(&props);
}

static void on_connect(struct mosquitto *mosq, void *arg, int rc, int flags,
                       const mosquitto_property *props)
{
    struct mq_conn *c = arg;

    (void)flags;
    (void)props;
    if (rc != 0) {
        fprintf(stderr, "mqtt_load: connect refused: %s\n", mosquitto_connack_string(rc));
        return;
    }
    mosquitto_subscribe_v5(mosq, NULL, c->topic, 0, 0, NULL);
}

/* Subscribed to our response topic: start the K requests. */
static void on_load_subscribe(struct mosquitto *mosq, void *arg, int mid, int count,
                              const int *granted, const mosquitto_property *props)
{
    struct mq_conn *c = arg;

    (void)mosq;
    (void)mid;
    (void)count;
    (void)granted;
    (void)props;
    for (unsigned i = 0; i < c->shared->opt->inflight; i++)
        send_request(c);
}

static void on_load_message(struct mosquitto *mosq, void *arg, const struct mosquitto_message *m,
                            const mosquitto_property *props)
{
    struct mq_conn *c = arg;
    uint64_t now = bench_now_ns();
    void *corr = NULL;
    uint16_t len = 0;
    uint32_t id;

    (void)mosq;
    (void)m;
    if (!mosquitto_property_read_binary(props, MQTT_PROP_CORRELATION_DATA, &corr, &len, false) ||
        len != sizeof(id)) {
        c->errors++;
        free(corr);
        return;
    }
    memcpy(&id, corr, sizeof(id));
    free(corr);
    atomic_fetch_sub(&c->inflight, 1);
    if (now >= c->shared->measure_from_ns)
        bench_latencies_add(&c->lat, c->sent_ns[id % RING], now);
    else
        c->lat.warmup++;
    if (atomic_load(&c->shared->sending))
        send_request(c);
}

/* A device: answer on the request's response topic with its correlation data. */
static void on_responder_message(struct mosquitto *mosq, void *arg,
                                 const struct mosquitto_message *m, const mosquitto_property *props)
{
    mosquitto_property *out = NULL;
    char *reply = NULL;
    void *corr = NULL;
    uint16_t len = 0;

    (void)arg;
    if (!mosquitto_property_read_string(props, MQTT_PROP_RESPONSE_TOPIC, &reply, false))
        return;
    if (mosquitto_property_read_binary(props, MQTT_PROP_CORRELATION_DATA, &corr, &len, false))
        mosquitto_property_add_binary(&out, MQTT_PROP_CORRELATION_DATA, corr, len);
    mosquitto_publish_v5(mosq, NULL, reply, m->payloadlen, m->payload, 0, false, out);
    mosquitto_property_free_all(&out);
    free(reply);
    free(corr);
}

/* Create, connect and start the network thread of c. Returns 0 or -1. */
static int start_conn(struct mq_conn *c, const struct options *opt, const char *client_id)
{
    c->mosq = mosquitto_new(client_id, true, c);
    if (!c->mosq)
        return -1;
    mosquitto_int_option(c->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
    mosquitto_int_option(c->mosq, MOSQ_OPT_TCP_NODELAY, 1);
    mosquitto_connect_v5_callback_set(c->mosq, on_connect);
    if (opt->responder) {
        mosquitto_message_v5_callback_set(c->mosq, on_responder_message);
    } else {
        mosquitto_subscribe_v5_callback_set(c->mosq, on_load_subscribe);
        mosquitto_message_v5_callback_set(c->mosq, on_load_message);
    }
    if (mosquitto_connect_bind_v5(c->mosq, opt->host, opt->port, 60, NULL, NULL) !=
            MOSQ_ERR_SUCCESS ||
        mosquitto_loop_start(c->mosq) != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "mqtt_load: cannot connect to %s:%d\n", opt->host, opt->port);
        return -1;
    }
    return 0;
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
    char *colon, *save = NULL;
    int c;

    opt->conns = 1;
    opt->inflight = 1;
    opt->duration_s = 5;
    opt->warmup_s = 0.5;
    opt->payload = 64;
    while ((c = getopt_long(argc, argv, "c:", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            colon = strrchr(optarg, ':');
            if (!colon || (size_t)(colon - optarg) >= sizeof(opt->host))
                return -1;
            memcpy(opt->host, optarg, (size_t)(colon - optarg));
            opt->port = atoi(colon + 1);
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
    if (opt->port <= 0 || opt->ndevices == 0 || opt->conns < 1 || opt->conns > MAX_CONNS ||
        opt->inflight < 1 || opt->inflight >= RING / 2 || opt->duration_s <= 0 ||
        opt->duration_s > 3600 || opt->payload < 1 || opt->payload > 1024)
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    static struct shared shared;
    struct options opt;
    struct mq_conn *conns = NULL;
    struct bench_latencies *lat = NULL;
    unsigned n = 0;
    uint64_t start, end, errors = 0, lost = 0;
    int rc = 3;

    memset(&opt, 0, sizeof(opt));
    if (parse_options(argc, argv, &opt) < 0) {
        fprintf(stderr, "usage: mqtt_load [--responder] -c HOST:PORT --devices D1,D2... "
                        "[--conns N] [--inflight K] [--duration S] [--warmup S] [--payload B]\n");
        return 2;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    mosquitto_lib_init();
    shared.opt = &opt;
    for (unsigned i = 0; i < opt.payload; i++)
        shared.payload[i] = (char)('a' + i % 26);
    atomic_store(&shared.sending, 1);
    n = opt.responder ? opt.ndevices : opt.conns;
    conns = calloc(n, sizeof(*conns));
    lat = calloc(n, sizeof(*lat));
    if (!conns || !lat)
        goto out;
    start = bench_now_ns();
    shared.measure_from_ns = start + (uint64_t)(opt.warmup_s * 1e9);
    end = shared.measure_from_ns + (uint64_t)(opt.duration_s * 1e9);
    for (unsigned i = 0; i < n; i++) {
        char id[64];
        struct mq_conn *c = &conns[i];
        c->shared = &shared;
        if (opt.responder) {
            snprintf(c->topic, sizeof(c->topic), "req/%s", opt.devices[i]);
            snprintf(id, sizeof(id), "dev-%s", opt.devices[i]);
        } else {
            snprintf(id, sizeof(id), "load-%d-%u", (int)getpid(), i);
            snprintf(c->topic, sizeof(c->topic), "resp/%s", id);
            if (bench_latencies_init(&c->lat, bench_samples_for(opt.duration_s) / n + 1) < 0)
                goto out;
        }
        if (start_conn(c, &opt, id) < 0)
            goto out;
    }
    if (opt.responder) {
        fprintf(stderr, "mqtt_load: %u responders up\n", n);
        while (!stop_requested && bench_now_ns() < end)
            usleep(100000);
        rc = 0;
        goto out;
    }
    while (!stop_requested && bench_now_ns() < end)
        usleep(10000);
    atomic_store(&shared.sending, 0);
    end = bench_now_ns();
    /* Drain: up to a second for the answers still on their way. */
    for (int t = 0; t < 100; t++) {
        unsigned pending = 0;
        for (unsigned i = 0; i < n; i++)
            pending += atomic_load(&conns[i].inflight);
        if (pending == 0)
            break;
        usleep(10000);
    }
    for (unsigned i = 0; i < n; i++) {
        mosquitto_disconnect(conns[i].mosq);
        mosquitto_loop_stop(conns[i].mosq, false);
        lat[i] = conns[i].lat;
        errors += conns[i].errors;
        lost += atomic_load(&conns[i].inflight);
    }
    rc = bench_report("mosquitto", opt.inflight, lat, n,
                      (double)(end - shared.measure_from_ns) / 1e9, errors, lost) == 0
             ? 0
             : 1;
out:
    for (unsigned i = 0; conns && i < n; i++) {
        if (conns[i].mosq) {
            mosquitto_disconnect(conns[i].mosq);
            mosquitto_loop_stop(conns[i].mosq, true);
            mosquitto_destroy(conns[i].mosq);
        }
        bench_latencies_free(&conns[i].lat);
    }
    free(conns);
    free(lat);
    mosquitto_lib_cleanup();
    return rc;
}
