/*
 * argspec.c - parse, format and apply message argument specs (grammar in argspec.h).
 *
 * The parser walks the spec once, token by token, and reports the first problem with the
 * token's position so an operator can fix a long spec without guessing.
 */
#include "argspec.h"

#include "iot_error.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[] = {
    [ARGSPEC_INT] = "int",   [ARGSPEC_UINT] = "uint", [ARGSPEC_FLOAT] = "float",
    [ARGSPEC_BOOL] = "bool", [ARGSPEC_STR] = "str",   [ARGSPEC_HEX] = "hex",
};

const char *argspec_kind_name(enum argspec_kind kind)
{
    if ((unsigned)kind >= sizeof(kind_names) / sizeof(kind_names[0]))
        return "?";
    return kind_names[kind];
}

static bool name_char(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || c == '_' || (!first && c >= '0' && c <= '9');
}

/* Parse one "name:kind[?]" token of length len into arg. */
static int parse_token(const char *tok, size_t len, unsigned index, struct argspec_arg *arg,
                       char *err, size_t errlen)
{
    const char *colon = memchr(tok, ':', len);
    if (!colon) {
        snprintf(err, errlen, "args spec: argument %u '%.*s' is not name:kind", index, (int)len,
                 tok);
        return IOT_EINVAL;
    }
    size_t nlen = (size_t)(colon - tok);
    if (nlen == 0 || nlen > ARGSPEC_NAME_MAX) {
        snprintf(err, errlen, "args spec: argument %u needs a name of 1 to %d characters", index,
                 ARGSPEC_NAME_MAX);
        return IOT_EINVAL;
    }
    for (size_t i = 0; i < nlen; i++) {
        if (!name_char(tok[i], i == 0)) {
            snprintf(err, errlen,
                     "args spec: argument name '%.*s' must be lower case letters, digits and '_', "
                     "not starting with a digit",
                     (int)nlen, tok);
            return IOT_EINVAL;
        }
    }
    memcpy(arg->name, tok, nlen);
    arg->name[nlen] = '\0';

    const char *kind = colon + 1;
    size_t klen = len - nlen - 1;
    arg->optional = klen > 0 && kind[klen - 1] == '?';
    if (arg->optional)
        klen--;
    for (size_t k = 0; k < sizeof(kind_names) / sizeof(kind_names[0]); k++) {
        if (strlen(kind_names[k]) == klen && memcmp(kind_names[k], kind, klen) == 0) {
            arg->kind = (enum argspec_kind)k;
            return IOT_OK;
        }
    }
    snprintf(err, errlen,
             "args spec: argument '%s' has kind '%.*s'; kinds are int, uint, float, bool, str "
             "and hex",
             arg->name, (int)klen, kind);
    return IOT_EINVAL;
}

int argspec_parse(const char *spec, struct argspec *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    const char *p = spec ? spec : "";
    for (;;) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        size_t len = strcspn(p, " ");
        for (size_t i = 0; i < len; i++) {
            if (iscntrl((unsigned char)p[i])) {
                snprintf(err, errlen, "args spec: control characters are not allowed");
                return IOT_EINVAL;
            }
        }
        if (out->count == ARGSPEC_MAX_ARGS) {
            snprintf(err, errlen, "args spec: at most %d arguments", ARGSPEC_MAX_ARGS);
            return IOT_EINVAL;
        }
        struct argspec_arg *arg = &out->args[out->count];
        int rc = parse_token(p, len, out->count + 1, arg, err, errlen);
        if (rc != IOT_OK)
            return rc;
        for (unsigned i = 0; i < out->count; i++) {
            if (strcmp(out->args[i].name, arg->name) == 0) {
                snprintf(err, errlen, "args spec: argument '%s' appears twice", arg->name);
                return IOT_EINVAL;
            }
        }
        if (!arg->optional && out->required != out->count) {
            snprintf(err, errlen,
                     "args spec: required argument '%s' follows an optional one; optional "
                     "arguments must come last",
                     arg->name);
            return IOT_EINVAL;
        }
        if (!arg->optional)
            out->required++;
        out->count++;
        p += len;
    }
    return IOT_OK;
}

int argspec_format(const struct argspec *spec, char *out, size_t outlen)
{
    size_t used = 0;
    if (outlen == 0)
        return IOT_EINVAL;
    out[0] = '\0';
    for (unsigned i = 0; i < spec->count; i++) {
        const struct argspec_arg *a = &spec->args[i];
        int n = snprintf(out + used, outlen - used, "%s%s:%s%s", i ? " " : "", a->name,
                         argspec_kind_name(a->kind), a->optional ? "?" : "");
        if (n < 0 || (size_t)n >= outlen - used)
            return IOT_EINVAL;
        used += (size_t)n;
    }
    return IOT_OK;
}

