/*
 * args.c - argv -> JSON "args" for one command, from the command table (see args.h).
 *
 * Two passes. The first walks argv and only records which raw string belongs to which param
 * (positionals fill the flag-less params in table order; options are looked up by flag), so that
 * errors about the shape of the command line ("unknown option", "unexpected argument") come
 * before errors about values. The second walks the params in table order, checks each value
 * against its kind, converts it (INT to a JSON number, BOOL to true, SECRET from a file or a
 * prompt), applies the -t tenant default, and reports the first missing required param.
 */
#include "args.h"

#include "iot_error.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Longest secret accepted from a file; ctl_value_valid refuses longer strings anyway. */
#define SECRET_MAX 4096

const char *iotctl_kind_description(enum ctl_arg_kind kind)
{
    switch (kind) {
    case CTL_ARG_NAME:
        return "a name of at most 64 letters, digits, '_', '.' or '-', starting with a letter or "
               "digit";
    case CTL_ARG_INT:
        return "a decimal integer from -9007199254740992 to 9007199254740992 (2^53)";
    case CTL_ARG_HEX:
        return "an even number of hexadecimal digits";
    case CTL_ARG_BOOL:
        return "no value";
    case CTL_ARG_STRING:
    case CTL_ARG_SECRET:
        return "non-empty UTF-8 text without control characters, at most 4096 bytes";
    case CTL_ARG_REST:
        return "UTF-8 words without control characters";
    case CTL_ARG_PATH:
        return "a file path without control characters";
    case CTL_ARG_LOCAL_FILE:
        return "a file name (UTF-8 without control characters)";
    case CTL_ARG_ROWS:
        return "rows iotctl reads from a file";
    }
    return "a value";
}

/* How a param is named in messages: "--type" for options, its METAVAR for positionals. */
static const char *param_label(const struct ctl_param *p)
{
    if (p->flag)
        return p->flag;
    return p->metavar ? p->metavar : p->key;
}

/* The param whose flag is the first len bytes of name, or NULL. */
static const struct ctl_param *find_flag(const struct ctl_command *cmd, const char *name,
                                         size_t len)
{
    size_t count = ctl_command_param_count(cmd);
    for (size_t i = 0; i < count; i++) {
        const char *flag = cmd->params[i].flag;
        if (flag && strlen(flag) == len && strncmp(flag, name, len) == 0)
            return &cmd->params[i];
    }
    return NULL;
}

/* An argv word is an option when it starts with '-' and is not "-" or a negative number. */
static bool looks_like_option(const char *arg)
{
    return arg[0] == '-' && arg[1] != '\0' && !isdigit((unsigned char)arg[1]);
}

bool iotctl_args_wants_help(const struct ctl_command *cmd, int argc, char *const argv[])
{
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return false;
        if ((strcmp(argv[i], "--help") == 0 && !find_flag(cmd, "--help", 6)) ||
            (strcmp(argv[i], "-h") == 0 && !find_flag(cmd, "-h", 2)))
            return true;
    }
    return false;
}

int iotctl_read_secret_file(const char *path, char **out, char *err, size_t errlen)
{
    int rc = IOT_OK;
    char *buf = NULL;
    FILE *file = fopen(path, "re");

    *out = NULL;
    if (!file) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        rc = IOT_EINVAL;
        goto out;
    }
    buf = malloc(SECRET_MAX + 2);
    if (!buf) {
        rc = IOT_ENOMEM;
        goto out;
    }
    /* fread, not fgets: the length must be known to find a NUL, which would otherwise cut the
     * secret silently at the NUL. */
    size_t got = fread(buf, 1, SECRET_MAX + 1, file);
    if (got == 0) {
        snprintf(err, errlen, "%s is empty", path);
        rc = IOT_EINVAL;
        goto out;
    }
    const char *newline = memchr(buf, '\n', got);
    size_t len = newline ? (size_t)(newline - buf) : got;
    if (memchr(buf, '\0', len)) {
        snprintf(err, errlen, "the first line of %s holds a NUL byte", path);
        rc = IOT_EINVAL;
        goto out;
    }
    if (len > SECRET_MAX) {
        snprintf(err, errlen, "the first line of %s is longer than %d bytes", path, SECRET_MAX);
        rc = IOT_EINVAL;
        goto out;
    }
    if (len > 0 && buf[len - 1] == '\r') /* a file written on Windows */
        len--;
    buf[len] = '\0';
    if (len == 0 || !ctl_value_valid(CTL_ARG_SECRET, buf)) {
        snprintf(err, errlen, "the first line of %s must be %s", path,
                 iotctl_kind_description(CTL_ARG_SECRET));
        rc = IOT_EINVAL;
        goto out;
    }
    *out = buf;
    buf = NULL;
out:
    if (buf) {
        explicit_bzero(buf, SECRET_MAX + 2);
        free(buf);
    }
    if (file)
        fclose(file);
    return rc;
}

