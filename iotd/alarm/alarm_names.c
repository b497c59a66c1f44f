/*
 * alarm_names.c - the words of alarms as SQL, JSON and iotctl spell them (severities, scopes,
 * operators, sources), both ways, and the numbers a rule compares (see engine.h).
 */
#include "alarm/engine.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const severity_names[] = {"info", "warning", "minor", "major", "critical"};
static const char *const scope_names[] = {"device", "group", "type", "tenant"};
static const char *const op_names[] = {"", ">", ">=", "<", "<=", "==", "!="};
static const char *const source_names[] = {"rule", "device"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static bool parse_name(const char *const *names, size_t n, const char *name, int *out)
{
    if (!name || !*name)
        return false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0) {
            *out = (int)i;
            return true;
        }
    return false;
}

const char *alarm_severity_name(enum alarm_severity s)
{
    return (unsigned)s < COUNT(severity_names) ? severity_names[s] : "warning";
}

const char *alarm_scope_name(enum alarm_scope s)
{
    return (unsigned)s < COUNT(scope_names) ? scope_names[s] : "tenant";
}

const char *alarm_op_name(enum alarm_op op)
{
    return (unsigned)op < COUNT(op_names) ? op_names[op] : "";
}

const char *alarm_source_name(enum alarm_source s)
{
    return (unsigned)s < COUNT(source_names) ? source_names[s] : "rule";
}

bool alarm_severity_parse(const char *name, enum alarm_severity *out)
{
    int v;
    if (!parse_name(severity_names, COUNT(severity_names), name, &v))
        return false;
    *out = (enum alarm_severity)v;
    return true;
}

bool alarm_scope_parse(const char *name, enum alarm_scope *out)
{
    int v;
    if (!parse_name(scope_names, COUNT(scope_names), name, &v))
        return false;
    *out = (enum alarm_scope)v;
    return true;
}

bool alarm_op_parse(const char *name, enum alarm_op *out)
{
    int v;
    if (!parse_name(op_names + 1, COUNT(op_names) - 1, name, &v))
        return false;
    *out = (enum alarm_op)(v + 1);
    return true;
}

bool alarm_source_parse(const char *name, enum alarm_source *out)
{
    int v;
    if (!parse_name(source_names, COUNT(source_names), name, &v))
        return false;
    *out = (enum alarm_source)v;
    return true;
}

bool alarm_parse_number(const char *text, double *out)
{
    char *end;
    if (!text || !*text)
        return false;
    double v = strtod(text, &end);
    while (*end == ' ')
        end++;
    if (end == text || *end != '\0' || !isfinite(v))
        return false;
    *out = v;
    return true;
}
