/*
 * ctl_commands.c - the command table (see ctl_commands.h) and its validation.
 *
 * Conventions every command follows, so iotctl's usage stays predictable:
 *  - tenant-scoped names (types, groups) take --tenant; users are written "name@tenant";
 *    devices have globally unique ids and need no tenant;
 *  - access subjects are "user:NAME", "device:ID" or "group:NAME"; targets are "device:ID",
 *    "type:NAME", "group:NAME" or "any"; a missing --message means any message type.
 */
#include "ctl_commands.h"

#include "iot_error.h"
#include "iot_text.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TENANT_OPT(req)                                                                            \
    {                                                                                              \
        "tenant", "--tenant", CTL_ARG_NAME, req, "TENANT", "tenant name"                           \
    }

/* The paging options every list of a growing log or registry takes (iotctl(8), PAGING): a
 * page of --limit rows (the default is the command's), --after the cursor the page before
 * ended with ("next"), --all every page in turn (iotctl asks for them one at a time). */
#define PAGING_OPTS(default_limit)                                                                 \
    {                                                                                              \
        "limit",     "--limit",                                                                    \
        CTL_ARG_INT, false,                                                                        \
        "N",         "at most N rows, 1 to " CTL_PAGE_MAX_TEXT " (default " default_limit ")"},    \
        {"after", "--after", CTL_ARG_STRING,                                                       \
         false,   "CURSOR",  "continue after this cursor (the \"next\" of the page before)"},      \
    {                                                                                              \
        "all", "--all", CTL_ARG_BOOL, false, NULL, "every row, page after page"                    \
    }

