/*
 * control_events.h - the control commands about events and alarms: the history ("events"),
 * alarm rules and the alarm lifecycle ("alarm rule add|list|remove", "alarm list|ack"), and
 * how an event or alarm item is shown on a "watch" stream.
 *
 * The commands run on a db thread like the registry's administrative commands, but against
 * the event store and the alarm tables; the control server's executor table routes them here
 * (control_commands.c), and this file finds each one's handler in its own table.
 */
#ifndef IOTD_CONTROL_EVENTS_H
#define IOTD_CONTROL_EVENTS_H

#include "ctl_commands.h"
#include "events/event.h"
#include "hub/hub.h"
#include "registry/registry.h"

#include <cjson/cJSON.h>
#include <mysql.h>
#include <stdbool.h>

/* True for the commands control_events_execute runs. */
bool control_events_handles(const struct ctl_command *cmd);

/* Runs on a db thread. snap resolves a tenant from --device when --tenant is missing. actor is
 * who asks (audit, acknowledgements). On success *result is a new object. */
int control_events_execute(MYSQL *conn, const registry_snapshot_t *snap,
                           const struct ctl_command *cmd, const cJSON *args, const char *actor,
                           cJSON **result, char *err, size_t errlen);

/* On the main loop after cmd succeeded: what it changes beyond its reply (alarm rules reloaded
 * into the engine, an acknowledgement published on the streams); nothing for most commands. */
void control_events_after(hub_t *hub, registry_t *registry, const struct ctl_command *cmd,
                          const cJSON *args, const cJSON *result);

/* An item of a watch stream: {"time","ts_ms","kind","tenant","device","type","seq","name",
 * "fields":{...}}. NULL if out of memory. */
cJSON *control_event_item(const struct event *item);

/* An acknowledged alarm (a row of alarm_list) as an alarm item for the streams, event being
 * the event its rule watches ("" for device alarms: their name is the event); NULL if the row
 * lacks what is needed or memory is short. */
struct event *control_ack_item(const registry_snapshot_t *snap, const char *tenant,
                               const cJSON *row, const char *event);

#endif
