/*
 * log.h - leveled logging to stderr or syslog.
 *
 * The log is process-wide state (like syslog itself): threads log without being handed a
 * logger. It is configured once at start and on SIGHUP; writes are whole lines, so lines of
 * different threads never interleave. A message is one line whatever it quotes: control
 * characters, C1 controls and invalid UTF-8 in it are written as \xNN / \u00NN escapes.
 */
#ifndef IOTD_LOG_H
#define IOTD_LOG_H

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

/* level: "error".."debug"; target: "stderr" or "syslog". Unknown values keep the old ones. */
void log_configure(const char *level, const char *target);
int log_enabled(enum log_level level);
/* The file a detached iotd's stderr (its log) was pointed at, remembered for log_reopen. The
 * path is copied; NULL forgets it. Not thread-safe: call before the threads start. */
void log_set_file(const char *path);
/* Open the remembered file again (creating it) and make it stderr, so that after logrotate
 * renamed it the log goes on in a file of the original name. Lines being written meanwhile
 * land in one file or the other, whole. 0 when done or when there is no file (foreground
 * iotd: stderr is its caller's); -errno when the file cannot be opened (stderr unchanged). */
int log_reopen(void);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_enabled(LOG_LEVEL_DEBUG))                                                          \
            log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__);                                                 \
    } while (0)

#endif