const struct ctl_command ctl_commands[CTL_COMMAND_COUNT] = {
    [CTL_STATUS] = {CTL_STATUS, "status", "status", 0, "show daemon status", {{0}}, {NULL}, NULL},

    [CTL_STATS] =
        {CTL_STATS,
         "stats",
         "stats",
         CTL_STREAM,
         "stream threads, queues, sessions and totals (what iottop shows)",
         {{"interval_ms", "--interval", CTL_ARG_INT, false, "MS", "sample period (default 1000)"},
          {"top", "--top", CTL_ARG_INT, false, "N", "sessions to include (default 50)"},
          {"sort", "--sort", CTL_ARG_NAME, false, "KEY",
           "frames_in|frames_out|bytes_out|output_bytes|since|last_activity|in_flight"},
          {"count", "--count", CTL_ARG_INT, false, "N", "stop after N samples (default: never)"}},
         {NULL},
         NULL},

    [CTL_TENANT_ADD] = {CTL_TENANT_ADD,
                        "tenant add",
                        "tenant.add",
                        CTL_MUTATES,
                        "register a tenant",
                        {{"name", NULL, CTL_ARG_NAME, true, "NAME", "tenant name"},
                         {"display_name", "--display-name", CTL_ARG_STRING, false, "TEXT",
                          "human name"}},
                        {NULL},
                        NULL},
    [CTL_TENANT_LIST] = {CTL_TENANT_LIST,
                         "tenant list",
                         "tenant.list",
                         0,
                         "list tenants",
                         {{0}},
                         {"name", "display_name", "types", "devices", "users", "created", NULL},
                         "tenants"},
    [CTL_TENANT_SHOW] = {CTL_TENANT_SHOW,
                         "tenant show",
                         "tenant.show",
                         0,
                         "show one tenant",
                         {{"name", NULL, CTL_ARG_NAME, true, "NAME", "tenant name"}},
                         {NULL},
                         NULL},
    [CTL_TENANT_REMOVE] = {CTL_TENANT_REMOVE,
                           "tenant remove",
                           "tenant.remove",
                           CTL_MUTATES,
                           "remove an empty tenant (--force: and everything in it)",
                           {{"name", NULL, CTL_ARG_NAME, true, "NAME", "tenant name"},
                            {"force", "--force", CTL_ARG_BOOL, false, NULL,
                             "also remove its contents"}},
                           {NULL},
                           NULL},

    [CTL_TYPE_ADD] = {CTL_TYPE_ADD,
                      "type add",
                      "type.add",
                      CTL_MUTATES,
                      "register a device type",
                      {{"name", NULL, CTL_ARG_NAME, true, "NAME", "device type name"},
                       TENANT_OPT(true),
                       {"description", "--description", CTL_ARG_STRING, false, "TEXT",
                        "description"}},
                      {NULL},
                      NULL},
    [CTL_TYPE_LIST] = {CTL_TYPE_LIST,
                       "type list",
                       "type.list",
                       0,
                       "list device types",
                       {TENANT_OPT(false)},
                       {"tenant", "name", "messages", "devices", "description", NULL},
                       "types"},
    [CTL_TYPE_SHOW] = {CTL_TYPE_SHOW,
                       "type show",
                       "type.show",
                       0,
                       "show a device type and its messages",
                       {{"name", NULL, CTL_ARG_NAME, true, "NAME", "device type name"},
                        TENANT_OPT(true)},
                       {NULL},
                       NULL},
    [CTL_TYPE_REMOVE] = {CTL_TYPE_REMOVE,
                         "type remove",
                         "type.remove",
                         CTL_MUTATES,
                         "remove a device type no device uses",
                         {{"name", NULL, CTL_ARG_NAME, true, "NAME", "device type name"},
                          TENANT_OPT(true)},
                         {NULL},
                         NULL},

    [CTL_MESSAGE_ADD] =
        {CTL_MESSAGE_ADD,
         "message add",
         "message.add",
         CTL_MUTATES,
         "add a message type to a device type's catalogue",
         {{"type", NULL, CTL_ARG_NAME, true, "TYPE", "device type"},
          {"name", NULL, CTL_ARG_NAME, true, "MESSAGE", "message type name (lower case)"},
          TENANT_OPT(true),
          {"direction", "--direction", CTL_ARG_NAME, false, "command|event", "default command"},
          {"args", "--args", CTL_ARG_STRING, false, "SPEC",
           "positional args: \"x:int y:int c:str?\""},
          {"timeout_ms", "--timeout", CTL_ARG_INT, false, "MS", "default answer timeout (5000)"},
          {"description", "--description", CTL_ARG_STRING, false, "TEXT", "description"},
          {"start", "--start", CTL_ARG_NAME, false, "COMMAND",
           "events: the command that starts it on the device (leases)"},
          {"stop", "--stop", CTL_ARG_NAME, false, "COMMAND", "events: the command that stops it"}},
         {NULL},
         NULL},
    [CTL_MESSAGE_LIST] = {CTL_MESSAGE_LIST,
                          "message list",
                          "message.list",
                          0,
                          "list a device type's catalogue",
                          {{"type", NULL, CTL_ARG_NAME, true, "TYPE", "device type"},
                           TENANT_OPT(true)},
                          {"name", "direction", "args", "timeout_ms", "start", "stop",
                           "description", NULL},
                          "messages"},
    [CTL_MESSAGE_REMOVE] = {CTL_MESSAGE_REMOVE,
                            "message remove",
                            "message.remove",
                            CTL_MUTATES,
                            "remove a message type from a catalogue",
                            {{"type", NULL, CTL_ARG_NAME, true, "TYPE", "device type"},
                             {"name", NULL, CTL_ARG_NAME, true, "MESSAGE", "message type name"},
                             TENANT_OPT(true)},
                            {NULL},
                            NULL},

    [CTL_DEVICE_ADD] =
        {CTL_DEVICE_ADD,
         "device add",
         "device.add",
         CTL_MUTATES,
         "register a device; prints its new 32-byte secret once",
         {{"id", NULL, CTL_ARG_NAME, true, "ID", "globally unique device id"},
          TENANT_OPT(true),
          {"type", "--type", CTL_ARG_NAME, true, "TYPE", "device type"},
          {"display_name", "--name", CTL_ARG_STRING, false, "TEXT", "display name"},
          {"auth", "--auth", CTL_ARG_NAME, false, "hmac|atecc508a", "default hmac"},
          {"serial", "--serial", CTL_ARG_HEX, false, "HEX", "ATECC508A 9-byte serial number"},
          {"secret", "--secret", CTL_ARG_HEX, false, "HEX",
           "use this 32-byte key instead of a new one"},
          {"disabled", "--disabled", CTL_ARG_BOOL, false, NULL, "register it disabled"}},
         {NULL},
         NULL},
    [CTL_DEVICE_LIST] =
        {CTL_DEVICE_LIST,
         "device list",
         "device.list",
         0,
         "list devices",
         {TENANT_OPT(false),
          {"type", "--type", CTL_ARG_NAME, false, "TYPE", "only this type"},
          {"group", "--group", CTL_ARG_NAME, false, "GROUP",
           "only members of this device group (needs --tenant)"},
          {"online", "--online", CTL_ARG_BOOL, false, NULL, "only connected devices"},
          {"offline", "--offline", CTL_ARG_BOOL, false, NULL, "only devices not connected"},
          PAGING_OPTS(CTL_PAGE_MAX_TEXT)},
         {"id", "tenant", "type", "auth", "enabled", "online", "last_seen", "display_name", NULL},
         "devices"},
    [CTL_DEVICE_SHOW] = {CTL_DEVICE_SHOW,
                         "device show",
                         "device.show",
                         0,
                         "show one device",
                         {{"id", NULL, CTL_ARG_NAME, true, "ID", "device id"}},
                         {NULL},
                         NULL},
    [CTL_DEVICE_REMOVE] = {CTL_DEVICE_REMOVE,
                           "device remove",
                           "device.remove",
                           CTL_MUTATES,
                           "remove a device",
                           {{"id", NULL, CTL_ARG_NAME, true, "ID", "device id"}},
                           {NULL},
                           NULL},
    [CTL_DEVICE_ENABLE] = {CTL_DEVICE_ENABLE,
                           "device enable",
                           "device.enable",
                           CTL_MUTATES,
                           "allow a device to connect",
                           {{"id", NULL, CTL_ARG_NAME, true, "ID", "device id"}},
                           {NULL},
                           NULL},
    [CTL_DEVICE_DISABLE] = {CTL_DEVICE_DISABLE,
                            "device disable",
                            "device.disable",
                            CTL_MUTATES,
                            "refuse a device's connections",
                            {{"id", NULL, CTL_ARG_NAME, true, "ID", "device id"}},
                            {NULL},
                            NULL},
    [CTL_DEVICE_REKEY] = {CTL_DEVICE_REKEY,
                          "device rekey",
                          "device.rekey",
                          CTL_MUTATES,
                          "give a device a new secret; prints it once",
                          {{"id", NULL, CTL_ARG_NAME, true, "ID", "device id"},
                           {"secret", "--secret", CTL_ARG_HEX, false, "HEX",
                            "use this 32-byte key instead of a new one"}},
                          {NULL},
                          NULL},

    [CTL_DEVICE_KICK] = {CTL_DEVICE_KICK,
                         "device kick",
                         "device.kick",
                         CTL_MUTATES | CTL_KEEPS_REGISTRY,
                         "end a device's live session now (it may connect again)",
                         {{"id", NULL, CTL_ARG_NAME, true, "ID", "device id"}},
                         {NULL},
                         NULL},

    [CTL_DEVICE_HISTORY] =
        {CTL_DEVICE_HISTORY,
         "device history",
         "device.history",
         0,
         "connects, disconnects and authentication failures, newest first",
         {{"id", NULL, CTL_ARG_NAME, true, "ID", "device id (also unregistered ones)"},
          {"limit", "--limit", CTL_ARG_INT, false, "N", "at most N (default 50)"}},
         {"at", "event", "address", "transport", "reason", "count", NULL},
         "history"},

    [CTL_DEVICE_IMPORT] =
        {CTL_DEVICE_IMPORT,
         "device import",
         "device.import",
         CTL_MUTATES,
         "register devices from a CSV or JSON-lines file, in batches (iotctl(8), PROVISIONING)",
         {{"file", NULL, CTL_ARG_LOCAL_FILE, true, "FILE",
           "CSV with a header row (id,type,name,groups,auth,serial,tenant) or JSON lines"},
          {"devices", NULL, CTL_ARG_ROWS, false, "ROWS", "a batch of rows (sent by iotctl)"},
          TENANT_OPT(false),
          {"secrets_out", "--secrets-out", CTL_ARG_LOCAL_FILE, false, "FILE",
           "write the new secrets there as JSON lines (a new file, mode 0600)"}},
         {NULL},
         NULL},
    [CTL_DEVICE_EXPORT] = {CTL_DEVICE_EXPORT,
                           "device export",
                           "device.export",
                           0,
                           "write the registry's devices (never secrets) as device import reads",
                           {TENANT_OPT(false),
                            {"format", "--format", CTL_ARG_NAME, false, "csv|jsonl", "default csv"},
                            {"limit", "--limit", CTL_ARG_INT, false, "N",
                             "rows per page (1 to " CTL_PAGE_MAX_TEXT ", default 1000)"},
                            {"after", "--after", CTL_ARG_STRING, false, "CURSOR",
                             "start after this device id"}},
                           {NULL},
                           NULL},

    [CTL_USER_ADD] = {CTL_USER_ADD,
                      "user add",
                      "user.add",
                      CTL_MUTATES,
                      "register a user",
                      {{"user", NULL, CTL_ARG_STRING, true, "NAME@TENANT", "user"},
                       {"role", "--role", CTL_ARG_NAME, false, "admin|operator|viewer",
                        "default operator"},
                       {"password", "--password-file", CTL_ARG_SECRET, true,
                        "FILE", "file holding the password"}},
                      {NULL},
                      NULL},
    [CTL_USER_LIST] = {CTL_USER_LIST,
                       "user list",
                       "user.list",
                       0,
                       "list users",
                       {TENANT_OPT(false)},
                       {"user", "role", "groups", "created", NULL},
                       "users"},
    [CTL_USER_SHOW] = {CTL_USER_SHOW,
                       "user show",
                       "user.show",
                       0,
                       "show one user",
                       {{"user", NULL, CTL_ARG_STRING, true, "NAME@TENANT", "user"}},
                       {NULL},
                       NULL},
    [CTL_USER_REMOVE] = {CTL_USER_REMOVE,
                         "user remove",
                         "user.remove",
                         CTL_MUTATES,
                         "remove a user",
                         {{"user", NULL, CTL_ARG_STRING, true, "NAME@TENANT", "user"}},
                         {NULL},
                         NULL},
    [CTL_USER_PASSWD] = {CTL_USER_PASSWD,
                         "user passwd",
                         "user.passwd",
                         CTL_MUTATES,
                         "set a user's password",
                         {{"user", NULL, CTL_ARG_STRING, true, "NAME@TENANT", "user"},
                          {"password", "--password-file", CTL_ARG_SECRET, true, "FILE",
                           "file holding the password"}},
                         {NULL},
                         NULL},
    [CTL_USER_ROLE] = {CTL_USER_ROLE,
                       "user role",
                       "user.role",
                       CTL_MUTATES,
                       "change a user's role (ends its live sessions)",
                       {{"user", NULL, CTL_ARG_STRING, true, "NAME@TENANT", "user"},
                        {"role", NULL, CTL_ARG_NAME, true, "admin|operator|viewer", "new role"}},
                       {NULL},
                       NULL},
    [CTL_USER_KICK] = {CTL_USER_KICK,
                       "user kick",
                       "user.kick",
                       CTL_MUTATES | CTL_KEEPS_REGISTRY,
                       "end a user's live sessions now (it may log in again)",
                       {{"user", NULL, CTL_ARG_STRING, true, "NAME@TENANT", "user"}},
                       {NULL},
                       NULL},

    [CTL_GROUP_ADD] = {CTL_GROUP_ADD,
                       "group add",
                       "group.add",
                       CTL_MUTATES,
                       "create a group of devices or users",
                       {{"name", NULL, CTL_ARG_NAME, true, "NAME", "group name"},
                        TENANT_OPT(true),
                        {"kind", "--kind", CTL_ARG_NAME, true, "device|user",
                         "what the group holds"}},
                       {NULL},
                       NULL},
    [CTL_GROUP_LIST] = {CTL_GROUP_LIST,
                        "group list",
                        "group.list",
                        0,
                        "list groups",
                        {TENANT_OPT(false)},
                        {"tenant", "name", "kind", "members", NULL},
                        "groups"},
    [CTL_GROUP_SHOW] = {CTL_GROUP_SHOW,
                        "group show",
                        "group.show",
                        0,
                        "show a group and its members",
                        {{"name", NULL, CTL_ARG_NAME, true, "NAME", "group name"},
                         TENANT_OPT(true)},
                        {NULL},
                        NULL},
    [CTL_GROUP_REMOVE] = {CTL_GROUP_REMOVE,
                          "group remove",
                          "group.remove",
                          CTL_MUTATES,
                          "remove a group",
                          {{"name", NULL, CTL_ARG_NAME, true, "NAME", "group name"},
                           TENANT_OPT(true)},
                          {NULL},
                          NULL},
    [CTL_GROUP_MEMBER_ADD] = {CTL_GROUP_MEMBER_ADD,
                              "group member add",
                              "group.member.add",
                              CTL_MUTATES,
                              "add a device id or user name to a group",
                              {{"group", NULL, CTL_ARG_NAME, true, "GROUP", "group name"},
                               {"member", NULL, CTL_ARG_NAME, true, "MEMBER",
                                "device id or user name"},
                               TENANT_OPT(true)},
                              {NULL},
                              NULL},
    [CTL_GROUP_MEMBER_REMOVE] = {CTL_GROUP_MEMBER_REMOVE,
                                 "group member remove",
                                 "group.member.remove",
                                 CTL_MUTATES,
                                 "remove a member from a group",
                                 {{"group", NULL, CTL_ARG_NAME, true, "GROUP", "group name"},
                                  {"member", NULL, CTL_ARG_NAME, true, "MEMBER",
                                   "device id or user name"},
                                  TENANT_OPT(true)},
                                 {NULL},
                                 NULL},

    [CTL_ACCESS_GRANT] =
        {CTL_ACCESS_GRANT,
         "access grant",
         "access.grant",
         CTL_MUTATES,
         "let a subject send a message type to a target",
         {{"subject", NULL, CTL_ARG_STRING, true, "SUBJECT", "user:NAME, device:ID or group:NAME"},
          {"target", NULL, CTL_ARG_STRING, true, "TARGET",
           "device:ID, type:NAME, group:NAME or any"},
          TENANT_OPT(true),
          {"message", "--message", CTL_ARG_NAME, false, "MESSAGE", "message type (default: any)"}},
         {NULL},
         NULL},
    [CTL_ACCESS_REVOKE] = {CTL_ACCESS_REVOKE,
                           "access revoke",
                           "access.revoke",
                           CTL_MUTATES,
                           "remove an access rule",
                           {{"rule", NULL, CTL_ARG_INT, true, "RULE", "rule id (see access list)"},
                            TENANT_OPT(true)},
                           {NULL},
                           NULL},
    [CTL_ACCESS_LIST] = {CTL_ACCESS_LIST,
                         "access list",
                         "access.list",
                         0,
                         "list access rules",
                         {TENANT_OPT(false)},
                         {"rule", "tenant", "subject", "target", "message", "created", NULL},
                         "rules"},
    [CTL_ACCESS_CHECK] =
        {CTL_ACCESS_CHECK,
         "access check",
         "access.check",
         0,
         "would SUBJECT be allowed to send MESSAGE to DEVICE, and which rule decides",
         {{"subject", NULL, CTL_ARG_STRING, true, "SUBJECT", "user:NAME, device:ID or NAME@TENANT"},
          {"device", NULL, CTL_ARG_NAME, true, "DEVICE", "device id"},
          {"message", NULL, CTL_ARG_NAME, true, "MESSAGE", "message type"},
          TENANT_OPT(false)},
         {NULL},
         NULL},

    [CTL_SEND] = {CTL_SEND,
                  "send",
                  "send",
                  CTL_PRINTS_ARGS,
                  "send MESSAGE to DEVICE and print the device's answer",
                  {{"device", NULL, CTL_ARG_NAME, true, "DEVICE", "device id"},
                   {"message", NULL, CTL_ARG_NAME, true, "MESSAGE", "message type"},
                   {"args", NULL, CTL_ARG_REST, false, "ARG...",
                    "positional args per the catalogue"},
                   {"as", "--as", CTL_ARG_STRING, false, "USER@TENANT",
                    "act as this user (its access rules)"},
                   {"tenant", "--tenant", CTL_ARG_NAME, false,
                    "TENANT", "as the operator: the device's tenant"},
                   {"timeout_ms", "--timeout", CTL_ARG_INT, false, "MS",
                    "shorter than the catalogue's timeout"}},
                  {NULL},
                  NULL},

    [CTL_AUDIT] = {CTL_AUDIT,
                   "audit",
                   "audit",
                   0,
                   "relayed messages and their outcomes, newest first",
                   {{"device", "--device", CTL_ARG_NAME, false, "DEVICE", "only this device"},
                    {"user", "--user", CTL_ARG_STRING, false, "SENDER",
                     "only this sender (user@tenant or device)"},
                    {"outcome", "--outcome", CTL_ARG_NAME, false, "OUTCOME",
                     "ok, denied, offline, timeout, busy, ..."},
                    {"since", "--since", CTL_ARG_STRING, false, "TIME",
                     "UTC time (2026-05-01T12:00:00) or age (15m, 2h, 3d)"},
                    TENANT_OPT(false),
                    PAGING_OPTS("50")},
                   {"at", "tenant", "sender", "device", "message", "outcome", "latency_ms", NULL},
                   "audit"},

    [CTL_WATCH] = {CTL_WATCH,
                   "watch",
                   "watch",
                   CTL_STREAM,
                   "stream events and alarm changes live, one line each, until interrupted",
                   {TENANT_OPT(false),
                    {"device", "--device", CTL_ARG_NAME, false, "DEVICE", "only this device"},
                    {"group", "--group", CTL_ARG_NAME, false, "GROUP", "only this device group"},
                    {"type", "--type", CTL_ARG_NAME, false, "TYPE", "only this device type"},
                    {"event", "--event", CTL_ARG_NAME, false, "EVENT", "only this event name"},
                    {"alarms", "--alarms", CTL_ARG_BOOL, false, NULL, "only alarm changes"},
                    {"as", "--as", CTL_ARG_STRING, false, "USER@TENANT",
                     "see what this user may see (its access rules)"},
                    {"start", "--start", CTL_ARG_BOOL, false, NULL,
                     "hold the event's lease while watching (needs --device and --event)"},
                    {"count", "--count", CTL_ARG_INT, false, "N", "stop after N items"}},
                   {NULL},
                   NULL},

    [CTL_EVENTS] = {CTL_EVENTS,
                    "events",
                    "events",
                    0,
                    "stored events and device alarms, oldest first",
                    {TENANT_OPT(false),
                     {"device", "--device", CTL_ARG_NAME, false, "DEVICE", "only this device"},
                     {"name", "--name", CTL_ARG_NAME, false, "EVENT", "only this event name"},
                     {"since", "--since", CTL_ARG_STRING, false, "TIME",
                      "UTC time (2026-05-01T12:00:00) or age (15m, 2h, 3d)"},
                     {"until", "--until", CTL_ARG_STRING, false, "TIME", "before this time"},
                     {"kind", "--kind", CTL_ARG_NAME, false, "event|alarm", "default both"},
                     PAGING_OPTS("100")},
                    {"time", "tenant", "device", "seq", "kind", "name", "fields", NULL},
                    "events"},

    [CTL_LEASE] = {CTL_LEASE,
                   "lease",
                   "lease",
                   0,
                   "keep a device's periodic EVENT running for TTL seconds (0 releases)",
                   {{"device", NULL, CTL_ARG_NAME, true, "DEVICE", "device id"},
                    {"event", NULL, CTL_ARG_NAME, true, "EVENT", "event with --start/--stop"},
                    {"ttl_s", "--ttl", CTL_ARG_INT, false, "S",
                     "seconds (default 600; 0 = release)"},
                    TENANT_OPT(false)},
                   {NULL},
                   NULL},

    [CTL_ALARM_RULE_ADD] =
        {CTL_ALARM_RULE_ADD,
         "alarm rule add",
         "alarm.rule.add",
         0,
         "add an alarm rule: a threshold on an event field, or a silence",
         {{"name", NULL, CTL_ARG_NAME, true, "NAME", "rule name"},
          TENANT_OPT(true),
          {"event", "--event", CTL_ARG_NAME, true, "EVENT", "event name in the catalogue"},
          {"on", "--on", CTL_ARG_STRING, false, "SCOPE",
           "device:ID, group:NAME, type:NAME or tenant (default)"},
          {"field", "--field", CTL_ARG_NAME, false, "FIELD", "threshold rules: the event field"},
          {"op", "--op", CTL_ARG_STRING, false, "OP", "> >= < <= == !="},
          {"threshold", "--threshold", CTL_ARG_STRING, false, "NUMBER", "the value compared"},
          {"hysteresis", "--hysteresis", CTL_ARG_STRING, false, "NUMBER",
           "clear only once back by this margin"},
          {"for_ms", "--for", CTL_ARG_INT, false, "MS", "raise only once true this long"},
          {"silence_s", "--silence", CTL_ARG_INT, false, "S",
           "silence rule: no such event for S seconds (or offline)"},
          {"severity", "--severity", CTL_ARG_NAME, false, "LEVEL",
           "info|warning|minor|major|critical (default warning)"}},
         {NULL},
         NULL},
    [CTL_ALARM_RULE_LIST] = {CTL_ALARM_RULE_LIST,
                             "alarm rule list",
                             "alarm.rule.list",
                             0,
                             "list a tenant's alarm rules",
                             {TENANT_OPT(true)},
                             {"id", "name", "scope", "target", "event", "field", "op", "threshold",
                              "silence_s", NULL},
                             "rules"},
    [CTL_ALARM_RULE_REMOVE] = {CTL_ALARM_RULE_REMOVE,
                               "alarm rule remove",
                               "alarm.rule.remove",
                               0,
                               "remove an alarm rule (its open alarms are cleared)",
                               {{"name", NULL, CTL_ARG_NAME, true, "NAME", "rule name"},
                                TENANT_OPT(true)},
                               {NULL},
                               NULL},
    [CTL_ALARM_LIST] = {CTL_ALARM_LIST,
                        "alarm list",
                        "alarm.list",
                        0,
                        "alarms, newest first",
                        {TENANT_OPT(false),
                         {"state", "--state", CTL_ARG_NAME, false, "STATE",
                          "open (default), raised, acknowledged, cleared, all"},
                         {"device", "--device", CTL_ARG_NAME, false, "DEVICE", "only this device"},
                         {"since", "--since", CTL_ARG_STRING, false, "TIME", "raised since"},
                         PAGING_OPTS("100")},
                        {"id", "device", "name", "severity", "state", "raised_at", "acked_by",
                         "value", "message", NULL},
                        "alarms"},
    [CTL_ALARM_ACK] = {CTL_ALARM_ACK,
                       "alarm ack",
                       "alarm.ack",
                       0,
                       "acknowledge an alarm (who saw it, when)",
                       {{"id", NULL, CTL_ARG_INT, true, "ID", "alarm id (alarm list)"},
                        TENANT_OPT(true),
                        {"as", "--as", CTL_ARG_STRING, false, "NAME",
                         "who acknowledges (default: the operator's login)"}},
                       {NULL},
                       NULL},

    [CTL_BACKUP] = {CTL_BACKUP,
                    "backup",
                    "backup",
                    0,
                    "write a consistent snapshot of the database and the secret key to FILE",
                    {{"path", NULL, CTL_ARG_PATH, true, "FILE",
                      "new file (mode 0600) in a directory iotd's user can write"}},
                    {NULL},
                    NULL},

    [CTL_CHANGES_LIST] = {CTL_CHANGES_LIST,
                          "changes list",
                          "changes.list",
                          0,
                          "show the audit log of administrative changes",
                          {TENANT_OPT(false), PAGING_OPTS("50")},
                          {"at", "actor", "action", "tenant", "target", NULL},
                          "changes"},
};

