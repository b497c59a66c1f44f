/*
 * metrics.h - a stats sample (stats.h, the one iottop reads) written as Prometheus text
 * exposition format 0.0.4. What is exported, and each family's TYPE and HELP, come from the
 * sample's schema (common/stats_schema.h): every counter and gauge of the sections that are
 * series (threads, queues, totals; not the sessions table, waiting requests or the event
 * tail), so a field added there appears here without a change. Pure: the sample in, text out.
 *
 * Names: "iotd_", a prefix per section ("thread_", "queue_", "connections_", "event_";
 * none for the sample itself and the totals), the field's key with its unit spelled the
 * Prometheus way (cpu_ns -> cpu_seconds, uptime_s -> uptime_seconds, scaled to match), and
 * "_total" for counters. A row's text fields are its labels (threads by name and role, queues
 * by name), a map field's keys a label of their own (outcome="denied"), and a text field of
 * an object (version, the event store's state) an info gauge: iotd_version_info{version=...} 1.
 */
#ifndef IOTD_WEB_METRICS_H
#define IOTD_WEB_METRICS_H

#include "web/web_buf.h"

#include <cjson/cJSON.h>

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Append the exposition of sample to out. Values the sample lacks are left out (a family
 * with no value at all is not written). IOT_ENOMEM if out could not grow, else 0. */
int metrics_format(const cJSON *sample, struct web_buf *out);

#endif
