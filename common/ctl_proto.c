/* ctl_proto.c - building and reading control protocol messages (see ctl_proto.h). */
#include "ctl_proto.h"

#include "iot_error.h"
#include "iot_text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

cJSON *ctl_request_new(uint32_t id, const char *cmd, cJSON *args)
{
    cJSON *msg = cJSON_CreateObject();
    if (!msg || !args)
        args = args ? args : cJSON_CreateObject();
    if (!msg || !args) {
        cJSON_Delete(msg);
        cJSON_Delete(args);
        return NULL;
    }
    cJSON_AddNumberToObject(msg, "id", id);
    cJSON_AddStringToObject(msg, "cmd", cmd);
    cJSON_AddItemToObject(msg, "args", args);
    return msg;
}

cJSON *ctl_reply_ok(uint32_t id, cJSON *result)
{
    cJSON *msg = cJSON_CreateObject();
    if (!result)
        result = cJSON_CreateObject();
    if (!msg || !result) {
        cJSON_Delete(msg);
        cJSON_Delete(result);
        return NULL;
    }
    cJSON_AddNumberToObject(msg, "id", id);
    cJSON_AddTrueToObject(msg, "ok");
    cJSON_AddItemToObject(msg, "result", result);
    return msg;
}

cJSON *ctl_reply_error(uint32_t id, int code, const char *message)
{
    cJSON *msg = cJSON_CreateObject();
    cJSON *error = cJSON_CreateObject();
    if (!msg || !error) {
        cJSON_Delete(msg);
        cJSON_Delete(error);
        return NULL;
    }
    cJSON_AddNumberToObject(msg, "id", id);
    cJSON_AddFalseToObject(msg, "ok");
    cJSON_AddStringToObject(error, "code", iot_error_name(code));
    cJSON_AddStringToObject(error, "message", message ? message : iot_strerror(code));
    cJSON_AddItemToObject(msg, "error", error);
    return msg;
}

/* True when item's key and string, and everything inside it, are valid UTF-8. */
static bool tree_valid(const cJSON *item)
{
    if (item->string && !iot_text_utf8_valid(item->string, strlen(item->string)))
        return false;
    if (cJSON_IsString(item) && item->valuestring &&
        !iot_text_utf8_valid(item->valuestring, strlen(item->valuestring)))
        return false;
    for (const cJSON *child = item->child; child; child = child->next)
        if (!tree_valid(child))
            return false;
    return true;
}

bool ctl_json_valid(const cJSON *item)
{
    return !item || tree_valid(item);
}

/* Replace *text (allocated by cJSON) with its repaired copy when it is not valid UTF-8. */
static int repair_string(char **text)
{
    size_t len = strlen(*text);
    if (iot_text_utf8_valid(*text, len))
        return IOT_OK;
    char *copy = cJSON_malloc(IOT_TEXT_REPAIRED_MAX(len));
    if (!copy)
        return IOT_ENOMEM;
    iot_text_utf8_repair(copy, IOT_TEXT_REPAIRED_MAX(len), *text, len);
    cJSON_free(*text);
    *text = copy;
    return IOT_OK;
}

int ctl_json_repair(cJSON *item)
{
    int rc = IOT_OK;
    if (!item)
        return rc;
    /* A constant key is the program's own literal, not text from the network. */
    if (item->string && !(item->type & cJSON_StringIsConst) && repair_string(&item->string))
        rc = IOT_ENOMEM;
    if (cJSON_IsString(item) && item->valuestring && repair_string(&item->valuestring))
        rc = IOT_ENOMEM;
    for (cJSON *child = item->child; child; child = child->next)
        if (ctl_json_repair(child) != IOT_OK)
            rc = IOT_ENOMEM;
    return rc;
}

/* Rewrite raw DEL and C1 characters of printed (valid UTF-8) JSON as \u escapes. They can only
 * be inside strings, since everything else JSON prints is ASCII. Frees text on failure. */
static char *escape_controls(char *text)
{
    size_t extra = 0, len = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++, len++) {
        if (*p == 0x7f)
            extra += 5; /* 1 byte -> \u007f */
        else if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
            extra += 4; /* 2 bytes -> \u0080 */
    }
    if (extra == 0)
        return text;
    char *out = malloc(len + extra + 1), *o = out;
    if (!out) {
        free(text);
        return NULL;
    }
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if (*p == 0x7f) {
            memcpy(o, "\\u007f", 6);
            o += 6;
        } else if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
            snprintf(o, 7, "\\u%04x", (unsigned)p[1]);
            o += 6;
            p++;
        } else {
            *o++ = (char)*p;
        }
    }
    *o = '\0';
    free(text);
    return out;
}

char *ctl_json_print(const cJSON *item, bool formatted)
{
    cJSON *copy = NULL;
    char *text = NULL;
    if (!item)
        return NULL;
    /* The common case (all valid) prints the item itself; only bad text costs a copy. */
    const cJSON *shown = item;
    if (!tree_valid(item)) {
        copy = cJSON_Duplicate(item, true);
        if (!copy || ctl_json_repair(copy) != IOT_OK)
            goto out;
        shown = copy;
    }
    text = formatted ? cJSON_Print(shown) : cJSON_PrintUnformatted(shown);
    if (text)
        text = escape_controls(text);
out:
    cJSON_Delete(copy);
    return text;
}

int ctl_request_check(const char *line, size_t len, char *err, size_t errlen)
{
    /* Two passes, so that no byte escapes the first: the second skips escaped characters. */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        if (c < 0x20 && c != '\t' && c != '\r') {
            snprintf(err, errlen, "request holds a control byte (0x%02x) at offset %zu", c, i);
            return IOT_EINVAL;
        }
    }
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        if (in_string && line[i] == '\\' && i + 1 < len) {
            if (line[i + 1] == 'u' && i + 5 < len && memcmp(line + i + 2, "0000", 4) == 0) {
                snprintf(err, errlen, "request holds a NUL character (\\u0000) at offset %zu", i);
                return IOT_EINVAL;
            }
            i++; /* the escaped character cannot end the string */
        } else if (line[i] == '"') {
            in_string = !in_string;
        }
    }
    if (!iot_text_utf8_valid(line, len)) {
        snprintf(err, errlen, "request is not valid UTF-8");
        return IOT_EINVAL;
    }
    return IOT_OK;
}

char *ctl_serialize_line(const cJSON *msg)
{
    char *text = ctl_json_print(msg, false);
    if (!text)
        return NULL;
    size_t len = strlen(text);
    char *line = realloc(text, len + 2);
    if (!line) {
        free(text);
        return NULL;
    }
    line[len] = '\n';
    line[len + 1] = '\0';
    return line;
}

const char *ctl_get_string(const cJSON *obj, const char *key)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(item) ? item->valuestring : NULL;
}

long long ctl_get_int(const cJSON *obj, const char *key, long long def)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(item) ? (long long)item->valuedouble : def;
}

int ctl_get_bool(const cJSON *obj, const char *key, int def)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsBool(item) ? cJSON_IsTrue(item) : def;
}