const struct ctl_command *ctl_command_by_name(const char *name)
{
    if (!name)
        return NULL;
    for (int i = 0; i < CTL_COMMAND_COUNT; i++)
        if (strcmp(ctl_commands[i].name, name) == 0)
            return &ctl_commands[i];
    return NULL;
}

/* How many argv words match cmd->words exactly, or 0 if not all of them do. */
static int words_match(const char *words, int argc, char *const argv[])
{
    int n = 0;
    const char *p = words;
    while (*p) {
        size_t len = strcspn(p, " ");
        if (n >= argc || strlen(argv[n]) != len || strncmp(argv[n], p, len) != 0)
            return 0;
        n++;
        p += len;
        while (*p == ' ')
            p++;
    }
    return n;
}

const struct ctl_command *ctl_command_match(int argc, char *const argv[], int *consumed)
{
    const struct ctl_command *best = NULL;
    int best_n = 0;
    for (int i = 0; i < CTL_COMMAND_COUNT; i++) {
        int n = words_match(ctl_commands[i].words, argc, argv);
        if (n > best_n) {
            best = &ctl_commands[i];
            best_n = n;
        }
    }
    if (consumed)
        *consumed = best_n;
    return best;
}

size_t ctl_command_param_count(const struct ctl_command *cmd)
{
    size_t n = 0;
    while (n < CTL_MAX_PARAMS && cmd->params[n].key)
        n++;
    return n;
}

