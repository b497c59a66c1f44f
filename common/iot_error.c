/* iot_error.c - names, sentences and exit statuses of the IOT_E* codes (see iot_error.h). */
#include "iot_error.h"

#include <string.h>

struct error_info {
    const char *name;
    const char *sentence;
    int exit_status;
};

/* Indexed by -code. */
static const struct error_info errors[IOT_ERROR_COUNT] = {
    [0] = {"ok", "success", 0},
    [-IOT_EINVAL] = {"bad_args", "invalid argument", 2},
    [-IOT_ENOTFOUND] = {"not_found", "not found", 3},
    [-IOT_EEXIST] = {"exists", "already exists", 5},
    [-IOT_EDENIED] = {"denied", "permission denied", 4},
    [-IOT_EINUSE] = {"in_use", "still in use", 7},
    [-IOT_EBUSY] = {"busy", "server busy, retry later", 8},
    [-IOT_EDB] = {"db_unavailable", "database unavailable", 8},
    [-IOT_ENOMEM] = {"no_memory", "out of memory", 1},
    [-IOT_EIO] = {"io", "input/output error", 1},
    [-IOT_EPROTO] = {"bad_request", "malformed request", 2},
    [-IOT_EUNREACHABLE] = {"unreachable", "daemon unreachable", 6},
    [-IOT_EINTERNAL] = {"internal", "internal error", 1},
    [-IOT_ESCHEMA] = {"schema", "database schema is newer than this iotd", 1},
    [-IOT_ECROSS] = {"cross_tenant", "refers to another tenant", 7},
    [-IOT_EOFFLINE] = {"offline", "device offline", 9},
    [-IOT_ETIMEOUT] = {"timeout", "no answer within the timeout", 10},
    [-IOT_EUNKNOWN_TYPE] = {"unknown_type", "message type not in the device's catalogue", 11},
    [-IOT_EDEVICE] = {"error", "the device answered with an error", 12},
};

static const struct error_info *lookup(int code)
{
    if (code > 0 || code <= -IOT_ERROR_COUNT)
        return &errors[-IOT_EINTERNAL];
    return &errors[-code];
}

const char *iot_error_name(int code)
{
    return lookup(code)->name;
}

const char *iot_strerror(int code)
{
    return lookup(code)->sentence;
}

int iot_error_exit_status(int code)
{
    return lookup(code)->exit_status;
}

int iot_error_from_name(const char *name)
{
    for (int i = 0; i < IOT_ERROR_COUNT; i++)
        if (name && strcmp(errors[i].name, name) == 0)
            return -i;
    return IOT_EINTERNAL;
}
