/*
 * ws_frames.c - JSON messages onto frames and back (see ws_frames.h, iot-websocket(7)).
 *
 * Decoding walks the object's members in order and feeds the firmware's frame writer, which
 * refuses what the frame parser would (control bytes, empty or overlong fields, too many
 * arguments, over the limit): so a message either becomes a frame iotd would accept from a
 * native client, or an ERROR answered here, with the wire code of what the writer refused.
 * Encoding splits the frame at its separators and builds the object with cJSON.
 */
#include "web/ws_frames.h"

#include "iot_error.h"
#include "iot_text.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Members that are the frame's own fields, never key=value arguments. */
static bool reserved_key(const char *key)
{
    static const char *const keys[] = {"type", "id", "from", "to", "args"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (strcmp(key, keys[i]) == 0)
            return true;
    return false;
}

/* The protocol's counters: numbers in JSON, not strings. */
static bool numeric_key(const char *key)
{
    static const char *const keys[] = {"retry", "ping",    "session", "sub",
                                       "ttl",   "dropped", "seq",     "rows"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (strcmp(key, keys[i]) == 0)
            return true;
    return false;
}

/* ---- browser -> frame ---- */

/* msg is a literal of this file, written as it is: no quotes or backslashes in it. */
static void reply_error(char *reply, uint32_t id, const char *code, const char *msg)
{
    snprintf(reply, WS_FRAMES_REPLY_MAX,
             "{\"type\":\"ERROR\",\"from\":\"iotd\",\"id\":%" PRIu32
             ",\"code\":\"%s\",\"msg\":\"%s\"}",
             id, code, msg);
}

/* A scalar member as frame text: a string as it is, a number as its shortest decimal form
 * that reads back the same, a boolean as true/false. False for anything else. */
static bool scalar_text(const cJSON *item, char *buf, size_t cap, const char **text)
{
    if (cJSON_IsString(item)) {
        *text = item->valuestring;
        return true;
    }
    if (cJSON_IsBool(item)) {
        *text = cJSON_IsTrue(item) ? "true" : "false";
        return true;
    }
    if (!cJSON_IsNumber(item) || !isfinite(item->valuedouble))
        return false;
    double v = item->valuedouble;
    if (v == floor(v) && fabs(v) < 1e15)
        snprintf(buf, cap, "%.0f", v);
    else {
        snprintf(buf, cap, "%.15g", v);
        if (strtod(buf, NULL) != v)
            snprintf(buf, cap, "%.17g", v);
    }
    *text = buf;
    return true;
}

/* The message's id: absent or null is 0; an integer 0..4294967295 is itself. */
static bool message_id(const cJSON *obj, uint32_t *id)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, "id");
    *id = 0;
    if (!item || cJSON_IsNull(item))
        return true;
    if (!cJSON_IsNumber(item))
        return false;
    double v = item->valuedouble;
    if (!(v >= 0 && v <= 4294967295.0) || v != floor(v))
        return false;
    *id = (uint32_t)v;
    return true;
}

/* Append "args" (an array of scalars) as positional arguments. A wire code on failure. */
static const char *add_positional(struct iotp_writer *w, const cJSON *args)
{
    if (!args || cJSON_IsNull(args))
        return NULL;
    if (!cJSON_IsArray(args))
        return "bad_args";
    const cJSON *item;
    cJSON_ArrayForEach(item, args)
    {
        char num[32];
        const char *text;
        if (!scalar_text(item, num, sizeof(num), &text))
            return "bad_args";
        iotp_writer_arg(w, text);
    }
    return NULL;
}

/* The wire code for what the writer refused. */
static const char *writer_code(int rc)
{
    switch (rc) {
    case IOTP_ETOO_LARGE:
    case IOTP_ENOSPC:
        return "too_large";
    case IOTP_ECONTROL:
    case IOTP_ETOO_MANY_ARGS:
        return "bad_args";
    default:
        return "bad_frame";
    }
}