/* Text a principal may store or send: valid UTF-8 (iot_text.h) without control characters
 * (C0 but tab, DEL, C1), so that it can be shown anywhere and carried in any JSON. */
static bool text_valid(const char *value, size_t len)
{
    uint32_t cp;
    for (size_t i = 0; i < len;) {
        size_t n = iot_text_utf8_decode(value + i, len - i, &cp);
        if (n == 0 || (cp < 0x20 && cp != '\t') || (cp >= 0x7f && cp <= 0x9f))
            return false;
        i += n;
    }
    return true;
}

/*
 * Integers travel as JSON numbers, which carry integers exactly only up to 2^53: beyond that a
 * value would arrive changed (and beyond int64 wrapped on the way into C), so the control
 * protocol's integers are -2^53..2^53 and anything else is refused, never altered.
 */
#define CTL_INT_MAX 9007199254740992.0 /* 2^53 */

static bool exact_integer(const cJSON *item)
{
    if (!cJSON_IsNumber(item))
        return false;
    double d = item->valuedouble;
    return d >= -CTL_INT_MAX && d <= CTL_INT_MAX && d == (double)(long long)d;
}

bool ctl_value_valid(enum ctl_arg_kind kind, const char *value)
{
    if (!value || !*value)
        return false;
    size_t len = strlen(value);
    switch (kind) {
    case CTL_ARG_NAME:
        if (len > 64 || !isalnum((unsigned char)value[0]))
            return false;
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)value[i];
            if (!isalnum(c) && c != '_' && c != '.' && c != '-')
                return false;
        }
        return true;
    case CTL_ARG_HEX:
        if (len % 2)
            return false;
        for (size_t i = 0; i < len; i++)
            if (!isxdigit((unsigned char)value[i]))
                return false;
        return true;
    case CTL_ARG_INT: {
        /* Digits only, within -2^53..2^53 (see exact_integer): a number beyond is refused,
         * never wrapped, saturated or rounded on the way to the daemon. */
        size_t i = (value[0] == '-') ? 1 : 0;
        if (i == len)
            return false;
        for (; i < len; i++)
            if (!isdigit((unsigned char)value[i]))
                return false;
        errno = 0;
        long long n = strtoll(value, NULL, 10);
        return errno != ERANGE && n >= -(long long)CTL_INT_MAX && n <= (long long)CTL_INT_MAX;
    }
    case CTL_ARG_STRING:
    case CTL_ARG_SECRET:
    case CTL_ARG_REST:
    case CTL_ARG_PATH:
    case CTL_ARG_LOCAL_FILE:
        return len <= 4096 && text_valid(value, len);
    case CTL_ARG_BOOL:
        return true;
    case CTL_ARG_ROWS:
        return false; /* never a word of the command line */
    }
    return false;
}

