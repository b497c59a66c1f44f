/*
 * iot_outcome.c - the outcome names (see iot_outcome.h).
 */
#include "iot_outcome.h"

#include <string.h>

static const char *const names[IOT_OUTCOME_COUNT] = {
    "ok", "denied", "unknown_type", "bad_args", "offline", "busy", "timeout", "error", "internal"};

const char *iot_outcome_name(unsigned i)
{
    return i < IOT_OUTCOME_COUNT ? names[i] : "internal";
}

bool iot_outcome_known(const char *name)
{
    for (unsigned i = 0; i < IOT_OUTCOME_COUNT; i++)
        if (strcmp(name, names[i]) == 0)
            return true;
    return false;
}
