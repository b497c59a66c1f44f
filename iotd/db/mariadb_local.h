/*
 * mariadb_local.h - the private MariaDB server of "[database] url = local".
 *
 * iotd owns a mariadbd under $state_dir/mariadb: created with mariadb-install-db on first
 * start, listening on a Unix socket only (skip-networking), restarted with backoff when it
 * dies, and stopped cleanly (SIGTERM, wait) with iotd. The supervisor runs on the main loop.
 */
#ifndef IOTD_MARIADB_LOCAL_H
#define IOTD_MARIADB_LOCAL_H

#include <uv.h>

typedef struct mariadb_local mariadb_local_t;

/* Initialize the data directory if needed and start mariadbd; blocks (up to timeout_ms) until
 * the server accepts connections on its socket, running loop (UV_RUN_NOWAIT) meanwhile to see
 * an early exit. A mariadbd still running on this datadir from a crashed iotd is stopped
 * first (only a child of ours can be supervised). Returns IOT_EIO with a sentence in err
 * (including the tail of mariadbd's error log) on failure. */
int mariadb_local_start(mariadb_local_t **out, uv_loop_t *loop, const char *state_dir,
                        int timeout_ms, char *err, size_t errlen);
/* The Unix socket clients connect to. */
const char *mariadb_local_socket(const mariadb_local_t *m);
/* Number of restarts after unexpected exits (for stats). */
unsigned mariadb_local_restarts(const mariadb_local_t *m);
/* The running mariadbd's pid, 0 while it is down (waiting for a restart). */
int mariadb_local_pid(const mariadb_local_t *m);
/* Report supervision events (unexpected exit, restart, failed restart) as sentences, for the
 * log: fn runs on the loop's thread. Without it, events are only counted. */
void mariadb_local_set_notify(mariadb_local_t *m, void (*fn)(void *arg, const char *sentence),
                              void *arg);
/* Stop mariadbd (SIGTERM, then SIGKILL after timeout_ms), close the handles, free. Blocks,
 * running loop until mariadbd has exited and the handles are closed. Call it on the loop's
 * thread and not from one of the loop's callbacks (uv_run is not reentrant): e.g. after the
 * main uv_run returned. The same holds for mariadb_local_start. */
void mariadb_local_stop(mariadb_local_t *m, int timeout_ms);

#endif
