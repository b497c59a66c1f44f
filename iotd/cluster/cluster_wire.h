/*
 * cluster_wire.h - the framing of relayed requests and answers between nodes: several of them
 * to one node in one NATS message (a batch), in a compact binary form.
 *
 * One NATS message per request cost each crossing a publish, a NATS server's routing, the
 * client's reader and delivery threads and the main loop's wake-up on both nodes, plus a JSON
 * print and parse; the requests a node has for another node in one turn of its main loop (the
 * answers likewise) now share all of that (iotd-cluster(7), tests/bench/cluster).
 *
 * A batch is a header, then its records back to back:
 *
 *   header   kind ('Q' requests, 'A' answers), version (1), the sender node's name (u8
 *            length, bytes, NUL), the record count (u16)
 *   request  id (u32), timeout_ms (u32), from, tenant, device, type (each u8 length, bytes,
 *            NUL), nargs (u8), args_len (u32), args (NUL-terminated, back to back)
 *   answer   id (u32), outcome (u8 length, its name, NUL), why (likewise, "" for none), nargs,
 *            args_len, args
 *
 * Integers are little-endian. Strings carry their NUL so that a reader points into the
 * message instead of copying. Outcomes go by name (relay_outcome_name), not by enum value, so
 * that two builds whose enums differ still agree. A batch is bounded by CLUSTER_WIRE_MAX_BYTES
 * and CLUSTER_WIRE_MAX_RECORDS: an add that would pass either is refused (the caller sends the
 * batch and starts the next); a single record larger than the byte bound goes alone.
 *
 * No I/O and no NATS here: the writer fills a growing buffer, the reader walks a received one
 * and checks every length against it (a short or inconsistent message is refused, never read
 * past).
 */
#ifndef IOTD_CLUSTER_WIRE_H
#define IOTD_CLUSTER_WIRE_H

#include "relay/relay.h"

#include <stddef.h>
#include <stdint.h>

#define CLUSTER_WIRE_MAX_BYTES   65536
#define CLUSTER_WIRE_MAX_RECORDS 256
#define CLUSTER_WIRE_MAX_ARGS    64

enum cluster_wire_kind { CLUSTER_WIRE_REQUESTS = 'Q', CLUSTER_WIRE_ANSWERS = 'A' };

/* A batch being written. Zeroed: empty, owning nothing. */
struct cluster_wire {
    uint8_t *buf;
    size_t len, cap;
    unsigned count;
    size_t count_at; /* where the header's count is */
};

/* One request as it crosses: the fields of struct relay_request that the device's node needs.
 * args: nargs NUL-terminated strings back to back, args_len bytes in all. */
struct cluster_wire_request {
    uint32_t id;
    uint32_t timeout_ms;
    const char *from, *tenant, *device, *type;
    unsigned nargs;
    const char *args;
    size_t args_len;
};

struct cluster_wire_answer {
    uint32_t id;
    enum relay_outcome outcome;
    const char *why; /* "" for none */
    unsigned nargs;
    const char *args;
    size_t args_len;
};

/* Append r to w (of kind CLUSTER_WIRE_REQUESTS, from node), starting w's header if w is
 * empty. IOT_OK; IOT_EBUSY if w already holds records and r would take it past a bound (w
 * unchanged: send it, clear it, add again); IOT_EINVAL if a field is too long for the format
 * (a string over 255 bytes, more than CLUSTER_WIRE_MAX_ARGS args); IOT_ENOMEM. */
int cluster_wire_add_request(struct cluster_wire *w, const char *node,
                             const struct cluster_wire_request *r);
/* The same for an answer (kind CLUSTER_WIRE_ANSWERS). why may be NULL. */
int cluster_wire_add_answer(struct cluster_wire *w, const char *node,
                            const struct cluster_wire_answer *a);
/* Empty w, keeping its buffer for the next batch. */
void cluster_wire_clear(struct cluster_wire *w);
/* Free w's buffer; w is then zeroed. */
void cluster_wire_free(struct cluster_wire *w);

/* A received batch being read: its fields point into the message, which must outlive it. */
struct cluster_wire_reader {
    enum cluster_wire_kind kind;
    const char *node; /* the sender's name */
    unsigned count;   /* records the header announces */
    unsigned read;    /* records read so far */
    const uint8_t *p, *end;
};

/* Read the header of data (len bytes). IOT_OK, or IOT_EINVAL: not a batch of this version. */
int cluster_wire_open(struct cluster_wire_reader *rd, const void *data, size_t len);
/* The next record of a batch of requests (answers): 1 with *out (and argv[0..nargs), pointing
 * into the message) filled; 0 after the last one; IOT_EINVAL if the record is malformed or
 * the batch of the other kind (the rest of the batch is then unreadable). */
int cluster_wire_next_request(struct cluster_wire_reader *rd, struct cluster_wire_request *out,
                              const char *argv[CLUSTER_WIRE_MAX_ARGS]);
int cluster_wire_next_answer(struct cluster_wire_reader *rd, struct cluster_wire_answer *out,
                             const char *argv[CLUSTER_WIRE_MAX_ARGS]);

#endif