/* Options main() takes before the command; named here only to explain where they belong. */
static bool is_global_option(const char *arg, size_t len)
{
    static const char *const globals[] = {"-s", "--socket", "-t", "--timeout-ms"};
    for (size_t i = 0; i < sizeof(globals) / sizeof(globals[0]); i++)
        if (strlen(globals[i]) == len && strncmp(globals[i], arg, len) == 0)
            return true;
    return false;
}

/* First pass: assign each argv word to a param (raw[i] for params[i]). */
struct rest_words {
    const char *words[CTL_MAX_REST];
    size_t n;
};

static int collect(const struct ctl_command *cmd, int argc, char *const argv[], const char **raw,
                   struct rest_words *rest, struct iotctl_parsed *out, char *err, size_t errlen)
{
    size_t count = ctl_command_param_count(cmd);
    size_t next_positional = 0;
    bool options_done = false;

    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (!options_done && strcmp(arg, "--") == 0) {
            options_done = true;
            continue;
        }
        if (!options_done && looks_like_option(arg)) {
            const char *equals = strchr(arg, '=');
            size_t name_len = equals ? (size_t)(equals - arg) : strlen(arg);
            const struct ctl_param *p = find_flag(cmd, arg, name_len);
            if (!p) {
                if (strcmp(arg, "--json") == 0) {
                    out->json = true;
                    continue;
                }
                if (strcmp(arg, "--csv") == 0) {
                    out->csv = true;
                    continue;
                }
                if (is_global_option(arg, name_len))
                    snprintf(err, errlen,
                             "%.*s is a global option: give it before the command (\"iotctl "
                             "%.*s VALUE %s ...\")",
                             (int)name_len, arg, (int)name_len, arg, cmd->words);
                else
                    snprintf(err, errlen, "%s: unknown option '%.*s'", cmd->words, (int)name_len,
                             arg);
                return IOT_EINVAL;
            }
            size_t index = (size_t)(p - cmd->params);
            if (raw[index]) {
                snprintf(err, errlen, "%s: option %s given twice", cmd->words, p->flag);
                return IOT_EINVAL;
            }
            if (p->kind == CTL_ARG_BOOL) {
                if (equals) {
                    snprintf(err, errlen, "%s: option %s takes no value", cmd->words, p->flag);
                    return IOT_EINVAL;
                }
                raw[index] = "true";
                continue;
            }
            if (equals) {
                raw[index] = equals + 1;
            } else if (i + 1 < argc) {
                raw[index] = argv[++i];
            } else {
                snprintf(err, errlen, "%s: option %s needs a value (%s)", cmd->words, p->flag,
                         p->metavar ? p->metavar : "VALUE");
                return IOT_EINVAL;
            }
            continue;
        }
        /* Rows are never words of the command line (iotctl builds them from a file). */
        while (next_positional < count && (cmd->params[next_positional].flag ||
                                           cmd->params[next_positional].kind == CTL_ARG_ROWS))
            next_positional++;
        if (next_positional < count && cmd->params[next_positional].kind == CTL_ARG_REST) {
            /* The last positional takes every remaining word (options may still follow). */
            if (rest->n == CTL_MAX_REST) {
                snprintf(err, errlen, "%s: at most %d %s", cmd->words, CTL_MAX_REST,
                         param_label(&cmd->params[next_positional]));
                return IOT_EINVAL;
            }
            rest->words[rest->n++] = arg;
            raw[next_positional] = "";
            continue;
        }
        if (next_positional == count) {
            snprintf(err, errlen, "%s: unexpected argument '%s'", cmd->words, arg);
            return IOT_EINVAL;
        }
        raw[next_positional++] = arg;
    }
    return IOT_OK;
}

/* Second pass for one param that has a raw value: check, convert and add it to args. */
static int add_value(const struct ctl_command *cmd, const struct ctl_param *p, const char *value,
                     cJSON *args, char *err, size_t errlen)
{
    int rc = IOT_OK;
    char *secret = NULL, *absolute = NULL;
    cJSON *item = NULL;

    if (p->kind == CTL_ARG_SECRET) {
        rc = iotctl_read_secret_file(value, &secret, err, errlen);
        if (rc != IOT_OK)
            goto out;
        value = secret;
    } else if (!ctl_value_valid(p->kind, value)) {
        snprintf(err, errlen, "%s: invalid %s '%s': expected %s", cmd->words, param_label(p), value,
                 iotctl_kind_description(p->kind));
        rc = IOT_EINVAL;
        goto out;
    }

    if (p->kind == CTL_ARG_PATH && value[0] != '/') {
        /* iotd opens it, from its own working directory: send the one meant here. */
        char cwd[4096];
        if (!getcwd(cwd, sizeof cwd) || asprintf(&absolute, "%s/%s", cwd, value) < 0) {
            snprintf(err, errlen, "%s: cannot make %s absolute: %s", cmd->words, value,
                     strerror(errno));
            rc = IOT_EIO;
            goto out;
        }
        value = absolute;
    }
    if (p->kind == CTL_ARG_BOOL)
        item = cJSON_CreateTrue();
    else if (p->kind == CTL_ARG_INT)
        item = cJSON_CreateNumber((double)strtoll(value, NULL, 10));
    else
        item = cJSON_CreateString(value);
    if (!item || !cJSON_AddItemToObject(args, p->key, item)) {
        cJSON_Delete(item);
        rc = IOT_ENOMEM;
    }
out:
    if (secret) {
        explicit_bzero(secret, strlen(secret));
        free(secret);
    }
    free(absolute);
    return rc;
}

