/*
 * argspec.h - the positional argument spec of a message type, as stored in the catalogue.
 *
 * Grammar (what "iotctl message add --args SPEC" accepts):
 *
 *     spec  = "" | arg { " "+ arg }            (leading/trailing blanks ignored)
 *     arg   = name ":" kind [ "?" ]
 *     name  = [a-z_][a-z0-9_]*                 (at most 32 characters, unique in the spec)
 *     kind  = "int" | "uint" | "float" | "bool" | "str" | "hex"
 *
 * A trailing "?" marks an optional argument; optional arguments come last (once one argument is
 * optional, every later one must be). At most ARGSPEC_MAX_ARGS arguments. Examples:
 * "x:int y:int colour:str?", "" (no arguments), "blob:hex". Values on the wire are text:
 * int = optional '-' and decimal digits, uint = decimal digits, float = a finite decimal number,
 * bool = true|false|1|0, hex = an even number of hex digits, str = any text.
 */
#ifndef IOTD_REGISTRY_ARGSPEC_H
#define IOTD_REGISTRY_ARGSPEC_H

#include <stdbool.h>
#include <stddef.h>

#define ARGSPEC_MAX_ARGS 28 /* a frame carries 32 fields; FROM TO TYPE ID take four */
#define ARGSPEC_NAME_MAX 32

enum argspec_kind {
    ARGSPEC_INT,
    ARGSPEC_UINT,
    ARGSPEC_FLOAT,
    ARGSPEC_BOOL,
    ARGSPEC_STR,
    ARGSPEC_HEX,
};

struct argspec_arg {
    char name[ARGSPEC_NAME_MAX + 1];
    enum argspec_kind kind;
    bool optional;
};

struct argspec {
    unsigned count;    /* arguments declared */
    unsigned required; /* the first `required` of them are mandatory */
    struct argspec_arg args[ARGSPEC_MAX_ARGS];
};

/* Parse spec (NULL = ""). IOT_EINVAL with a sentence in err naming the offending argument. */
int argspec_parse(const char *spec, struct argspec *out, char *err, size_t errlen);
/* Write the canonical form (single spaces) into out; returns IOT_EINVAL if it does not fit. */
int argspec_format(const struct argspec *spec, char *out, size_t outlen);
/* Check positional values against the spec: count and kinds. IOT_EINVAL with a sentence. */
int argspec_check_values(const struct argspec *spec, size_t argc, const char *const *argv,
                         char *err, size_t errlen);
/* Check "key=value" fields (events) against the spec: every key declared, given once, of its
 * kind, and every required one present; keys listed in reserved (NULL-terminated, may be NULL)
 * are skipped. IOT_EINVAL with a sentence. */
int argspec_check_fields(const struct argspec *spec, size_t argc, const char *const *argv,
                         const char *const *reserved, char *err, size_t errlen);

const char *argspec_kind_name(enum argspec_kind kind);

#endif
