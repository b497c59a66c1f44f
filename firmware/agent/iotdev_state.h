/*
 * iotdev_state.h - what iotdev keeps under its state dir across restarts:
 *
 *   seq     the event sequence high-water mark (iotp_persist's one number), decimal;
 *   outbox  the events not yet acknowledged, one input line each (`name key=value ...`).
 *
 * Both are replaced atomically (a temporary file, fsync, rename). At start the journal's events
 * are queued again, in order, under new sequence numbers above the mark: an event is stored at
 * least once (twice only when iotd stored it and the ACK was lost in the crash).
 */
#ifndef IOTDEV_STATE_H
#define IOTDEV_STATE_H

#include <stddef.h>
#include <stdint.h>

#define IOTDEV_JOURNAL_MAX 256 /* unacknowledged events kept */
#define IOTDEV_LINE_MAX    512 /* one event line */

struct iotdev_journal_entry {
    uint32_t seq;
    char line[IOTDEV_LINE_MAX];
};

struct iotdev_state {
    char dir[4096];
    unsigned n;
    struct iotdev_journal_entry entries[IOTDEV_JOURNAL_MAX];
};

/* Use dir (created 0700 if missing); *mark is the stored high-water mark (0 if none) and the
 * journal is loaded into st->entries with seq 0. Returns 0 or -1 with the reason in err. */
int iotdev_state_open(struct iotdev_state *st, const char *dir, uint32_t *mark, char *err,
                      size_t errlen);

/* Make mark durable. Returns 0 or -1 (errno). */
int iotdev_state_store_mark(struct iotdev_state *st, uint32_t mark);

/* Journal an event queued as seq; the file is rewritten. Returns 0 or -1 (full, or errno). */
int iotdev_state_add(struct iotdev_state *st, uint32_t seq, const char *line);

/* Forget the event seq (acknowledged or refused for good). Returns 1 if it was there. */
int iotdev_state_remove(struct iotdev_state *st, uint32_t seq);

/* Rewrite the journal file from st->entries. Returns 0 or -1 (errno). */
int iotdev_state_save(struct iotdev_state *st);

#endif
