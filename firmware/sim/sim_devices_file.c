/*
 * sim_devices_file.c - load the simulated devices from iotctl JSON (contract in the header).
 *
 * The text is read as a stream of JSON values with cJSON's "parse one value, tell me where it
 * ended" entry point, so JSON lines, concatenated pretty-printed objects (iotctl prints its
 * --json results indented) and a single array or {"devices": [...]} document all go through
 * one loop. Every value is checked before it is kept: an operator who fed the wrong file gets
 * the line of the first bad device, not thousands of failing handshakes.
 */
#include "sim_devices_file.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Advance *line (the 1-based line of *at) to the line of pos, counting only the new bytes so
 * that a file of 10,000 lines is not rescanned from the top for each of them. */
static void advance_line(const char **at, const char *pos, unsigned *line)
{
    for (; *at < pos; (*at)++)
        if (**at == '\n')
            (*line)++;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* 1 if s is a non-empty string of at most max bytes without control bytes: what the frame
 * writer accepts in a field, so a bad id fails here rather than at every connect. */
static int is_field(const char *s, size_t max)
{
    size_t n = strlen(s);

    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

/* Decode exactly 2*len hex digits of s into out. Returns 0 or -1. */
static int decode_hex(const char *s, uint8_t *out, size_t len)
{
    if (strlen(s) != 2 * len)
        return -1;
    return iotp_hex_decode(s, 2 * len, out, len) == (int)len ? 0 : -1;
}

static int grow(struct sim_device_list *list)
{
    struct sim_device_entry *bigger;
    size_t cap;

    if (list->count < list->cap)
        return 0;
    cap = list->cap ? list->cap * 2 : 64;
    bigger = realloc(list->entries, cap * sizeof(*bigger));
    if (!bigger)
        return -1;
    list->entries = bigger;
    list->cap = cap;
    return 0;
}

/* Check one device object and append it. where names it for errors ("devices.jsonl:3"). */
static int add_device(struct sim_device_list *list, const cJSON *obj, const char *where, char *err,
                      size_t errlen)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(obj, "id");
    const cJSON *secret = cJSON_GetObjectItemCaseSensitive(obj, "secret");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(obj, "type");
    const cJSON *auth = cJSON_GetObjectItemCaseSensitive(obj, "auth");
    const cJSON *serial = cJSON_GetObjectItemCaseSensitive(obj, "serial");
    struct sim_device_entry e;
    int rc = -1;

    memset(&e, 0, sizeof(e));
    if (!cJSON_IsObject(obj)) {
        set_err(err, errlen, "%s: a device must be a JSON object", where);
        goto out;
    }
    if (!cJSON_IsString(id) || !is_field(id->valuestring, IOTP_MAX_ADDRESS_LEN)) {
        set_err(err, errlen, "%s: missing or invalid \"id\" (1-%d bytes, no control bytes)", where,
                IOTP_MAX_ADDRESS_LEN);
        goto out;
    }
    if (!cJSON_IsString(secret)) {
        set_err(err, errlen, "%s: device %s has no \"secret\"", where, id->valuestring);
        goto out;
    }
    if (decode_hex(secret->valuestring, e.key, sizeof(e.key)) != 0) {
        set_err(err, errlen, "%s: device %s: \"secret\" must be %d hex digits", where,
                id->valuestring, 2 * IOTP_KEY_LEN);
        goto out;
    }
    if (type && !cJSON_IsNull(type)) {
        if (!cJSON_IsString(type) || !is_field(type->valuestring, IOTP_MAX_HELLO_VALUE_LEN)) {
            set_err(err, errlen, "%s: device %s: invalid \"type\"", where, id->valuestring);
            goto out;
        }
        strcpy(e.type, type->valuestring);
    }
    e.alg = IOTP_ALG_HMAC_SHA256;
    if (auth && !cJSON_IsNull(auth)) {
        if (cJSON_IsString(auth) && strcmp(auth->valuestring, "atecc508a") == 0) {
            e.alg = IOTP_ALG_ATECC508A_MAC;
        } else if (!cJSON_IsString(auth) || strcmp(auth->valuestring, "hmac") != 0) {
            set_err(err, errlen, "%s: device %s: \"auth\" must be \"hmac\" or \"atecc508a\"", where,
                    id->valuestring);
            goto out;
        }
    }
    if (e.alg == IOTP_ALG_ATECC508A_MAC &&
        (!cJSON_IsString(serial) ||
         decode_hex(serial->valuestring, e.serial, sizeof(e.serial)) != 0)) {
        set_err(err, errlen, "%s: device %s: atecc508a needs \"serial\" of %d hex digits", where,
                id->valuestring, 2 * IOTP_ATECC_SERIAL_LEN);
        goto out;
    }
    strcpy(e.id, id->valuestring);
    if (grow(list) != 0) {
        set_err(err, errlen, "%s: out of memory", where);
        goto out;
    }
    list->entries[list->count++] = e;
    rc = 0;
out:
    iotp_wipe(&e, sizeof(e));
    return rc;
}

/* One top-level value: a device, an array of devices or {"devices": [...]}. */
static int add_value(struct sim_device_list *list, const cJSON *value, const char *where, char *err,
                     size_t errlen)
{
    const cJSON *item;
    const cJSON *devices =
        cJSON_IsObject(value) ? cJSON_GetObjectItemCaseSensitive(value, "devices") : NULL;

    if (cJSON_IsArray(devices))
        value = devices;
    if (!cJSON_IsArray(value))
        return add_device(list, value, where, err, errlen);
    cJSON_ArrayForEach(item, value)
    {
        if (add_device(list, item, where, err, errlen) != 0)
            return -1;
    }
    return 0;
}

int sim_devices_parse(struct sim_device_list *list, const char *text, size_t len,
                      const char *origin, char *err, size_t errlen)
{
    const char *pos = text, *end = text + len, *counted = text;
    unsigned line = 1;
    char where[512];

    for (;;) {
        const char *value_end = NULL;
        cJSON *value;
        int r;

        while (pos < end && (*pos == ' ' || *pos == '\t' || *pos == '\r' || *pos == '\n'))
            pos++;
        if (pos >= end)
            return 0;
        advance_line(&counted, pos, &line);
        snprintf(where, sizeof(where), "%s:%u", origin, line);
        value = cJSON_ParseWithLengthOpts(pos, (size_t)(end - pos), &value_end, 0);
        if (!value) {
            set_err(err, errlen, "%s: not valid JSON", where);
            return -1;
        }
        r = add_value(list, value, where, err, errlen);
        cJSON_Delete(value);
        if (r != 0)
            return -1;
        pos = value_end;
    }
}

int sim_devices_load_file(struct sim_device_list *list, const char *path, char *err, size_t errlen)
{
    int is_stdin = strcmp(path, "-") == 0;
    FILE *fp = is_stdin ? stdin : fopen(path, "rb");
    char *text = NULL, *bigger;
    size_t len = 0, cap = 0, n;
    int rc = -1;

    if (!fp) {
        set_err(err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    do {
        if (cap - len < 65536) {
            cap = cap ? cap * 2 : 262144;
            bigger = realloc(text, cap);
            if (!bigger) {
                set_err(err, errlen, "%s: out of memory", path);
                goto out;
            }
            text = bigger;
        }
        n = fread(text + len, 1, cap - len, fp);
        len += n;
    } while (n > 0);
    if (ferror(fp)) {
        set_err(err, errlen, "%s: read error", path);
        goto out;
    }
    rc = sim_devices_parse(list, text, len, is_stdin ? "<stdin>" : path, err, errlen);
out:
    if (text) {
        iotp_wipe(text, len); /* it held secrets */
        free(text);
    }
    if (fp && !is_stdin)
        fclose(fp);
    return rc;
}

static int compare_ids(const void *a, const void *b)
{
    const struct sim_device_entry *const *x = a, *const *y = b;

    return strcmp((*x)->id, (*y)->id);
}

int sim_devices_finish(struct sim_device_list *list, size_t limit, const char *type_override,
                       char *err, size_t errlen)
{
    const struct sim_device_entry **sorted = NULL;
    int rc = -1;

    if (limit > 0 && limit < list->count) {
        iotp_wipe(list->entries + limit, (list->count - limit) * sizeof(*list->entries));
        list->count = limit;
    }
    if (list->count == 0) {
        set_err(err, errlen, "no devices to simulate");
        goto out;
    }
    if (type_override && !is_field(type_override, IOTP_MAX_HELLO_VALUE_LEN)) {
        set_err(err, errlen, "invalid --type \"%s\"", type_override);
        goto out;
    }
    for (size_t i = 0; i < list->count; i++) {
        if (type_override)
            strcpy(list->entries[i].type, type_override);
        if (list->entries[i].type[0] == '\0') {
            set_err(err, errlen, "device %s has no \"type\" (give --type)", list->entries[i].id);
            goto out;
        }
    }
    /* Sorting pointers finds duplicates in n log n and leaves the list in file order. */
    sorted = malloc(list->count * sizeof(*sorted));
    if (!sorted) {
        set_err(err, errlen, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < list->count; i++)
        sorted[i] = &list->entries[i];
    qsort(sorted, list->count, sizeof(*sorted), compare_ids);
    for (size_t i = 1; i < list->count; i++) {
        if (strcmp(sorted[i - 1]->id, sorted[i]->id) == 0) {
            set_err(err, errlen, "device %s is listed twice", sorted[i]->id);
            goto out;
        }
    }
    rc = 0;
out:
    free(sorted);
    return rc;
}

void sim_devices_free(struct sim_device_list *list)
{
    if (list->entries) {
        iotp_wipe(list->entries, list->cap * sizeof(*list->entries));
        free(list->entries);
    }
    memset(list, 0, sizeof(*list));
}
