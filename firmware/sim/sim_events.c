/*
 * sim_events.c - event fields, sequence files and the ACK log (contract in sim_events.h).
 *
 * The random walk stays within ten steps of its start: a step that would leave the band is
 * reflected back into it, so a long run still reads like a thermostat's room, not a drift to
 * absolute zero. Values are rounded to one decimal when stored, so the text sent and the value
 * walked on agree.
 */
#include "sim_events.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WALK_BAND_STEPS 10

void sim_event_config_init(struct sim_event_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->name = "temperature";
    cfg->outbox_entries = 256;
}

static int parse_double(const char *s, const char *end, double *out)
{
    char buf[64], *stop;
    size_t len = (size_t)(end - s);

    if (len == 0 || len >= sizeof(buf))
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    errno = 0;
    *out = strtod(buf, &stop);
    return *stop != '\0' || errno != 0 || !isfinite(*out) ? -1 : 0;
}

/* Whether s (len bytes) has no control bytes: it must fit in a frame field. */
static int printable(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7F)
            return 0;
    return 1;
}

int sim_field_parse(const char *spec, struct sim_field_gen *gen, char *err, size_t errlen)
{
    const char *eq = strchr(spec, '='), *g;
    size_t key_len;

    memset(gen, 0, sizeof(*gen));
    if (!eq || eq == spec) {
        snprintf(err, errlen, "--field wants key=GEN, got '%s'", spec);
        return -1;
    }
    key_len = (size_t)(eq - spec);
    if (key_len >= sizeof(gen->key) || !printable(spec, key_len)) {
        snprintf(err, errlen, "--field: bad key in '%s'", spec);
        return -1;
    }
    memcpy(gen->key, spec, key_len);
    g = eq + 1;
    if (strlen(g) >= sizeof(gen->text) || !printable(g, strlen(g))) {
        snprintf(err, errlen, "--field: value of '%s' too long or not printable", gen->key);
        return -1;
    }
    if (strncmp(g, "walk:", 5) == 0) {
        const char *colon = strchr(g + 5, ':');
        gen->kind = SIM_FIELD_WALK;
        if (!colon || parse_double(g + 5, colon, &gen->start) < 0 ||
            parse_double(colon + 1, colon + 1 + strlen(colon + 1), &gen->step) < 0 ||
            gen->step < 0) {
            snprintf(err, errlen, "--field %s: want walk:START:STEP, got '%s'", gen->key, g);
            return -1;
        }
    } else if (strncmp(g, "steps:", 6) == 0) {
        gen->kind = SIM_FIELD_STEPS;
        strcpy(gen->text, g + 6);
        if (gen->text[0] == '\0' || gen->text[strlen(gen->text) - 1] == ',' ||
            strstr(gen->text, ",,") || gen->text[0] == ',') {
            snprintf(err, errlen, "--field %s: want steps:A,B,..., got '%s'", gen->key, g);
            return -1;
        }
    } else if (strcmp(g, "seq") == 0) {
        gen->kind = SIM_FIELD_SEQ;
    } else if (strcmp(g, "count") == 0) {
        gen->kind = SIM_FIELD_COUNT;
    } else {
        gen->kind = SIM_FIELD_CONST;
        strcpy(gen->text, strncmp(g, "const:", 6) == 0 ? g + 6 : g);
    }
    if (gen->kind == SIM_FIELD_CONST && strlen(gen->text) >= SIM_EVENT_VALUE_LEN) {
        snprintf(err, errlen, "--field %s: a value is at most %d bytes", gen->key,
                 SIM_EVENT_VALUE_LEN - 1);
        return -1;
    }
    if (gen->kind == SIM_FIELD_STEPS) {
        for (const char *item = gen->text; item;) {
            const char *comma = strchr(item, ',');
            size_t len = comma ? (size_t)(comma - item) : strlen(item);
            if (len >= SIM_EVENT_VALUE_LEN) {
                snprintf(err, errlen, "--field %s: a step is at most %d bytes", gen->key,
                         SIM_EVENT_VALUE_LEN - 1);
                return -1;
            }
            item = comma ? comma + 1 : NULL;
        }
    }
    return 0;
}

static int one_of(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(s, *list) == 0)
            return 1;
    return 0;
}

