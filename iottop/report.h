/*
 * report.h - the model as batch output: text tables like `top -b`, or one JSON object.
 *
 * Pure (no socket, no terminal), so the unit tests can check what scripts will parse.
 */
#ifndef IOTTOP_REPORT_H
#define IOTTOP_REPORT_H

#include "model.h"

#include <cjson/cJSON.h>
#include <stdio.h>

/* One header line ("iottop 0.1.0  up 00:12:04  ...") without a newline. */
void report_header_line(const model_t *model, char *buf, size_t len);

/* The header line, then the threads, queues and top sessions tables, then a blank line. */
void report_text(FILE *out, const model_t *model);

/*
 * The model's computed rows (with rates) as JSON: time_ms, uptime_s, version, pid, rss_bytes,
 * interval_ms, meters, threads, queues, sessions {total, sort, top}, requests, the events new
 * in this sample, and the daemon's raw totals. Absent values are null. NULL on ENOMEM.
 */
cJSON *report_json(const model_t *model);

#endif
