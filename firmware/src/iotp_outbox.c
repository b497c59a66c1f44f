/*
 * iotp_outbox.c - the event queue of a device (contract in iotp_outbox.h).
 *
 * The storage is a ring of variable-sized entries, oldest at `head`, next free byte at `tail`.
 * An entry is an 8-byte header followed by its frame and never wraps: when the room between
 * tail and the end of the storage is too small, the entry goes to offset 0 instead and
 * `wrap_end` remembers where the entries at the top end, so a reader walking from head jumps
 * from wrap_end to 0. While wrapped, free space is the gap tail..head; otherwise it is
 * tail..end plus 0..head. An empty ring restarts at offset 0, which keeps the gaps large.
 *
 * Entries leave only from the head. An entry acknowledged out of order is flagged and skipped
 * until everything older is gone, then reclaimed with it. What has been sent in the current
 * session is a prefix of the stored entries, so one cursor (offset and index) records it: no
 * per-entry "sent" flag, and a rewind is two assignments.
 *
 * Frames are written by the library's own frame writer straight into the ring, so the bytes
 * sent are exactly what the parser accepts; the writer's checks are the push's checks.
 */
#include "iotp/iotp_error.h"
#include "iotp/iotp_frame.h"
#include "iotp/iotp_outbox.h"

#include <string.h>

#define ENTRY_ACKED 0x01u /* acknowledged or dropped; reclaimed once it reaches the head */

struct entry {
    uint32_t seq;
    uint16_t len; /* frame bytes after the header */
    uint8_t flags;
    uint8_t unused;
};

/* The header layout is part of the sizing contract (IOTP_OUTBOX_ENTRY_OVERHEAD). */
typedef char
    iotp_outbox_entry_size_check[sizeof(struct entry) == IOTP_OUTBOX_ENTRY_OVERHEAD ? 1 : -1];

static void read_entry(const struct iotp_outbox *ob, size_t off, struct entry *e)
{
    memcpy(e, ob->buf + off, sizeof(*e)); /* the storage may be unaligned */
}

static void write_entry(struct iotp_outbox *ob, size_t off, const struct entry *e)
{
    memcpy(ob->buf + off, e, sizeof(*e));
}

/* The offset of the entry after the one at off (of frame length len). */
static size_t after(const struct iotp_outbox *ob, size_t off, size_t len)
{
    size_t next = off + sizeof(struct entry) + len;

    /* Only an offset in the top part can reach wrap_end: the bottom part ends at tail, which
     * is at most head, which is below wrap_end. */
    if (ob->wrapped && next == ob->wrap_end)
        return 0;
    return next;
}

static void empty_ring(struct iotp_outbox *ob)
{
    ob->head = ob->tail = ob->wrap_end = ob->cursor = 0;
    ob->wrapped = 0;
    ob->stored = ob->pending = ob->in_flight = ob->cursor_index = 0;
}

int iotp_outbox_init(struct iotp_outbox *ob, void *storage, size_t storage_len,
                     uint32_t persisted_high_water, uint32_t block)
{
    if (!ob || !storage || storage_len <= sizeof(struct entry))
        return IOTP_EINVAL;
    memset(ob, 0, sizeof(*ob)); /* an empty ring at offset 0, not paused */
    ob->buf = storage;
    ob->cap = storage_len;
    /* Numbers up to the persisted mark may have been used before the reboot. */
    ob->last_seq = persisted_high_water;
    ob->reserved = persisted_high_water;
    ob->block = block ? block : IOTP_OUTBOX_RESERVE_BLOCK;
    return 0;
}

int iotp_outbox_reserve_needed(const struct iotp_outbox *ob, uint32_t *high_water)
{
    uint32_t left = ob->reserved - ob->last_seq;

    if (ob->reserved == UINT32_MAX || left > ob->block / 2)
        return 0;
    *high_water = ob->last_seq > UINT32_MAX - ob->block ? UINT32_MAX : ob->last_seq + ob->block;
    return 1;
}

int iotp_outbox_reserved(struct iotp_outbox *ob, uint32_t high_water)
{
    if (high_water > ob->reserved)
        ob->reserved = high_water;
    return 0;
}

/* What a push writes: `from iotd type seq name fields...`. */
struct event {
    const char *from;
    const char *type;
    uint32_t seq;
    const char *name;
    unsigned nfields;
    const struct iotp_event_field *fields;
};

/* Write ev's frame after the header of an entry at `at` with room bytes in all, or with `at`
 * NULL only measure it. Returns its length or an IOTP_E* code (IOTP_ENOSPC: does not fit in
 * room). */
