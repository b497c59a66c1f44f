/*
 * admin_import.c - "device import": one batch of devices registered in one transaction (see
 * admin.c for how a command runs; iotctl reads the file and sends it in batches).
 *
 * DESIGN. A batch is all or nothing: every row is checked first (names, tenant, type, auth and
 * serial, groups, a repeated id), against the database where a check needs it, and the first
 * bad row fails the batch with its file line ("line 12: ...") before anything is written. A
 * row whose device already exists with the same tenant, type, name, auth and serial is
 * skipped (so a re-run of an import adds nothing) and counted; one that exists otherwise is
 * an error. The new devices are then written with one multi-row INSERT and their group
 * memberships with another, and admin_execute commits once and publishes one snapshot for
 * the whole batch: the cost of an import is per batch, not per device. A batch that changed
 * nothing (every row skipped, no new membership) publishes nothing. Lookups of tenants,
 * types and groups are remembered for the batch, since a fleet's rows name few of them.
 */
#include "admin_internal.h"

#include "crypto/secretbox.h"
#include "ctl_proto.h"
#include "iot_error.h"
#include "registry_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IMPORT_MAX_GROUPS 16 /* groups a row may name */
#define IMPORT_CACHE      64 /* distinct (tenant, type or group) lookups a batch remembers */

/* One row as checked: everything the INSERTs need. */
struct import_row {
    long long line;
    const char *id, *tenant, *type, *name, *auth;
    long long tenant_id, type_id;
    bool has_serial, exists;
    uint8_t serial[REG_SERIAL_LEN];
    unsigned ngroups;
    long long group_ids[IMPORT_MAX_GROUPS];
    uint8_t secret[REG_SECRET_LEN], sealed[REG_SEALED_LEN];
};

struct import_cache {
    struct {
        char tenant[NAME_BUF], name[NAME_BUF];
        bool group;
        struct ref ref;
    } items[IMPORT_CACHE];
    unsigned n;
};

struct import {
    struct admin_op *op;
    struct import_row *rows;
    size_t n;
    struct import_cache cache;
};

__attribute__((format(printf, 3, 4))) static int
row_fail(struct import *im, const struct import_row *r, const char *fmt, ...)
{
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return admin_fail(im->op, IOT_EINVAL, "line %lld: %s", r->line, what);
}

/* A type (group false) or group of a tenant, looked up once per batch. */
static int find_cached(struct import *im, const char *tenant, const char *name, bool group,
                       struct ref *out)
{
    struct import_cache *c = &im->cache;
    for (unsigned i = 0; i < c->n; i++)
        if (c->items[i].group == group && strcmp(c->items[i].tenant, tenant) == 0 &&
            strcmp(c->items[i].name, name) == 0) {
            *out = c->items[i].ref;
            return IOT_OK;
        }
    int rc = group ? admin_find_group(im->op, tenant, name, out)
                   : admin_find_type(im->op, tenant, name, out);
    if (rc == IOT_OK && c->n < IMPORT_CACHE) {
        snprintf(c->items[c->n].tenant, NAME_BUF, "%s", tenant);
        snprintf(c->items[c->n].name, NAME_BUF, "%s", name);
        c->items[c->n].group = group;
        c->items[c->n].ref = *out;
        c->n++;
    }
    return rc;
}

/* The text of field key of row o: NULL when absent, null or empty. */
static const char *field(const cJSON *o, const char *key)
{
    const char *v = ctl_get_string(o, key);
    return v && *v ? v : NULL;
}

/* Groups as a JSON array of names or one string "a;b". */
static int check_groups(struct import *im, struct import_row *r, const cJSON *o)
{
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(o, "groups");
    char names[IMPORT_MAX_GROUPS][NAME_BUF];
    unsigned n = 0;
    if (cJSON_IsArray(g)) {
        const cJSON *item;
        cJSON_ArrayForEach(item, g)
        {
            if (!cJSON_IsString(item) || n == IMPORT_MAX_GROUPS ||
                strlen(item->valuestring) >= NAME_BUF)
                return row_fail(im, r, "groups must be at most %d group names", IMPORT_MAX_GROUPS);
            snprintf(names[n++], NAME_BUF, "%s", item->valuestring);
        }
    } else if (cJSON_IsString(g) && g->valuestring[0]) {
        const char *p = g->valuestring;
        while (*p) {
            size_t len = strcspn(p, ";");
            if (n == IMPORT_MAX_GROUPS || len >= NAME_BUF)
                return row_fail(im, r, "groups must be at most %d group names separated by ';'",
                                IMPORT_MAX_GROUPS);
            snprintf(names[n++], NAME_BUF, "%.*s", (int)len, p);
            p += len + (p[len] == ';');
        }
    } else if (g && !cJSON_IsNull(g) && !(cJSON_IsString(g) && !g->valuestring[0])) {
        return row_fail(im, r, "groups must be a list of group names");
    }
    for (unsigned i = 0; i < n; i++) {
        struct ref ref;
        if (!ctl_value_valid(CTL_ARG_NAME, names[i]))
            return row_fail(im, r, "group '%s' is not a valid name", names[i]);
        int rc = find_cached(im, r->tenant, names[i], true, &ref);
        if (rc != IOT_OK)
            return row_fail(im, r, "%s", im->op->err);
        if (strcmp(ref.extra, "device") != 0)
            return row_fail(im, r, "group %s is a group of users", names[i]);
        r->group_ids[r->ngroups++] = ref.id;
    }
    return IOT_OK;
}

