/*
 * admin.h - administrative commands that touch MariaDB: every mutating control command
 * (tenant/type/message/device/user/group add|remove…, access grant|revoke) and the queries that
 * need the database (changes list, device history, audit). Runs on a db thread, one transaction
 * per command, with prepared statements only; each change writes its audit record in the same
 * transaction, and admin_apply then publishes a registry snapshot that holds it.
 */
#ifndef IOTD_ADMIN_H
#define IOTD_ADMIN_H

#include "ctl_commands.h"
#include "crypto/secretbox.h"
#include "registry.h"

#include <cjson/cJSON.h>
#include <mysql.h>
#include <stdbool.h>

struct admin_ctx {
    const uint8_t *secret_key; /* SECRETBOX_KEY_LEN bytes: seals device secrets */
    const char *actor;         /* who asks, for the audit log: "root (uid=0 pid=42)" */
};

/* True for the commands admin_execute runs: every CTL_MUTATES command and the reads of the
 * database's logs (changes list, device history, audit). */
bool admin_handles(const struct ctl_command *cmd);

/* Execute cmd (validated with ctl_args_validate) on conn. On success *result is a new object
 * (for device add/rekey it holds the new secret as "secret": 64 hex digits, shown once).
 * Errors: IOT_EINVAL, IOT_ENOTFOUND, IOT_EEXIST, IOT_EINUSE, IOT_ECROSS with a sentence in err;
 * IOT_EDB when the connection failed (the transaction is rolled back). */
int admin_execute(MYSQL *conn, const struct admin_ctx *ctx, const struct ctl_command *cmd,
                  const cJSON *args, cJSON **result, char *err, size_t errlen);

/* admin_execute, and for a change (CTL_MUTATES, but not CTL_KEEPS_REGISTRY: the kicks are audited
 * and change nothing) the rest of it: once committed, what the change touched is read again
 * from conn (registry_refresh in registry_internal.h: the devices its handler noted, or every
 * table but devices; everything for a tenant removal) and a new snapshot sharing the rest with
 * the current one is published, so the change is visible to the next request of any client. Changes
 * are serialized (execute, commit, reload and publish under one lock), so two concurrent changes
 * never publish their snapshots out of order. A reload that fails after the commit is logged and
 * the command still succeeds: the next successful load shows the change. */
int admin_apply(registry_t *reg, MYSQL *conn, const struct admin_ctx *ctx,
                const struct ctl_command *cmd, const cJSON *args, cJSON **result, char *err,
                size_t errlen);

/* Reload the whole registry from conn and publish it, in order with the changes (under their
 * lock): for rows changed in MariaDB behind iotd's back, which a change's refresh (it re-reads
 * only what the change touched) does not see. Returns the load's error with a sentence. */
int admin_reload(registry_t *reg, MYSQL *conn, char *err, size_t errlen);

#endif
