/*
 * iotsim.c - the device simulator: options, the device list, the loop, signals and stats.
 *
 * main owns everything (one struct iotsim on its stack): it loads the device files, raises
 * RLIMIT_NOFILE so thousands of sockets fit, resolves the server once, then runs a single libuv
 * loop on which the fleet (sim_fleet.c) drives every device. A stop (SIGINT/SIGTERM,
 * --duration, --exit-when-connected or --exit-when-acked reached) closes the fleet gracefully;
 * the loop returns once every handle is closed, and the final stats line is printed after it.
 *
 * Exit status: 0 on a normal stop, 1 when --exit-when-connected or --exit-when-acked was not
 * reached before --duration, 2 for a usage or device-file error, 3 when the simulator cannot
 * start (address, TLS, libuv, --ack-log).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <uv.h>

#include "sim_devices_file.h"
#include "sim_events.h"
#include "sim_fleet.h"
#include "sim_handlers.h"
#include "sim_script.h"
#include "sim_tls.h"

#ifndef IOTSIM_VERSION
#define IOTSIM_VERSION "0"
#endif

enum { EXIT_NOT_CONNECTED = 1, EXIT_USAGE = 2, EXIT_SETUP = 3 };

struct options {
    const char *connect;
    const char *source;
    int tls;
    const char *ca_file;
    int insecure;
    const char **files;
    size_t nfiles;
    size_t count;
    const char *type;
    uint32_t ping_s;
    const char *fw;
    double rate;
    double duration_s;
    int exit_when_connected;
    double stats_interval_s;
    int json;
    int verbose;
    struct sim_answer_rules answers; /* --slow, --mute, --error, --answers, --generic; the lists
                                      * point into argv */
    struct sim_script *script;       /* --answers, owned */
    const char **mute_types, **error_types;
    struct sim_event_config events; /* --events, --event, --field, --alarm, ... */
    int exit_when_acked;
    const char *ack_log_path;
};

struct iotsim {
    struct options opt;
    uv_loop_t loop;
    struct sim_fleet fleet;
    uv_signal_t sigint, sigterm;
    uv_timer_t stats_timer, duration_timer;
    int stopping;
    int exit_code;
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: iotsim -c HOST:PORT[,...] [--tls] [--ca FILE | --insecure] [-f DEVICES]...\n"
            "              [--source ADDRESS] [-n N] [--type TYPE] [--ping S] [--fw VERSION]\n"
            "              [--rate-connect N/s]\n"
            "              [--duration S] [--exit-when-connected] [--stats-interval S] [--json]\n"
            "              [--slow MS] [--mute TYPE]... [--error TYPE]... [-v]\n"
            "              [--answers FILE] [--generic]\n"
            "              [--events RATE] [--event NAME] [--field KEY=GEN]... [--event-count N]\n"
            "              [--exit-when-acked] [--outbox N] [--state-dir DIR] [--ack-log FILE]\n"
            "              [--alarm NAME:STATE[:SEVERITY]]... [--alarm-every N]\n"
            "Simulates devices that connect to iotd, authenticate, stay connected, answer\n"
            "requests and push events.\n"
            "DEVICES holds `iotctl --json device add` output (JSON lines, an array or\n"
            "{\"devices\": [...]}); \"-\" or no -f reads standard input. See iotsim(1).\n");
}

/* Parse a non-negative decimal number (fractions allowed) with an optional suffix. */
static int parse_number(const char *s, const char *suffix, double *out)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (end == s || errno != 0 || v < 0 || v != v)
        return -1;
    if (*end != '\0' && !(suffix && strcmp(end, suffix) == 0))
        return -1;
    *out = v;
    return 0;
}