/* Check one row against the request's tenant and the database's tenants, types and groups. */
static int check_row(struct import *im, struct import_row *r, const cJSON *o)
{
    struct ref type;
    r->line = ctl_get_int(o, "line", 0);
    r->id = field(o, "id");
    r->tenant = field(o, "tenant") ? field(o, "tenant") : admin_arg(im->op, "tenant");
    r->type = field(o, "type");
    r->name = field(o, "name");
    r->auth = field(o, "auth") ? field(o, "auth") : "hmac";
    const char *serial = field(o, "serial");
    int kind = reg_auth_parse(r->auth);
    if (!r->id || !ctl_value_valid(CTL_ARG_NAME, r->id))
        return row_fail(im, r, "id must be a name: letters, digits, '_', '.' or '-' (1 to 64)");
    if (!r->tenant)
        return row_fail(im, r, "no tenant: give --tenant or a tenant column");
    if (!ctl_value_valid(CTL_ARG_NAME, r->tenant))
        return row_fail(im, r, "tenant '%s' is not a valid name", r->tenant);
    if (!r->type || !ctl_value_valid(CTL_ARG_NAME, r->type))
        return row_fail(im, r, "type must be a device type's name");
    if (r->name && (strlen(r->name) > DISPLAY_MAX || !ctl_value_valid(CTL_ARG_STRING, r->name)))
        return row_fail(im, r,
                        "name must be UTF-8 text without control characters, at most %d "
                        "bytes",
                        DISPLAY_MAX);
    if (kind < 0)
        return row_fail(im, r, "auth must be hmac or atecc508a");
    if (kind == REG_AUTH_ATECC508A && !serial)
        return row_fail(im, r, "an atecc508a device needs a serial (18 hex digits)");
    if (kind == REG_AUTH_HMAC && serial)
        return row_fail(im, r, "a serial only applies to auth atecc508a");
    if (serial && !admin_hex_decode(serial, r->serial, REG_SERIAL_LEN))
        return row_fail(im, r, "serial must be exactly 9 bytes (18 hex digits)");
    r->has_serial = serial != NULL;
    int rc = find_cached(im, r->tenant, r->type, false, &type);
    if (rc != IOT_OK)
        return row_fail(im, r, "%s", im->op->err);
    r->type_id = type.id;
    r->tenant_id = type.tenant_id;
    return check_groups(im, r, o);
}

/* The stored device of row r's id, if any: skipped when it is the same, else an error. */
static int existing_row(void *ctx, const struct sql_row *row)
{
    struct import *im = ctx;
    const char *id = sql_row_str(row, 0);
    for (size_t i = 0; i < im->n; i++) {
        struct import_row *r = &im->rows[i];
        if (strcmp(r->id, id) != 0)
            continue;
        size_t len = 0;
        const uint8_t *serial = sql_row_blob(row, 5, &len);
        bool same = strcmp(sql_row_str(row, 1), r->tenant) == 0 &&
                    strcmp(sql_row_str(row, 2), r->type) == 0 &&
                    strcmp(sql_row_str(row, 4), r->auth) == 0 &&
                    (sql_row_str(row, 3) ? r->name && strcmp(sql_row_str(row, 3), r->name) == 0
                                         : !r->name) &&
                    (serial ? r->has_serial && len == REG_SERIAL_LEN &&
                                  memcmp(serial, r->serial, REG_SERIAL_LEN) == 0
                            : !r->has_serial);
        if (!same)
            return row_fail(im, r,
                            "device %s already exists (tenant %s, type %s) and differs from "
                            "this row",
                            id, sql_row_str(row, 1), sql_row_str(row, 2));
        r->exists = true;
    }
    return IOT_OK;
}