static int write_frame(uint8_t *at, size_t room, const struct event *ev)
{
    struct iotp_writer w;
    unsigned i;

    if (at && room <= sizeof(struct entry))
        return IOTP_ENOSPC;
    iotp_writer_begin(&w, at ? at + sizeof(struct entry) : NULL,
                      at ? room - sizeof(struct entry) : 0, ev->from, IOTP_SERVER_ADDRESS, ev->type,
                      ev->seq);
    iotp_writer_arg(&w, ev->name);
    for (i = 0; i < ev->nfields; i++)
        iotp_writer_kv(&w, ev->fields[i].key, ev->fields[i].value);
    return iotp_writer_end(&w);
}

int iotp_outbox_push(struct iotp_outbox *ob, enum iotp_event_kind kind, const char *from,
                     const char *name, unsigned nfields, const struct iotp_event_field *fields,
                     uint32_t *seq)
{
    struct event ev;
    struct entry e;
    size_t at;
    unsigned i;
    int n;

    if (!from || !name || (nfields && !fields) || (kind != IOTP_EVENT && kind != IOTP_ALARM))
        return IOTP_EINVAL;
    for (i = 0; i < nfields; i++)
        if (!fields[i].key || !fields[i].value)
            return IOTP_EINVAL;
    if (*name == '\0')
        return IOTP_EINVAL;
    if (nfields >= IOTP_MAX_ARGS) /* the name is an ARG too */
        return IOTP_ETOO_MANY_ARGS;
    if (ob->last_seq >= ob->reserved)
        return IOTP_ESTATE;
    ev.from = from;
    ev.type = iotp_type_name(kind == IOTP_ALARM ? IOTP_TYPE_ALARM : IOTP_TYPE_EVENT);
    ev.seq = ob->last_seq + 1;
    ev.name = name;
    ev.nfields = nfields;
    ev.fields = fields;
    if (ob->stored == 0)
        empty_ring(ob);

    /* First choice: at tail. Not wrapped, the room runs to the end of the storage; wrapped, up
     * to the oldest entry. */
    at = ob->tail;
    n = write_frame(ob->buf + at, (ob->wrapped ? ob->head : ob->cap) - ob->tail, &ev);
    if (n == IOTP_ENOSPC && !ob->wrapped && ob->stored > 0) {
        /* Second choice: wrap to the start, below the oldest entry. */
        at = 0;
        n = write_frame(ob->buf, ob->head, &ev);
    }
    if (n == IOTP_ENOSPC) {
        /* Full now, or never (over IOTP_MAX_FRAME, or more than the whole storage)? */
        int len = write_frame(NULL, 0, &ev);
        if (len < 0 || (size_t)len + sizeof(struct entry) > ob->cap)
            return IOTP_ETOO_LARGE;
    }
    if (n < 0)
        return n;

    if (at != ob->tail) {
        ob->wrap_end = ob->tail;
        ob->wrapped = 1;
    }
    e.seq = ev.seq;
    e.len = (uint16_t)n;
    e.flags = 0;
    e.unused = 0;
    write_entry(ob, at, &e);
    if (ob->cursor_index == ob->stored)
        ob->cursor = at; /* everything was sent: the new entry is the next to send */
    ob->tail = at + sizeof(struct entry) + (size_t)n;
    ob->stored++;
    ob->pending++;
    ob->last_seq = ev.seq;
    if (seq)
        *seq = ev.seq;
    return 0;
}

int iotp_outbox_next(struct iotp_outbox *ob, const uint8_t **frame, size_t *len, uint32_t *seq)
{
    struct entry e;

    if (ob->paused)
        return 0;
    while (ob->cursor_index < ob->stored) {
        read_entry(ob, ob->cursor, &e);
        if (!(e.flags & ENTRY_ACKED)) {
            *frame = ob->buf + ob->cursor + sizeof(struct entry);
            *len = e.len;
            *seq = e.seq;
            return 1;
        }
        /* Acknowledged before it was sent in this session: nothing to send. */
        ob->cursor = after(ob, ob->cursor, e.len);
        ob->cursor_index++;
    }
    return 0;
}

int iotp_outbox_mark_sent(struct iotp_outbox *ob, uint32_t seq)
{
    const uint8_t *frame;
    uint32_t next_seq;
    size_t len;

    if (!iotp_outbox_next(ob, &frame, &len, &next_seq) || next_seq != seq)
        return IOTP_ESTATE;
    ob->cursor = after(ob, ob->cursor, len);
    ob->cursor_index++;
    ob->in_flight++;
    return 0;
}

/* Find pending seq: sets *off and *index (its position among the stored entries). Entries are
 * in increasing seq order, so the walk stops at the first larger one. */