/* Fill opt from argv. Returns 0, 1 after --help/--version (exit 0), or -1 (usage error). */
static int parse_options(int argc, char **argv, struct options *opt)
{
    enum {
        OPT_TLS = 256,
        OPT_SOURCE,
        OPT_CA,
        OPT_INSECURE,
        OPT_TYPE,
        OPT_PING,
        OPT_FW,
        OPT_RATE,
        OPT_DURATION,
        OPT_EXIT,
        OPT_STATS,
        OPT_JSON,
        OPT_SLOW,
        OPT_MUTE,
        OPT_ERROR,
        OPT_VERSION,
        OPT_EVENTS,
        OPT_EVENT,
        OPT_FIELD,
        OPT_EVENT_COUNT,
        OPT_EXIT_ACKED,
        OPT_OUTBOX,
        OPT_STATE_DIR,
        OPT_ACK_LOG,
        OPT_ALARM,
        OPT_ALARM_EVERY,
        OPT_ANSWERS,
        OPT_GENERIC
    };
    static const struct option longopts[] = {
        {"connect", required_argument, NULL, 'c'},
        {"source", required_argument, NULL, OPT_SOURCE},
        {"tls", no_argument, NULL, OPT_TLS},
        {"ca", required_argument, NULL, OPT_CA},
        {"insecure", no_argument, NULL, OPT_INSECURE},
        {"file", required_argument, NULL, 'f'},
        {"count", required_argument, NULL, 'n'},
        {"type", required_argument, NULL, OPT_TYPE},
        {"ping", required_argument, NULL, OPT_PING},
        {"fw", required_argument, NULL, OPT_FW},
        {"rate-connect", required_argument, NULL, OPT_RATE},
        {"duration", required_argument, NULL, OPT_DURATION},
        {"exit-when-connected", no_argument, NULL, OPT_EXIT},
        {"stats-interval", required_argument, NULL, OPT_STATS},
        {"json", no_argument, NULL, OPT_JSON},
        {"slow", required_argument, NULL, OPT_SLOW},
        {"mute", required_argument, NULL, OPT_MUTE},
        {"error", required_argument, NULL, OPT_ERROR},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},
        {"events", required_argument, NULL, OPT_EVENTS},
        {"event", required_argument, NULL, OPT_EVENT},
        {"field", required_argument, NULL, OPT_FIELD},
        {"event-count", required_argument, NULL, OPT_EVENT_COUNT},
        {"exit-when-acked", no_argument, NULL, OPT_EXIT_ACKED},
        {"outbox", required_argument, NULL, OPT_OUTBOX},
        {"state-dir", required_argument, NULL, OPT_STATE_DIR},
        {"ack-log", required_argument, NULL, OPT_ACK_LOG},
        {"alarm", required_argument, NULL, OPT_ALARM},
        {"alarm-every", required_argument, NULL, OPT_ALARM_EVERY},
        {"answers", required_argument, NULL, OPT_ANSWERS},
        {"generic", no_argument, NULL, OPT_GENERIC},
        {NULL, 0, NULL, 0},
    };
    struct sim_event_config *ev = &opt->events;
    char err[512];
    struct stat st;
    double v;
    int c;

    sim_event_config_init(ev);
    opt->fw = "iotsim-" IOTSIM_VERSION;
    opt->rate = 2000;
    opt->stats_interval_s = 5;
    opt->files = calloc((size_t)argc, sizeof(*opt->files));
    /* Each list can hold no more types than there are arguments. */
    opt->mute_types = calloc((size_t)argc, sizeof(*opt->mute_types));
    opt->error_types = calloc((size_t)argc, sizeof(*opt->error_types));
    if (!opt->files || !opt->mute_types || !opt->error_types)
        return -1;
    opt->answers.mute = opt->mute_types;
    opt->answers.error = opt->error_types;
    while ((c = getopt_long(argc, argv, "c:f:n:vh", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            opt->connect = optarg;
            break;
        case OPT_SOURCE:
            opt->source = optarg;
            break;
        case OPT_TLS:
            opt->tls = 1;
            break;
        case OPT_CA:
            opt->ca_file = optarg;
            break;
        case OPT_INSECURE:
            opt->insecure = 1;
            break;
        case 'f':
            opt->files[opt->nfiles++] = optarg;
            break;
        case 'n':
            if (parse_number(optarg, NULL, &v) < 0 || v < 1 || v != (double)(size_t)v) {
                fprintf(stderr, "iotsim: -n wants a positive whole number\n");
                return -1;
            }
            opt->count = (size_t)v;
            break;
        case OPT_TYPE:
            opt->type = optarg;
            break;
        case OPT_PING:
            if (parse_number(optarg, NULL, &v) < 0 || v < 1 || v > 86400 || v != (uint32_t)v) {
                fprintf(stderr, "iotsim: --ping wants whole seconds, 1..86400\n");
                return -1;
            }
            opt->ping_s = (uint32_t)v;
            break;
        case OPT_FW:
            opt->fw = optarg;
            break;
        case OPT_RATE:
            if (parse_number(optarg, "/s", &opt->rate) < 0 || opt->rate <= 0) {
                fprintf(stderr, "iotsim: --rate-connect wants a positive rate (2000 or 2000/s)\n");
                return -1;
            }
            break;
        case OPT_DURATION:
            if (parse_number(optarg, NULL, &opt->duration_s) < 0 || opt->duration_s <= 0) {
                fprintf(stderr, "iotsim: --duration wants positive seconds\n");
                return -1;
            }
            break;
        case OPT_EXIT:
            opt->exit_when_connected = 1;
            break;
        case OPT_STATS:
            if (parse_number(optarg, NULL, &opt->stats_interval_s) < 0) {
                fprintf(stderr, "iotsim: --stats-interval wants seconds (0 = off)\n");
                return -1;
            }
            break;
        case OPT_JSON:
            opt->json = 1;
            break;
        case OPT_SLOW:
            /* A day is far beyond any relay timeout; the bound keeps ms in 32 bits. */
            if (parse_number(optarg, NULL, &v) < 0 || v > 86400000 || v != (uint32_t)v) {
                fprintf(stderr, "iotsim: --slow wants whole milliseconds, 0..86400000\n");
                return -1;
            }
            opt->answers.slow_ms = (uint32_t)v;
            break;
        case OPT_MUTE:
        case OPT_ERROR:
            if (optarg[0] < 'a' || optarg[0] > 'z') {
                fprintf(stderr, "iotsim: --%s wants an application (lower-case) type\n",
                        c == OPT_MUTE ? "mute" : "error");
                return -1;
            }
            if (c == OPT_MUTE)
                opt->mute_types[opt->answers.nmute++] = optarg;
            else
                opt->error_types[opt->answers.nerror++] = optarg;
            break;
        case OPT_EVENTS:
            if (parse_number(optarg, "/s", &ev->rate) < 0 || ev->rate > 100000) {
                fprintf(stderr, "iotsim: --events wants events per second, 0..100000\n");
                return -1;
            }
            break;
        case OPT_EVENT:
            if (optarg[0] < 'a' || optarg[0] > 'z' || strlen(optarg) >= SIM_EVENT_NAME_LEN) {
                fprintf(stderr, "iotsim: --event wants an event (lower-case) type\n");
                return -1;
            }
            ev->name = optarg;
            break;
        case OPT_FIELD:
            if (ev->nfields == SIM_EVENT_MAX_FIELDS) {
                fprintf(stderr, "iotsim: at most %d --field options\n", SIM_EVENT_MAX_FIELDS);
                return -1;
            }
            if (sim_field_parse(optarg, &ev->fields[ev->nfields], err, sizeof(err)) < 0) {
                fprintf(stderr, "iotsim: %s\n", err);
                return -1;
            }
            ev->nfields++;
            break;
        case OPT_EVENT_COUNT:
            if (parse_number(optarg, NULL, &v) < 0 || v < 1 || v > 1e15 ||
                v != (double)(uint64_t)v) {
                fprintf(stderr, "iotsim: --event-count wants a positive whole number\n");
                return -1;
            }
            ev->count = (uint64_t)v;
            break;
        case OPT_EXIT_ACKED:
            opt->exit_when_acked = 1;
            break;
        case OPT_OUTBOX:
            if (parse_number(optarg, NULL, &v) < 0 || v < 1 || v > 1000000 || v != (unsigned)v) {
                fprintf(stderr, "iotsim: --outbox wants a whole number of events, 1..1000000\n");
                return -1;
            }
            ev->outbox_entries = (unsigned)v;
            break;
        case OPT_STATE_DIR:
            if (stat(optarg, &st) != 0 || !S_ISDIR(st.st_mode)) {
                fprintf(stderr, "iotsim: --state-dir %s: not a directory\n", optarg);
                return -1;
            }
            ev->state_dir = optarg;
            break;
        case OPT_ACK_LOG:
            opt->ack_log_path = optarg;
            break;
        case OPT_ALARM:
            if (ev->nalarms == SIM_EVENT_MAX_ALARMS) {
                fprintf(stderr, "iotsim: at most %d --alarm options\n", SIM_EVENT_MAX_ALARMS);
                return -1;
            }
            if (sim_alarm_parse(optarg, &ev->alarms[ev->nalarms], err, sizeof(err)) < 0) {
                fprintf(stderr, "iotsim: %s\n", err);
                return -1;
            }
            ev->nalarms++;
            break;
        case OPT_ALARM_EVERY:
            if (parse_number(optarg, NULL, &v) < 0 || v < 1 || v > 1e9 || v != (unsigned)v) {
                fprintf(stderr, "iotsim: --alarm-every wants a positive whole number\n");
                return -1;
            }
            ev->alarm_every = (unsigned)v;
            break;
        case OPT_ANSWERS:
            if (opt->script) {
                fprintf(stderr, "iotsim: --answers may be given once\n");
                return -1;
            }
            if (sim_script_load(optarg, &opt->script, err, sizeof(err)) < 0) {
                fprintf(stderr, "iotsim: --answers: %s\n", err);
                return -1;
            }
            opt->answers.script = opt->script;
            break;
        case OPT_GENERIC:
            opt->answers.generic = 1;
            break;
        case 'v':
            opt->verbose = 1;
            break;
        case 'h':
            usage(stdout);
            return 1;
        case OPT_VERSION:
            printf("iotsim %s\n", IOTSIM_VERSION);
            return 1;
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "iotsim: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (!opt->connect) {
        fprintf(stderr, "iotsim: -c HOST:PORT is required\n");
        usage(stderr);
        return -1;
    }
    if (opt->ca_file && opt->insecure) {
        fprintf(stderr, "iotsim: --ca and --insecure exclude each other\n");
        return -1;
    }
    if ((opt->ca_file || opt->insecure) && !opt->tls) {
        fprintf(stderr, "iotsim: --ca and --insecure need --tls\n");
        return -1;
    }
    if (opt->exit_when_acked && opt->exit_when_connected) {
        fprintf(stderr, "iotsim: --exit-when-acked and --exit-when-connected exclude each other\n");
        return -1;
    }
    /* --exit-when-acked needs an end: a count, or only the --alarm frames. */
    if (opt->exit_when_acked && ev->count == 0 && (ev->rate > 0 || ev->nalarms == 0)) {
        fprintf(stderr, "iotsim: --exit-when-acked needs --event-count (or only --alarm)\n");
        return -1;
    }
    if (opt->nfiles == 0)
        opt->files[opt->nfiles++] = "-";
    return 0;
}

/* Split HOST:PORT ([v6]:PORT too) of len bytes at spec and resolve it once. Returns 0 or -1
 * with a message. host receives the name part (for TLS), *port the port. */
static int resolve(const char *spec, size_t len, struct sockaddr_storage *addr, char *host,
                   size_t hostlen, uint16_t *port)
{
    char text[512], *colon, *name = text;
    struct addrinfo hints, *res = NULL;
    unsigned long p;
    size_t namelen;
    int r;

    if (len == 0 || len >= sizeof(text))
        goto bad;
    memcpy(text, spec, len);
    text[len] = '\0';
    colon = strrchr(text, ':');
    if (!colon || colon[1] == '\0')
        goto bad;
    namelen = (size_t)(colon - text);
    if (namelen >= 2 && text[0] == '[' && text[namelen - 1] == ']') {
        name = text + 1;
        namelen -= 2;
    }
    if (namelen == 0 || namelen >= hostlen)
        goto bad;
    memcpy(host, name, namelen);
    host[namelen] = '\0';
    p = strtoul(colon + 1, NULL, 10);
    *port = p <= 65535 ? (uint16_t)p : 0;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    r = getaddrinfo(host, colon + 1, &hints, &res);
    if (r != 0) {
        fprintf(stderr, "iotsim: %s: %s\n", text, gai_strerror(r));
        return -1;
    }
    memcpy(addr, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return 0;
bad:
    fprintf(stderr, "iotsim: -c wants HOST:PORT[,HOST:PORT...], got '%.*s'\n", (int)len, spec);
    return -1;
}

/* --source: a numeric IPv4 or IPv6 address (no port: each connection gets its own). Returns 0
 * or -1 with a message. */
static int parse_source(const char *text, struct sockaddr_storage *out)
{
    struct sockaddr_in *a4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)out;

    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, text, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, text, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        return 0;
    }
    memset(out, 0, sizeof(*out));
    fprintf(stderr, "iotsim: --source wants a numeric IP address, got '%s'\n", text);
    return -1;
}

