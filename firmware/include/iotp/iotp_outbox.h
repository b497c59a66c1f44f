/*
 * iotp_outbox.h - a device's queue of events and alarms until the server acknowledges them.
 *
 * A device pushes `<device> iotd EVENT <seq> <name> {key=value}` (or ALARM) and keeps each one
 * until iotd answers `ACK <seq>`: nothing the device measured is lost to a dropped connection or
 * a server restart. The outbox is that keeping, with no allocation and no I/O:
 *
 *  - Storage. A ring of bytes the caller provides. Each entry is a small header (sequence
 *    number, frame length, flags) followed by the complete serialized frame, written once with
 *    the library's frame writer at push time; sending and re-sending hand out those very bytes.
 *    An entry never straddles the end of the storage (when it would, it goes to the start), so
 *    every frame is one contiguous block the caller can give to its transport.
 *  - Sequence numbers. 1..4294967295, strictly increasing over the device's whole life, reboots
 *    included (iotd drops an event whose seq is not above the highest it stored for the device).
 *    The outbox never hands out a number the caller has not first made durable, in blocks: when
 *    iotp_outbox_reserve_needed says so, the caller persists the high-water mark it gives (flash,
 *    EEPROM, a file), then reports it with iotp_outbox_reserved. After a reboot the caller passes
 *    the persisted mark to iotp_outbox_init and numbering resumes above it, skipping at most one
 *    block of unused numbers. A device writes its non-volatile memory once per block of events
 *    (IOTP_OUTBOX_RESERVE_BLOCK, default 1024), not once per event.
 *  - Sending. Entries are sent oldest first. iotp_outbox_next gives the oldest entry not yet sent
 *    on the current connection ("session"); iotp_outbox_mark_sent records that it went out. Any
 *    number may be in flight at once.
 *  - Answers. An ACK removes exactly the entry with that seq (not the ones before it: exact match
 *    is safe whatever order answers come in). Acknowledged entries in the middle are skipped and
 *    their space is reclaimed when everything older is acknowledged too. A permanent ERROR
 *    (unknown_type, bad_args, ...) drops the entry: it would be refused again. A transient one
 *    (busy, internal) keeps it, rewinds so that every unacknowledged entry is sent again from
 *    the oldest, and pauses sending until the caller, after the server's retry= delay, calls
 *    iotp_outbox_resume: events reach the server in order.
 *  - Reconnecting. iotp_outbox_session_reset on every new session: every unacknowledged entry
 *    is sent again, oldest first (the server ACKs a duplicate without storing it twice).
 *  - Full. A push that does not fit is refused (IOTP_ENOSPC) and the queue is left as it was;
 *    a caller that prefers fresh data to old calls iotp_outbox_drop_oldest and pushes again.
 *
 * The storage holds the entries only while the device runs: a device that must keep unsent
 * events across a power loss places the storage and the struct in memory that survives it.
 */
#ifndef IOTP_OUTBOX_H
#define IOTP_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "iotp_config_defaults.h"

/* Sequence numbers reserved (made durable by the caller) at a time. */
#ifndef IOTP_OUTBOX_RESERVE_BLOCK
#define IOTP_OUTBOX_RESERVE_BLOCK 1024
#endif

/* Bytes of bookkeeping stored in front of each frame: size storage as the sum of the frames it
 * should hold plus this much per frame. */
#define IOTP_OUTBOX_ENTRY_OVERHEAD 8

#if IOTP_MAX_FRAME > 65535
#error "iotp_outbox keeps frame lengths in 16 bits: IOTP_MAX_FRAME must be at most 65535"
#endif

enum iotp_event_kind {
    IOTP_EVENT = 0, /* EVENT: a measurement or a happening */
    IOTP_ALARM = 1, /* ALARM: the same names and fields plus state=, severity=, msg= */
};

/* One key=value field of an event. Neither may hold control bytes; key may not be empty or
 * hold '='. */
struct iotp_event_field {
    const char *key;
    const char *value;
};

/* What iotp_outbox_on_error did with the event. */
#define IOTP_OUTBOX_DROPPED 0 /* permanent refusal: the event was dropped */
#define IOTP_OUTBOX_PAUSED  1 /* transient: kept, sending paused until iotp_outbox_resume */

/* The fields are the outbox's own; read them through the functions below. */
struct iotp_outbox {
    uint8_t *buf;
    size_t cap;
    size_t head;           /* offset of the oldest stored entry */
    size_t tail;           /* offset where the next entry goes */
    size_t wrap_end;       /* when wrapped: where the entries at the top of buf end */
    int wrapped;           /* entries run head..wrap_end, then 0..tail */
    unsigned stored;       /* entries in buf, acknowledged ones not yet reclaimed included */
    unsigned pending;      /* entries not acknowledged */
    unsigned in_flight;    /* pending entries sent in this session */
    size_t cursor;         /* offset of the first entry not sent in this session */
    unsigned cursor_index; /* stored entries before cursor (== stored: all sent) */
    uint32_t last_seq;     /* the last number handed out (or the persisted mark at init) */
    uint32_t reserved;     /* numbers up to this one are durable and may be handed out */
    uint32_t block;        /* numbers reserved at a time */
    int paused;            /* a transient error stopped sending until iotp_outbox_resume */
};

