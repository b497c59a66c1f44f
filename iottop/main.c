/*
 * main.c - iottop: a live, top-like view of a running iotd.
 *
 *   iottop [-s SOCKET] [-d SECONDS] [-b] [-n COUNT] [--json] [-h] [--version]
 *
 * Interactive mode is one poll() loop over the terminal and the stats stream: keys go to the
 * screen manager (screen.c), samples go to the model (model.c), and the screen is redrawn when
 * either changed something. When iotd goes away the loop keeps running, says so on the status
 * line and reconnects every second; when the operator changes the interval or a session sort
 * that needs another top N, the stream is replaced (conn.c). Batch mode (batch.c) shares the
 * model and prints reports instead.
 *
 * The terminal must never be left raw: SIGINT and SIGTERM only set a flag the loop checks, so
 * the normal exit path runs endwin; a crash of iottop itself (SIGSEGV, SIGABRT, SIGBUS, SIGFPE)
 * calls endwin from the handler, best effort, and re-raises so the crash still dumps core and
 * the exit status still tells the truth.
 */
#include "batch.h"
#include "conn.h"
#include "iot_error.h"
#include "model.h"
#include "screen.h"

#include <curses.h>
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef IOTTOP_VERSION
#define IOTTOP_VERSION "unknown"
#endif

#define EXIT_USAGE          2
#define RECONNECT_MS        1000
#define BATCH_TOP_SESSIONS  50
#define SCREEN_TOP_SESSIONS 200 /* enough to scroll through on a tall terminal */
#define CLOCK_TICK_MS       1000
#define PAUSED_EVENTS_MAX   MODEL_EVENTS_MAX

/* Set by SIGINT/SIGTERM; the loop leaves and restores the terminal on its normal path. */
static volatile sig_atomic_t stop_requested;
/* Set while curses owns the terminal, so that the crash handler knows to give it back. */
static volatile sig_atomic_t curses_active;

struct options {
    const char *socket;
    int interval_ms;
    int count;
    bool batch, json;
};

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* endwin is not async-signal-safe, but after a crash a possibly broken terminal is the worse
 * outcome; SA_RESETHAND made the disposition default again, so raise() ends the process the
 * way the crash would have. */
static void on_crash(int sig)
{
    if (curses_active)
        endwin();
    raise(sig);
}

static void install_signals(void)
{
    struct sigaction stop = {.sa_handler = on_stop}; /* no SA_RESTART: poll() must return */
    sigemptyset(&stop.sa_mask);
    sigaction(SIGINT, &stop, NULL);
    sigaction(SIGTERM, &stop, NULL);
    sigaction(SIGHUP, &stop, NULL);

    struct sigaction crash = {.sa_handler = on_crash, .sa_flags = SA_RESETHAND | SA_NODEFER};
    sigemptyset(&crash.sa_mask);
    int fatal[] = {SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL};
    for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
        sigaction(fatal[i], &crash, NULL);
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: iottop [-s SOCKET] [-d SECONDS] [-b] [-n COUNT] [--json] [-h] [--version]\n"
            "\n"
            "A live view of iotd's threads, queues, sessions, requests and events.\n"
            "\n"
            "  -s, --socket PATH    iotd's control socket (default: $IOTD_SOCKET, then %s)\n"
            "  -d, --delay SECONDS  sample interval, 0.1 to 60 (default 1)\n"
            "  -b, --batch          print snapshots as text instead of the screen (like top -b)\n"
            "  -n, --iterations N   stop after N snapshots\n"
            "      --json           batch mode with one JSON object per line\n"
            "  -h, --help           this help\n"
            "      --version        print the version\n"
            "\n"
            "Keys: q quit, h help, 1-5/Tab panels, < > s sort, / filter, space pause, + - "
            "interval.\n"
            "See iottop(1).\n",
            "/var/lib/iotd/control.sock");
}

/* Parse argv; returns -1 to go on, or an exit status (help, version, usage error). */
static int parse_options(int argc, char *argv[], struct options *o)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *equals = strncmp(arg, "--", 2) == 0 ? strchr(arg, '=') : NULL;
        size_t name_len = equals ? (size_t)(equals - arg) : strlen(arg);