/* -c's comma list into cfg->addrs and cfg->servers (hosts: SIM_FLEET_MAX_SERVERS names of 256
 * bytes, which must outlive the fleet). Returns 0 or -1 with a message. */
static int resolve_servers(const char *list, struct sim_fleet_config *cfg, char (*hosts)[256])
{
    const char *at = list;

    for (;;) {
        size_t len = strcspn(at, ",");
        unsigned i = cfg->nservers;

        if (i == SIM_FLEET_MAX_SERVERS) {
            fprintf(stderr, "iotsim: -c takes at most %d addresses\n", SIM_FLEET_MAX_SERVERS);
            return -1;
        }
        if (resolve(at, len, &cfg->addrs[i], hosts[i], sizeof(hosts[i]), &cfg->servers[i].port) !=
            0)
            return -1;
        cfg->servers[i].host = hosts[i];
        cfg->nservers++;
        if (at[len] == '\0')
            return 0;
        at += len + 1;
    }
}

/* Each device holds one socket: lift the soft descriptor limit to the hard one. */
static void raise_fd_limit(size_t devices)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < devices + 64)
        fprintf(stderr,
                "iotsim: warning: %llu file descriptors for %zu devices; raise the hard "
                "limit (ulimit -Hn) or some devices will fail to connect\n",
                (unsigned long long)rl.rlim_cur, devices);
}

