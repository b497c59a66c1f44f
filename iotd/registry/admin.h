/*
 * admin.h - administrative commands that touch MariaDB: every mutating control command
 * (tenant/type/message/device/user/group add|remove…, access grant|revoke) and the queries that
 * need the database (changes list). Runs on a db thread, one transaction per command, with
 * prepared statements only; each change writes its audit record in the same transaction.
 */
#ifndef IOTD_ADMIN_H
#define IOTD_ADMIN_H

#include "ctl_commands.h"
#include "crypto/secretbox.h"

#include <cjson/cJSON.h>
#include <mysql.h>
#include <stdbool.h>

struct admin_ctx {
    const uint8_t *secret_key; /* SECRETBOX_KEY_LEN bytes: seals device secrets */
    const char *actor;         /* who asks, for the audit log: "uid=0(root)" */
};

/* Execute cmd (validated with ctl_args_validate) on conn. On success *result is a new object
 * (for device add/rekey it holds the new secret as "secret": 64 hex digits, shown once).
 * Errors: IOT_EINVAL, IOT_ENOTFOUND, IOT_EEXIST, IOT_EINUSE, IOT_ECROSS with a sentence in err;
 * IOT_EDB when the connection failed (the transaction is rolled back). */
/* True for the commands admin_execute runs: every CTL_MUTATES command and changes.list. */
bool admin_handles(const struct ctl_command *cmd);

int admin_execute(MYSQL *conn, const struct admin_ctx *ctx, const struct ctl_command *cmd,
                  const cJSON *args, cJSON **result, char *err, size_t errlen);

#endif
