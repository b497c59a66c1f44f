/*
 * iot_error.h - the one error vocabulary of the project.
 *
 * Functions return 0 on success or a negative IOT_E* code. Every code has a stable name
 * (iot_error_name: "not_found") used on the control socket and in JSON, a human sentence
 * (iot_strerror) and an iotctl exit status (iot_error_exit_status), so the daemon, the CLI
 * and scripts agree on what went wrong.
 */
#ifndef IOT_ERROR_H
#define IOT_ERROR_H

enum iot_error {
    IOT_OK = 0,
    IOT_EINVAL = -1,        /* "bad_args": malformed or missing argument */
    IOT_ENOTFOUND = -2,     /* "not_found" */
    IOT_EEXIST = -3,        /* "exists": already exists */
    IOT_EDENIED = -4,       /* "denied": not allowed */
    IOT_EINUSE = -5,        /* "in_use": still referenced, cannot remove */
    IOT_EBUSY = -6,         /* "busy": a bound was reached, retry later */
    IOT_EDB = -7,           /* "db_unavailable": the database cannot be reached */
    IOT_ENOMEM = -8,        /* "no_memory" */
    IOT_EIO = -9,           /* "io": a system call failed */
    IOT_EPROTO = -10,       /* "bad_request": malformed control request */
    IOT_EUNREACHABLE = -11, /* "unreachable": the daemon is not running (client side) */
    IOT_EINTERNAL = -12,    /* "internal" */
    IOT_ESCHEMA = -13,      /* "schema": database schema newer than this build */
    IOT_ECROSS = -14,       /* "cross_tenant": refers to another tenant */
    /* Outcomes of a relayed message (iotctl send), named as on the wire: */
    IOT_EOFFLINE = -15,      /* "offline": the device is not connected */
    IOT_ETIMEOUT = -16,      /* "timeout": no answer within the timeout */
    IOT_EUNKNOWN_TYPE = -17, /* "unknown_type": not in the device type's catalogue */
    IOT_EDEVICE = -18,       /* "error": the device answered ERROR */
};
#define IOT_ERROR_COUNT 19

/* Stable machine name ("not_found"); "internal" for unknown codes. */
const char *iot_error_name(int code);
/* Human sentence ("not found"). */
const char *iot_strerror(int code);
/* Parse a machine name back to a code; IOT_EINTERNAL for unknown names. */
int iot_error_from_name(const char *name);
/* Exit status iotctl uses for the code: 0 ok, 1 other, 2 usage, 3 not found, 4 denied,
 * 5 exists, 6 unreachable, 7 in use or cross-tenant, 8 database unavailable or busy,
 * 9 offline, 10 timeout, 11 unknown message type, 12 the device answered ERROR. */
int iot_error_exit_status(int code);

#endif