/* Build the frame of obj (a JSON object with a string type) into out. 0 or the frame length;
 * on 0, reply says why. */
static int decode_object(struct ws_frames *fx, const cJSON *obj, uint8_t *out, size_t cap,
                         char *reply)
{
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(obj, "type");
    const char *name = type->valuestring;
    enum iotp_type t = iotp_type_lookup(name, strlen(name));
    uint32_t id;
    if (!message_id(obj, &id)) {
        reply_error(reply, 0, "bad_frame", "id must be an integer 0..4294967295");
        return 0;
    }
    if (t == IOTP_TYPE_LOGIN) {
        const cJSON *user = cJSON_GetObjectItemCaseSensitive(obj, "user");
        if (!cJSON_IsString(user) || !user->valuestring[0] ||
            strlen(user->valuestring) > IOTP_MAX_ADDRESS_LEN) {
            reply_error(reply, id, "bad_args", "LOGIN needs a user");
            return 0;
        }
    } else if (!fx->welcomed) {
        reply_error(reply, id, "auth", "log in first");
        return 0;
    }

    const char *from = t == IOTP_TYPE_LOGIN
                           ? cJSON_GetObjectItemCaseSensitive(obj, "user")->valuestring
                           : fx->user;
    const char *to = IOTP_SERVER_ADDRESS;
    const cJSON *to_item = cJSON_GetObjectItemCaseSensitive(obj, "to");
    if (t == IOTP_TYPE_APP) {
        if (!cJSON_IsString(to_item)) {
            reply_error(reply, id, "bad_frame", "a request needs a string to");
            return 0;
        }
        to = to_item->valuestring;
    }

    struct iotp_writer w;
    iotp_writer_begin(&w, out, cap, from, to, name, id);
    const char *code = add_positional(&w, cJSON_GetObjectItemCaseSensitive(obj, "args"));
    if (code) {
        reply_error(reply, id, code, "args must be an array of strings and numbers");
        return 0;
    }
    bool has_proto = false;
    const cJSON *item;
    cJSON_ArrayForEach(item, obj)
    {
        const char *key = item->string;
        if (cJSON_IsNull(item) || strcmp(key, "type") == 0 || strcmp(key, "id") == 0 ||
            strcmp(key, "args") == 0 || (t == IOTP_TYPE_APP && strcmp(key, "to") == 0) ||
            (t == IOTP_TYPE_LOGIN && strcmp(key, "user") == 0))
            continue;
        if (t == IOTP_TYPE_APP || reserved_key(key) || !key[0] || strchr(key, '=')) {
            /* A request's arguments are positional; a system frame has no other fields. */
            reply_error(reply, id, "bad_frame", "a member that has no place in this frame");
            return 0;
        }
        char num[32];
        const char *text;
        if (!scalar_text(item, num, sizeof(num), &text)) {
            reply_error(reply, id, "bad_args", "a value must be a string, number or boolean");
            return 0;
        }
        has_proto |= strcmp(key, "proto") == 0;
        iotp_writer_kv(&w, key, text);
    }
    if (t == IOTP_TYPE_LOGIN && !has_proto)
        iotp_writer_kv(&w, "proto", "1");
    int len = iotp_writer_end(&w);
    if (len <= 0) {
        reply_error(reply, id, writer_code(len), "cannot make a frame of this message");
        return 0;
    }
    if (t == IOTP_TYPE_LOGIN && !fx->welcomed)
        snprintf(fx->user, sizeof(fx->user), "%s", from);
    return len;
}

