/*
 * fuzz_cluster_wire.c - libFuzzer target for the relay's batches between cluster nodes
 * (iotd/cluster/cluster_wire.c): bytes as a NATS message from another node brings them.
 *
 * Properties: the reader never reads past the message (ASan) and either refuses it or reads
 * records whose strings lie inside it; a batch read to its end, written again record by
 * record under the same node, reads back to the same records, and writing that again gives
 * the same bytes (unknown outcomes read as "internal", so the first rewrite may differ from
 * the input; the second may not).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster_wire.h"
#include "iot_error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_RECORDS 300

static void check(int ok)
{
    if (!ok)
        abort();
}

struct record {
    struct cluster_wire_request r;
    struct cluster_wire_answer a;
};

/* Read every record of bytes into recs; how many, or -1 if the batch is refused anywhere. */
static int read_batch(const uint8_t *bytes, size_t len, struct cluster_wire_reader *rd,
                      struct record *recs)
{
    const char *argv[CLUSTER_WIRE_MAX_ARGS];
    if (cluster_wire_open(rd, bytes, len) != IOT_OK)
        return -1;
    for (int n = 0;; n++) {
        int rc = rd->kind == CLUSTER_WIRE_REQUESTS ? cluster_wire_next_request(rd, &recs[n].r, argv)
                                                   : cluster_wire_next_answer(rd, &recs[n].a, argv);
        if (rc == 0)
            return n;
        if (rc != 1 || n + 1 >= MAX_RECORDS)
            return -1;
        const char *lo = (const char *)bytes, *hi = lo + len;
        const char *s = rd->kind == CLUSTER_WIRE_REQUESTS ? recs[n].r.device : recs[n].a.why;
        check(s >= lo && s + strlen(s) < hi);
    }
}

/* Write n records (of rd's kind, from rd's node) into w; false if the writer refuses. */
static int write_batch(struct cluster_wire *w, const struct cluster_wire_reader *rd,
                       const struct record *recs, int n)
{
    cluster_wire_clear(w);
    for (int i = 0; i < n; i++) {
        int rc = rd->kind == CLUSTER_WIRE_REQUESTS
                     ? cluster_wire_add_request(w, rd->node, &recs[i].r)
                     : cluster_wire_add_answer(w, rd->node, &recs[i].a);
        if (rc != IOT_OK)
            return 0;
    }
    return 1;
}

static int same_records(enum cluster_wire_kind kind, const struct record *x, const struct record *y,
                        int n)
{
    for (int i = 0; i < n; i++) {
        if (kind == CLUSTER_WIRE_REQUESTS) {
            const struct cluster_wire_request *a = &x[i].r, *b = &y[i].r;
            if (a->id != b->id || a->timeout_ms != b->timeout_ms || strcmp(a->from, b->from) ||
                strcmp(a->tenant, b->tenant) || strcmp(a->device, b->device) ||
                strcmp(a->type, b->type) || a->nargs != b->nargs || a->args_len != b->args_len ||
                memcmp(a->args, b->args, a->args_len))
                return 0;
        } else {
            const struct cluster_wire_answer *a = &x[i].a, *b = &y[i].a;
            if (a->id != b->id || a->outcome != b->outcome || strcmp(a->why, b->why) ||
                a->nargs != b->nargs || a->args_len != b->args_len ||
                memcmp(a->args, b->args, a->args_len))
                return 0;
        }
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct record first[MAX_RECORDS], second[MAX_RECORDS];
    struct cluster_wire_reader rd, rd2;
    struct cluster_wire w = {0}, w2 = {0};
    int n = read_batch(data, size, &rd, first);
    if (n < 0 || !write_batch(&w, &rd, first, n) || n == 0)
        goto out;
    check(read_batch(w.buf, w.len, &rd2, second) == n);
    check(rd2.kind == rd.kind && strcmp(rd2.node, rd.node) == 0);
    check(same_records(rd.kind, first, second, n));
    check(write_batch(&w2, &rd2, second, n));
    check(w2.len == w.len && memcmp(w2.buf, w.buf, w.len) == 0);
out:
    cluster_wire_free(&w);
    cluster_wire_free(&w2);
    return 0;
}
