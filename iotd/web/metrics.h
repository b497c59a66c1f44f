/*
 * metrics.h - a stats sample (stats.h, the one iottop reads) written as Prometheus text
 * exposition format 0.0.4: every counter and gauge of the sample, each family with its
 * # HELP and # TYPE lines, names prefixed iotd_ and counters suffixed _total. Pure: the
 * sample in, text out.
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
