/*
 * main.c - iotd's command line: options, configuration, daemonizing, then iotd_start/iotd_run.
 *
 * Without -f iotd detaches, and the parent exits only once the child reports READY (or its
 * start-up error) through a pipe, so `iotd -c FILE && iotctl status` works in scripts.
 *
 * The state directory is locked before anything else touches it (state_lock.h): before
 * detaching, so a second iotd on the same state_dir fails in the foreground of whoever started
 * it, and before the local MariaDB is started, so it never stops the first one's.
 */
#include "base/config.h"
#include "core/check.h"
#include "core/daemon.h"
#include "base/log.h"
#include "base/state_lock.h"
#include "iot_error.h"

#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static void usage(FILE *out)
{
    fprintf(out, "usage: iotd [-c FILE] [-f] [-l LEVEL] [-t] [-R BACKUP] [-V] [-h]\n"
                 "  -c FILE   configuration file (iotd.conf(5)); default: built-in defaults\n"
                 "  -f        stay in the foreground (logs to stderr)\n"
                 "  -l LEVEL  log level: error, warn, info, debug (overrides the file)\n"
                 "  -t        check the configuration and exit\n"
                 "  -R BACKUP restore a backup (iotctl backup) into the fresh state_dir and "
                 "database, and exit\n"
                 "  -V        print the version and exit\n");
}

/* Detach: returns in the child with *ready_fd set; the parent waits for the child's verdict. */
static int daemonize(const char *state_dir, int *ready_fd)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid > 0) {
        close(fds[1]);
        char msg[1024];
        ssize_t n = read(fds[0], msg, sizeof(msg) - 1);
        if (n > 0 && msg[0] == 'R')
            _exit(0);
        msg[n > 1 ? n : 1] = '\0';
        fprintf(stderr, "iotd: %s\n", n > 1 ? msg + 1 : "failed to start (see the log)");
        _exit(1);
    }
    close(fds[0]);
    setsid();
    int devnull = open("/dev/null", O_RDWR);
    if (devnull >= 0) {
        dup2(devnull, 0);
        dup2(devnull, 1);
        close(devnull);
    }
    /* stderr goes to $state_dir/iotd.log unless logging to syslog. */
    char path[4200];
    mkdir(state_dir, 0750); /* iotd_start would create it too late for the log */
    snprintf(path, sizeof(path), "%s/iotd.log", state_dir);
    int logfd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (logfd >= 0) {
        dup2(logfd, 2);
        close(logfd);
        log_set_file(path); /* SIGHUP reopens it (log rotation) */
    }
    *ready_fd = fds[1];
    return 0;
}

static void report(int ready_fd, const char *verdict)
{
    if (ready_fd >= 0) {
        ssize_t ignored = write(ready_fd, verdict, strlen(verdict));
        (void)ignored;
        close(ready_fd);
    }
}

/* One descriptor per connected device: the soft limit goes up to the hard one, which is the
 * administrator's to set (systemd's LimitNOFILE sets both; a login shell's soft limit is
 * usually 1024 below a far higher hard one). See iotd(8), LARGE FLEETS. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            log_warn("cannot raise the open files limit to %llu", (unsigned long long)rl.rlim_max);
    }
}

int main(int argc, char **argv)
{
    struct iotd d = {0};
    char err[1024];
    const char *level = NULL, *restore = NULL;
    int foreground = 0, check_only = 0, opt, ready_fd = -1, status = 1, lock_fd = -1;

    config_defaults(&d.cfg);
    while ((opt = getopt(argc, argv, "c:fl:tR:Vh")) != -1) {
        switch (opt) {
        case 'c':
            d.config_path = optarg;
            break;
        case 'f':
            foreground = 1;
            break;
        case 'l':
            level = optarg;
            break;
        case 't':
            check_only = 1;
            break;
        case 'R':
            restore = optarg;
            break;
        case 'V':
            printf("iotd %s\n", IOTD_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        status = 2;
        goto out;
    }
    if ((d.config_path && config_load(&d.cfg, d.config_path, err, sizeof(err)) != 0) ||
        config_finish(&d.cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "iotd: %s\n", err);
        status = 2;
        goto out;
    }
    if (level && config_set(&d.cfg, "iotd", "log_level", level, err, sizeof(err)) != 0) {
        fprintf(stderr, "iotd: -l: %s\n", err);
        status = 2;
        goto out;
    }
    if (check_only) {
        if (iotd_check_config(&d.cfg, err, sizeof(err)) != 0) {
            fprintf(stderr, "iotd: %s\n", err);
            status = 2;
            goto out;
        }
        printf("iotd: configuration OK\n");
        status = 0;
        goto out;
    }
    log_configure(d.cfg.log_level, d.cfg.log_target);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    /* Held until the process exits: the descriptor is never closed. */
    if (state_lock_take(d.cfg.state_dir, &lock_fd, err, sizeof(err)) != 0) {
        fprintf(stderr, "iotd: %s\n", err);
        goto out;
    }
    if (restore) {
        /* In the foreground and alone (the state lock is held): nothing else starts. */
        if (iotd_restore(&d, restore, err, sizeof(err)) != 0) {
            fprintf(stderr, "iotd: restore from %s: %s\n", restore, err);
            goto out;
        }
        printf("iotd: restored %s into %s\n", restore, d.cfg.state_dir);
        status = 0;
        goto out;
    }
    if (!foreground && daemonize(d.cfg.state_dir, &ready_fd) != 0) {
        fprintf(stderr, "iotd: cannot detach: %m\n");
        goto out;
    }
    if (!foreground)
        state_lock_write_pid(lock_fd); /* the child's pid, which stays */
    if (iotd_start(&d, err, sizeof(err)) != 0) {
        log_error("cannot start: %s", err);
        char verdict[1100];
        snprintf(verdict, sizeof(verdict), "E%s", err);
        report(ready_fd, verdict);
        /* Stop what did start (a local mariadbd above all) before exiting. */
        if (d.mariadb)
            mariadb_local_stop(d.mariadb, 30000);
        goto out;
    }
    report(ready_fd, "R");
    status = iotd_run(&d);
out:
    config_free(&d.cfg);
    return status;
}
