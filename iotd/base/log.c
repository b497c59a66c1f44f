/*
 * log.c - leveled logging (see log.h).
 *
 * Messages quote text from the network (a peer's FROM, a device's name, a database error):
 * log_msg escapes the whole formatted message (iot_text_escape: C0, C1, DEL and invalid UTF-8 as
 * visible escapes), so no caller can forget and no peer can split a line or drive the terminal
 * of whoever reads the log.
 */
#include "base/log.h"

#include "iot_text.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static _Atomic int current_level = LOG_LEVEL_INFO;
static _Atomic int use_syslog = 0;

static char log_file[4096]; /* "" unless the log is a file of ours (log_set_file) */

static const char *const level_names[] = {"error", "warn", "info", "debug"};
static const int syslog_priorities[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};

void log_configure(const char *level, const char *target)
{
    for (int i = 0; level && i < 4; i++)
        if (strcmp(level, level_names[i]) == 0)
            atomic_store(&current_level, i);
    if (target && strcmp(target, "syslog") == 0) {
        openlog("iotd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
        atomic_store(&use_syslog, 1);
    } else if (target && strcmp(target, "stderr") == 0) {
        atomic_store(&use_syslog, 0);
    }
}

void log_set_file(const char *path)
{
    snprintf(log_file, sizeof(log_file), "%s", path ? path : "");
}

int log_reopen(void)
{
    if (!log_file[0])
        return 0;
    int fd = open(log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0)
        return -errno;
    /* dup2 swaps fd 2 atomically: a concurrent fprintf(stderr) writes to the old file or the
     * new one, never to a closed descriptor. */
    int rc = dup2(fd, STDERR_FILENO) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

int log_enabled(enum log_level level)
{
    return (int)level <= atomic_load(&current_level);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    char raw[2048], text[IOT_TEXT_ESCAPED_MAX(sizeof(raw))];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(raw, sizeof(raw), fmt, ap);
    va_end(ap);
    if (len < 0)
        len = 0;
    if ((size_t)len >= sizeof(raw))
        len = sizeof(raw) - 1;
    iot_text_escape(text, sizeof(text), raw, (size_t)len);
    if (atomic_load(&use_syslog)) {
        syslog(syslog_priorities[level], "%s", text);
        return;
    }
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    /* One fprintf per line: stdio locks the stream, so lines never interleave. */
    fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s\n", tm.tm_year + 1900,
            tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
            level_names[level], text);
}