/* "prefix(?,?),(?,?)..." for n rows of one placeholder group into a new string. */
static char *rows_sql(const char *prefix, const char *group, size_t n, const char *suffix)
{
    size_t len = strlen(prefix) + n * (strlen(group) + 1) + strlen(suffix) + 1;
    char *sql = malloc(len), *p = sql;
    if (!sql)
        return NULL;
    p += sprintf(p, "%s", prefix);
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%s%s", i ? "," : "", group);
    sprintf(p, "%s", suffix);
    return sql;
}

/* Which of the batch's ids exist already (one query). */
static int find_existing(struct import *im)
{
    struct sql_param *params = calloc(im->n, sizeof(*params));
    char *sql = rows_sql("SELECT d.id, te.name, ty.name, d.display_name, d.auth, d.atecc_serial "
                         "FROM devices d JOIN tenants te ON te.id = d.tenant_id "
                         "JOIN device_types ty ON ty.id = d.type_id WHERE d.id IN (",
                         "?", im->n, ")");
    int rc = params && sql ? IOT_OK : admin_fail(im->op, IOT_ENOMEM, "out of memory");
    for (size_t i = 0; rc == IOT_OK && i < im->n; i++)
        params[i] = sql_str(im->rows[i].id);
    if (rc == IOT_OK)
        rc = sql_query(im->op->conn, sql, params, im->n, existing_row, im, im->op->err,
                       im->op->errlen);
    free(sql);
    free(params);
    return rc;
}

/* The new devices, with fresh sealed secrets, in one INSERT. */
static int insert_devices(struct import *im, size_t added)
{
    enum { COLS = 7 };
    struct sql_param *params = calloc(added * COLS, sizeof(*params));
    char *sql = rows_sql("INSERT INTO devices (id, tenant_id, type_id, display_name, auth, secret, "
                         "atecc_serial) VALUES ",
                         "(?,?,?,?,?,?,?)", added, "");
    int rc = params && sql ? IOT_OK : admin_fail(im->op, IOT_ENOMEM, "out of memory");
    size_t k = 0;
    for (size_t i = 0; rc == IOT_OK && i < im->n; i++) {
        struct import_row *r = &im->rows[i];
        if (r->exists)
            continue;
        rc = secretbox_random(r->secret, REG_SECRET_LEN);
        if (rc == IOT_OK)
            rc = secretbox_seal(im->op->ctx->secret_key, r->secret, REG_SECRET_LEN,
                                (const uint8_t *)r->id, strlen(r->id), r->sealed);
        if (rc != IOT_OK) {
            rc = admin_fail(im->op, rc, "cannot make a sealed secret");
            break;
        }
        params[k++] = sql_str(r->id);
        params[k++] = sql_int(r->tenant_id);
        params[k++] = sql_int(r->type_id);
        params[k++] = sql_str(r->name);
        params[k++] = sql_str(r->auth);
        params[k++] = sql_blob(r->sealed, REG_SEALED_LEN);
        params[k++] = r->has_serial ? sql_blob(r->serial, REG_SERIAL_LEN) : sql_str(NULL);
    }
    if (rc == IOT_OK && added > 0)
        rc = sql_exec(im->op->conn, sql, params, k, NULL, NULL, im->op->err, im->op->errlen);
    free(sql);
    free(params);
    return rc;
}

/* Every row's group memberships (also the skipped rows': an import may add a group);
 * *inserted gets how many were new. */
static int insert_memberships(struct import *im, unsigned long long *inserted)
{
    size_t n = 0, k = 0;
    *inserted = 0;
    for (size_t i = 0; i < im->n; i++)
        n += im->rows[i].ngroups;
    if (n == 0)
        return IOT_OK;
    struct sql_param *params = calloc(n * 3, sizeof(*params));
    char *sql =
        rows_sql("INSERT IGNORE INTO group_devices (tenant_id, group_id, device_id) VALUES ",
                 "(?,?,?)", n, "");
    int rc = params && sql ? IOT_OK : admin_fail(im->op, IOT_ENOMEM, "out of memory");
    for (size_t i = 0; rc == IOT_OK && i < im->n; i++)
        for (unsigned g = 0; g < im->rows[i].ngroups; g++) {
            params[k++] = sql_int(im->rows[i].tenant_id);
            params[k++] = sql_int(im->rows[i].group_ids[g]);
            params[k++] = sql_str(im->rows[i].id);
        }
    if (rc == IOT_OK)
        rc = sql_exec(im->op->conn, sql, params, k, inserted, NULL, im->op->err, im->op->errlen);
    free(sql);
    free(params);
    return rc;
}

