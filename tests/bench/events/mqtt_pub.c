/*
 * mqtt_pub.c - Mosquitto's QoS 1 publish rate on loopback, the reference for event_bench.
 *
 *   mqtt_pub -c HOST:PORT [--clients N] [--window W] [--seconds S]
 *
 * N clients each keep W QoS 1 PUBLISHes un-acknowledged (a PUBACK lets the next one go), the
 * same closed loop event_bench drives. Note: mosquitto's PUBACK is not tied to a disk write
 * (persistence, when enabled, is a periodic snapshot), so this is the rate of an acknowledged,
 * NOT durable, publish. Prints PUBACKs per second. Bounded by S seconds.
 */
#include <mosquitto.h>

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct client {
    struct mosquitto *m;
    unsigned long acked;
    unsigned seq;
    char topic[64];
};

static unsigned window = 16;

static void publish_one(struct client *c)
{
    char payload[64];
    int len = snprintf(payload, sizeof payload, "temp value=%u unit=C", c->seq++);
    mosquitto_publish(c->m, NULL, c->topic, len, payload, 1, false);
}

static void on_publish(struct mosquitto *m, void *arg, int mid)
{
    struct client *c = arg;
    (void)m;
    (void)mid;
    c->acked++;
    publish_one(c);
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    unsigned clients = 100, seconds = 10;
    char host[128] = "127.0.0.1";
    int port = 1883;
    static const struct option opts[] = {{"clients", 1, NULL, 'n'},
                                         {"window", 1, NULL, 'w'},
                                         {"seconds", 1, NULL, 's'},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
        switch (ch) {
        case 'c': {
            const char *colon = strrchr(optarg, ':');
            if (!colon)
                return 2;
            snprintf(host, sizeof host, "%.*s", (int)(colon - optarg), optarg);
            port = atoi(colon + 1);
            break;
        }
        case 'n':
            clients = (unsigned)atoi(optarg);
            break;
        case 'w':
            window = (unsigned)atoi(optarg);
            break;
        case 's':
            seconds = (unsigned)atoi(optarg);
            break;
        default:
            return 2;
        }
    }
    if (clients == 0 || clients > 10000)
        return 2;
    mosquitto_lib_init();
    struct client *cs = calloc(clients, sizeof(*cs));
    for (unsigned i = 0; i < clients; i++) {
        char id[32];
        snprintf(id, sizeof id, "bench%05u", i);
        snprintf(cs[i].topic, sizeof cs[i].topic, "events/%s/temp", id);
        cs[i].m = mosquitto_new(id, true, &cs[i]);
        mosquitto_int_option(cs[i].m, MOSQ_OPT_SEND_MAXIMUM, (int)window);
        mosquitto_max_inflight_messages_set(cs[i].m, window);
        mosquitto_publish_callback_set(cs[i].m, on_publish);
        if (mosquitto_connect(cs[i].m, host, port, 60) != MOSQ_ERR_SUCCESS) {
            fprintf(stderr, "mqtt_pub: cannot connect to %s:%d\n", host, port);
            return 1;
        }
        mosquitto_loop_start(cs[i].m);
    }
    for (unsigned i = 0; i < clients; i++)
        for (unsigned w = 0; w < window; w++)
            publish_one(&cs[i]);
    struct timespec sec = {1, 0};
    nanosleep(&sec, NULL); /* warm-up */
    unsigned long base = 0, total = 0;
    for (unsigned i = 0; i < clients; i++)
        base += __atomic_load_n(&cs[i].acked, __ATOMIC_RELAXED);
    double t0 = mono_s();
    for (unsigned s = 0; s < seconds; s++)
        nanosleep(&sec, NULL);
    for (unsigned i = 0; i < clients; i++)
        total += __atomic_load_n(&cs[i].acked, __ATOMIC_RELAXED);
    double elapsed = mono_s() - t0;
    printf("mosquitto QoS 1 clients=%u window=%u: %.0f PUBACKs/s (PUBACK not tied to a disk "
           "write: acknowledged, not durable)\n",
           clients, window, (total - base) / elapsed);
    fflush(stdout);
    for (unsigned i = 0; i < clients; i++) {
        mosquitto_disconnect(cs[i].m);
        mosquitto_loop_stop(cs[i].m, true);
        mosquitto_destroy(cs[i].m);
    }
    free(cs);
    mosquitto_lib_cleanup();
    return 0;
}
