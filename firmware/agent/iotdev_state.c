/*
 * iotdev_state.c - the sequence mark and the event journal under iotdev's state dir.
 */
#include "iotdev_state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Replace dir/name with len bytes of data: a temporary file, fsync, rename. */
static int replace_file(const char *dir, const char *name, const char *data, size_t len)
{
    char path[4200], tmp[4210];
    int fd, rc = -1, saved;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            goto out;
        data += n;
        len -= (size_t)n;
    }
    if (fsync(fd) < 0)
        goto out;
    rc = 0;
out:
    saved = errno;
    close(fd);
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -1;
    if (rc < 0) {
        saved = errno;
        unlink(tmp);
    }
    errno = saved;
    return rc;
}

int iotdev_state_open(struct iotdev_state *st, const char *dir, uint32_t *mark, char *err,
                      size_t errlen)
{
    char path[4200], line[IOTDEV_LINE_MAX + 2];
    FILE *f;

    memset(st, 0, sizeof(*st));
    *mark = 0;
    if (strlen(dir) >= sizeof(st->dir)) {
        snprintf(err, errlen, "state_dir too long");
        return -1;
    }
    snprintf(st->dir, sizeof(st->dir), "%s", dir);
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "state_dir %s: %s", dir, strerror(errno));
        return -1;
    }
    snprintf(path, sizeof(path), "%s/seq", dir);
    f = fopen(path, "r");
    if (f) {
        unsigned long v;
        char extra;
        int ok = fscanf(f, "%lu %c", &v, &extra) == 1 && v <= UINT32_MAX;
        fclose(f);
        if (!ok) {
            snprintf(err, errlen, "%s: not a sequence number", path);
            return -1;
        }
        *mark = (uint32_t)v;
    } else if (errno != ENOENT) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    snprintf(path, sizeof(path), "%s/outbox", dir);
    f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), f)) {
        size_t len = strlen(line);
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        if (len == 0)
            continue;
        if (st->n == IOTDEV_JOURNAL_MAX || len >= IOTDEV_LINE_MAX) {
            snprintf(err, errlen, "%s: more than %d events or a line over %d bytes", path,
                     IOTDEV_JOURNAL_MAX, IOTDEV_LINE_MAX - 1);
            fclose(f);
            return -1;
        }
        memcpy(st->entries[st->n].line, line, len + 1);
        st->entries[st->n++].seq = 0;
    }
    fclose(f);
    return 0;
}

int iotdev_state_store_mark(struct iotdev_state *st, uint32_t mark)
{
    char buf[16];
    int n = snprintf(buf, sizeof(buf), "%lu\n", (unsigned long)mark);

    return replace_file(st->dir, "seq", buf, (size_t)n);
}

int iotdev_state_save(struct iotdev_state *st)
{
    static char buf[IOTDEV_JOURNAL_MAX * (IOTDEV_LINE_MAX + 1)];
    size_t len = 0;

    for (unsigned i = 0; i < st->n; i++) {
        size_t l = strlen(st->entries[i].line);
        memcpy(buf + len, st->entries[i].line, l);
        len += l;
        buf[len++] = '\n';
    }
    return replace_file(st->dir, "outbox", buf, len);
}

int iotdev_state_add(struct iotdev_state *st, uint32_t seq, const char *line)
{
    size_t len = strlen(line);

    if (st->n == IOTDEV_JOURNAL_MAX || len >= IOTDEV_LINE_MAX) {
        errno = ENOSPC;
        return -1;
    }
    memcpy(st->entries[st->n].line, line, len + 1);
    st->entries[st->n++].seq = seq;
    return iotdev_state_save(st);
}

int iotdev_state_remove(struct iotdev_state *st, uint32_t seq)
{
    for (unsigned i = 0; i < st->n; i++) {
        if (st->entries[i].seq == seq) {
            memmove(&st->entries[i], &st->entries[i + 1], (st->n - i - 1) * sizeof(st->entries[0]));
            st->n--;
            iotdev_state_save(st);
            return 1;
        }
    }
    return 0;
}
