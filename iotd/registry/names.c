/*
 * names.c - the registry's enums as words (and back), "name@tenant" addresses and UTC times,
 * written the way the control protocol and the database spell them (see registry_internal.h).
 */
#include "registry_internal.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *const direction_names[] = {"command", "event"};
static const char *const auth_names[] = {"hmac", "atecc508a"};
static const char *const role_names[] = {"admin", "operator", "viewer"};
static const char *const group_kind_names[] = {"device", "user"};
static const char *const subject_kind_names[] = {"user", "device", "group"};
static const char *const target_kind_names[] = {"device", "group", "type", "any"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *enum_name(const char *const *names, size_t n, int v)
{
    return (v >= 0 && (size_t)v < n) ? names[v] : "?";
}

static int enum_parse(const char *const *names, size_t n, const char *s)
{
    for (size_t i = 0; s && i < n; i++)
        if (strcmp(names[i], s) == 0)
            return (int)i;
    return -1;
}

const char *reg_direction_name(enum reg_direction d)
{
    return enum_name(direction_names, COUNT(direction_names), d);
}
const char *reg_auth_name(enum reg_auth a)
{
    return enum_name(auth_names, COUNT(auth_names), a);
}
const char *reg_role_name(enum reg_role r)
{
    return enum_name(role_names, COUNT(role_names), r);
}
const char *reg_group_kind_name(enum reg_group_kind k)
{
    return enum_name(group_kind_names, COUNT(group_kind_names), k);
}
const char *reg_subject_kind_name(enum reg_subject_kind k)
{
    return enum_name(subject_kind_names, COUNT(subject_kind_names), k);
}
const char *reg_target_kind_name(enum reg_target_kind k)
{
    return enum_name(target_kind_names, COUNT(target_kind_names), k);
}
int reg_direction_parse(const char *s)
{
    return enum_parse(direction_names, COUNT(direction_names), s);
}
int reg_auth_parse(const char *s)
{
    return enum_parse(auth_names, COUNT(auth_names), s);
}
int reg_role_parse(const char *s)
{
    return enum_parse(role_names, COUNT(role_names), s);
}
int reg_group_kind_parse(const char *s)
{
    return enum_parse(group_kind_names, COUNT(group_kind_names), s);
}
int reg_subject_kind_parse(const char *s)
{
    return enum_parse(subject_kind_names, COUNT(subject_kind_names), s);
}
int reg_target_kind_parse(const char *s)
{
    return enum_parse(target_kind_names, COUNT(target_kind_names), s);
}

bool reg_split_address(const char *address, char *name, size_t namelen, char *tenant,
                       size_t tenantlen)
{
    const char *at = address ? strchr(address, '@') : NULL;
    if (!at || at == address || !at[1] || strchr(at + 1, '@'))
        return false;
    size_t n = (size_t)(at - address), t = strlen(at + 1);
    if (n >= namelen || t >= tenantlen)
        return false;
    memcpy(name, address, n);
    name[n] = '\0';
    memcpy(tenant, at + 1, t + 1);
    return true;
}

void reg_format_time(int64_t seconds, char *out, size_t outlen)
{
    time_t t = (time_t)seconds;
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, outlen, "%lld", (long long)seconds);
}