int sim_alarm_parse(const char *spec, struct sim_alarm_spec *alarm, char *err, size_t errlen)
{
    static const char *const states[] = {"raised", "cleared", NULL};
    static const char *const severities[] = {"info", "warning", "minor", "major", "critical", NULL};
    const char *c1 = strchr(spec, ':'), *c2;
    size_t name_len;

    memset(alarm, 0, sizeof(*alarm));
    if (!c1 || c1 == spec)
        goto bad;
    name_len = (size_t)(c1 - spec);
    if (name_len >= sizeof(alarm->name) || !printable(spec, name_len))
        goto bad;
    memcpy(alarm->name, spec, name_len);
    c2 = strchr(c1 + 1, ':');
    if (c2) {
        if ((size_t)(c2 - c1 - 1) >= sizeof(alarm->state))
            goto bad;
        memcpy(alarm->state, c1 + 1, (size_t)(c2 - c1 - 1));
        if (strlen(c2 + 1) >= sizeof(alarm->severity))
            goto bad;
        strcpy(alarm->severity, c2 + 1);
        if (!one_of(alarm->severity, severities))
            goto bad;
    } else {
        if (strlen(c1 + 1) >= sizeof(alarm->state))
            goto bad;
        strcpy(alarm->state, c1 + 1);
    }
    if (!one_of(alarm->state, states))
        goto bad;
    return 0;
bad:
    snprintf(err, errlen,
             "--alarm wants NAME:raised|cleared[:info|warning|minor|major|critical], got '%s'",
             spec);
    return -1;
}

/* Item n (0-based, cycling) of a comma-separated list into out. */
static void step_item(const char *list, uint64_t n, char *out, size_t outlen)
{
    size_t items = 1, len;
    const char *at = list, *comma;

    for (const char *p = list; *p; p++)
        items += *p == ',';
    for (uint64_t i = n % items; i > 0; i--)
        at = strchr(at, ',') + 1;
    comma = strchr(at, ',');
    len = comma ? (size_t)(comma - at) : strlen(at);
    if (len >= outlen)
        len = outlen - 1;
    memcpy(out, at, len);
    out[len] = '\0';
}

unsigned sim_event_fields(const struct sim_event_config *cfg, struct sim_event_state *st,
                          const char *name, uint32_t seq, int advance,
                          uint32_t (*rand32)(void *ctx), void *rand_ctx,
                          struct iotp_event_field out[SIM_EVENT_MAX_FIELDS],
                          char values[SIM_EVENT_MAX_FIELDS][SIM_EVENT_VALUE_LEN])
{
    static const struct sim_field_gen temperature[] = {
        {"value", SIM_FIELD_WALK, "", 21.0, 0.5},
        {"unit", SIM_FIELD_CONST, "C", 0, 0},
    };
    const struct sim_field_gen *gens = cfg->fields;
    unsigned n = cfg->nfields;
    uint64_t count = st->made + 1;

    if (strcmp(name, cfg->name) != 0)
        return 0;
    if (n == 0 && strcmp(cfg->name, "temperature") == 0) {
        gens = temperature;
        n = 2;
    }
    if (!st->walk_started) {
        for (unsigned i = 0; i < n; i++)
            st->walk[i] = gens[i].start;
        st->walk_started = 1;
    }
    for (unsigned i = 0; i < n; i++) {
        const struct sim_field_gen *g = &gens[i];
        double v, lo, hi;

        out[i].key = g->key;
        out[i].value = values[i];
        switch (g->kind) {
        case SIM_FIELD_CONST:
            out[i].value = g->text; /* checked shorter than a value at parse time */
            break;
        case SIM_FIELD_WALK:
            v = st->walk[i];
            if (advance) {
                v += g->step * ((double)rand32(rand_ctx) / 2147483647.5 - 1.0);
                lo = g->start - WALK_BAND_STEPS * g->step;
                hi = g->start + WALK_BAND_STEPS * g->step;
                if (v > hi)
                    v = 2 * hi - v;
                if (v < lo)
                    v = 2 * lo - v;
                v = round(v * 10) / 10;
                st->walk[i] = v;
            }
            snprintf(values[i], SIM_EVENT_VALUE_LEN, "%.1f", v == 0 ? 0.0 : v);
            break;
        case SIM_FIELD_STEPS:
            step_item(g->text, count - 1, values[i], SIM_EVENT_VALUE_LEN);
            break;
        case SIM_FIELD_SEQ:
            snprintf(values[i], SIM_EVENT_VALUE_LEN, "%u", (unsigned)seq);
            break;
        case SIM_FIELD_COUNT:
            snprintf(values[i], SIM_EVENT_VALUE_LEN, "%llu", (unsigned long long)count);
            break;
        }
    }
    if (advance)
        st->made++;
    return n;
}

