/*
 * query_parse.c - a QUERY's arguments checked against the table of what= (iot-protocol(7),
 * QUERIES), and the cursors of each what=.
 *
 * Each what= names the keys it takes; a key's value is checked by its kind (a name of at most
 * 64 bytes, 0|1, a time in ms, the limit, an alarm state, the cursor). Anything else is refused
 * before the request goes anywhere: an unknown what= or key, an empty value, a malformed one.
 */
#include "query/query_internal.h"

#include "iot_error.h"
#include "iot_text.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum key_kind { KEY_NAME, KEY_FLAG, KEY_TIME, KEY_LIMIT, KEY_STATE, KEY_CURSOR, KEY_WHAT };

/* The keys any QUERY may carry, each with where its value goes (names) and how it is checked. */
static const struct query_key {
    const char *name;
    enum key_kind kind;
    size_t offset; /* KEY_NAME, KEY_STATE: the field of struct query_request */
} keys[] = {
    {"what", KEY_WHAT, 0},
    {"device", KEY_NAME, offsetof(struct query_request, device)},
    {"group", KEY_NAME, offsetof(struct query_request, group)},
    {"type", KEY_NAME, offsetof(struct query_request, type)},
    {"event", KEY_NAME, offsetof(struct query_request, event)},
    {"match", KEY_NAME, offsetof(struct query_request, match)},
    {"state", KEY_STATE, offsetof(struct query_request, state)},
    {"online", KEY_FLAG, 0},
    {"since", KEY_TIME, offsetof(struct query_request, since_ms)},
    {"until", KEY_TIME, offsetof(struct query_request, until_ms)},
    {"limit", KEY_LIMIT, 0},
    {"after", KEY_CURSOR, 0},
};

/* What each what= takes (besides what=, limit= and after=, which all take). */
static const struct {
    const char *name;
    const char *keys[6];
} whats[] = {
    [QUERY_DEVICES] = {"devices", {"device", "group", "type", "online", "match", NULL}},
    [QUERY_CATALOGUE] = {"catalogue", {"device", "type", NULL}},
    [QUERY_HISTORY] = {"history", {"device", "event", "since", "until", NULL}},
    [QUERY_ALARMS] = {"alarms", {"device", "state", NULL}},
    [QUERY_COMMANDS] = {"commands", {"device", NULL}},
};

#define NWHATS (sizeof(whats) / sizeof(whats[0]))

const char *query_what_name(enum query_what what)
{
    return (unsigned)what < NWHATS ? whats[what].name : "?";
}

static bool takes(enum query_what what, const char *key)
{
    if (strcmp(key, "what") == 0 || strcmp(key, "limit") == 0 || strcmp(key, "after") == 0)
        return true;
    for (const char *const *k = whats[what].keys; *k; k++)
        if (strcmp(*k, key) == 0)
            return true;
    return false;
}

static int fail(char *why, size_t whylen, const char *fmt, const char *arg)
{
    snprintf(why, whylen, fmt, arg);
    return IOT_EINVAL;
}

/* Split "key=value" into key (cut to 32 bytes) and value; false without '='. */
static bool split(const char *arg, char *key, size_t keylen, const char **value)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg)
        return false;
    size_t n = (size_t)(eq - arg);
    snprintf(key, keylen, "%.*s", (int)(n < keylen - 1 ? n : keylen - 1), arg);
    *value = eq + 1;
    return n < keylen;
}

static int store(struct query_request *r, const struct query_key *k, const char *v, char *why,
                 size_t whylen)
{
    static const char *const states[] = {"open", "raised", "acknowledged", "cleared", "all"};
    uint64_t n = 0;
    switch (k->kind) {
    case KEY_WHAT:
        return IOT_OK;
    case KEY_NAME:
        if (strlen(v) > 64)
            return fail(why, whylen, "%s= is at most 64 bytes", k->name);
        memcpy((char *)r + k->offset, v, strlen(v) + 1);
        return IOT_OK;
    case KEY_FLAG:
        if (strcmp(v, "0") != 0 && strcmp(v, "1") != 0)
            return fail(why, whylen, "%s= is 0 or 1", k->name);
        r->online = v[0] - '0';
        return IOT_OK;
    case KEY_TIME:
        if (!iot_text_decimal(v, INT64_MAX / 2, &n) || n == 0)
            return fail(why, whylen, "%s= is a time in milliseconds since the epoch", k->name);
        *(int64_t *)((char *)r + k->offset) = (int64_t)n;
        return IOT_OK;
    case KEY_LIMIT:
        if (!iot_text_decimal(v, QUERY_LIMIT_MAX, &n) || n == 0)
            return fail(why, whylen, "limit= is 1 to %s", "500");
        r->limit = (unsigned)n;
        return IOT_OK;
    case KEY_STATE:
        for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
            if (strcmp(v, states[i]) == 0) {
                snprintf(r->state, sizeof(r->state), "%s", v);
                return IOT_OK;
            }
        return fail(why, whylen, "%s= is open, raised, acknowledged, cleared or all", k->name);
    case KEY_CURSOR:
        if (query_cursor_parse(r->what, v, r) != IOT_OK)
            return fail(why, whylen, "after= is not a cursor of what=%s (give back next=)",
                        query_what_name(r->what));
        return IOT_OK;
    }
    return IOT_EINVAL;
}

