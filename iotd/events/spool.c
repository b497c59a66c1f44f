/*
 * spool.c - the on-disk spool of acknowledged events (see spool.h for the format).
 */
#include "events/spool.h"

#include "base/log.h"
#include "iot_error.h"
#include "iot_grow.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* "IOT2": records since sql/011 carry the device's incarnation after the receive time. "IOTE"
 * records, written before, are still read (incarnation 0: unknown). */
#define SPOOL_MAGIC      0x32544f49u /* "IOT2" */
#define SPOOL_MAGIC_V1   0x45544f49u /* "IOTE" */
#define SPOOL_HEADER     12u
#define SPOOL_MAX_RECORD (1u << 24) /* far above any frame: a larger length is corruption */

struct spool {
    pthread_mutex_t lock; /* see spool.h: one operation at a time, but a late replay too */
    int fd;               /* the records */
    int offset_fd;        /* <path>.offset */
    uint64_t size, offset, pending;
    uint64_t epoch; /* times the file was emptied */
    char *path;
};

uint32_t spool_crc32(uint32_t crc, const void *data, size_t len)
{
    static uint32_t table[256];
    static _Atomic int ready;
    if (!ready) { /* idempotent: racing threads compute the same table */
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
        ready = 1;
    }
    const unsigned char *p = data;
    crc = ~crc;
    for (size_t i = 0; i < len; i++)
        crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const unsigned char *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static size_t payload_size(const struct event *ev)
{
    return 1 + 4 + 8 + 8 + 4 + strlen(ev->tenant) + strlen(ev->device) + strlen(ev->type) +
           strlen(ev->name) + 4 + 4 + ev->fields_len;
}

size_t spool_record_size(const struct event *ev)
{
    return SPOOL_HEADER + payload_size(ev);
}

static unsigned char *put_str(unsigned char *p, const char *s)
{
    size_t n = strlen(s); /* < 65: the event's members are bounded */
    *p++ = (unsigned char)n;
    memcpy(p, s, n);
    return p + n;
}

/* Encode ev at p (spool_record_size(ev) bytes). */
static void encode(unsigned char *p, const struct event *ev)
{
    size_t plen = payload_size(ev);
    unsigned char *q = p + SPOOL_HEADER;
    *q++ = (unsigned char)ev->kind;
    put32(q, ev->seq);
    put64(q + 4, (uint64_t)ev->ts_ms);
    put64(q + 12, ev->incarnation);
    q += 20;
    q = put_str(q, ev->tenant);
    q = put_str(q, ev->device);
    q = put_str(q, ev->type);
    q = put_str(q, ev->name);
    put32(q, ev->nfields);
    put32(q + 4, (uint32_t)ev->fields_len);
    memcpy(q + 8, ev->fields, ev->fields_len);
    put32(p, SPOOL_MAGIC);
    put32(p + 4, (uint32_t)plen);
    put32(p + 8, spool_crc32(0, p + SPOOL_HEADER, plen));
}

static bool get_str(const unsigned char **p, const unsigned char *end, char *out)
{
    if (*p >= end)
        return false;
    size_t n = **p;
    if (n > 64 || (size_t)(end - (*p + 1)) < n)
        return false;
    memcpy(out, *p + 1, n);
    out[n] = '\0';
    *p += 1 + n;
    return true;
}

/* Decode a payload whose CRC matched (v1: a record from before the incarnation): NULL if it is
 * malformed or out of memory. */
static struct event *decode(const unsigned char *p, size_t len, bool v1)
{
    const unsigned char *end = p + len;
    char tenant[65], device[65], type[65], name[65];
    struct event *ev = NULL;
    const char **fields = NULL;
    size_t fixed = v1 ? 13 : 21;
    if (len < fixed)
        return NULL;
    enum event_kind kind = p[0] == EVENT_KIND_ALARM ? EVENT_KIND_ALARM : EVENT_KIND_EVENT;
    uint32_t seq = get32(p + 1);
    int64_t ts_ms = (int64_t)get64(p + 5);
    uint64_t incarnation = v1 ? 0 : get64(p + 13);
    p += fixed;
    if (!get_str(&p, end, tenant) || !get_str(&p, end, device) || !get_str(&p, end, type) ||
        !get_str(&p, end, name) || end - p < 8)
        return NULL;
    uint32_t nfields = get32(p), flen = get32(p + 4);
    p += 8;
    if ((size_t)(end - p) != flen || nfields > flen || (flen && p[flen - 1] != '\0'))
        return NULL;
    fields = calloc(nfields ? nfields : 1, sizeof(*fields));
    if (!fields)
        return NULL;
    const unsigned char *f = p;
    for (uint32_t i = 0; i < nfields; i++) {
        if (f >= end)
            goto out;
        fields[i] = (const char *)f;
        f += strlen((const char *)f) + 1;
    }
    ev = event_new(kind, tenant, device, type, name, seq, ts_ms, nfields, fields);
    if (ev)
        ev->incarnation = incarnation;
out:
    free(fields);
    return ev;
}

/* Read exactly len bytes at off: 1 done, 0 short (end of file), -1 error. */
static int read_at(int fd, void *buf, size_t len, uint64_t off)
{
    size_t got = 0;
    while (got < len) {
        ssize_t r = pread(fd, (char *)buf + got, len - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            return 0;
        got += (size_t)r;
    }
    return 1;
}

static int write_all(int fd, const void *buf, size_t len, uint64_t off)
{
    size_t done = 0;
    while (done < len) {
        ssize_t w = pwrite(fd, (const char *)buf + done, len - done, (off_t)(off + done));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        done += (size_t)w;
    }
    return 0;
}

/* The record at off: 1 and its payload in *buf (len *plen; *v1 for an "IOTE" record) if it
 * is whole and intact, 0 if the file ends or the record is torn or corrupt there, -1 on a read
 * error or out of memory. *buf is reused and grown. */
static int record_at(int fd, uint64_t off, unsigned char **buf, size_t *cap, size_t *plen, bool *v1)
{
    unsigned char h[SPOOL_HEADER];
    int r = read_at(fd, h, sizeof h, off);
    if (r <= 0)
        return r;
    uint32_t len = get32(h + 4);
    *v1 = get32(h) == SPOOL_MAGIC_V1;
    if ((get32(h) != SPOOL_MAGIC && !*v1) || len == 0 || len > SPOOL_MAX_RECORD)
        return 0;
    unsigned char *grown = iot_reserve(*buf, len, cap, 4096, 1);
    if (!grown)
        return -1;
    *buf = grown;
    r = read_at(fd, *buf, len, off + SPOOL_HEADER);
    if (r <= 0)
        return r;
    if (spool_crc32(0, *buf, len) != get32(h + 8))
        return 0;
    *plen = len;
    return 1;
}

static int offset_load(spool_t *s)
{
    unsigned char b[12];
    s->offset = 0;
    int r = read_at(s->offset_fd, b, sizeof b, 0);
    if (r < 0)
        return -1;
    if (r == 1 && spool_crc32(0, b, 8) == get32(b + 8))
        s->offset = get64(b);
    return 0;
}

static int offset_store(spool_t *s, uint64_t offset)
{
    unsigned char b[12];
    put64(b, offset);
    put32(b + 8, spool_crc32(0, b, 8));
    /* 12 bytes at the start of a file: one sector, never torn in practice; a torn or stale
     * value only makes replay start earlier (dedup drops the repeats) or at 0. */
    if (write_all(s->offset_fd, b, sizeof b, 0) != 0 || fdatasync(s->offset_fd) != 0)
        return -1;
    s->offset = offset;
    return 0;
}

static void sync_dir(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(copy);
}

int spool_open(spool_t **out, const char *path, char *err, size_t errlen)
{
    int rc = IOT_EIO;
    char side[4096];
    unsigned char *buf = NULL;
    size_t cap = 0, plen = 0;
    bool v1;
    spool_t *s = calloc(1, sizeof(*s));
    *out = NULL;
    if (s)
        pthread_mutex_init(&s->lock, NULL);
    if (!s || !(s->path = strdup(path))) {
        snprintf(err, errlen, "out of memory opening the event spool");
        rc = IOT_ENOMEM;
        goto out;
    }
    s->fd = s->offset_fd = -1;
    if (snprintf(side, sizeof side, "%s.offset", path) >= (int)sizeof side) {
        snprintf(err, errlen, "event spool path too long");
        rc = IOT_EINVAL;
        goto out;
    }
    bool created = access(path, F_OK) != 0;
    s->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    s->offset_fd = open(side, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->fd < 0 || s->offset_fd < 0) {
        snprintf(err, errlen, "event spool %s: %s", s->fd < 0 ? path : side, strerror(errno));
        goto out;
    }
    if (created)
        sync_dir(path);
    struct stat st;
    if (fstat(s->fd, &st) != 0 || offset_load(s) != 0) {
        snprintf(err, errlen, "event spool %s: %s", path, strerror(errno));
        goto out;
    }
    s->size = (uint64_t)st.st_size;
    if (s->offset > s->size)
        s->offset = 0; /* stale side file (crash around a truncation): replay all, dedup */
    /* Walk the records not yet replayed; the first bad one ends the spool. */
    uint64_t off = s->offset;
    for (;;) {
        int r = record_at(s->fd, off, &buf, &cap, &plen, &v1);
        if (r < 0) {
            snprintf(err, errlen, "event spool %s: read: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        off += SPOOL_HEADER + plen;
        s->pending++;
    }
    if (off < s->size) {
        log_warn("event spool %s: cutting off %llu bytes of a torn or corrupt tail at offset %llu "
                 "(never acknowledged)",
                 path, (unsigned long long)(s->size - off), (unsigned long long)off);
        if (ftruncate(s->fd, (off_t)off) != 0 || fsync(s->fd) != 0) {
            snprintf(err, errlen, "event spool %s: truncate: %s", path, strerror(errno));
            goto out;
        }
        s->size = off;
    }
    *out = s;
    s = NULL;
    rc = IOT_OK;
out:
    free(buf);
    spool_close(s);
    return rc;
}

void spool_close(spool_t *s)
{
    if (!s)
        return;
    if (s->fd >= 0)
        close(s->fd);
    if (s->offset_fd >= 0)
        close(s->offset_fd);
    free(s->path);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* The getters read under the lock: a replay the store gave up waiting for (its deadline)
 * may still be consuming on a db thread. */
static uint64_t locked_get(const spool_t *s, const uint64_t *field)
{
    pthread_mutex_lock((pthread_mutex_t *)&s->lock);
    uint64_t v = *field;
    pthread_mutex_unlock((pthread_mutex_t *)&s->lock);
    return v;
}

uint64_t spool_size(const spool_t *s)
{
    return locked_get(s, &s->size);
}

uint64_t spool_offset(const spool_t *s)
{
    return locked_get(s, &s->offset);
}

uint64_t spool_pending(const spool_t *s)
{
    return locked_get(s, &s->pending);
}

static int append_locked(spool_t *s, struct event *const *events, size_t n);

int spool_append(spool_t *s, struct event *const *events, size_t n)
{
    pthread_mutex_lock(&s->lock);
    int rc = append_locked(s, events, n);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static int append_locked(spool_t *s, struct event *const *events, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += spool_record_size(events[i]);
    if (total == 0)
        return IOT_OK;
    unsigned char *buf = malloc(total);
    if (!buf)
        return IOT_ENOMEM;
    unsigned char *p = buf;
    for (size_t i = 0; i < n; i++) {
        encode(p, events[i]);
        p += spool_record_size(events[i]);
    }
    int rc = IOT_OK;
    if (write_all(s->fd, buf, total, s->size) != 0 || fdatasync(s->fd) != 0) {
        log_error("event spool %s: append: %s", s->path, strerror(errno));
        /* Leave no partial batch behind: it was not acknowledged. */
        if (ftruncate(s->fd, (off_t)s->size) != 0)
            log_error("event spool %s: truncate: %s", s->path, strerror(errno));
        rc = IOT_EIO;
    } else {
        s->size += total;
        s->pending += n;
    }
    free(buf);
    return rc;
}

static int read_locked(spool_t *s, size_t max, struct event ***out, size_t *n, uint64_t *end,
                       size_t *records);

int spool_read(spool_t *s, size_t max, struct event ***out, size_t *n, uint64_t *end,
               size_t *records)
{
    uint64_t epoch;
    return spool_read_epoch(s, max, out, n, end, records, &epoch);
}

int spool_read_epoch(spool_t *s, size_t max, struct event ***out, size_t *n, uint64_t *end,
                     size_t *records, uint64_t *epoch)
{
    pthread_mutex_lock(&s->lock);
    int rc = read_locked(s, max, out, n, end, records);
    *epoch = s->epoch;
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static int read_locked(spool_t *s, size_t max, struct event ***out, size_t *n, uint64_t *end,
                       size_t *records)
{
    size_t nrec = 0;
    unsigned char *buf = NULL;
    size_t cap = 0, plen = 0, count = 0;
    uint64_t off = s->offset;
    int rc = IOT_OK;
    struct event **evs = calloc(max ? max : 1, sizeof(*evs));
    if (!evs)
        return IOT_ENOMEM;
    while (count < max && off < s->size) {
        bool v1;
        int r = record_at(s->fd, off, &buf, &cap, &plen, &v1);
        if (r <= 0) {
            /* spool_open validated everything and appends are whole: this is a disk fault. */
            log_error("event spool %s: unreadable record at offset %llu", s->path,
                      (unsigned long long)off);
            rc = IOT_EIO;
            goto out;
        }
        struct event *ev = decode(buf, plen, v1);
        if (!ev) {
            log_error("event spool %s: undecodable record at offset %llu, skipped", s->path,
                      (unsigned long long)off);
        } else {
            evs[count++] = ev;
        }
        nrec++;
        off += SPOOL_HEADER + plen;
    }
out:
    free(buf);
    if (rc != IOT_OK) {
        for (size_t i = 0; i < count; i++)
            event_unref(evs[i]);
        free(evs);
        return rc;
    }
    *out = evs;
    *n = count;
    *end = off;
    *records = nrec;
    return IOT_OK;
}

static int consume_locked(spool_t *s, uint64_t end, size_t records);

int spool_consume(spool_t *s, uint64_t end, size_t records)
{
    pthread_mutex_lock(&s->lock);
    int rc = consume_locked(s, end, records);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int spool_consume_epoch(spool_t *s, uint64_t epoch, uint64_t end, size_t records)
{
    int rc = IOT_OK;
    pthread_mutex_lock(&s->lock);
    /* Stale: the file was emptied since the read (its offsets mean other records now), or a
     * later replay got further. What was read is stored; nothing to record. */
    if (epoch == s->epoch && end > s->offset)
        rc = consume_locked(s, end, records);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static int consume_locked(spool_t *s, uint64_t end, size_t records)
{
    if (end >= s->size) {
        /* Drained: empty the file first; a crash before the offset is reset leaves an offset
         * beyond the size, which spool_open reads as 0 on an empty file. */
        if (ftruncate(s->fd, 0) != 0 || fsync(s->fd) != 0 || offset_store(s, 0) != 0) {
            log_error("event spool %s: truncate: %s", s->path, strerror(errno));
            return IOT_EIO;
        }
        s->size = 0;
        s->pending = 0;
        s->epoch++;
        return IOT_OK;
    }
    if (offset_store(s, end) != 0) {
        log_error("event spool %s: offset: %s", s->path, strerror(errno));
        return IOT_EIO;
    }
    s->pending = s->pending > records ? s->pending - records : 0;
    return IOT_OK;
}
