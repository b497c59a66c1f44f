/*
 * control_backup.c - "backup FILE": write a consistent snapshot of the database and the secret
 * key (db/backup.c) on a db thread, and answer with what it holds. The file is iotd's to write,
 * so FILE is an absolute path in a directory iotd's user may write (iotctl(8), backup).
 */
#include "control/control_dispatch.h"
#include "control/control_internal.h"
#include "db/backup.h"

#include "ctl_proto.h"
#include "iot_error.h"
#include "base/log.h"

#include <stdio.h>

int control_run_backup(MYSQL *db, const struct control_call *call, cJSON **result, char *err,
                       size_t errlen)
{
    const char *path = ctl_get_string(call->args, "path");
    struct backup_summary s;
    if (!call->srv->deps.secret_key) {
        snprintf(err, errlen, "this daemon has no secret key to back up");
        return IOT_EINTERNAL;
    }
    int rc = backup_write(db, path, call->srv->deps.secret_key, &s, err, errlen);
    if (rc != IOT_OK)
        return rc;
    log_info("control: backup to %s by %s: schema %d, %u tables, %llu rows", path, call->actor,
             s.schema_version, s.tables, (unsigned long long)s.rows);
    *result = cJSON_CreateObject();
    if (!*result || !cJSON_AddStringToObject(*result, "file", path) ||
        !cJSON_AddNumberToObject(*result, "schema", s.schema_version) ||
        !cJSON_AddNumberToObject(*result, "tables", s.tables) ||
        !cJSON_AddNumberToObject(*result, "rows", (double)s.rows) ||
        !cJSON_AddNumberToObject(*result, "bytes", (double)s.bytes))
        return IOT_ENOMEM;
    return IOT_OK;
}