/* {"added": N, "skipped": N, "secrets": [{"id","tenant","type","auth","serial"?,"secret"}]}:
 * the secrets in the form `iotctl --json device add` prints, so iotsim -f reads them. */
static int import_result(struct import *im, size_t added)
{
    cJSON *secrets = cJSON_AddArrayToObject(im->op->result, "secrets");
    int rc = secrets && admin_result_num(im->op, "added", (double)added) == IOT_OK &&
                     admin_result_num(im->op, "skipped", (double)(im->n - added)) == IOT_OK
                 ? IOT_OK
                 : IOT_ENOMEM;
    for (size_t i = 0; rc == IOT_OK && i < im->n; i++) {
        const struct import_row *r = &im->rows[i];
        char hex[2 * REG_SECRET_LEN + 1], serial[2 * REG_SERIAL_LEN + 1];
        if (r->exists)
            continue;
        cJSON *o = cJSON_CreateObject();
        admin_hex_encode(r->secret, REG_SECRET_LEN, hex);
        admin_hex_encode(r->serial, REG_SERIAL_LEN, serial);
        bool ok = o && cJSON_AddItemToArray(secrets, o) &&
                  cJSON_AddStringToObject(o, "id", r->id) &&
                  cJSON_AddStringToObject(o, "tenant", r->tenant) &&
                  cJSON_AddStringToObject(o, "type", r->type) &&
                  cJSON_AddStringToObject(o, "auth", r->auth) &&
                  (!r->has_serial || cJSON_AddStringToObject(o, "serial", serial)) &&
                  cJSON_AddStringToObject(o, "secret", hex);
        explicit_bzero(hex, sizeof(hex));
        rc = ok ? IOT_OK : IOT_ENOMEM;
    }
    return rc == IOT_OK ? rc : admin_fail(im->op, rc, "out of memory");
}

static int device_import(struct admin_op *op)
{
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(op->args, "devices");
    struct import im = {.op = op, .n = (size_t)cJSON_GetArraySize(rows)};
    size_t added = 0;
    int rc = IOT_OK;
    if (im.n == 0)
        return admin_fail(op, IOT_EINVAL, "no devices to import");
    im.rows = calloc(im.n, sizeof(*im.rows));
    if (!im.rows)
        return admin_fail(op, IOT_ENOMEM, "out of memory");
    const cJSON *o;
    size_t i = 0;
    cJSON_ArrayForEach(o, rows)
    {
        struct import_row *r = &im.rows[i++];
        if ((rc = check_row(&im, r, o)) != IOT_OK)
            goto out;
        for (size_t j = 0; j + 1 < i; j++)
            if (strcmp(im.rows[j].id, r->id) == 0) {
                rc = row_fail(&im, r, "device %s is also on line %lld", r->id, im.rows[j].line);
                goto out;
            }
    }
    if ((rc = find_existing(&im)) != IOT_OK)
        goto out;
    for (i = 0; i < im.n; i++)
        added += !im.rows[i].exists;
    /* The audit row: the tenant of the first row (an import names one tenant unless its
     * file has a tenant column). */
    snprintf(op->tenant, sizeof(op->tenant), "%s", im.rows[0].tenant);
    admin_set_target(op, "devices:%zu added, %zu skipped", added, im.n - added);
    unsigned long long memberships = 0;
    if ((rc = insert_devices(&im, added)) == IOT_OK &&
        (rc = insert_memberships(&im, &memberships)) == IOT_OK)
        rc = import_result(&im, added);
    /* A batch of devices all registered already (a re-run) leaves the snapshot as it is; else
     * the refresh re-reads the devices it added (and the core for their group memberships). */
    op->unchanged = added == 0 && memberships == 0;
    op->core_changed = memberships > 0;
    for (i = 0; rc == IOT_OK && i < im.n; i++)
        if (!im.rows[i].exists)
            rc = admin_note_device(op, im.rows[i].id);
out:
    for (i = 0; i < im.n; i++)
        explicit_bzero(im.rows[i].secret, REG_SECRET_LEN);
    free(im.rows);
    return rc;
}

const struct admin_handler admin_import_handlers[] = {
    {CTL_DEVICE_IMPORT, device_import},
    {CTL_COMMAND_COUNT, NULL},
};
