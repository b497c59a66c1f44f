/*
 * fleet.h - the commands iotctl drives itself over many requests because a file is their
 * input or output: "device import" (a CSV or JSON-lines file sent in batches of
 * IOTCTL_IMPORT_BATCH rows, one transaction each, the new secrets written to a 0600 file) and
 * "device export" (every page of the registry's devices written as CSV or JSON lines that
 * import reads back). See iotctl(8), PROVISIONING.
 */
#ifndef IOTCTL_FLEET_H
#define IOTCTL_FLEET_H

#include "ctl_client.h"
#include "ctl_commands.h"

#include <cjson/cJSON.h>
#include <stdbool.h>

#define IOTCTL_IMPORT_BATCH 500

/* What a driver needs of the invocation. */
struct iotctl_session {
    ctl_client_t *client;
    const struct ctl_command *cmd;
    int timeout_ms;
    bool json;
};

/* A driver: runs the command with its parsed args (borrowed) and returns the exit status,
 * having printed its output and errors. */
typedef int (*iotctl_driver_fn)(const struct iotctl_session *s, const cJSON *args);

/* The driver of cmd, or NULL for a command that is one request and one reply. */
iotctl_driver_fn iotctl_driver_of(const struct ctl_command *cmd);

/* Parse one CSV record (RFC 4180, without line ends; a quoted field may not span lines) into
 * at most max fields pointing into line, which is changed in place. Returns the number of
 * fields, or -1 for a malformed record (a quote inside an unquoted field, text after a
 * closing quote, an unterminated quote) or more than max fields. */
int iotctl_csv_split(char *line, char **fields, int max);

#endif
