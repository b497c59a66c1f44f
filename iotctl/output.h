/*
 * output.h - how iotctl shows a reply: human tables and "key: value" lines, or JSON.
 *
 * All functions write to the FILE they are given (stdout in iotctl, a memstream in tests) and
 * hold no state.
 */
#ifndef IOTCTL_OUTPUT_H
#define IOTCTL_OUTPUT_H

#include "ctl_commands.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>

/*
 * Print a command's successful result and return iotctl's exit status for it: 0, or 4 when the
 * result carries "decision": "deny" (access check). With json, the result is printed as one
 * pretty JSON document. Otherwise a list command's result[list_key] becomes a table with the
 * command's columns, a CTL_PRINTS_ARGS command's result["args"] one item per line (send: the
 * device's answer), anything else "key: value" lines; a "decision" comes first as a bare
 * "allow"/"deny" line, and a "secret" comes last as "secret: HEX" with a warning written to note
 * that it will not be shown again.
 */
int iotctl_print_result(FILE *out, FILE *note, const struct ctl_command *cmd, const cJSON *result,
                        bool json);

/* Print an error: "iotctl: MESSAGE (CODE)" on err and, with json, the error object on out.
 * error_object, when not NULL, is the daemon's "error" and is printed as received. */
void iotctl_print_error(FILE *out, FILE *err, int code, const char *message,
                        const cJSON *error_object, bool json);

/* Print one item of a stream: a compact JSON line, or one line of key=value pairs. */
/* A stream item: one line. Events and alarm changes of "watch" read
 * "TIME DEVICE EVENT|ALARM NAME key=value ..."; other items are key=value lines. With json, the
 * item as one line of JSON. */
void iotctl_print_stream_item(FILE *out, const cJSON *item, bool json);

/* A list result as CSV (RFC 4180): a header of the command's columns, then one record per row;
 * nested objects as "key=value key=value". Other results are printed as by
 * iotctl_print_result. Returns the exit status. */
int iotctl_print_csv(FILE *out, const struct ctl_command *cmd, const cJSON *result);

/* One page of a paged list printed by --all (iotctl(8), PAGING): a table whose header only the
 * first page prints (each page aligned on its own), CSV records under one header, or one
 * compact JSON line per row. */
enum iotctl_format { IOTCTL_TABLE, IOTCTL_CSV, IOTCTL_JSON };
void iotctl_print_page(FILE *out, const struct ctl_command *cmd, const cJSON *result,
                       enum iotctl_format format, bool first);

/* One CSV field (RFC 4180): quoted when it holds a comma, a quote or a line end. */
void iotctl_csv_field(FILE *out, const char *s);

/* A table: header of upper-cased column names, then one line per object in rows; columns are
 * padded to their widest cell, missing keys print "-", booleans yes/no. indent spaces first. */
void iotctl_print_table(FILE *out, const char *const columns[], const cJSON *rows, int indent);

/* "key: value" lines for an object; nested objects and arrays are indented beneath their key. */
void iotctl_print_object(FILE *out, const cJSON *object, int indent);

#endif
