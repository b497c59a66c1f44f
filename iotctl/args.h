/*
 * args.h - turn the words after an iotctl command into the command's JSON "args" object.
 *
 * Driven only by the command's params in ctl_commands: positionals in table order, "--flag VALUE"
 * or "--flag=VALUE" options, bare "--flag" for CTL_ARG_BOOL, "--" to end options. Every value is
 * checked with ctl_value_valid and the finished object with ctl_args_validate, so what iotctl
 * sends is exactly what the daemon accepts.
 */
#ifndef IOTCTL_ARGS_H
#define IOTCTL_ARGS_H

#include "ctl_commands.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

/* Obtain a CTL_ARG_SECRET value the user did not give as a file (a terminal prompt). Returns 0
 * with a malloc'ed string in *out, or a negative code with a sentence in err. */
typedef int (*iotctl_prompt_fn)(void *ctx, const struct ctl_param *param, char **out, char *err,
                                size_t errlen);

struct iotctl_args_env {
    const char *default_tenant; /* from -t or $IOTCTL_TENANT; NULL: none */
    iotctl_prompt_fn prompt;    /* NULL: a missing secret is a usage error */
    void *prompt_ctx;
};

struct iotctl_parsed {
    cJSON *args; /* owned by the caller after a successful parse */
    bool json;   /* "--json" appeared after the command words */
    bool csv;    /* "--csv" appeared after the command words */
};

/*
 * Parse argv[0..argc) (the words after the command's own words) for cmd. On success returns 0
 * and out->args is a new object the caller must cJSON_Delete. On a usage error returns
 * IOT_EINVAL and writes one sentence into err (no "iotctl:" prefix); IOT_ENOMEM otherwise.
 * Options named like a global option ("--json") belong to the command when it declares them.
 */
int iotctl_args_parse(const struct ctl_command *cmd, int argc, char *const argv[],
                      const struct iotctl_args_env *env, struct iotctl_parsed *out, char *err,
                      size_t errlen);

/* True when "--help" or "-h" appears among argv before a "--" (and cmd does not declare it). */
bool iotctl_args_wants_help(const struct ctl_command *cmd, int argc, char *const argv[]);

/* Read the first line of path (newline stripped) into a malloc'ed string. Returns IOT_EINVAL
 * with a sentence in err when the file cannot be read, is empty or holds control bytes. */
int iotctl_read_secret_file(const char *path, char **out, char *err, size_t errlen);

/* A sentence describing what a kind accepts ("a name: letters, digits, ..."). */
const char *iotctl_kind_description(enum ctl_arg_kind kind);

#endif