static void on_handle_closed(uv_handle_t *handle)
{
    (void)handle;
}

/* Stop everything with exit code code; the first reason wins. */
static void iotsim_stop(struct iotsim *sim, int code)
{
    if (sim->stopping)
        return;
    sim->stopping = 1;
    sim->exit_code = code;
    sim_fleet_stop(&sim->fleet);
    uv_close((uv_handle_t *)&sim->sigint, on_handle_closed);
    uv_close((uv_handle_t *)&sim->sigterm, on_handle_closed);
    uv_close((uv_handle_t *)&sim->stats_timer, on_handle_closed);
    uv_close((uv_handle_t *)&sim->duration_timer, on_handle_closed);
}

static void on_signal(uv_signal_t *handle, int signum)
{
    (void)signum;
    iotsim_stop(handle->data, 0);
}

static void on_stats(uv_timer_t *timer)
{
    struct iotsim *sim = timer->data;

    sim_fleet_print_stats(&sim->fleet, stdout, sim->opt.json, 0);
}

static void on_duration(uv_timer_t *timer)
{
    struct iotsim *sim = timer->data;

    if (sim->opt.exit_when_connected)
        fprintf(stderr, "iotsim: --duration expired before every device authenticated\n");
    if (sim->opt.exit_when_acked)
        fprintf(stderr,
                "iotsim: --duration expired before every device's events were acknowledged "
                "(%zu of %zu devices done)\n",
                sim->fleet.events_settled, sim->fleet.count);
    iotsim_stop(sim,
                sim->opt.exit_when_connected || sim->opt.exit_when_acked ? EXIT_NOT_CONNECTED : 0);
}