#define IS(name) (name_len == strlen(name) && strncmp(arg, name, name_len) == 0)
        if (IS("-h") || IS("--help")) {
            usage(stdout);
            return 0;
        }
        if (IS("--version")) {
            printf("iottop %s\n", IOTTOP_VERSION);
            return 0;
        }
        if (IS("-b") || IS("--batch")) {
            o->batch = true;
            continue;
        }
        if (IS("--json")) {
            o->json = o->batch = true;
            continue;
        }
        bool socket = IS("-s") || IS("--socket");
        bool delay = IS("-d") || IS("--delay");
        bool count = IS("-n") || IS("--iterations");
#undef IS
        if (!socket && !delay && !count) {
            fprintf(stderr, "iottop: unknown option '%s'\nRun \"iottop --help\" for usage.\n", arg);
            return EXIT_USAGE;
        }
        const char *value = equals ? equals + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!value || !*value) {
            fprintf(stderr, "iottop: option '%.*s' needs a value\n", (int)name_len, arg);
            return EXIT_USAGE;
        }
        char *end = NULL;
        errno = 0;
        if (socket) {
            o->socket = value;
        } else if (delay) {
            double seconds = strtod(value, &end);
            if (errno || *end || !isfinite(seconds) || seconds < 0.1 || seconds > 60) {
                fprintf(stderr, "iottop: -d: '%s' is not a number of seconds from 0.1 to 60\n",
                        value);
                return EXIT_USAGE;
            }
            o->interval_ms = (int)lround(seconds * 1000);
        } else {
            long n = strtol(value, &end, 10);
            if (errno || *end || n < 1 || n > 1000000000) {
                fprintf(stderr, "iottop: -n: '%s' is not a positive count\n", value);
                return EXIT_USAGE;
            }
            o->count = (int)n;
        }
    }
    return -1;
}

/*
 * While paused, only the newest sample is kept, but the events of the ones it replaces are
 * moved into it (oldest first, at most PAUSED_EVENTS_MAX), so that resuming loses no event.
 * Takes ownership of both; returns the merged sample.
 */
static cJSON *stash_sample(cJSON *stash, cJSON *item)
{
    if (!stash)
        return item;
    cJSON *older = cJSON_DetachItemFromObjectCaseSensitive(stash, "events");
    cJSON *newer = cJSON_GetObjectItemCaseSensitive(item, "events");
    cJSON_Delete(stash);
    if (!cJSON_IsArray(older)) {
        cJSON_Delete(older);
        return item;
    }
    while (cJSON_IsArray(newer) && cJSON_GetArraySize(newer) > 0)
        cJSON_AddItemToArray(older, cJSON_DetachItemFromArray(newer, 0));
    while (cJSON_GetArraySize(older) > PAUSED_EVENTS_MAX)
        cJSON_DeleteItemFromArray(older, 0);
    if (newer)
        cJSON_ReplaceItemInObjectCaseSensitive(item, "events", older);
    else
        cJSON_AddItemToObject(item, "events", older);
    return item;
}

struct session {
    struct options *options;
    model_t *model;
    conn_t *conn;
    struct screen screen;
    struct conn_params params; /* what the current stream was asked for */
    char sort[32];
    long long next_attempt_ms;
    cJSON *stash; /* newest sample held back while paused */
    int shown;    /* samples shown, for -n */
};

/* Connect (or replace the stream) with the screen's interval and the sessions sort. */
static void subscribe(struct session *s)
{
    const char *sort = model_sessions_server_sort(s->model);
    snprintf(s->sort, sizeof(s->sort), "%s", sort ? sort : "frames_in");
    s->params = (struct conn_params){.interval_ms = s->screen.interval_ms,
                                     .top = SCREEN_TOP_SESSIONS,
                                     .sort = s->sort,
                                     .count = 0};
    char status[320];
    if (conn_open(s->conn, &s->params) == IOT_OK) {
        model_stream_restarted(s->model);
        return;
    }
    snprintf(status, sizeof(status), "iotd unreachable at %s \u2014 retrying", conn_path(s->conn));
    screen_set_status(&s->screen, status);
    s->next_attempt_ms = now_ms() + RECONNECT_MS;
}

/* Does the screen now want a stream other than the one we have? */
static bool stream_outdated(struct session *s)
{
    const char *sort = model_sessions_server_sort(s->model);
    return s->screen.interval_ms != s->params.interval_ms || (sort && strcmp(sort, s->sort) != 0);
}

static void show_sample(struct session *s, cJSON *item)
{
    model_update(s->model, item);
    cJSON_Delete(item);
    s->shown++;
}

