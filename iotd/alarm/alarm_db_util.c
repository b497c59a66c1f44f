/*
 * alarm_db_util.c - what the two halves of the alarms' database side (alarm_rules_db.c,
 * alarm_db.c) share: an error with its sentence, a tenant's id, and JSON cells from rows
 * (see alarm_db_internal.h).
 */
#include "alarm/alarm_db_internal.h"

#include "ctl_time.h"
#include "iot_error.h"

#include <stdarg.h>
#include <stdio.h>

int alarm_db_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return rc;
}

int alarm_db_tenant_id(MYSQL *conn, const char *tenant, long long *id, char *err, size_t errlen)
{
    if (!tenant || !*tenant)
        return alarm_db_fail(err, errlen, IOT_EINVAL, "a tenant is required");
    int rc = sql_query_int(conn, "SELECT id FROM tenants WHERE name = ?",
                           SQL_PARAMS(sql_str(tenant)), id, err, errlen);
    return rc == IOT_ENOTFOUND ? alarm_db_fail(err, errlen, rc, "unknown tenant %s", tenant) : rc;
}

bool alarm_json_str(cJSON *o, const char *key, const char *v)
{
    return (v ? cJSON_AddStringToObject(o, key, v) : cJSON_AddNullToObject(o, key)) != NULL;
}

bool alarm_json_num(cJSON *o, const char *key, double v)
{
    return cJSON_AddNumberToObject(o, key, v) != NULL;
}

/* A column of UNIX_TIMESTAMP(x) as RFC 3339, or null. */
bool alarm_json_time(cJSON *o, const char *key, const struct sql_row *r, unsigned col)
{
    char buf[40];
    if (sql_row_null(r, col))
        return cJSON_AddNullToObject(o, key) != NULL;
    ctl_format_time_ms(sql_row_micros(r, col) / 1000, buf, sizeof(buf));
    return cJSON_AddStringToObject(o, key, buf) != NULL;
}

/* A numeric column as a JSON number, or null. */
bool alarm_json_col_num(cJSON *o, const char *key, const struct sql_row *r, unsigned col)
{
    double v;
    if (sql_row_null(r, col) || !alarm_parse_number(sql_row_str(r, col), &v))
        return cJSON_AddNullToObject(o, key) != NULL;
    return alarm_json_num(o, key, v);
}
