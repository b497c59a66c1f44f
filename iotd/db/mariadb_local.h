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
 * the server accepts connections on its socket. Returns IOT_EIO with a sentence in err
 * (including the tail of mariadbd's error log) on failure. */
int mariadb_local_start(mariadb_local_t **out, uv_loop_t *loop, const char *state_dir,
                        int timeout_ms, char *err, size_t errlen);
/* The Unix socket clients connect to. */
const char *mariadb_local_socket(const mariadb_local_t *m);
/* Number of restarts after unexpected exits (for stats). */
unsigned mariadb_local_restarts(const mariadb_local_t *m);
/* Stop mariadbd (SIGTERM, then SIGKILL after timeout_ms), close the handles, free. Blocks. */
void mariadb_local_stop(mariadb_local_t *m, int timeout_ms);

#endif
