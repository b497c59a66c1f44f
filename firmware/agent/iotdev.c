/*
 * iotdev.c - a device agent for Linux boards (iotdev(8)): iotp_device on the POSIX port, with
 * requests run as programs of a commands dir, events read as lines from a FIFO or stdin, and
 * the sequence mark and unacknowledged events kept under a state dir.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "iotdev_cmds.h"
#include "iotdev_config.h"
#include "iotdev_net.h"
#include "iotdev_state.h"
#include "iotp/iotp.h"
#include "iotp_posix.h"

#ifndef IOTDEV_VERSION
#define IOTDEV_VERSION "0"
#endif

#define CONNECT_TIMEOUT_MS 10000
#define EVENT_FIELDS       16

static volatile sig_atomic_t stopping;

struct agent {
    struct iotdev_config cfg;
    struct iotdev_state state;
    struct iotdev_cmds cmds;
    struct iotdev_net net;
    struct iotp_device dev;
    int in_fd;                        /* events: FIFO or stdin, -1 when none (or stdin ended) */
    char in_buf[IOTDEV_LINE_MAX + 1]; /* a longest line, its newline; NUL-terminated */
    size_t in_len;
    int in_skip;                    /* inside a line that was too long: drop up to its end */
    char held[IOTDEV_LINE_MAX + 1]; /* an event waiting for room in the outbox */
};

