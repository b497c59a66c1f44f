/*
 * control_dispatch.h - how a control request reaches the code that answers it.
 *
 * Every command of common/ctl_commands.h has exactly one executor in one table
 * (control_executors, control_commands.c), which says where the command runs and what runs it:
 *
 *   CONTROL_ON_LOOP  answered on the main loop by answer() (at once, or later from a callback
 *                    such as the relay's answer); args are borrowed for the call
 *   CONTROL_STREAM   started on the main loop by start(), which answers {"stream": true} and then
 *                    items (the CTL_STREAM commands); start() owns args
 *   CONTROL_ON_DB    run() on a db thread, the reply sent when the job comes back to the main
 *                    loop, after after() (if any) has done what the command changes beyond its
 *                    reply (rules reloaded, an acknowledgement published), and after the
 *                    sessions the change cuts off (ends) are closed on their io threads
 *
 * Some executors are a whole module that finds the command's handler in its own table, next to
 * the handler: control_registry_query (registry/query.c), control_run_admin (registry/admin_*.c)
 * and control_run_events (control_events.c). tests/unit/control checks that every command has
 * an entry, that where agrees with the command's flags, and that exactly one of those modules
 * claims each command routed to it (and none claims the others).
 */
#ifndef IOTD_CONTROL_DISPATCH_H
#define IOTD_CONTROL_DISPATCH_H

#include "control/control_internal.h"
#include "ctl_commands.h"

#include <cjson/cJSON.h>
#include <mysql.h>
#include <stdint.h>

enum control_where {
    CONTROL_NOWHERE = 0, /* no executor: an incomplete table (the unit test forbids it) */
    CONTROL_ON_LOOP,
    CONTROL_STREAM,
    CONTROL_ON_DB,
};

/* A command on its way to a db thread and back; everything in it outlives the job. */
struct control_call {
    control_server_t *srv;
    const struct ctl_command *cmd;
    const cJSON *args;
    const char *actor; /* who asks: "root (uid=0 pid=42)" */
};

struct control_executor {
    enum control_where where;
    void (*answer)(struct control_conn *conn, uint32_t id, const struct ctl_command *cmd,
                   const cJSON *args);
    void (*start)(struct control_conn *conn, uint32_t id, const struct ctl_command *cmd,
                  cJSON *args);
    /* On a db thread: IOT_OK and a new *result, or an error code with a sentence in err. */
    int (*run)(MYSQL *db, const struct control_call *call, cJSON **result, char *err,
               size_t errlen);
    /* On the main loop after run() succeeded, unless the daemon is stopping. */
    void (*after)(const struct control_call *call, const cJSON *result);
    /* A change that cuts someone off: once run() succeeded, every session of the principal
     * named by args[ends] (a device id, or user@tenant; with ends_tenant, of every device and
     * user of that tenant) ends with BYE reason=<ends_reason> (sessions_end), and only then is
     * the change answered, with "sessions_ended": N. */
    const char *ends;
    const char *ends_reason;
    bool ends_tenant;
};

/* The table, indexed by command id (CTL_COMMAND_COUNT entries). */
extern const struct control_executor control_executors[CTL_COMMAND_COUNT];

/* A request line checked and routed. */
struct control_route {
    uint32_t id;
    const struct ctl_command *cmd;
    const struct control_executor *executor;
    cJSON *args; /* the caller's */
};

/* Parse one request line, check it against the command table (ctl_args_validate) and find its
 * executor in table. IOT_OK with *out filled (its args are the caller's), else the error code
 * with *reply the error reply to send (NULL if out of memory): IOT_EPROTO for a line that is not
 * a request or names an unknown command, IOT_EINVAL for bad args or a command the table has no
 * executor for. */
int control_route(const char *line, size_t len, const struct control_executor *table,
                  struct control_route *out, cJSON **reply);

/* The executors of control_dispatch.c (named here so the table and its test can see them). */
void control_status(struct control_conn *conn, uint32_t id, const struct ctl_command *cmd,
                    const cJSON *args);
void control_registry_query(struct control_conn *conn, uint32_t id, const struct ctl_command *cmd,
                            const cJSON *args);
int control_run_admin(MYSQL *db, const struct control_call *call, cJSON **result, char *err,
                      size_t errlen);
/* "backup" (control_backup.c): db/backup.c on the db thread's connection. */
int control_run_backup(MYSQL *db, const struct control_call *call, cJSON **result, char *err,
                       size_t errlen);
int control_run_events(MYSQL *db, const struct control_call *call, cJSON **result, char *err,
                       size_t errlen);
void control_after_events(const struct control_call *call, const cJSON *result);

/* control_streams.c */
void control_stats_start(struct control_conn *conn, uint32_t id, const struct ctl_command *cmd,
                         cJSON *args);
void control_watch_start(struct control_conn *conn, uint32_t id, const struct ctl_command *cmd,
                         cJSON *args);
void control_lease(struct control_conn *conn, uint32_t id, const struct ctl_command *cmd,
                   const cJSON *args);

/* control_send.c */
void control_send_message(struct control_conn *conn, uint32_t id, const struct ctl_command *cmd,
                          const cJSON *args);

#endif
