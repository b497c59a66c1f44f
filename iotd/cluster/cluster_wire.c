/*
 * cluster_wire.c - batches of relayed requests and answers, written and read (see
 * cluster_wire.h for the format).
 */
#include "cluster/cluster_wire.h"

#include "iot_error.h"
#include "iot_grow.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define VERSION 1
/* kind, version, name length, name (at most 32) and its NUL, count */
#define HEADER_MAX (2 + 1 + 32 + 1 + 2)

static void put_u16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    put_u16(p, v);
    put_u16(p + 2, v >> 16);
}

static uint32_t get_u16(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

static uint32_t get_u32(const uint8_t *p)
{
    return get_u16(p) | get_u16(p + 2) << 16;
}

/* Bytes a string takes (length, bytes, NUL); 0 if it is too long for a u8 length. */
static size_t str_size(const char *s)
{
    size_t n = strlen(s ? s : "");
    return n > 255 ? 0 : n + 2;
}

static uint8_t *put_str(uint8_t *p, const char *s)
{
    size_t n = strlen(s ? s : "");
    *p++ = (uint8_t)n;
    memcpy(p, s ? s : "", n);
    p[n] = '\0';
    return p + n + 1;
}

/* Room for a record of size bytes in w (kind, from node), the header written if w is empty.
 * The record's place, or NULL with *rc set. */
static uint8_t *reserve(struct cluster_wire *w, enum cluster_wire_kind kind, const char *node,
                        size_t size, int *rc)
{
    size_t node_len = strlen(node);
    size_t header = w->count ? 0 : 2 + 1 + node_len + 1 + 2;
    if (w->count &&
        (w->count >= CLUSTER_WIRE_MAX_RECORDS || w->len + size > CLUSTER_WIRE_MAX_BYTES)) {
        *rc = IOT_EBUSY;
        return NULL;
    }
    if (!w->count && (node_len == 0 || header > HEADER_MAX)) {
        *rc = IOT_EINVAL; /* a node name is 1 to 32 bytes */
        return NULL;
    }
    uint8_t *grown = iot_reserve(w->buf, w->len + header + size, &w->cap, 4096, 1);
    if (!grown) {
        *rc = IOT_ENOMEM;
        return NULL;
    }
    w->buf = grown;
    if (header) {
        uint8_t *p = w->buf;
        *p++ = (uint8_t)kind;
        *p++ = VERSION;
        p = put_str(p, node);
        w->count_at = (size_t)(p - w->buf);
        w->len = w->count_at + 2;
    }
    w->count++;
    put_u16(w->buf + w->count_at, w->count);
    uint8_t *at = w->buf + w->len;
    w->len += size;
    return at;
}

static size_t args_size(unsigned nargs, size_t args_len)
{
    return nargs > CLUSTER_WIRE_MAX_ARGS || args_len > UINT32_MAX ? 0 : 1 + 4 + args_len;
}

static uint8_t *put_args(uint8_t *p, unsigned nargs, const char *args, size_t args_len)
{
    *p++ = (uint8_t)nargs;
    put_u32(p, (uint32_t)args_len);
    if (args_len)
        memcpy(p + 4, args, args_len);
    return p + 4 + args_len;
}

int cluster_wire_add_request(struct cluster_wire *w, const char *node,
                             const struct cluster_wire_request *r)
{
    size_t from = str_size(r->from), tenant = str_size(r->tenant), device = str_size(r->device),
           type = str_size(r->type), args = args_size(r->nargs, r->args_len);
    if (!from || !tenant || !device || !type || !args)
        return IOT_EINVAL;
    int rc = IOT_OK;
    uint8_t *p =
        reserve(w, CLUSTER_WIRE_REQUESTS, node, 8 + from + tenant + device + type + args, &rc);
    if (!p)
        return rc;
    put_u32(p, r->id);
    put_u32(p + 4, r->timeout_ms);
    p = put_str(p + 8, r->from);
    p = put_str(p, r->tenant);
    p = put_str(p, r->device);
    p = put_str(p, r->type);
    put_args(p, r->nargs, r->args, r->args_len);
    return IOT_OK;
}

int cluster_wire_add_answer(struct cluster_wire *w, const char *node,
                            const struct cluster_wire_answer *a)
{
    const char *outcome_name = relay_outcome_name(a->outcome);
    size_t outcome = str_size(outcome_name), why = str_size(a->why),
           args = args_size(a->nargs, a->args_len);
    if (!outcome || !why || !args)
        return IOT_EINVAL;
    int rc = IOT_OK;
    uint8_t *p = reserve(w, CLUSTER_WIRE_ANSWERS, node, 4 + outcome + why + args, &rc);
    if (!p)
        return rc;
    put_u32(p, a->id);
    p = put_str(p + 4, outcome_name);
    p = put_str(p, a->why);
    put_args(p, a->nargs, a->args, a->args_len);
    return IOT_OK;
}

void cluster_wire_clear(struct cluster_wire *w)
{
    w->len = 0;
    w->count = 0;
}

void cluster_wire_free(struct cluster_wire *w)
{
    free(w->buf);
    *w = (struct cluster_wire){0};
}

/* ---- reading ---- */

/* A string at rd's position: its length byte, that many bytes with no NUL among them, then a
 * NUL. */
static bool get_str(struct cluster_wire_reader *rd, const char **out)
{
    if (rd->p >= rd->end)
        return false;
    size_t n = *rd->p;
    if ((size_t)(rd->end - rd->p) < n + 2 || rd->p[1 + n] != '\0' ||
        memchr(rd->p + 1, '\0', n) != NULL)
        return false;
    *out = (const char *)rd->p + 1;
    rd->p += n + 2;
    return true;
}

/* nargs, args_len and the args, each NUL-terminated, none past args_len. */
static bool get_args(struct cluster_wire_reader *rd, unsigned *nargs, const char **args,
                     size_t *args_len, const char *argv[CLUSTER_WIRE_MAX_ARGS])
{
    if (rd->end - rd->p < 5)
        return false;
    unsigned n = rd->p[0];
    size_t len = get_u32(rd->p + 1);
    const char *a = (const char *)rd->p + 5;
    if (n > CLUSTER_WIRE_MAX_ARGS || (size_t)(rd->end - rd->p) - 5 < len)
        return false;
    size_t at = 0;
    for (unsigned i = 0; i < n; i++) {
        const char *nul = at < len ? memchr(a + at, '\0', len - at) : NULL;
        if (!nul)
            return false;
        argv[i] = a + at;
        at = (size_t)(nul - a) + 1;
    }
    if (at != len)
        return false; /* bytes after the last arg */
    *nargs = n;
    *args = a;
    *args_len = len;
    rd->p += 5 + len;
    return true;
}

int cluster_wire_open(struct cluster_wire_reader *rd, const void *data, size_t len)
{
    *rd = (struct cluster_wire_reader){.p = data, .end = (const uint8_t *)data + len};
    if (len < 3 || (rd->p[0] != CLUSTER_WIRE_REQUESTS && rd->p[0] != CLUSTER_WIRE_ANSWERS) ||
        rd->p[1] != VERSION)
        return IOT_EINVAL;
    rd->kind = rd->p[0];
    rd->p += 2;
    if (!get_str(rd, &rd->node) || !rd->node[0] || strlen(rd->node) > 32 || rd->end - rd->p < 2)
        return IOT_EINVAL;
    rd->count = get_u16(rd->p);
    rd->p += 2;
    return IOT_OK;
}

/* Before a record of a batch of kind whose fixed part is fixed bytes: 1 if there is one to
 * read, 0 after the last (and nothing after it), IOT_EINVAL otherwise. */
static int record_start(const struct cluster_wire_reader *rd, enum cluster_wire_kind kind,
                        size_t fixed)
{
    if (rd->kind != kind)
        return IOT_EINVAL;
    if (rd->read == rd->count)
        return rd->p == rd->end ? 0 : IOT_EINVAL;
    return (size_t)(rd->end - rd->p) < fixed ? IOT_EINVAL : 1;
}

int cluster_wire_next_request(struct cluster_wire_reader *rd, struct cluster_wire_request *out,
                              const char *argv[CLUSTER_WIRE_MAX_ARGS])
{
    int rc = record_start(rd, CLUSTER_WIRE_REQUESTS, 8);
    if (rc != 1)
        return rc;
    out->id = get_u32(rd->p);
    out->timeout_ms = get_u32(rd->p + 4);
    rd->p += 8;
    if (!get_str(rd, &out->from) || !get_str(rd, &out->tenant) || !get_str(rd, &out->device) ||
        !get_str(rd, &out->type) || !get_args(rd, &out->nargs, &out->args, &out->args_len, argv))
        return IOT_EINVAL;
    rd->read++;
    return 1;
}

static bool outcome_named(const char *name, enum relay_outcome *out)
{
    for (unsigned k = 0; k < RELAY_OUTCOME_COUNT; k++)
        if (strcmp(relay_outcome_name(k), name) == 0) {
            *out = k;
            return true;
        }
    return false;
}

int cluster_wire_next_answer(struct cluster_wire_reader *rd, struct cluster_wire_answer *out,
                             const char *argv[CLUSTER_WIRE_MAX_ARGS])
{
    const char *outcome;
    int rc = record_start(rd, CLUSTER_WIRE_ANSWERS, 4);
    if (rc != 1)
        return rc;
    out->id = get_u32(rd->p);
    rd->p += 4;
    if (!get_str(rd, &outcome) || !get_str(rd, &out->why) ||
        !get_args(rd, &out->nargs, &out->args, &out->args_len, argv))
        return IOT_EINVAL;
    /* An outcome this build does not know is iotd's own failure to relay, as before. */
    if (!outcome_named(outcome, &out->outcome))
        out->outcome = RELAY_INTERNAL;
    rd->read++;
    return 1;
}