static void logf_(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fputs("iotdev: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static int store_mark(void *ctx, uint32_t mark)
{
    struct agent *a = ctx;

    if (iotdev_state_store_mark(&a->state, mark) < 0) {
        logf_("cannot store the sequence mark in %s: %s", a->state.dir, strerror(errno));
        return IOTP_EIO;
    }
    return 0;
}

static void note(void *ctx, struct iotp_device *dev, const struct iotp_device_note *n)
{
    struct agent *a = ctx;

    (void)dev;
    switch (n->kind) {
    case IOTP_DEVICE_NOTE_ONLINE:
        logf_("online (keepalive %u s)", (unsigned)n->value);
        break;
    case IOTP_DEVICE_NOTE_CLOSE:
        logf_("session ended: %s%s%s", n->error ? iotp_strerror(n->error) : "BYE",
              n->code ? ", code=" : "", n->code ? n->code : "");
        break;
    case IOTP_DEVICE_NOTE_EVENT_ACKED:
        iotdev_state_remove(&a->state, n->id);
        logf_("event %u acknowledged", (unsigned)n->id);
        break;
    case IOTP_DEVICE_NOTE_EVENT_DROPPED:
        iotdev_state_remove(&a->state, n->id);
        logf_("event %u refused for good: %s %s", (unsigned)n->id, n->code ? n->code : "",
              n->msg ? n->msg : "");
        break;
    default:
        break;
    }
}

/* Queue one event line `name key=value ...`. Returns 0, 1 (no room now: try again later) or -1
 * (a bad line, reported). */
static int push_line(struct agent *a, const char *line)
{
    char copy[IOTDEV_LINE_MAX + 1], *save = NULL, *name, *tok;
    struct iotp_event_field f[EVENT_FIELDS];
    unsigned nf = 0;
    uint32_t seq;
    int r;

    if (a->state.n == IOTDEV_JOURNAL_MAX)
        return 1; /* the journal is full: wait for ACKs */
    snprintf(copy, sizeof(copy), "%s", line);
    name = strtok_r(copy, " \t", &save);
    if (!name)
        return 0; /* an empty line */
    while ((tok = strtok_r(NULL, " \t", &save))) {
        char *eq = strchr(tok, '=');
        if (!eq || eq == tok || nf == EVENT_FIELDS) {
            logf_("event line '%s': %s", line,
                  nf == EVENT_FIELDS ? "too many fields" : "fields must be key=value");
            return -1;
        }
        *eq = '\0';
        f[nf].key = tok;
        f[nf++].value = eq + 1;
    }
    r = iotp_device_event(&a->dev, IOTP_EVENT, name, nf, f, &seq);
    if (r == IOTP_ENOSPC)
        return 1;
    if (r < 0) {
        logf_("event line '%s': %s", line, iotp_strerror(r));
        return -1;
    }
    if (iotdev_state_add(&a->state, seq, line) < 0)
        logf_("event %u not journalled in %s: %s", (unsigned)seq, a->state.dir, strerror(errno));
    return 0;
}

/* Read event lines; an event that does not fit now is held (and reading stops) until it does. */
static void read_events(struct agent *a)
{
    if (a->held[0]) {
        if (push_line(a, a->held) == 1)
            return;
        a->held[0] = '\0';
    }
    while (a->in_fd >= 0 && !a->held[0]) {
        ssize_t n = read(a->in_fd, a->in_buf + a->in_len, sizeof(a->in_buf) - 1 - a->in_len);
        char *nl;

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return; /* EAGAIN */
        if (n == 0) {
            logf_("events input ended");
            if (a->in_fd != 0)
                close(a->in_fd);
            a->in_fd = -1;
            return;
        }
        a->in_len += (size_t)n;
        a->in_buf[a->in_len] = '\0';
        while ((nl = strchr(a->in_buf, '\n'))) {
            *nl = '\0';
            if (nl > a->in_buf && nl[-1] == '\r')
                nl[-1] = '\0';
            if (!a->in_skip && push_line(a, a->in_buf) == 1)
                snprintf(a->held, sizeof(a->held), "%s", a->in_buf);
            a->in_skip = 0;
            a->in_len -= (size_t)(nl + 1 - a->in_buf);
            memmove(a->in_buf, nl + 1, a->in_len + 1);
            if (a->held[0])
                return;
        }
        if (a->in_len == sizeof(a->in_buf) - 1) {
            if (!a->in_skip)
                logf_("event line longer than %d bytes: dropped", IOTDEV_LINE_MAX - 1);
            a->in_skip = 1;
            a->in_len = 0;
        }
    }
}

static int open_events(struct agent *a)
{
    struct stat st;

    a->in_fd = -1;
    if (a->cfg.events[0] == '\0')
        return 0;
    if (strcmp(a->cfg.events, "-") == 0) {
        a->in_fd = 0;
        fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
        return 0;
    }
    if (stat(a->cfg.events, &st) < 0 && errno == ENOENT && mkfifo(a->cfg.events, 0620) < 0) {
        logf_("events %s: %s", a->cfg.events, strerror(errno));
        return -1;
    }
    /* Read and write: the FIFO never reports end of file when a writer goes. */
    a->in_fd = open(a->cfg.events, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (a->in_fd < 0) {
        logf_("events %s: %s", a->cfg.events, strerror(errno));
        return -1;
    }
    return 0;
}

static void wait_input(struct agent *a)
{
    struct pollfd fds[2 + 2 * IOTDEV_CMDS_MAX];
    unsigned n = 0;
    uint64_t now = a->cmds.clock.now_ms(a->cmds.clock.ctx);
    uint32_t t = iotp_device_next_timeout_ms(&a->dev), c = iotdev_cmds_next_ms(&a->cmds, now);

    if (c < t)
        t = c;
    if (t > 1000)
        t = 1000;
    if (iotdev_net_pending(&a->net))
        t = 0;
    if (a->net.fd >= 0)
        fds[n++] = (struct pollfd){a->net.fd, POLLIN, 0};
    if (a->in_fd >= 0 && !a->held[0])
        fds[n++] = (struct pollfd){a->in_fd, POLLIN, 0};
    n += iotdev_cmds_fds(&a->cmds, fds + n, (unsigned)(sizeof(fds) / sizeof(fds[0])) - n);
    poll(fds, n, (int)t);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: iotdev [-c CONFIG] [-h] [-V]\n"
               "  -c CONFIG  configuration file (default /etc/iotdev/iotdev.conf)\n");
}

int main(int argc, char **argv)
{
    static struct agent a;
    static uint8_t rx[IOTP_MAX_FRAME], tx[IOTP_MAX_FRAME];
    static uint8_t outbox[IOTDEV_JOURNAL_MAX * 520];
    const char *config = "/etc/iotdev/iotdev.conf";
    struct iotp_device_handler handler;
    struct iotp_device_params p;
    struct iotp_device_platform pl;
    char err[8600];
    uint32_t mark;
    int opt, rc = 1;

    while ((opt = getopt(argc, argv, "c:hV")) != -1) {
        switch (opt) {
        case 'c':
            config = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("iotdev %s\n", IOTDEV_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    if (iotdev_config_load(&a.cfg, config, err, sizeof(err)) < 0) {
        logf_("%s", err);
        return 2;
    }
    if (!a.cfg.id[0] || !a.cfg.type[0]) {
        logf_("%s: id and type must not be empty", config);
        return 2;
    }
    if (iotdev_state_open(&a.state, a.cfg.state_dir, &mark, err, sizeof(err)) < 0 ||
        iotdev_net_init(&a.net, a.cfg.tls_ca, err, sizeof(err)) < 0) {
        logf_("%s", err);
        return 1;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);

    memset(&pl, 0, sizeof(pl));
    iotp_posix_clock(&pl.clock);
    iotp_posix_random(&pl.random);
    iotdev_net_transport(&a.net, &pl.transport);
    pl.persist.ctx = &a;
    pl.persist.store_high_water = store_mark;
    iotdev_cmds_init(&a.cmds, a.cfg.commands_dir, a.cfg.id, a.cfg.command_timeout_s, &pl.clock);
    handler.type = NULL;
    handler.fn = iotdev_cmds_handle;
    handler.ctx = &a.cmds;
    memset(&p, 0, sizeof(p));
    p.device_id = a.cfg.id;
    p.device_type = a.cfg.type;
    p.fw_version = a.cfg.fw;
    p.key = a.cfg.key;
    p.handlers = &handler;
    p.nhandlers = 1;
    p.note = note;
    p.note_ctx = &a;
    if (iotp_device_init(&a.dev, &p, &pl, rx, sizeof(rx), tx, sizeof(tx)) < 0 ||
        iotp_device_attach_outbox(&a.dev, outbox, sizeof(outbox), mark) < 0) {
        logf_("cannot start the device engine");
        goto out;
    }
    /* What the last run left unacknowledged goes first, in order, under new numbers. */
    {
        unsigned n = a.state.n;
        static struct iotdev_journal_entry old[IOTDEV_JOURNAL_MAX];
        memcpy(old, a.state.entries, n * sizeof(old[0]));
        a.state.n = 0;
        for (unsigned i = 0; i < n; i++)
            if (push_line(&a, old[i].line) == 1)
                logf_("journalled event '%s' does not fit the outbox: dropped", old[i].line);
        iotdev_state_save(&a.state);
        if (n > 0)
            logf_("%u journalled events queued again", n);
    }
    if (open_events(&a) < 0)
        goto out;
    logf_("%s %s, server %s:%u%s", a.cfg.id, IOTDEV_VERSION, a.cfg.host, (unsigned)a.cfg.port,
          a.net.tls_ctx ? " (TLS)" : "");
    while (!stopping) {
        switch (iotp_device_state(&a.dev)) {
        case IOTP_DEVICE_CONNECT:
            iotp_device_connecting(&a.dev);
            if (iotdev_net_open(&a.net, a.cfg.host, a.cfg.port, CONNECT_TIMEOUT_MS, err,
                                sizeof(err)) == 0) {
                iotp_device_transport_up(&a.dev);
            } else {
                logf_("%s", err);
                logf_("next attempt in %u ms", (unsigned)iotp_device_transport_down(&a.dev));
            }
            break;
        case IOTP_DEVICE_CLOSING:
            iotdev_net_close(&a.net);
            iotp_device_transport_down(&a.dev);
            break;
        default:
            if (iotp_device_poll(&a.dev) < 0) {
                logf_("connection lost");
                iotdev_net_close(&a.net);
            }
            break;
        }
        iotdev_cmds_run(&a.cmds, &a.dev, pl.clock.now_ms(NULL));
        read_events(&a);
        if (iotp_device_state(&a.dev) != IOTP_DEVICE_CONNECT &&
            iotp_device_state(&a.dev) != IOTP_DEVICE_CLOSING)
            wait_input(&a);
    }
    if (iotp_device_stop(&a.dev))
        logf_("said BYE");
    rc = 0;
out:
    iotdev_cmds_stop(&a.cmds);
    iotdev_net_free(&a.net);
    return rc;
}