static void on_events_settled(struct sim_fleet *fleet, void *arg)
{
    struct iotsim *sim = arg;

    if (sim->opt.exit_when_acked && fleet->events_settled == fleet->count)
        iotsim_stop(sim, 0);
}

static void on_authenticated_change(struct sim_fleet *fleet, void *arg)
{
    struct iotsim *sim = arg;

    if (sim->opt.exit_when_connected && fleet->all_authenticated_ms >= 0)
        iotsim_stop(sim, 0);
}

int main(int argc, char **argv)
{
    struct iotsim sim;
    struct sim_device_list list = {0};
    struct sim_fleet_config cfg;
    char err[512], hosts[SIM_FLEET_MAX_SERVERS][256];
    int loop_open = 0, fleet_open = 0, rc = EXIT_USAGE, r;

    memset(&sim, 0, sizeof(sim));
    memset(&cfg, 0, sizeof(cfg));
    r = parse_options(argc, argv, &sim.opt);
    if (r != 0) {
        rc = r > 0 ? 0 : EXIT_USAGE;
        goto out;
    }
    for (size_t i = 0; i < sim.opt.nfiles; i++) {
        if (sim_devices_load_file(&list, sim.opt.files[i], err, sizeof(err)) != 0) {
            fprintf(stderr, "iotsim: %s\n", err);
            goto out;
        }
    }
    if (sim_devices_finish(&list, sim.opt.count, sim.opt.type, err, sizeof(err)) != 0) {
        fprintf(stderr, "iotsim: %s\n", err);
        goto out;
    }

    rc = EXIT_SETUP;
    signal(SIGPIPE, SIG_IGN); /* a vanished server is an error on the socket, not a signal */
    raise_fd_limit(list.count);
    if (sim.opt.source && parse_source(sim.opt.source, &cfg.source) != 0)
        goto out;
    if (resolve_servers(sim.opt.connect, &cfg, hosts) != 0)
        goto out;
    if (sim.opt.tls) {
        cfg.tls = sim_tls_ctx_new(sim.opt.ca_file, sim.opt.insecure, err, sizeof(err));
        if (!cfg.tls) {
            fprintf(stderr, "iotsim: %s\n", err);
            goto out;
        }
    }
    cfg.fw_version = sim.opt.fw;
    cfg.ping_s = sim.opt.ping_s;
    cfg.connect_rate = sim.opt.rate;
    cfg.handshake_timeout_ms = 15000;
    cfg.verbose = sim.opt.verbose;
    cfg.answers = &sim.opt.answers;
    cfg.events = &sim.opt.events;
    if (sim.opt.ack_log_path) {
        sim.opt.events.ack_log = fopen(sim.opt.ack_log_path, "a");
        if (!sim.opt.events.ack_log) {
            fprintf(stderr, "iotsim: --ack-log %s: %s\n", sim.opt.ack_log_path, strerror(errno));
            goto out;
        }
    }
    if (!sim.opt.events.state_dir && (sim.opt.events.rate > 0 || sim.opt.events.nalarms > 0))
        fprintf(stderr, "iotsim: warning: without --state-dir, sequence numbers start at 1 again "
                        "on every run, and iotd drops events whose numbers it has seen\n");

    r = uv_loop_init(&sim.loop);
    if (r < 0) {
        fprintf(stderr, "iotsim: event loop: %s\n", uv_strerror(r));
        goto out;
    }
    loop_open = 1;
    r = sim_fleet_init(&sim.fleet, &sim.loop, &cfg, list.entries, list.count);
    if (r < 0) {
        fprintf(stderr, "iotsim: %s\n", uv_strerror(r));
        goto out;
    }
    fleet_open = 1;
    sim.fleet.on_authenticated_change = on_authenticated_change;
    sim.fleet.on_events_settled = on_events_settled;
    sim.fleet.arg = &sim;

    uv_signal_init(&sim.loop, &sim.sigint);
    uv_signal_init(&sim.loop, &sim.sigterm);
    uv_timer_init(&sim.loop, &sim.stats_timer);
    uv_timer_init(&sim.loop, &sim.duration_timer);
    sim.sigint.data = sim.sigterm.data = &sim;
    sim.stats_timer.data = sim.duration_timer.data = &sim;
    uv_signal_start(&sim.sigint, on_signal, SIGINT);
    uv_signal_start(&sim.sigterm, on_signal, SIGTERM);
    if (sim.opt.stats_interval_s > 0) {
        uint64_t ms = (uint64_t)(sim.opt.stats_interval_s * 1000);
        uv_timer_start(&sim.stats_timer, on_stats, ms ? ms : 1, ms ? ms : 1);
    }
    if (sim.opt.duration_s > 0)
        uv_timer_start(&sim.duration_timer, on_duration, (uint64_t)(sim.opt.duration_s * 1000), 0);

    sim_fleet_start(&sim.fleet);
    uv_run(&sim.loop, UV_RUN_DEFAULT);
    sim_fleet_print_stats(&sim.fleet, stdout, sim.opt.json, 1);
    rc = sim.exit_code;
out:
    if (fleet_open)
        sim_fleet_free(&sim.fleet);
    if (loop_open && uv_loop_close(&sim.loop) != 0)
        fprintf(stderr, "iotsim: warning: handles left open at exit\n");
    if (cfg.tls)
        sim_tls_ctx_free(cfg.tls);
    if (sim.opt.events.ack_log)
        fclose(sim.opt.events.ack_log);
    sim_devices_free(&list);
    free(sim.opt.files);
    free(sim.opt.mute_types);
    free(sim.opt.error_types);
    sim_script_free(sim.opt.script);
    return rc;
}