int ws_frames_decode(struct ws_frames *fx, const char *msg, size_t len, uint8_t *out, size_t cap,
                     char *reply)
{
    const char *end = NULL;
    cJSON *obj = cJSON_ParseWithLengthOpts(msg, len, &end, false);
    int rc = 0;
    if (!obj) {
        /* cJSON says NULL for no memory too; a message it cannot parse is the usual reason. */
        reply_error(reply, 0, "bad_frame", "not a JSON object");
        return 0;
    }
    while (end && end < msg + len && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
        end++;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(obj, "type");
    if (!cJSON_IsObject(obj) || (end && end != msg + len))
        reply_error(reply, 0, "bad_frame", "not a JSON object");
    else if (!cJSON_IsString(type) || !type->valuestring[0])
        reply_error(reply, 0, "bad_frame", "a message needs a string type");
    else
        rc = decode_object(fx, obj, out, cap, reply);
    cJSON_Delete(obj);
    return rc;
}

/* ---- frame -> browser ---- */

/* Add a string member (or array item, when key is NULL), repairing invalid UTF-8. */
static bool add_text(cJSON *to, const char *key, const char *text)
{
    char *repaired = NULL;
    if (!iot_text_utf8_valid(text, strlen(text))) {
        if (!(repaired = iot_text_utf8_repair_dup(text)))
            return false;
        text = repaired;
    }
    cJSON *item = cJSON_CreateString(text);
    free(repaired);
    if (!item)
        return false;
    if (key)
        return cJSON_AddItemToObject(to, key, item);
    return cJSON_AddItemToArray(to, item);
}

/* A canonical decimal that a JSON number holds exactly (at most 15 digits). */
static bool canonical_number(const char *s, double *v)
{
    size_t n = strlen(s);
    if (n == 0 || n > 15 || (s[0] == '0' && n > 1))
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    *v = strtod(s, NULL);
    return true;
}

/* A system argument: a member when it is key=value with a free, ordinary key; otherwise a
 * positional argument in "args". */
static bool add_system_arg(cJSON *obj, cJSON **args, char *arg)
{
    char *eq = strchr(arg, '=');
    if (eq && eq != arg) {
        *eq = '\0';
        const char *key = arg, *value = eq + 1;
        if (!reserved_key(key) && !cJSON_GetObjectItemCaseSensitive(obj, key)) {
            double v;
            if (numeric_key(key) && canonical_number(value, &v))
                return cJSON_AddNumberToObject(obj, key, v) != NULL;
            return add_text(obj, key, value);
        }
        *eq = '=';
    }
    if (!*args && !(*args = cJSON_AddArrayToObject(obj, "args")))
        return false;
    return add_text(*args, NULL, arg);
}

/* Text into out[*at, cap) (room for the NUL kept), false when it does not fit. */
static bool put_raw(char *out, size_t cap, size_t *at, const char *text, size_t n)
{
    if (n >= cap - *at)
        return false;
    memcpy(out + *at, text, n);
    *at += n;
    return true;
}

/* A JSON string literal of text (repaired when not valid UTF-8), escaped as cJSON's printer
 * escapes: the quote, the backslash and control bytes; everything else as it is. */
static bool put_string(char *out, size_t cap, size_t *at, const char *text)
{
    char *repaired = NULL;
    bool ok = false;
    if (!iot_text_utf8_valid(text, strlen(text))) {
        if (!(repaired = iot_text_utf8_repair_dup(text)))
            return false;
        text = repaired;
    }
    if (!put_raw(out, cap, at, "\"", 1))
        goto out;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        static const char short_escape[] = {
            ['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't'};
        char esc[7];
        size_t n = 2;
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
        } else if (*p < sizeof(short_escape) && short_escape[*p]) {
            esc[0] = '\\';
            esc[1] = short_escape[*p];
        } else if (*p < 32) {
            n = (size_t)snprintf(esc, sizeof(esc), "\\u%04x", *p);
        } else {
            if (!put_raw(out, cap, at, (const char *)p, 1))
                goto out;
            continue;
        }
        if (!put_raw(out, cap, at, esc, n))
            goto out;
    }
    ok = put_raw(out, cap, at, "\"", 1);
out:
    free(repaired);
    return ok;
}

/* A request or a device's answer, the bulk of a browser's traffic: its object written
 * directly, as cJSON would print it ({"type","from","id","args":[...]}), without building
 * one (the tree and its printing were most of the WebSocket path's cost per round trip). */
static int encode_positional(const char *const *fields, size_t nfields, uint32_t id, char *out,
                             size_t cap)
{
    char num[16];
    size_t at = 0;
    int n = snprintf(num, sizeof(num), "%u", (unsigned)id);
    bool ok = cap > 0 && put_raw(out, cap, &at, "{\"type\":", 8) &&
              put_string(out, cap, &at, fields[2]) && put_raw(out, cap, &at, ",\"from\":", 8) &&
              put_string(out, cap, &at, fields[0]) && put_raw(out, cap, &at, ",\"id\":", 6) &&
              put_raw(out, cap, &at, num, (size_t)n) && put_raw(out, cap, &at, ",\"args\":[", 9);
    for (size_t i = 4; ok && i < nfields; i++)
        ok = (i == 4 || put_raw(out, cap, &at, ",", 1)) && put_string(out, cap, &at, fields[i]);
    if (!ok || !put_raw(out, cap, &at, "]}", 2))
        return IOT_EBUSY;
    out[at] = '\0';
    return (int)at;
}

int ws_frames_encode(struct ws_frames *fx, const uint8_t *frame, size_t len, char *out, size_t cap)
{
    if (len < 8 || frame[len - 1] != IOTP_EOT || memchr(frame, '\0', len))
        return IOT_EINVAL;
    char *copy = malloc(len);
    if (!copy)
        return IOT_ENOMEM;
    memcpy(copy, frame, len - 1);
    copy[len - 1] = '\0';
    const char *fields[4 + IOTP_MAX_ARGS];
    size_t nfields = 0;
    for (char *p = copy, *next;; p = next + 1) {
        if (nfields == sizeof(fields) / sizeof(fields[0])) {
            free(copy);
            return IOT_EINVAL;
        }
        fields[nfields++] = p;
        if (!(next = strchr(p, IOTP_US)))
            break;
        *next = '\0';
    }
    uint32_t id;
    if (nfields < 4 || iotp_parse_u32(fields[3], strlen(fields[3]), &id) != 0) {
        free(copy);
        return IOT_EINVAL;
    }
    const char *from = fields[0], *to = fields[1], *type = fields[2];
    enum iotp_type t = iotp_type_lookup(type, strlen(type));
    int rc = IOT_ENOMEM;
    cJSON *obj = NULL, *args = NULL;
    /* A request, and a device's answer to one, carry positional arguments; the rest are the
     * protocol's own frames, with key=value arguments. */
    if (t == IOTP_TYPE_APP || (t == IOTP_TYPE_OK && strcmp(from, "iotd") != 0)) {
        rc = encode_positional(fields, nfields, id, out, cap);
        goto out;
    }
    if (!(obj = cJSON_CreateObject()) || !add_text(obj, "type", type) ||
        !add_text(obj, "from", from) || !cJSON_AddNumberToObject(obj, "id", id))
        goto out;
    for (size_t i = 4; i < nfields; i++)
        if (!add_system_arg(obj, &args, (char *)fields[i]))
            goto out;
    if (t == IOTP_TYPE_WELCOME) {
        snprintf(fx->user, sizeof(fx->user), "%s", to);
        fx->welcomed = true;
        char ticket[WS_FRAMES_TICKET_MAX];
        if (id != 0 && fx->on_welcome && fx->on_welcome(fx->arg, fx->user, ticket) &&
            !add_text(obj, "ticket", ticket))
            goto out;
    }
    rc = cJSON_PrintPreallocated(obj, out, (int)(cap > INT32_MAX ? INT32_MAX : cap), false)
             ? (int)strlen(out)
             : IOT_EBUSY;
out:
    cJSON_Delete(obj);
    free(copy);
    return rc;
}