static bool value_ok(enum argspec_kind kind, const char *v)
{
    size_t len = strlen(v);
    switch (kind) {
    case ARGSPEC_INT:
    case ARGSPEC_UINT: {
        size_t i = (kind == ARGSPEC_INT && v[0] == '-') ? 1 : 0;
        if (i == len || len - i > 19)
            return false;
        for (; i < len; i++)
            if (!isdigit((unsigned char)v[i]))
                return false;
        return true;
    }
    case ARGSPEC_FLOAT: {
        if (len == 0 || isspace((unsigned char)v[0]))
            return false;
        char *end;
        errno = 0;
        double d = strtod(v, &end);
        return *end == '\0' && errno == 0 && isfinite(d);
    }
    case ARGSPEC_BOOL:
        return strcmp(v, "true") == 0 || strcmp(v, "false") == 0 || strcmp(v, "1") == 0 ||
               strcmp(v, "0") == 0;
    case ARGSPEC_HEX:
        if (len == 0 || len % 2)
            return false;
        for (size_t i = 0; i < len; i++)
            if (!isxdigit((unsigned char)v[i]))
                return false;
        return true;
    case ARGSPEC_STR:
        return true;
    }
    return false;
}

int argspec_check_values(const struct argspec *spec, size_t argc, const char *const *argv,
                         char *err, size_t errlen)
{
    if (argc < spec->required || argc > spec->count) {
        if (spec->required == spec->count)
            snprintf(err, errlen, "expected %u arguments, got %zu", spec->count, argc);
        else
            snprintf(err, errlen, "expected %u to %u arguments, got %zu", spec->required,
                     spec->count, argc);
        return IOT_EINVAL;
    }
    for (size_t i = 0; i < argc; i++) {
        if (!value_ok(spec->args[i].kind, argv[i])) {
            snprintf(err, errlen, "argument %zu (%s) must be %s", i + 1, spec->args[i].name,
                     argspec_kind_name(spec->args[i].kind));
            return IOT_EINVAL;
        }
    }
    return IOT_OK;
}

/* The spec argument named by the key of "key=value" (klen bytes), or NULL. */
static const struct argspec_arg *field_arg(const struct argspec *spec, const char *key, size_t klen,
                                           unsigned *index)
{
    for (unsigned i = 0; i < spec->count; i++) {
        if (strlen(spec->args[i].name) == klen && memcmp(spec->args[i].name, key, klen) == 0) {
            *index = i;
            return &spec->args[i];
        }
    }
    return NULL;
}

int argspec_check_fields(const struct argspec *spec, size_t argc, const char *const *argv,
                         const char *const *reserved, char *err, size_t errlen)
{
    uint32_t seen = 0; /* bit i: spec argument i was given (ARGSPEC_MAX_ARGS <= 32) */
    for (size_t i = 0; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        if (!eq || eq == argv[i]) {
            snprintf(err, errlen, "field %zu is not key=value", i + 1);
            return IOT_EINVAL;
        }
        size_t klen = (size_t)(eq - argv[i]);
        bool is_reserved = false;
        for (const char *const *r = reserved; r && *r; r++)
            if (strlen(*r) == klen && memcmp(*r, argv[i], klen) == 0)
                is_reserved = true;
        if (is_reserved)
            continue;
        unsigned index = 0;
        const struct argspec_arg *a = field_arg(spec, argv[i], klen, &index);
        if (!a) {
            snprintf(err, errlen, "unknown field %.*s", (int)(klen > 32 ? 32 : klen), argv[i]);
            return IOT_EINVAL;
        }
        if (seen & (1u << index)) {
            snprintf(err, errlen, "field %s given twice", a->name);
            return IOT_EINVAL;
        }
        seen |= 1u << index;
        if (!value_ok(a->kind, eq + 1)) {
            snprintf(err, errlen, "field %s must be %s", a->name, argspec_kind_name(a->kind));
            return IOT_EINVAL;
        }
    }
    for (unsigned i = 0; i < spec->required; i++) {
        if (!(seen & (1u << i))) {
            snprintf(err, errlen, "field %s is missing", spec->args[i].name);
            return IOT_EINVAL;
        }
    }
    return IOT_OK;
}
