/*
 * rule.c - what one alarm rule says, apart from any device: whether it is valid, its condition,
 * and the clear condition of an open threshold alarm (see rule.h).
 */
#include "alarm/rule.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

bool alarm_name_ok(const char *s)
{
    return s && *s && strlen(s) <= ALARM_NAME_MAX;
}

bool alarm_rule_valid(const struct alarm_rule *r)
{
    if (!r->id || !alarm_name_ok(r->tenant) || !alarm_name_ok(r->name) ||
        !alarm_name_ok(r->event) || (unsigned)r->severity >= ALARM_SEVERITY_COUNT ||
        (unsigned)r->scope > ALARM_SCOPE_TENANT)
        return false;
    if (r->scope != ALARM_SCOPE_TENANT && !r->target[0])
        return false;
    if (alarm_rule_is_silence(r))
        return true;
    return alarm_name_ok(r->field) && r->op > ALARM_OP_NONE && r->op <= ALARM_OP_NE &&
           isfinite(r->threshold) && isfinite(r->hysteresis) && r->hysteresis >= 0;
}

int alarm_rule_cmp(const void *a, const void *b)
{
    const struct alarm_rule *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

const struct alarm_rule *alarm_rule_by_id(const struct alarm_rule *rules, size_t n, uint64_t id)
{
    struct alarm_rule key = {.id = id};
    return n ? bsearch(&key, rules, n, sizeof(*rules), alarm_rule_cmp) : NULL;
}

bool alarm_condition(enum alarm_op op, double v, double t)
{
    switch (op) {
    case ALARM_OP_GT:
        return v > t;
    case ALARM_OP_GE:
        return v >= t;
    case ALARM_OP_LT:
        return v < t;
    case ALARM_OP_LE:
        return v <= t;
    case ALARM_OP_EQ:
        return v == t;
    case ALARM_OP_NE:
        return v != t;
    case ALARM_OP_NONE:
        break;
    }
    return false;
}

bool alarm_clears(const struct alarm_rule *r, double v, double *bound, const char **clear_op)
{
    double lo = r->threshold - r->hysteresis, hi = r->threshold + r->hysteresis;
    switch (r->op) {
    case ALARM_OP_GT:
        *bound = lo, *clear_op = "<=";
        return v <= lo;
    case ALARM_OP_GE:
        *bound = lo, *clear_op = "<";
        return v < lo;
    case ALARM_OP_LT:
        *bound = hi, *clear_op = ">=";
        return v >= hi;
    case ALARM_OP_LE:
        *bound = hi, *clear_op = ">";
        return v > hi;
    case ALARM_OP_EQ:
        *bound = r->threshold, *clear_op = "!=";
        return v != r->threshold;
    case ALARM_OP_NE:
        *bound = r->threshold, *clear_op = "==";
        return v == r->threshold;
    case ALARM_OP_NONE:
        break;
    }
    *bound = r->threshold, *clear_op = "";
    return false;
}