/* Prepare ob over storage (storage_len bytes, any alignment; it belongs to the outbox until
 * the caller stops using it). persisted_high_water is the last mark the caller made durable
 * (0 on a device's first boot): the first event gets a number above it, once a reservation has
 * been made (see iotp_outbox_reserve_needed). block is the numbers reserved at a time (0 means
 * IOTP_OUTBOX_RESERVE_BLOCK). Returns 0, or IOTP_EINVAL when storage is NULL or smaller than
 * one entry's overhead. */
int iotp_outbox_init(struct iotp_outbox *ob, void *storage, size_t storage_len,
                     uint32_t persisted_high_water, uint32_t block);

/* Whether the caller should persist a new high-water mark now: returns 1 and sets *high_water
 * when less than half a block of reserved numbers is left (on a fresh outbox: none), 0 when not
 * (or when every number up to 4294967295 is already reserved). The caller writes *high_water to
 * non-volatile memory, waits until it is durable, then calls iotp_outbox_reserved; until then
 * pushes go on using what is left of the previous reservation. */
int iotp_outbox_reserve_needed(const struct iotp_outbox *ob, uint32_t *high_water);

/* high_water is durable: numbers up to it may be handed out. A mark below the current one is
 * ignored. Returns 0. */
int iotp_outbox_reserved(struct iotp_outbox *ob, uint32_t high_water);

/* Queue `from iotd EVENT|ALARM <seq> <name> key=value...` with the next sequence number,
 * which is stored in *seq (may be NULL). Returns 0 or a negative code:
 *   IOTP_ESTATE      no reserved number is left (persist a mark first) or all are used up;
 *   IOTP_ENOSPC      the outbox is full now: nothing was queued, the seq was not used;
 *   IOTP_ETOO_LARGE  the frame is over IOTP_MAX_FRAME or could never fit the storage;
 *   IOTP_EINVAL, IOTP_EEMPTY_FIELD, IOTP_EFIELD_TOO_LONG, IOTP_ECONTROL, IOTP_ETOO_MANY_ARGS
 *                    a field the frame writer refuses (nothing queued).
 * name is the event's message type (an ARG, so lower case by convention; not empty). */
int iotp_outbox_push(struct iotp_outbox *ob, enum iotp_event_kind kind, const char *from,
                     const char *name, unsigned nfields, const struct iotp_event_field *fields,
                     uint32_t *seq);

/* The oldest entry not yet sent in this session, unless sending is paused: returns 1 and sets
 * *frame (len bytes, EOT included) and *seq, or returns 0 when there is nothing to send. The
 * bytes stay valid until the entry is acknowledged or dropped. Send them, then call
 * iotp_outbox_mark_sent. */
int iotp_outbox_next(struct iotp_outbox *ob, const uint8_t **frame, size_t *len, uint32_t *seq);

/* The entry iotp_outbox_next returned (seq) went out on the current session. Returns 0, or
 * IOTP_ESTATE when seq is not the entry iotp_outbox_next would return. */
int iotp_outbox_mark_sent(struct iotp_outbox *ob, uint32_t seq);

/* The server acknowledged seq: the entry is removed. Returns 0, or IOTP_ENOTFOUND for a seq
 * that is not pending (already acknowledged or dropped, or never pushed). */
int iotp_outbox_on_ack(struct iotp_outbox *ob, uint32_t seq);

/* The server answered seq with `ERROR code=<code> [retry=<s>]`. Transient codes (busy,
 * internal) keep the entry, make every pending entry unsent and pause sending: returns
 * IOTP_OUTBOX_PAUSED, and the caller calls iotp_outbox_resume after the server's retry=
 * seconds (its own default when there is none). Any other code is permanent: the entry is
 * dropped, IOTP_OUTBOX_DROPPED. Returns IOTP_ENOTFOUND (and changes nothing) for a seq that is
 * not pending, IOTP_EINVAL for a NULL code. */
int iotp_outbox_on_error(struct iotp_outbox *ob, uint32_t seq, const char *code);

/* End a pause: iotp_outbox_next hands out entries again, from the oldest pending one. */
void iotp_outbox_resume(struct iotp_outbox *ob);

/* A new session began (a reconnect): every pending entry is unsent again, to be sent oldest
 * first. A pause stays in force until iotp_outbox_resume. */
void iotp_outbox_session_reset(struct iotp_outbox *ob);

/* Drop the oldest pending entry (to make room for a new one) and store its seq in *seq (may be
 * NULL). Returns 0, or IOTP_ENOTFOUND when nothing is pending. */
int iotp_outbox_drop_oldest(struct iotp_outbox *ob, uint32_t *seq);

/* The stored frame of pending seq (for a log line at ACK time): returns 0 and sets *frame and
 * *len, or IOTP_ENOTFOUND. The bytes stay valid until the entry is acknowledged or dropped. */
int iotp_outbox_get(const struct iotp_outbox *ob, uint32_t seq, const uint8_t **frame, size_t *len);

/* Entries not yet acknowledged. */
unsigned iotp_outbox_pending(const struct iotp_outbox *ob);
/* Pending entries sent in this session (waiting for their answer). */
unsigned iotp_outbox_in_flight(const struct iotp_outbox *ob);
/* Pending entries not yet sent in this session. */
unsigned iotp_outbox_unsent(const struct iotp_outbox *ob);
/* Whether sending is paused by a transient error. */
int iotp_outbox_paused(const struct iotp_outbox *ob);
/* The last sequence number handed out (the persisted mark before the first push). */
uint32_t iotp_outbox_last_seq(const struct iotp_outbox *ob);

#endif
