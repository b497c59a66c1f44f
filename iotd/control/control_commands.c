/*
 * control_commands.c - the executor table: for every command of common/ctl_commands.h, where it
 * runs and what runs it (see control_dispatch.h). A new command gets its line here, next to its
 * entry in common/ctl_commands.c and its executor; tests/unit/control fails while a command has
 * no line, or a line that disagrees with the command's flags.
 */
#include "control/control_dispatch.h"

#define ON_LOOP(fn)                                                                                \
    {                                                                                              \
        .where = CONTROL_ON_LOOP, .answer = (fn)                                                   \
    }
#define STREAM(fn)                                                                                 \
    {                                                                                              \
        .where = CONTROL_STREAM, .start = (fn)                                                     \
    }
#define ON_DB(fn)                                                                                  \
    {                                                                                              \
        .where = CONTROL_ON_DB, .run = (fn)                                                        \
    }
/* Answered from the registry snapshot (registry/query.c). */
#define QUERY ON_LOOP(control_registry_query)
/* A change or a log read in MariaDB (registry/admin_*.c); a change is then published. */
#define ADMIN ON_DB(control_run_admin)
/* A change after which a device's or user's live sessions must go: args[key] names it, and
 * its sessions end with BYE reason=<reason> before the change is answered (see kick too). */
#define ADMIN_ENDS(key, reason)                                                                    \
    {                                                                                              \
        .where = CONTROL_ON_DB, .run = control_run_admin, .ends = (key), .ends_reason = (reason)   \
    }
/* A tenant's removal (with --force, of everything in it) ends the sessions of its devices
 * and users. */
#define ADMIN_ENDS_TENANT                                                                          \
    {                                                                                              \
        .where = CONTROL_ON_DB, .run = control_run_admin, .ends = "name",                          \
        .ends_reason = "removed", .ends_tenant = true                                              \
    }
/* The event store and the alarm tables (control_events.c); after() tells the hub. */
#define EVENTS                                                                                     \
    {                                                                                              \
        .where = CONTROL_ON_DB, .run = control_run_events, .after = control_after_events           \
    }

const struct control_executor control_executors[CTL_COMMAND_COUNT] = {
    [CTL_STATUS] = ON_LOOP(control_status),
    [CTL_STATS] = STREAM(control_stats_start),
    [CTL_TENANT_ADD] = ADMIN,
    [CTL_TENANT_LIST] = QUERY,
    [CTL_TENANT_SHOW] = QUERY,
    [CTL_TENANT_REMOVE] = ADMIN_ENDS_TENANT,
    [CTL_TYPE_ADD] = ADMIN,
    [CTL_TYPE_LIST] = QUERY,
    [CTL_TYPE_SHOW] = QUERY,
    [CTL_TYPE_REMOVE] = ADMIN,
    [CTL_MESSAGE_ADD] = ADMIN,
    [CTL_MESSAGE_LIST] = QUERY,
    [CTL_MESSAGE_REMOVE] = ADMIN,
    [CTL_DEVICE_ADD] = ADMIN,
    [CTL_DEVICE_LIST] = QUERY,
    [CTL_DEVICE_SHOW] = QUERY,
    [CTL_DEVICE_REMOVE] = ADMIN_ENDS("id", "removed"),
    [CTL_DEVICE_ENABLE] = ADMIN,
    [CTL_DEVICE_DISABLE] = ADMIN_ENDS("id", "disabled"),
    [CTL_DEVICE_REKEY] = ADMIN_ENDS("id", "rekeyed"),
    [CTL_DEVICE_KICK] = ADMIN_ENDS("id", "kicked"),
    [CTL_DEVICE_HISTORY] = ADMIN,
    [CTL_DEVICE_IMPORT] = ADMIN,
    [CTL_DEVICE_EXPORT] = QUERY,
    [CTL_USER_ADD] = ADMIN,
    [CTL_USER_LIST] = QUERY,
    [CTL_USER_SHOW] = QUERY,
    [CTL_USER_REMOVE] = ADMIN_ENDS("user", "removed"),
    [CTL_USER_PASSWD] = ADMIN_ENDS("user", "password_changed"),
    [CTL_USER_ROLE] = ADMIN_ENDS("user", "role_changed"),
    [CTL_USER_KICK] = ADMIN_ENDS("user", "kicked"),
    [CTL_GROUP_ADD] = ADMIN,
    [CTL_GROUP_LIST] = QUERY,
    [CTL_GROUP_SHOW] = QUERY,
    [CTL_GROUP_REMOVE] = ADMIN,
    [CTL_GROUP_MEMBER_ADD] = ADMIN,
    [CTL_GROUP_MEMBER_REMOVE] = ADMIN,
    [CTL_ACCESS_GRANT] = ADMIN,
    [CTL_ACCESS_REVOKE] = ADMIN,
    [CTL_ACCESS_LIST] = QUERY,
    [CTL_ACCESS_CHECK] = QUERY,
    [CTL_CHANGES_LIST] = ADMIN,
    [CTL_SEND] = ON_LOOP(control_send_message),
    [CTL_AUDIT] = ADMIN,
    [CTL_WATCH] = STREAM(control_watch_start),
    [CTL_EVENTS] = EVENTS,
    [CTL_LEASE] = ON_LOOP(control_lease),
    [CTL_ALARM_RULE_ADD] = EVENTS,
    [CTL_ALARM_RULE_LIST] = EVENTS,
    [CTL_ALARM_RULE_REMOVE] = EVENTS,
    [CTL_ALARM_LIST] = EVENTS,
    [CTL_BACKUP] = ON_DB(control_run_backup),
    [CTL_ALARM_ACK] = EVENTS,
};
