/* ctl_proto.c - building and reading control protocol messages (see ctl_proto.h). */
#include "ctl_proto.h"

#include "iot_error.h"

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

char *ctl_serialize_line(const cJSON *msg)
{
    char *text = cJSON_PrintUnformatted(msg);
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