static const struct ctl_param *find_param(const struct ctl_command *cmd, const char *key)
{
    for (size_t i = 0; i < ctl_command_param_count(cmd); i++)
        if (strcmp(cmd->params[i].key, key) == 0)
            return &cmd->params[i];
    return NULL;
}

int ctl_args_validate(const struct ctl_command *cmd, const cJSON *args, char *err, size_t errlen)
{
    if (args && !cJSON_IsObject(args)) {
        snprintf(err, errlen, "args must be an object");
        return IOT_EINVAL;
    }
    const cJSON *item;
    cJSON_ArrayForEach(item, args)
    {
        const struct ctl_param *p = find_param(cmd, item->string);
        if (!p) {
            /* The key is the client's text: quoted escaped, and cut (between characters) short
             * enough that the sentence is never cut by err's size inside a character. */
            char key[64];
            size_t len = strlen(item->string);
            bool cut = iot_text_escape(key, sizeof(key), item->string, len) >= sizeof(key);
            snprintf(err, errlen, "%s: unknown argument '%s%s'", cmd->name, key, cut ? "..." : "");
            return IOT_EINVAL;
        }
        bool ok;
        if (p->kind == CTL_ARG_ROWS) {
            ok = cJSON_IsArray(item) && cJSON_GetArraySize(item) <= CTL_ROWS_MAX;
            const cJSON *row, *field;
            cJSON_ArrayForEach(row, item)
            {
                ok = ok && cJSON_IsObject(row);
                cJSON_ArrayForEach(field, row) ok =
                    ok && (cJSON_IsString(field) || cJSON_IsNumber(field) || cJSON_IsNull(field) ||
                           cJSON_IsArray(field));
            }
        } else if (p->kind == CTL_ARG_REST) {
            ok = cJSON_IsArray(item) && cJSON_GetArraySize(item) <= CTL_MAX_REST;
            const cJSON *word;
            cJSON_ArrayForEach(word, item)
            {
                /* Application args may be empty strings; control bytes never travel. */
                ok = ok && cJSON_IsString(word) &&
                     (word->valuestring[0] == '\0' ||
                      ctl_value_valid(CTL_ARG_REST, word->valuestring));
            }
        } else if (p->kind == CTL_ARG_BOOL)
            ok = cJSON_IsBool(item);
        else if (p->kind == CTL_ARG_INT)
            ok = exact_integer(item);
        else
            ok = cJSON_IsString(item) && ctl_value_valid(p->kind, item->valuestring);
        if (!ok) {
            snprintf(err, errlen, "%s: invalid value for '%s'", cmd->name, p->key);
            return IOT_EINVAL;
        }
    }
    for (size_t i = 0; i < ctl_command_param_count(cmd); i++) {
        const struct ctl_param *p = &cmd->params[i];
        if (p->required && p->kind != CTL_ARG_LOCAL_FILE &&
            !cJSON_GetObjectItemCaseSensitive(args, p->key)) {
            snprintf(err, errlen, "%s: missing argument '%s'", cmd->name, p->key);
            return IOT_EINVAL;
        }
    }
    return IOT_OK;
}