static int find(const struct iotp_outbox *ob, uint32_t seq, size_t *off, unsigned *index)
{
    size_t at = ob->head;
    struct entry e;
    unsigned i;

    for (i = 0; i < ob->stored; i++) {
        read_entry(ob, at, &e);
        if (e.seq == seq) {
            if (e.flags & ENTRY_ACKED)
                return IOTP_ENOTFOUND;
            *off = at;
            *index = i;
            return 0;
        }
        if (e.seq > seq)
            break;
        at = after(ob, at, e.len);
    }
    return IOTP_ENOTFOUND;
}

/* Free acknowledged entries at the head. */
static void reclaim(struct iotp_outbox *ob)
{
    struct entry e;
    size_t next;

    while (ob->stored > 0) {
        read_entry(ob, ob->head, &e);
        if (!(e.flags & ENTRY_ACKED))
            break;
        next = ob->head + sizeof(struct entry) + e.len;
        if (ob->wrapped && next == ob->wrap_end) {
            next = 0;
            ob->wrapped = 0;
        }
        if (ob->cursor_index > 0)
            ob->cursor_index--;
        else
            ob->cursor = next; /* the cursor was on this entry */
        ob->head = next;
        ob->stored--;
    }
    if (ob->stored == 0)
        empty_ring(ob);
}

/* Flag the entry at off (position index) acknowledged and reclaim what can be. */
static void remove_entry(struct iotp_outbox *ob, size_t off, unsigned index)
{
    struct entry e;

    read_entry(ob, off, &e);
    e.flags |= ENTRY_ACKED;
    write_entry(ob, off, &e);
    ob->pending--;
    if (index < ob->cursor_index)
        ob->in_flight--;
    reclaim(ob);
}

int iotp_outbox_on_ack(struct iotp_outbox *ob, uint32_t seq)
{
    unsigned index;
    size_t off;

    if (find(ob, seq, &off, &index) < 0)
        return IOTP_ENOTFOUND;
    remove_entry(ob, off, index);
    return 0;
}

static void rewind_session(struct iotp_outbox *ob)
{
    ob->cursor = ob->head;
    ob->cursor_index = 0;
    ob->in_flight = 0;
}

/* Codes after which the same event may be accepted later. Everything else (unknown_type,
 * bad_args, bad_frame, too_large, denied, ...) would be refused again. */
static int is_transient(const char *code)
{
    return strcmp(code, "busy") == 0 || strcmp(code, "internal") == 0;
}

int iotp_outbox_on_error(struct iotp_outbox *ob, uint32_t seq, const char *code)
{
    unsigned index;
    size_t off;

    if (!code)
        return IOTP_EINVAL;
    if (find(ob, seq, &off, &index) < 0)
        return IOTP_ENOTFOUND;
    if (!is_transient(code)) {
        remove_entry(ob, off, index);
        return IOTP_OUTBOX_DROPPED;
    }
    /* Later events may already be in flight; they are sent again after this one so that the
     * server sees the device's events in order. */
    rewind_session(ob);
    ob->paused = 1;
    return IOTP_OUTBOX_PAUSED;
}

void iotp_outbox_resume(struct iotp_outbox *ob)
{
    ob->paused = 0;
}

void iotp_outbox_session_reset(struct iotp_outbox *ob)
{
    rewind_session(ob);
}

int iotp_outbox_drop_oldest(struct iotp_outbox *ob, uint32_t *seq)
{
    size_t at = ob->head;
    struct entry e;
    unsigned i;

    for (i = 0; i < ob->stored; i++) {
        read_entry(ob, at, &e);
        if (!(e.flags & ENTRY_ACKED)) {
            if (seq)
                *seq = e.seq;
            remove_entry(ob, at, i);
            return 0;
        }
        at = after(ob, at, e.len);
    }
    return IOTP_ENOTFOUND;
}

int iotp_outbox_get(const struct iotp_outbox *ob, uint32_t seq, const uint8_t **frame, size_t *len)
{
    unsigned index;
    struct entry e;
    size_t off;

    if (find(ob, seq, &off, &index) < 0)
        return IOTP_ENOTFOUND;
    read_entry(ob, off, &e);
    *frame = ob->buf + off + sizeof(struct entry);
    *len = e.len;
    return 0;
}

unsigned iotp_outbox_pending(const struct iotp_outbox *ob)
{
    return ob->pending;
}

unsigned iotp_outbox_in_flight(const struct iotp_outbox *ob)
{
    return ob->in_flight;
}

unsigned iotp_outbox_unsent(const struct iotp_outbox *ob)
{
    return ob->pending - ob->in_flight;
}

int iotp_outbox_paused(const struct iotp_outbox *ob)
{
    return ob->paused;
}

uint32_t iotp_outbox_last_seq(const struct iotp_outbox *ob)
{
    return ob->last_seq;
}