/* Second pass for a CTL_ARG_REST param: the collected words as an array (empty words kept:
 * an application arg may be ""). */
static int add_rest(const struct ctl_command *cmd, const struct ctl_param *p,
                    const struct rest_words *rest, cJSON *args, char *err, size_t errlen)
{
    cJSON *array = cJSON_CreateArray();
    if (!array || !cJSON_AddItemToObject(args, p->key, array)) {
        cJSON_Delete(array);
        return IOT_ENOMEM;
    }
    for (size_t i = 0; i < rest->n; i++) {
        if (rest->words[i][0] && !ctl_value_valid(CTL_ARG_REST, rest->words[i])) {
            snprintf(err, errlen, "%s: invalid %s '%s': expected %s", cmd->words, param_label(p),
                     rest->words[i], iotctl_kind_description(p->kind));
            return IOT_EINVAL;
        }
        if (!cJSON_AddItemToArray(array, cJSON_CreateString(rest->words[i])))
            return IOT_ENOMEM;
    }
    return IOT_OK;
}

/* Second pass for one param without a raw value: default, prompt, or complain if required. */
static int add_missing(const struct ctl_command *cmd, const struct ctl_param *p,
                       const struct iotctl_args_env *env, cJSON *args, char *err, size_t errlen)
{
    int rc = IOT_OK;
    char *secret = NULL;

    if (strcmp(p->key, "tenant") == 0 && env && env->default_tenant) {
        if (!ctl_value_valid(p->kind, env->default_tenant)) {
            snprintf(err, errlen, "invalid default tenant '%s' (-t or IOTCTL_TENANT): expected %s",
                     env->default_tenant, iotctl_kind_description(p->kind));
            return IOT_EINVAL;
        }
        return cJSON_AddStringToObject(args, p->key, env->default_tenant) ? IOT_OK : IOT_ENOMEM;
    }
    if (!p->required)
        return IOT_OK;
    if (p->kind == CTL_ARG_SECRET && env && env->prompt) {
        rc = env->prompt(env->prompt_ctx, p, &secret, err, errlen);
        if (rc != IOT_OK)
            goto out;
        if (!cJSON_AddStringToObject(args, p->key, secret))
            rc = IOT_ENOMEM;
        goto out;
    }
    if (p->flag && strcmp(p->key, "tenant") == 0)
        snprintf(err, errlen, "%s: missing %s %s (or give -t TENANT or set IOTCTL_TENANT)",
                 cmd->words, p->flag, p->metavar);
    else if (p->flag)
        snprintf(err, errlen, "%s: missing %s %s (%s)", cmd->words, p->flag,
                 p->metavar ? p->metavar : "VALUE", p->help ? p->help : p->key);
    else
        snprintf(err, errlen, "%s: missing %s (%s)", cmd->words, param_label(p),
                 p->help ? p->help : p->key);
    rc = IOT_EINVAL;
out:
    if (secret) {
        explicit_bzero(secret, strlen(secret));
        free(secret);
    }
    return rc;
}

int iotctl_args_parse(const struct ctl_command *cmd, int argc, char *const argv[],
                      const struct iotctl_args_env *env, struct iotctl_parsed *out, char *err,
                      size_t errlen)
{
    const char *raw[CTL_MAX_PARAMS] = {0};
    struct rest_words rest = {.n = 0};
    size_t count = ctl_command_param_count(cmd);
    cJSON *args = NULL;

    out->args = NULL;
    out->json = false;
    out->csv = false;
    int rc = collect(cmd, argc, argv, raw, &rest, out, err, errlen);
    if (rc != IOT_OK)
        goto out;
    args = cJSON_CreateObject();
    if (!args) {
        rc = IOT_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < count && rc == IOT_OK; i++) {
        if (cmd->params[i].kind == CTL_ARG_REST)
            rc = add_rest(cmd, &cmd->params[i], &rest, args, err, errlen);
        else if (raw[i])
            rc = add_value(cmd, &cmd->params[i], raw[i], args, err, errlen);
        else
            rc = add_missing(cmd, &cmd->params[i], env, args, err, errlen);
    }
    if (rc != IOT_OK)
        goto out;
    /* The daemon runs the same check; running it here too turns a table/parser disagreement
     * into a clear local error instead of a round trip. */
    rc = ctl_args_validate(cmd, args, err, errlen);
    if (rc != IOT_OK)
        goto out;
    out->args = args;
    args = NULL;
out:
    cJSON_Delete(args);
    return rc;
}
