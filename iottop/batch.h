/*
 * batch.h - `iottop -b`: snapshots on stdout for scripts and cron, like `top -b`.
 */
#ifndef IOTTOP_BATCH_H
#define IOTTOP_BATCH_H

#include <stdbool.h>

struct batch_options {
    const char *socket; /* NULL: $IOTD_SOCKET, then the default */
    int interval_ms;
    int count; /* snapshots to print; 0: until interrupted */
    int top;   /* sessions per snapshot */
    bool json; /* one JSON object per line instead of text tables */
};

/*
 * Print snapshots until count is reached (exit status 0) or the daemon is unreachable, refuses
 * the stream or goes away (a message on stderr, exit status 1; there is no retry in batch
 * mode). One extra sample is taken first and not printed, so that every printed snapshot
 * carries rates.
 */
int batch_run(const struct batch_options *options);

#endif