/* Drain what the stream has; returns true when the screen needs a redraw. */
static bool read_stream(struct session *s)
{
    bool dirty = false;
    while (conn_is_open(s->conn)) {
        cJSON *item = NULL;
        int rc = conn_next(s->conn, 0, &item);
        if (rc == IOT_EBUSY || (rc == IOT_EIO && errno == EINTR))
            break;
        dirty = true;
        if (rc == IOT_OK) {
            screen_set_status(&s->screen, NULL);
            if (s->screen.paused)
                s->stash = stash_sample(s->stash, item);
            else
                show_sample(s, item);
            continue;
        }
        char status[512];
        if (rc == IOT_EUNREACHABLE)
            snprintf(status, sizeof(status), "iotd unreachable at %s \u2014 retrying (%s)",
                     conn_path(s->conn), conn_reason(s->conn));
        else
            snprintf(status, sizeof(status),
                     "iotd at %s refused the stats stream: %s \u2014 retrying", conn_path(s->conn),
                     conn_reason(s->conn));
        screen_set_status(&s->screen, status);
        s->next_attempt_ms = now_ms() + RECONNECT_MS;
    }
    return dirty;
}

/* Returns true to quit. */
static bool read_keys(struct session *s, bool *dirty)
{
    int key;
    while ((key = getch()) != ERR) {
        bool was_paused = s->screen.paused;
        enum screen_action action = screen_key(&s->screen, key);
        if (action == SCREEN_QUIT)
            return true;
        if (action == SCREEN_REDRAW)
            *dirty = true;
        if (was_paused && !s->screen.paused && s->stash) {
            show_sample(s, s->stash);
            s->stash = NULL;
        }
        if (conn_is_open(s->conn) && stream_outdated(s))
            subscribe(s);
    }
    return false;
}

static int run_screen(struct options *o)
{
    int status = 1;
    struct session s = {.options = o};
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
        fprintf(stderr, "iottop: not a terminal; use -b for batch mode\n");
        return 1;
    }
    s.model = model_new();
    s.conn = conn_new(o->socket);
    if (!s.model || !s.conn) {
        fprintf(stderr, "iottop: out of memory\n");
        goto out;
    }
    if (screen_start(&s.screen, s.model, conn_path(s.conn), o->interval_ms) != IOT_OK) {
        fprintf(stderr, "iottop: cannot drive this terminal\n");
        goto out;
    }
    curses_active = 1;
    subscribe(&s);
    screen_draw(&s.screen);

    long long last_draw = now_ms();
    while (!stop_requested && (o->count == 0 || s.shown < o->count)) {
        bool dirty = false;
        long long now = now_ms();
        if (!conn_is_open(s.conn) && now >= s.next_attempt_ms) {
            subscribe(&s);
            dirty = true;
        }
        int timeout = CLOCK_TICK_MS - (int)(now - last_draw);
        if (!conn_is_open(s.conn) && s.next_attempt_ms - now < timeout)
            timeout = (int)(s.next_attempt_ms - now);
        if (timeout < 0)
            timeout = 0;
        struct pollfd fds[2] = {{.fd = STDIN_FILENO, .events = POLLIN},
                                {.fd = conn_fd(s.conn), .events = POLLIN}};
        int ready = poll(fds, conn_is_open(s.conn) ? 2 : 1, dirty ? 0 : timeout);
        if (ready < 0 && errno != EINTR)
            break;
        /* Always ask curses: a resize arrives as a signal that interrupted poll(). */
        if (read_keys(&s, &dirty))
            break;
        if (read_stream(&s))
            dirty = true;
        if (now_ms() - last_draw >= CLOCK_TICK_MS)
            dirty = true; /* the clock in the title moves even when nothing else does */
        if (dirty) {
            screen_draw(&s.screen);
            last_draw = now_ms();
        }
    }
    status = 0;
out:
    screen_stop(&s.screen);
    curses_active = 0;
    cJSON_Delete(s.stash);
    conn_free(s.conn);
    model_free(s.model);
    return status;
}

int main(int argc, char *argv[])
{
    struct options o = {.interval_ms = 1000};
    int status = parse_options(argc, argv, &o);
    if (status >= 0)
        return status;
    setlocale(LC_ALL, ""); /* curses needs the locale for UTF-8 output */
    if (o.batch) {
        struct batch_options b = {.socket = o.socket,
                                  .interval_ms = o.interval_ms,
                                  .count = o.count,
                                  .top = BATCH_TOP_SESSIONS,
                                  .json = o.json};
        return batch_run(&b);
    }
    install_signals();
    return run_screen(&o);
}
