/*
 * admin_internal.h - what the administrative handlers share (admin.c runs them; the entity
 * families admin_catalogue.c, admin_devices.c, admin_import.c, admin_users.c, admin_access.c and
 * admin_log.c
 * implement them; admin_op.c holds the helpers). Not for use outside iotd/registry.
 *
 * A handler gets the operation (connection, args, result object, err) inside the transaction
 * admin_execute opened, fills op->tenant and op->target for the audit row, and returns IOT_OK or
 * an error code with a sentence in op->err. Each family lists its handlers in a table ending with
 * {CTL_COMMAND_COUNT, NULL}; admin.c looks a command up in every family, so adding a command to
 * a family touches only that family's file.
 */
#ifndef IOTD_ADMIN_INTERNAL_H
#define IOTD_ADMIN_INTERNAL_H

#include "admin.h"

#include "db/sql_stmt.h"

#include <cjson/cJSON.h>
#include <mysql.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NAME_BUF        65
#define DISPLAY_MAX     255
#define DESCRIPTION_MAX 1024

struct admin_op {
    MYSQL *conn;
    const struct admin_ctx *ctx;
    const cJSON *args;
    cJSON *result;
    char *err;
    size_t errlen;
    /* for the audit row, filled by the handler */
    char tenant[NAME_BUF]; /* empty: not tenant-scoped */
    char target[300];
    /* the devices the change added, altered or removed (admin_note_device), for a command
     * whose refresh (admin.c) re-reads only them */
    const char **devices;
    size_t ndevices, cap_devices;
    /* set by a handler whose change turned out to change nothing in the registry (a device
     * import of devices all there already): audited, but not reloaded and published */
    bool unchanged;
    /* set by a devices handler whose change also touched the core (group memberships of the
     * devices it added): the refresh re-reads the core too (REGISTRY_REFRESH_DEVICES_CORE) */
    bool core_changed;
};

struct admin_handler {
    enum ctl_command_id id;
    int (*run)(struct admin_op *op);
};

/* The families' tables, each ending with {CTL_COMMAND_COUNT, NULL}. */
extern const struct admin_handler admin_catalogue_handlers[];
extern const struct admin_handler admin_devices_handlers[];
extern const struct admin_handler admin_users_handlers[];
extern const struct admin_handler admin_access_handlers[];
extern const struct admin_handler admin_log_handlers[];
extern const struct admin_handler admin_import_handlers[];

/* Removing a device, user, type or group takes the rules naming it along (CASCADE in the
 * schema); these count them first so the result can say how many went. */
#define RULES_OF_TYPE "SELECT COUNT(*) FROM access_rules WHERE target_type_id = ?"
#define RULES_OF_DEVICE                                                                            \
    "SELECT COUNT(*) FROM access_rules WHERE subject_device_id = ? OR target_device_id = ?"
#define RULES_OF_GROUP                                                                             \
    "SELECT COUNT(*) FROM access_rules WHERE subject_group_id = ? OR target_group_id = ?"
#define RULES_OF_USER "SELECT COUNT(*) FROM access_rules WHERE subject_user_id = ?"

/* Write a sentence into op->err and return rc. */
__attribute__((format(printf, 3, 4))) int admin_fail(struct admin_op *op, int rc, const char *fmt,
                                                     ...);
/* Note that the change touches device id (a string that lives as long as op->args), so that
 * admin_apply re-reads its row. IOT_ENOMEM with a sentence. */
int admin_note_device(struct admin_op *op, const char *id);
/* The string arg key, NULL when absent. */
const char *admin_arg(const struct admin_op *op, const char *key);
/* The audit row's target ("type:thermo"). */
__attribute__((format(printf, 2, 3))) void admin_set_target(struct admin_op *op, const char *fmt,
                                                            ...);
/* Add a field to the result (a NULL value is JSON null); IOT_ENOMEM with a sentence. */
int admin_result_str(struct admin_op *op, const char *key, const char *value);
int admin_result_num(struct admin_op *op, const char *key, double value);

/* A row found by name: (id, tenant_id, tenant name, extra). */
struct ref {
    long long id;
    long long tenant_id;
    char tenant[NAME_BUF];
    char extra[NAME_BUF]; /* kind, role or auth, depending on the query */
};
/* Run a lookup query; IOT_ENOTFOUND (err untouched) when there is no row. */
int admin_lookup(struct admin_op *op, const char *sql, const struct sql_param *params,
                 size_t nparams, struct ref *out);
/* The lookups by name; IOT_ENOTFOUND with "unknown ..." in err. */
int admin_find_tenant(struct admin_op *op, const char *name, struct ref *out);
int admin_find_type(struct admin_op *op, const char *tenant, const char *name, struct ref *out);
int admin_find_device(struct admin_op *op, const char *id, struct ref *out);
int admin_find_user(struct admin_op *op, const char *tenant, const char *name, struct ref *out);
int admin_find_group(struct admin_op *op, const char *tenant, const char *name, struct ref *out);
/* A COUNT(*) query. */
int admin_count(struct admin_op *op, const char *sql, const struct sql_param *params,
                size_t nparams, long long *out);

/* IOT_EINVAL with a sentence unless name is a lower-case message type name. */
int admin_check_message_name(struct admin_op *op, const char *name);
/* IOT_EINVAL if arg key is longer than max bytes. */
int admin_check_length(struct admin_op *op, const char *key, size_t max);
/* Decode exactly n bytes of hex; false if hex is not 2n hex digits. */
bool admin_hex_decode(const char *hex, uint8_t *out, size_t n);
void admin_hex_encode(const uint8_t *in, size_t n, char *out);
/* The "user" arg as name@tenant (both valid names); sets op->tenant and the target. */
int admin_parse_user(struct admin_op *op, char name[NAME_BUF], char tenant[NAME_BUF]);

#endif
