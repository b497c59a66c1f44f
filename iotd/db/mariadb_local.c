/*
 * mariadb_local.c - supervise the private mariadbd of "[database] url = local".
 *
 * Layout under $state_dir/mariadb: data/ (the datadir), run/ (socket, pid file, tmpdir) and
 * log/ (error.log of mariadbd, install.log of mariadb-install-db). All 0700: the socket uses
 * unix_socket authentication, but nobody else has business in there.
 *
 * First start: mariadb-install-db writes into data.new/, which is renamed to data/ only when
 * it succeeded, so a crash during installation never leaves a half-made datadir that a later
 * start would trust. The installer runs synchronously (posix_spawn + waitpid on its pid only,
 * which does not disturb libuv's own child reaping).
 *
 * mariadbd itself is a child spawned with uv_spawn on the caller's loop (the main loop), in
 * its own session (UV_PROCESS_DETACHED) so a Ctrl-C meant for iotd does not kill the database
 * behind its back; iotd stops it itself. Readiness is "a client can connect over the socket".
 *
 * Leftover server: if run/mariadbd.pid names a live mariadbd whose command line carries our
 * datadir (iotd crashed and its detached child survived), we stop it (SIGTERM, then SIGKILL)
 * and start our own. Reusing it would leave a server we cannot supervise: no exit
 * notification, so no restart. A dead or foreign pid in the file is ignored.
 *
 * Unexpected exit: the exit callback notes it, and a timer respawns mariadbd after a backoff
 * of 1 s doubling to 30 s; the backoff resets once a server has stayed up for a minute. Db
 * threads reconnect on their own, so nothing else needs to know.
 *
 * Handles (process, restart timer, stop deadline timer) live in this struct, so it is freed
 * only after every handle's close callback has run (mariadb_local_stop runs the loop for that).
 */
#include "db/mariadb_local.h"

#include "iot_error.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <mysql.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BACKOFF_FIRST_MS   1000
#define BACKOFF_MAX_MS     30000
#define STABLE_UPTIME_MS   60000
#define INSTALL_TIMEOUT_MS 120000
#define LOG_TAIL_BYTES     4096
#define LOG_TAIL_LINES     6
/* Every path below $state_dir/mariadb is barely longer than the socket path, which must fit
 * in sockaddr_un (108 bytes), so short fixed buffers suffice. */
#define LOCAL_PATH_MAX 256

extern char **environ;

