/*
 * rule.h - what one alarm rule says, apart from any device (rule.c): the checks and conditions
 * the engine applies. Internal to iotd/alarm.
 */
#ifndef IOTD_ALARM_RULE_H
#define IOTD_ALARM_RULE_H

#include "alarm/engine.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A name the engine keeps (tenant, device, rule, event, field): non-empty, at most
 * ALARM_NAME_MAX bytes. */
bool alarm_name_ok(const char *s);

/* Can the engine evaluate r? Names present, enums in range, a target unless scope tenant, and
 * for threshold rules a field, an operator and finite threshold and hysteresis (>= 0). */
bool alarm_rule_valid(const struct alarm_rule *r);

/* qsort/bsearch order of rules: by id. */
int alarm_rule_cmp(const void *a, const void *b);
/* The rule of that id in rules (n of them, sorted by id), or NULL. */
const struct alarm_rule *alarm_rule_by_id(const struct alarm_rule *rules, size_t n, uint64_t id);

/* Does value v meet "v op t"? False for ALARM_OP_NONE. */
bool alarm_condition(enum alarm_op op, double v, double t);

/* The clear condition of an open threshold alarm: the negated condition, with the threshold
 * moved away by the hysteresis (see engine.h). *bound and *clear_op describe it for messages. */
bool alarm_clears(const struct alarm_rule *r, double v, double *bound, const char **clear_op);

#endif