int query_parse(const struct iotp_frame *f, struct query_request *r, char *why, size_t whylen)
{
    char key[33];
    const char *v = NULL, *what = NULL;
    memset(r, 0, sizeof(*r));
    r->online = -1;
    r->limit = QUERY_LIMIT_DEFAULT;
    /* what= first: it decides which keys the others may be. */
    for (unsigned i = 0; i < f->nargs; i++)
        if (split(f->args[i], key, sizeof(key), &v) && strcmp(key, "what") == 0)
            what = v;
    if (!what)
        return fail(why, whylen, "%s", "what= is devices, catalogue, history, alarms or commands");
    size_t w = 0;
    while (w < NWHATS && strcmp(whats[w].name, what) != 0)
        w++;
    if (w == NWHATS)
        return fail(why, whylen, "%s", "what= is devices, catalogue, history, alarms or commands");
    r->what = (enum query_what)w;
    for (unsigned i = 0; i < f->nargs; i++) {
        if (!split(f->args[i], key, sizeof(key), &v))
            return fail(why, whylen, "%s", "arguments are key=value");
        const struct query_key *k = NULL;
        for (size_t j = 0; j < sizeof(keys) / sizeof(keys[0]) && !k; j++)
            if (strcmp(keys[j].name, key) == 0)
                k = &keys[j];
        if (!k || !takes(r->what, key))
            return snprintf(why, whylen, "unknown key %s for what=%s", key, whats[w].name),
                   IOT_EINVAL;
        if (!v[0])
            return fail(why, whylen, "empty value for %s=", key);
        int rc = store(r, k, v, why, whylen);
        if (rc != IOT_OK)
            return rc;
    }
    /* Combinations the table cannot say. */
    if ((r->device[0] != 0) + (r->group[0] != 0) + (r->type[0] != 0) > 1)
        return fail(why, whylen, "%s", "give one of device=, group=, type=");
    if (r->what == QUERY_CATALOGUE && !r->device[0] && !r->type[0])
        return fail(why, whylen, "%s", "what=catalogue needs device= or type=");
    if (r->what == QUERY_HISTORY && !r->device[0])
        return fail(why, whylen, "%s", "what=history needs device=");
    if (r->since_ms && r->until_ms && r->since_ms >= r->until_ms)
        return fail(why, whylen, "%s", "since= must be before until=");
    return IOT_OK;
}

/* ---- cursors ----
 *
 * devices: the last device id, as it is. catalogue: "<0|1>.<name>", 0 for a command and 1 for
 * an event (commands come first). history: "<at>.<id>" (received at, row id). alarms:
 * "<open>.<raised_at>.<id>" (open 1 or 0). commands: "<at>.<block>.<seq>". Numbers decimal. */

static const unsigned cursor_numbers[] = {
    [QUERY_DEVICES] = 0, [QUERY_CATALOGUE] = 0, [QUERY_HISTORY] = 2,
    [QUERY_ALARMS] = 3,  [QUERY_COMMANDS] = 3,
};

int query_cursor_parse(enum query_what what, const char *text, struct query_request *r)
{
    char buf[96];
    if ((unsigned)what >= NWHATS || !text[0] || strlen(text) >= sizeof(r->cursor_text))
        return IOT_EINVAL;
    if (what == QUERY_DEVICES) {
        if (strlen(text) > 64)
            return IOT_EINVAL;
        snprintf(r->cursor_text, sizeof(r->cursor_text), "%s", text);
        r->has_cursor = true;
        return IOT_OK;
    }
    if (what == QUERY_CATALOGUE) {
        if ((text[0] != '0' && text[0] != '1') || text[1] != '.' || !text[2] ||
            strlen(text + 2) > 64)
            return IOT_EINVAL;
        snprintf(r->cursor_text, sizeof(r->cursor_text), "%s", text);
        r->has_cursor = true;
        return IOT_OK;
    }
    snprintf(buf, sizeof(buf), "%s", text);
    unsigned n = 0;
    char *save = NULL;
    for (char *part = strtok_r(buf, ".", &save); part; part = strtok_r(NULL, ".", &save)) {
        uint64_t v = 0;
        if (n >= cursor_numbers[what] || !iot_text_decimal(part, INT64_MAX / 2, &v))
            return IOT_EINVAL;
        r->cursor_num[n++] = (int64_t)v;
    }
    /* strtok_r skips empty parts: "1..2" must not pass for "1.2". */
    if (n != cursor_numbers[what] || strstr(text, "..") || text[0] == '.' ||
        text[strlen(text) - 1] == '.')
        return IOT_EINVAL;
    if (what == QUERY_ALARMS && r->cursor_num[0] > 1)
        return IOT_EINVAL;
    r->has_cursor = true;
    return IOT_OK;
}

void query_cursor_format(enum query_what what, const char *text, const int64_t num[3], char *out,
                         size_t outlen)
{
    switch (cursor_numbers[what]) {
    case 0:
        snprintf(out, outlen, "%s", text);
        break;
    case 2:
        snprintf(out, outlen, "%" PRId64 ".%" PRId64, num[0], num[1]);
        break;
    default:
        snprintf(out, outlen, "%" PRId64 ".%" PRId64 ".%" PRId64, num[0], num[1], num[2]);
        break;
    }
}