struct mariadb_local {
    uv_loop_t *loop;
    uv_process_t process;
    uv_timer_t restart_timer;
    uv_timer_t deadline_timer;
    int open_handles;     /* handles whose close callback has not run yet */
    bool process_open;    /* process handle initialized and not yet closing */
    bool process_closing; /* uv_close called, close callback pending: do not respawn yet */
    bool running;         /* mariadbd alive (spawned, exit not yet seen) */
    bool supervising;     /* start succeeded: unexpected exits are restarted */
    bool stopping;
    bool deadline_passed;
    void (*notify)(void *arg, const char *sentence);
    void *notify_arg;
    int exit_status, term_signal;
    uint64_t started_at; /* uv_now when the current mariadbd was spawned */
    unsigned backoff_ms, restarts;
    char mariadbd[PATH_MAX];
    char user[256];
    char dir[LOCAL_PATH_MAX], data[LOCAL_PATH_MAX], run[LOCAL_PATH_MAX], log[LOCAL_PATH_MAX];
    char socket[sizeof(((struct sockaddr_un *)0)->sun_path)];
    char pidfile[LOCAL_PATH_MAX], errlog[LOCAL_PATH_MAX];
    char *argv[32];
    char argbuf[16][LOCAL_PATH_MAX + 64];
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* dir/name into out; false if it does not fit. */
static bool path_join(char *out, size_t outlen, const char *dir, const char *name)
{
    /* Lengths checked by hand: gcc -O2 flags snprintf here even with its result checked. */
    size_t a = strlen(dir), b = strlen(name);
    if (a + 1 + b >= outlen)
        return false;
    memcpy(out, dir, a);
    out[a] = '/';
    memcpy(out + a + 1, name, b + 1);
    return true;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Find an executable in $PATH, then /usr/sbin and /usr/bin (mariadbd lives in sbin, which
 * is not in an ordinary user's PATH). */
static int find_binary(const char *name, char *out, size_t outlen)
{
    const char *env = getenv("PATH");
    size_t envlen = env != NULL ? strlen(env) : 0;
    char *paths = malloc(envlen + sizeof ":/usr/sbin:/usr/bin");
    if (paths == NULL)
        return IOT_ENOMEM;
    snprintf(paths, envlen + sizeof ":/usr/sbin:/usr/bin", "%s:/usr/sbin:/usr/bin",
             env != NULL ? env : "");
    int rc = IOT_ENOTFOUND;
    char *save = NULL;
    for (char *dir = strtok_r(paths, ":", &save); dir != NULL; dir = strtok_r(NULL, ":", &save)) {
        if (dir[0] != '/')
            continue; /* never run a relative PATH entry as root */
        if ((size_t)snprintf(out, outlen, "%s/%s", dir, name) < outlen && access(out, X_OK) == 0) {
            rc = 0;
            break;
        }
    }
    free(paths);
    return rc;
}

/* Append the gist of a log file's end to err: its last few [ERROR] lines (or, if there are
 * none, its last lines), joined with " | ", so a failure message carries mariadbd's own
 * explanation without a page of InnoDB notes. */
static void append_log_tail(const char *path, char *err, size_t errlen)
{
    char buf[LOG_TAIL_BYTES + 1];
    const char *lines[64];
    int nlines = 0, picked[LOG_TAIL_LINES], npicked = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    off_t size = lseek(fd, 0, SEEK_END);
    off_t from = size > LOG_TAIL_BYTES ? size - LOG_TAIL_BYTES : 0;
    ssize_t n = pread(fd, buf, LOG_TAIL_BYTES, from);
    close(fd);
    if (n <= 0)
        return;
    buf[n] = '\0';
    char *save = NULL, *line = strtok_r(buf, "\n", &save);
    if (from > 0 && line != NULL)
        line = strtok_r(NULL, "\n", &save); /* the first line is cut */
    for (; line != NULL; line = strtok_r(NULL, "\n", &save)) {
        if (nlines == 64) {
            memmove(lines, lines + 1, sizeof lines[0] * 63);
            nlines--;
        }
        lines[nlines++] = line;
    }
    for (int i = nlines - 1; i >= 0 && npicked < LOG_TAIL_LINES; i--)
        if (strstr(lines[i], "[ERROR]") != NULL)
            picked[npicked++] = i;
    if (npicked == 0) /* no error lines: the last lines say most */
        for (int i = nlines - 1; i >= 0 && npicked < LOG_TAIL_LINES; i--)
            picked[npicked++] = i;
    size_t used = strlen(err);
    if (npicked > 0 && used + 1 < errlen)
        used += (size_t)snprintf(err + used, errlen - used, "; %s says:", path);
    for (int k = npicked - 1; k >= 0 && used + 1 < errlen; k--)
        used += (size_t)snprintf(err + used, errlen - used, " %s%s", lines[picked[k]],
                                 k > 0 ? " |" : "");
}

static int mkdir_private(const char *path, char *err, size_t errlen)
{
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
        return IOT_EIO;
    }
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

/* Run a program to completion (stdout and stderr to logpath), killing it after timeout_ms.
 * Waits on its pid only, so libuv's SIGCHLD handling of other children is left alone. */
static int run_sync(char *const argv[], const char *logpath, int timeout_ms, char *err,
                    size_t errlen)
{
    int rc = IOT_EIO, status = 0;
    pid_t pid = -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    int e = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    if (e != 0) {
        snprintf(err, errlen, "cannot run %s: %s", argv[0], strerror(e));
        goto out;
    }
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            break;
        if (w < 0 && errno != EINTR) {
            snprintf(err, errlen, "waiting for %s: %s", argv[0], strerror(errno));
            goto out;
        }
        if (now_ms() > deadline) {
            kill(pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
            snprintf(err, errlen, "%s did not finish within %d ms", argv[0], timeout_ms);
            append_log_tail(logpath, err, errlen);
            goto out;
        }
        sleep_ms(20);
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        snprintf(err, errlen, "%s failed (%s %d)", argv[0],
                 WIFEXITED(status) ? "exit status" : "signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        append_log_tail(logpath, err, errlen);
        goto out;
    }
    rc = 0;
out:
    posix_spawn_file_actions_destroy(&fa);
    return rc;
}

/* Create the datadir with mariadb-install-db unless it exists. */
static int datadir_install(mariadb_local_t *m, char *err, size_t errlen)
{
    char staging[LOCAL_PATH_MAX + 8], installer[PATH_MAX], logpath[LOCAL_PATH_MAX + 16];
    char a_datadir[LOCAL_PATH_MAX + 32], a_user[300], a_tmpdir[LOCAL_PATH_MAX + 32];
    struct stat st;
    if (stat(m->data, &st) == 0)
        return 0;
    if (find_binary("mariadb-install-db", installer, sizeof installer) != 0 &&
        find_binary("mysql_install_db", installer, sizeof installer) != 0) {
        snprintf(err, errlen,
                 "mariadb-install-db not found in PATH, /usr/sbin or /usr/bin "
                 "(install the mariadb-server package)");
        return IOT_EIO;
    }
    snprintf(staging, sizeof staging, "%s.new", m->data);
    snprintf(logpath, sizeof logpath, "%s/install.log", m->log);
    /* A previous attempt that died half-way: start over. */
    nftw(staging, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    snprintf(a_datadir, sizeof a_datadir, "--datadir=%s", staging);
    snprintf(a_user, sizeof a_user, "--user=%s", m->user);
    /* The bootstrap server's temporary tables go to our own directory, not the shared /tmp:
     * there, another process (or a tmp cleaner) removing them fails the install. */
    snprintf(a_tmpdir, sizeof a_tmpdir, "--tmpdir=%s", m->run);
    char *argv[] = {
        installer,        "--no-defaults", a_datadir, "--auth-root-authentication-method=socket",
        "--skip-test-db", a_user,          a_tmpdir,  NULL};
    int rc = run_sync(argv, logpath, INSTALL_TIMEOUT_MS, err, errlen);
    if (rc != 0)
        return rc;
    if (chmod(staging, 0700) != 0 || rename(staging, m->data) != 0) {
        snprintf(err, errlen, "cannot move %s to %s: %s", staging, m->data, strerror(errno));
        return IOT_EIO;
    }
    return 0;
}

/* Is pid a mariadbd serving our datadir? Checked through /proc so that a recycled pid in a
 * stale pid file never gets us to signal an unrelated process. */
static bool pid_is_our_mariadbd(const mariadb_local_t *m, pid_t pid)
{
    char path[64], cmd[8192];
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, cmd, sizeof cmd - 1);
    close(fd);
    if (n <= 0)
        return false;
    cmd[n] = '\0';
    bool is_mariadbd = false, our_datadir = false;
    char want[LOCAL_PATH_MAX + 16];
    snprintf(want, sizeof want, "--datadir=%s", m->data);
    for (char *arg = cmd; arg < cmd + n; arg += strlen(arg) + 1) {
        const char *base = strrchr(arg, '/');
        base = base != NULL ? base + 1 : arg;
        if (arg == cmd && (strcmp(base, "mariadbd") == 0 || strcmp(base, "mysqld") == 0))
            is_mariadbd = true;
        if (strcmp(arg, want) == 0)
            our_datadir = true;
    }
    return is_mariadbd && our_datadir;
}

/* Stop a mariadbd left running by a previous iotd (see the top comment). */
static int stop_leftover(mariadb_local_t *m, int timeout_ms, char *err, size_t errlen)
{
    char buf[32];
    int fd = open(m->pidfile, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    long pid = strtol(buf, NULL, 10);
    if (pid <= 1 || !pid_is_our_mariadbd(m, (pid_t)pid))
        return 0;
    kill((pid_t)pid, SIGTERM);
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
    while (kill((pid_t)pid, 0) == 0 && pid_is_our_mariadbd(m, (pid_t)pid)) {
        if (now_ms() > deadline) {
            kill((pid_t)pid, SIGKILL);
            sleep_ms(200);
            if (kill((pid_t)pid, 0) == 0 && pid_is_our_mariadbd(m, (pid_t)pid)) {
                snprintf(err, errlen,
                         "a mariadbd left by a previous iotd (pid %ld) on %s "
                         "does not stop",
                         pid, m->data);
                return IOT_EIO;
            }
            break;
        }
        sleep_ms(50);
    }
    return 0;
}

static void on_handle_closed(uv_handle_t *handle)
{
    mariadb_local_t *m = handle->data;
    m->open_handles--;
}

static void on_process_closed(uv_handle_t *handle)
{
    mariadb_local_t *m = handle->data;
    m->process_closing = false;
    m->open_handles--;
}

/* Close the process handle; the struct may be reused by uv_spawn only after the callback. */
static void process_close(mariadb_local_t *m)
{
    m->process_open = false;
    m->process_closing = true;
    uv_close((uv_handle_t *)&m->process, on_process_closed);
}

static void notify(mariadb_local_t *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void notify(mariadb_local_t *m, const char *fmt, ...)
{
    char sentence[512];
    va_list ap;
    if (m->notify == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(sentence, sizeof sentence, fmt, ap);
    va_end(ap);
    m->notify(m->notify_arg, sentence);
}

static void on_server_exit(uv_process_t *process, int64_t exit_status, int term_signal);

static void build_argv(mariadb_local_t *m)
{
    int i = 0, b = 0;
#define ARG(...)                                                                                   \
    do {                                                                                           \
        snprintf(m->argbuf[b], sizeof m->argbuf[b], __VA_ARGS__);                                  \
        m->argv[i++] = m->argbuf[b++];                                                             \
    } while (0)
    m->argv[i++] = m->mariadbd;
    m->argv[i++] = "--no-defaults"; /* never pick up /etc/mysql: this server is ours alone */
    ARG("--datadir=%s", m->data);
    ARG("--socket=%s", m->socket);
    m->argv[i++] = "--skip-networking";
    ARG("--pid-file=%s", m->pidfile);
    ARG("--log-error=%s", m->errlog);
    ARG("--tmpdir=%s", m->run);
    ARG("--user=%s", m->user);
    /* Small footprint: iotd keeps its working set in memory; the database holds the registry
     * and the event history, which need a modest buffer pool. */
    m->argv[i++] = "--innodb-buffer-pool-size=32M";
    m->argv[i++] = "--innodb-log-file-size=16M";
    m->argv[i++] = "--innodb-log-buffer-size=4M";
    m->argv[i++] = "--key-buffer-size=1M";
    m->argv[i++] = "--aria-pagecache-buffer-size=8M";
    m->argv[i++] = "--max-connections=100";
    m->argv[i++] = "--table-open-cache=256";
    m->argv[i++] = "--thread-cache-size=8";
    m->argv[i++] = "--performance-schema=OFF";
    m->argv[i++] = "--character-set-server=utf8mb4";
    m->argv[i++] = "--collation-server=utf8mb4_unicode_ci";
    m->argv[i] = NULL;
#undef ARG
}

/* Spawn mariadbd. The process handle is open (and counted) only on success. */
static int spawn_server(mariadb_local_t *m, char *err, size_t errlen)
{
    uv_process_options_t opt;
    uv_stdio_container_t stdio[3];
    memset(&opt, 0, sizeof opt);
    memset(stdio, 0, sizeof stdio);
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_IGNORE;
    stdio[2].flags = UV_IGNORE;
    opt.file = m->mariadbd;
    opt.args = m->argv;
    opt.exit_cb = on_server_exit;
    opt.flags = UV_PROCESS_DETACHED;
    opt.stdio = stdio;
    opt.stdio_count = 3;
    int e = uv_spawn(m->loop, &m->process, &opt);
    if (e != 0) {
        /* libuv still wants a failed process handle closed. */
        m->process.data = m;
        m->open_handles++;
        process_close(m);
        snprintf(err, errlen, "cannot start %s: %s", m->mariadbd, uv_strerror(e));
        return IOT_EIO;
    }
    m->process.data = m;
    m->open_handles++;
    m->process_open = true;
    m->running = true;
    m->started_at = uv_now(m->loop);
    return 0;
}

static void on_restart_timer(uv_timer_t *timer)
{
    mariadb_local_t *m = timer->data;
    char err[256];
    if (m->stopping || m->running)
        return;
    if (m->process_closing) {
        uv_timer_start(&m->restart_timer, on_restart_timer, 10, 0); /* not closed yet */
        return;
    }
    if (spawn_server(m, err, sizeof err) != 0) {
        unsigned delay = m->backoff_ms;
        m->backoff_ms = m->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : m->backoff_ms * 2;
        notify(m, "%s; trying again in %u ms", err, delay);
        uv_timer_start(&m->restart_timer, on_restart_timer, delay, 0);
        return;
    }
    m->restarts++;
    notify(m, "mariadbd restarted (pid %d)", m->process.pid);
}

static void on_server_exit(uv_process_t *process, int64_t exit_status, int term_signal)
{
    mariadb_local_t *m = process->data;
    m->running = false;
    m->exit_status = (int)exit_status;
    m->term_signal = term_signal;
    process_close(m);
    if (m->stopping || !m->supervising)
        return; /* expected, or still in mariadb_local_start, which reports it */
    /* Unexpected: restart after a backoff that grows while the server keeps dying. */
    if (uv_now(m->loop) - m->started_at >= STABLE_UPTIME_MS)
        m->backoff_ms = BACKOFF_FIRST_MS;
    unsigned delay = m->backoff_ms;
    m->backoff_ms = m->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : m->backoff_ms * 2;
    notify(m, "mariadbd exited unexpectedly (%s %d); restarting in %u ms; see %s",
           term_signal ? "signal" : "exit status", term_signal ? term_signal : (int)exit_status,
           delay, m->errlog);
    uv_timer_start(&m->restart_timer, on_restart_timer, delay, 0);
}

/* True once a client can log in over the socket: the server is ready for iotd. */
static bool server_accepts(const mariadb_local_t *m)
{
    MYSQL *c = mysql_init(NULL);
    if (c == NULL)
        return false;
    unsigned timeout = 2;
    mysql_options(c, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
    bool ok = mysql_real_connect(c, "localhost", m->user, NULL, NULL, 0, m->socket, 0) != NULL;
    mysql_close(c);
    return ok;
}

static void on_deadline(uv_timer_t *timer)
{
    mariadb_local_t *m = timer->data;
    m->deadline_passed = true;
}

/* Close our handles and run the loop until their close callbacks ran; then m may be freed.
 * Closing handles make uv_run(ONCE) return without blocking. */
static void close_handles(mariadb_local_t *m)
{
    if (m->process_open)
        process_close(m);
    if (!uv_is_closing((uv_handle_t *)&m->restart_timer))
        uv_close((uv_handle_t *)&m->restart_timer, on_handle_closed);
    if (!uv_is_closing((uv_handle_t *)&m->deadline_timer))
        uv_close((uv_handle_t *)&m->deadline_timer, on_handle_closed);
    while (m->open_handles > 0)
        uv_run(m->loop, UV_RUN_ONCE);
}

/* Signal mariadbd to stop and run the loop until its exit is seen: SIGTERM (a clean InnoDB
 * shutdown), then SIGKILL once timeout_ms passed. */
static void terminate(mariadb_local_t *m, int timeout_ms)
{
    m->stopping = true;
    uv_timer_stop(&m->restart_timer);
    if (!m->running)
        return;
    uv_process_kill(&m->process, SIGTERM);
    m->deadline_passed = false;
    uv_timer_start(&m->deadline_timer, on_deadline, (uint64_t)timeout_ms, 0);
    while (m->running && !m->deadline_passed)
        uv_run(m->loop, UV_RUN_ONCE);
    if (m->running) {
        uv_process_kill(&m->process, SIGKILL);
        while (m->running)
            uv_run(m->loop, UV_RUN_ONCE);
    }
    uv_timer_stop(&m->deadline_timer);
}

static int current_user_name(char *out, size_t outlen)
{
    struct passwd pw, *res = NULL;
    char buf[1024];
    if (getpwuid_r(geteuid(), &pw, buf, sizeof buf, &res) != 0 || res == NULL ||
        strlen(pw.pw_name) >= outlen)
        return IOT_ENOTFOUND;
    strcpy(out, pw.pw_name);
    return 0;
}

int mariadb_local_start(mariadb_local_t **out, uv_loop_t *loop, const char *state_dir,
                        int timeout_ms, char *err, size_t errlen)
{
    int rc = IOT_EIO;
    mariadb_local_t *m = calloc(1, sizeof *m);
    *out = NULL;
    err[0] = '\0';
    if (m == NULL) {
        snprintf(err, errlen, "out of memory starting the local database");
        return IOT_ENOMEM;
    }
    m->loop = loop;
    m->backoff_ms = BACKOFF_FIRST_MS;
    uv_timer_init(loop, &m->restart_timer);
    uv_timer_init(loop, &m->deadline_timer);
    m->restart_timer.data = m;
    m->deadline_timer.data = m;
    m->open_handles = 2;

    if (current_user_name(m->user, sizeof m->user) != 0) {
        snprintf(err, errlen, "uid %u has no user name for mariadbd to run as",
                 (unsigned)geteuid());
        goto out;
    }
    if (find_binary("mariadbd", m->mariadbd, sizeof m->mariadbd) != 0 &&
        find_binary("mysqld", m->mariadbd, sizeof m->mariadbd) != 0) {
        snprintf(err, errlen,
                 "mariadbd not found in PATH, /usr/sbin or /usr/bin (install the "
                 "mariadb-server package)");
        goto out;
    }
    if ((size_t)snprintf(m->dir, sizeof m->dir, "%s/mariadb", state_dir) >= sizeof m->dir ||
        (size_t)snprintf(m->socket, sizeof m->socket, "%s/run/mysqld.sock", m->dir) >=
            sizeof m->socket) {
        snprintf(err, errlen,
                 "state directory %s is too long: the socket path must fit in %zu bytes", state_dir,
                 sizeof m->socket - 1);
        rc = IOT_EINVAL;
        goto out;
    }
    /* These are shorter than the socket path, which was checked just above. */
    path_join(m->data, sizeof m->data, m->dir, "data");
    path_join(m->run, sizeof m->run, m->dir, "run");
    path_join(m->log, sizeof m->log, m->dir, "log");
    path_join(m->pidfile, sizeof m->pidfile, m->run, "mariadbd.pid");
    path_join(m->errlog, sizeof m->errlog, m->log, "error.log");
    if (mkdir_private(state_dir, err, errlen) || mkdir_private(m->dir, err, errlen) ||
        mkdir_private(m->run, err, errlen) || mkdir_private(m->log, err, errlen))
        goto out;
    if ((rc = datadir_install(m, err, errlen)) != 0)
        goto out;
    rc = IOT_EIO;
    if (stop_leftover(m, timeout_ms, err, errlen) != 0)
        goto out;
    if (mysql_library_init(0, NULL, NULL) != 0) {
        snprintf(err, errlen, "cannot initialize the MariaDB client library");
        goto out;
    }

    build_argv(m);
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
    if (spawn_server(m, err, errlen) != 0)
        goto out;
    for (;;) {
        if (server_accepts(m))
            break;
        uv_run(loop, UV_RUN_NOWAIT); /* lets libuv report an early exit */
        if (!m->running) {
            snprintf(err, errlen, "mariadbd exited during start-up (%s %d)",
                     m->term_signal ? "signal" : "exit status",
                     m->term_signal ? m->term_signal : m->exit_status);
            append_log_tail(m->errlog, err, errlen);
            goto out;
        }
        if (now_ms() > deadline) {
            snprintf(err, errlen, "mariadbd did not accept connections on %s within %d ms",
                     m->socket, timeout_ms);
            append_log_tail(m->errlog, err, errlen);
            goto out;
        }
        sleep_ms(50);
    }
    m->supervising = true;
    *out = m;
    m = NULL;
    rc = 0;
out:
    if (m != NULL) {
        terminate(m, 5000);
        close_handles(m);
        free(m);
    }
    return rc;
}

const char *mariadb_local_socket(const mariadb_local_t *m)
{
    return m->socket;
}

unsigned mariadb_local_restarts(const mariadb_local_t *m)
{
    return m->restarts;
}

int mariadb_local_pid(const mariadb_local_t *m)
{
    return m->running ? m->process.pid : 0;
}

void mariadb_local_set_notify(mariadb_local_t *m, void (*fn)(void *arg, const char *sentence),
                              void *arg)
{
    m->notify = fn;
    m->notify_arg = arg;
}

void mariadb_local_stop(mariadb_local_t *m, int timeout_ms)
{
    if (m == NULL)
        return;
    terminate(m, timeout_ms);
    close_handles(m);
    free(m);
}
