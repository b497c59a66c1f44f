/*
 * alarm_db_internal.h - helpers shared by the files of the alarms' database side
 * (alarm_db_util.c). Internal to iotd/alarm.
 */
#ifndef IOTD_ALARM_DB_INTERNAL_H
#define IOTD_ALARM_DB_INTERNAL_H

#include "alarm/alarm_db.h"
#include "db/sql_stmt.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

/* Write the sentence into err and return rc: return alarm_db_fail(err, errlen, IOT_EINVAL, ...). */
__attribute__((format(printf, 4, 5))) int alarm_db_fail(char *err, size_t errlen, int rc,
                                                        const char *fmt, ...);

/* The id of the tenant named tenant: IOT_EINVAL (none given), IOT_ENOTFOUND (unknown), with a
 * sentence in err. */
int alarm_db_tenant_id(MYSQL *conn, const char *tenant, long long *id, char *err, size_t errlen);

/* JSON cells; false when out of memory. A string, or null for NULL. */
bool alarm_json_str(cJSON *o, const char *key, const char *v);
bool alarm_json_num(cJSON *o, const char *key, double v);
/* A column of UNIX_TIMESTAMP(x) as RFC 3339, or null. */
bool alarm_json_time(cJSON *o, const char *key, const struct sql_row *r, unsigned col);
/* A numeric column as a JSON number, or null. */
bool alarm_json_col_num(cJSON *o, const char *key, const struct sql_row *r, unsigned col);

#endif
