/*
 * spool.h - the append-only, fsync'ed file that holds acknowledged events while MariaDB is
 * unreachable, until they are replayed into it.
 *
 * DESIGN. The spool is a sequence of records, one per event:
 *
 *     magic u32 | payload length u32 | CRC-32 of the payload u32 | payload
 *
 * all little-endian; the payload is the event (kind, seq, receive time, the device's
 * incarnation, tenant, device, type, name, fields). Records of the format before the
 * incarnation (magic "IOTE"; now "IOT2") are still read, with incarnation 0. A batch is
 * appended with one write and one fdatasync before any of its events is acknowledged. A torn tail
 * (iotd killed in the middle of a write: never acknowledged) fails the length or CRC check;
 * spool_open cuts it off. Replay reads records from the replayed offset, which a side file
 * (<path>.offset: offset u64 | CRC-32 u32) records after each replayed batch; when everything is
 * replayed the spool is truncated to zero. A crash between a replayed commit and the offset update
 * re-plays rows the database's dedup then drops.
 *
 * Its owner (event_store) lets one operation at a time use it, from whatever thread that
 * operation runs on; the calls are serialized by a mutex all the same, because a replay the
 * store stopped waiting for (the database missed its deadline) may still finish on its db
 * thread while appends go on: spool_read_epoch and spool_consume_epoch make such a late
 * consume harmless.
 */
#ifndef IOTD_EVENTS_SPOOL_H
#define IOTD_EVENTS_SPOOL_H

#include "events/event.h"

#include <stddef.h>
#include <stdint.h>

typedef struct spool spool_t;

/* Open (creating) the spool at path and its side file; scan the records after the replayed
 * offset and cut off a torn or corrupt tail (logged). IOT_EIO with a sentence in err. */
int spool_open(spool_t **out, const char *path, char *err, size_t errlen);
void spool_close(spool_t *s);

/* Bytes in the file, and the offset replay has reached (<= size). */
uint64_t spool_size(const spool_t *s);
uint64_t spool_offset(const spool_t *s);
/* Records after the replayed offset, counted by spool_open and kept up to date. */
uint64_t spool_pending(const spool_t *s);

/* Bytes ev takes in the spool. */
size_t spool_record_size(const struct event *ev);

/* Append n events (one write, then fdatasync). On failure the file is cut back to its previous
 * size, so a failed append leaves nothing half-written; IOT_EIO or IOT_ENOMEM. */
int spool_append(spool_t *s, struct event *const *events, size_t n);

/* Read up to max events from the replayed offset; *out gets an array of new events (one
 * reference each, the caller unrefs them and frees the array), *end the offset after the last
 * one and *records the records read (to pass to spool_consume once they are stored). */
int spool_read(spool_t *s, size_t max, struct event ***out, size_t *n, uint64_t *end,
               size_t *records);

/* Record that everything before end (records of them, as spool_read counted, including any
 * it skipped) is replayed: persist the offset (fdatasync), or, when end is the end of the
 * file, truncate the spool to zero. IOT_EIO. */
int spool_consume(spool_t *s, uint64_t end, size_t records);

/* spool_read, and *epoch gets the number of times the file was emptied so far. */
int spool_read_epoch(spool_t *s, size_t max, struct event ***out, size_t *n, uint64_t *end,
                     size_t *records, uint64_t *epoch);
/* spool_consume of what spool_read_epoch returned, unless it is stale: the file was emptied
 * since (epoch differs: its offsets mean other records now) or the offset is already past
 * end. A stale consume records nothing and returns IOT_OK (the records were stored; a
 * replay of them again only meets the dedup). */
int spool_consume_epoch(spool_t *s, uint64_t epoch, uint64_t end, size_t records);

/* CRC-32 (IEEE, as zlib's crc32). */
uint32_t spool_crc32(uint32_t crc, const void *data, size_t len);

#endif