size_t sim_event_storage_size(const struct sim_event_config *cfg, const char *device_id)
{
    size_t name_len = strlen(cfg->name), fields = 0, frame;
    unsigned n = cfg->nfields ? cfg->nfields : 2;

    for (unsigned i = 0; i < cfg->nalarms; i++)
        if (strlen(cfg->alarms[i].name) > name_len)
            name_len = strlen(cfg->alarms[i].name);
    for (unsigned i = 0; i < n; i++)
        fields += 1 + SIM_EVENT_KEY_LEN + 1 + SIM_EVENT_VALUE_LEN;
    /* FROM US TO US TYPE US SEQ US NAME {US k=v} + state= and severity= of an alarm + EOT */
    frame = strlen(device_id) + 1 + strlen(IOTP_SERVER_ADDRESS) + 1 + 5 + 1 + 10 + 1 + name_len +
            fields + 1 + strlen("state=cleared") + 1 + strlen("severity=critical") + 1;
    if (frame > IOTP_MAX_FRAME)
        frame = IOTP_MAX_FRAME;
    return (size_t)cfg->outbox_entries * (IOTP_OUTBOX_ENTRY_OVERHEAD + frame);
}

int sim_seq_file_name(const char *device_id, char *out, size_t outlen)
{
    static const char hex[] = "0123456789abcdef";
    size_t len = strlen(device_id), i;
    int plain = device_id[0] != '.' && len > 0;

    for (i = 0; i < len && plain; i++) {
        char c = device_id[i];
        plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '.' || c == '_' || c == '@' || c == '-';
    }
    if (plain) {
        if (len + 5 > outlen)
            return -1;
        memcpy(out, device_id, len);
        memcpy(out + len, ".seq", 5);
        return 0;
    }
    if (2 + 2 * len + 5 > outlen)
        return -1;
    memcpy(out, "x-", 2);
    for (i = 0; i < len; i++) {
        out[2 + 2 * i] = hex[(unsigned char)device_id[i] >> 4];
        out[3 + 2 * i] = hex[(unsigned char)device_id[i] & 0x0F];
    }
    memcpy(out + 2 + 2 * len, ".seq", 5);
    return 0;
}

static int seq_path(const char *dir, const char *device_id, const char *suffix, char *out,
                    size_t outlen)
{
    char name[2 * IOTP_MAX_ADDRESS_LEN + 16];
    int n;

    if (sim_seq_file_name(device_id, name, sizeof(name)) < 0)
        return -1;
    n = snprintf(out, outlen, "%s/%s%s", dir, name, suffix);
    return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

int sim_seq_load(const char *dir, const char *device_id, uint32_t *high_water, char *err,
                 size_t errlen)
{
    char path[4096], text[32];
    uint32_t v;
    size_t len;
    FILE *f;

    *high_water = 0;
    if (seq_path(dir, device_id, "", path, sizeof(path)) < 0) {
        snprintf(err, errlen, "%s: state file name too long", device_id);
        return -1;
    }
    f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    len = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[len] = '\0';
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        text[--len] = '\0';
    if (iotp_parse_u32(text, len, &v) != 0) {
        snprintf(err, errlen, "%s: not a sequence number", path);
        return -1;
    }
    *high_water = v;
    return 0;
}

int sim_seq_store(const char *dir, const char *device_id, uint32_t high_water, char *err,
                  size_t errlen)
{
    char path[4096], tmp[4096], text[16];
    int fd = -1, dfd = -1, rc = -1, n;

    if (seq_path(dir, device_id, "", path, sizeof(path)) < 0 ||
        seq_path(dir, device_id, ".tmp", tmp, sizeof(tmp)) < 0) {
        snprintf(err, errlen, "%s: state file name too long", device_id);
        return -1;
    }
    n = snprintf(text, sizeof(text), "%u\n", (unsigned)high_water);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, text, (size_t)n) != n || fsync(fd) != 0) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    /* The rename itself must survive a crash too. */
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    return rc;
}

void sim_ack_log_write(FILE *log, const uint8_t *frame, size_t len)
{
    const uint8_t *field[4 + IOTP_MAX_ARGS];
    size_t field_len[4 + IOTP_MAX_ARGS];
    unsigned n = 0;
    size_t start = 0;

    /* Split FROM TO TYPE ID ARGS... at US up to the EOT. */
    for (size_t i = 0; i <= len && n < 4 + IOTP_MAX_ARGS; i++) {
        if (i == len || frame[i] == IOTP_US || frame[i] == IOTP_EOT) {
            field[n] = frame + start;
            field_len[n++] = i - start;
            start = i + 1;
            if (i == len || frame[i] == IOTP_EOT)
                break;
        }
    }
    if (n < 4)
        return;
    /* <device> <seq> <kind>, then the name and the fields. */
    fprintf(log, "%.*s %.*s %.*s", (int)field_len[0], (const char *)field[0], (int)field_len[3],
            (const char *)field[3], (int)field_len[2], (const char *)field[2]);
    for (unsigned i = 4; i < n; i++)
        fprintf(log, " %.*s", (int)field_len[i], (const char *)field[i]);
    fputc('\n', log);
    fflush(log);
}
