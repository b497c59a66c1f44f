/*
 * main.c - iotctl: administer a running iotd from the shell.
 *
 *   iotctl [-s SOCKET] [--json] [-t TENANT] [--timeout-ms MS] NOUN VERB ARGS...
 *
 * The flow is argv -> command (ctl_command_match over the shared table) -> args JSON (args.c)
 * -> one request on the control socket (ctl_client) -> table, "key: value" lines or JSON
 * (output.c). iotctl holds no business logic: everything it knows about a command comes from
 * ctl_commands, and every decision is the daemon's. The exit status is the error code's
 * iot_error_exit_status, so cron jobs and scripts can branch on it (see iotctl(8)).
 *
 * Global options come before NOUN; "--json" and "--help" may also follow the command, since
 * scripts tend to append them. A streaming command prints items until the daemon ends the
 * stream or the operator presses Ctrl-C (SIGINT interrupts the blocking read, see ctl_client.c).
 */
#include "args.h"
#include "ctl_client.h"
#include "ctl_commands.h"
#include "ctl_proto.h"
#include "fleet.h"
#include "help.h"
#include "iot_error.h"
#include "output.h"
#include "prompt.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef IOTCTL_VERSION
#define IOTCTL_VERSION "unknown"
#endif

#define DEFAULT_TIMEOUT_MS 30000
#define EXIT_USAGE         2

struct options {
    const char *socket; /* -s; NULL: $IOTD_SOCKET, then CTL_DEFAULT_SOCKET */
    const char *tenant; /* -t; NULL: $IOTCTL_TENANT */
    bool json;
    bool csv; /* list results as CSV (RFC 4180) for exports */
    int timeout_ms;
};

/* Report a usage error the way every other error is reported, with a pointer to help. */
static int usage_error(const struct options *opts, const char *message, const char *help_hint)
{
    iotctl_print_error(stdout, stderr, IOT_EINVAL, message, NULL, opts->json);
    if (help_hint)
        fprintf(stderr, "Run \"iotctl %s--help\" for usage.\n", help_hint);
    return EXIT_USAGE;
}

/*
 * Parse the global options at argv[1..); returns the index of NOUN, or -1 after printing help
 * or the version (*status 0) or a usage error (*status 2).
 */
static int parse_globals(int argc, char *argv[], struct options *opts, int *status)
{
    char message[256];
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *arg = argv[i];
        const char *equals = strchr(arg, '=');
        size_t name_len = equals ? (size_t)(equals - arg) : strlen(arg);
        const char **target = NULL;

#define IS(name) (name_len == strlen(name) && strncmp(arg, name, name_len) == 0)
        if (IS("--")) {
            i++;
            break;
        } else if (IS("-h") || IS("--help")) {
            iotctl_help_all(stdout);
            *status = 0;
            return -1;
        } else if (IS("--version")) {
            printf("iotctl %s\n", IOTCTL_VERSION);
            *status = 0;
            return -1;
        } else if (IS("--json")) {
            opts->json = true;
            continue;
        } else if (IS("-s") || IS("--socket")) {
            target = &opts->socket;
        } else if (IS("-t") || IS("--tenant")) {
            target = &opts->tenant;
        } else if (IS("--timeout-ms")) {
            target = NULL; /* parsed below */
        } else {
            snprintf(message, sizeof(message), "unknown option '%.*s'", (int)name_len, arg);
            *status = usage_error(opts, message, "");
            return -1;
        }
#undef IS
        const char *value = equals ? equals + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!value || !*value) {
            snprintf(message, sizeof(message), "option '%.*s' needs a value", (int)name_len, arg);
            *status = usage_error(opts, message, "");
            return -1;
        }
        if (target) {
            *target = value;
            continue;
        }
        char *end = NULL;
        long ms = strtol(value, &end, 10);
        if (!ctl_value_valid(CTL_ARG_INT, value) || *end || ms <= 0 || ms > 24L * 3600 * 1000) {
            snprintf(message, sizeof(message),
                     "--timeout-ms: '%s' is not a number of milliseconds (1 to 86400000)", value);
            *status = usage_error(opts, message, "");
            return -1;
        }
        opts->timeout_ms = (int)ms;
    }
    return i;
}

/* Words argv[0..n) joined with spaces and a trailing space, for "Run iotctl ... --help". */
static void join_words(char *buf, size_t len, int n, char *const argv[])
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && used < len; i++) {
        int written = snprintf(buf + used, len - used, "%s ", argv[i]);
        if (written < 0)
            break;
        used += (size_t)written;
    }
}

static bool is_help_word(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

/* A signal handler that only interrupts: the blocking read returns EINTR and the stream ends. */
static void interrupt_handler(int sig)
{
    (void)sig;
}

/* After an "ok" reply with "stream": true, print items until "end", an error or Ctrl-C. */
static int run_stream(ctl_client_t *client, const struct options *opts)
{
    struct sigaction action = {.sa_handler = interrupt_handler}; /* no SA_RESTART */
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);

    int status = 0;
    for (;;) {
        cJSON *msg = NULL;
        int rc = ctl_client_read(client, -1, &msg);
        if (rc == IOT_EIO && errno == EINTR)
            break; /* the operator stopped the stream: not an error */
        if (rc != IOT_OK) {
            iotctl_print_error(stdout, stderr, rc,
                               rc == IOT_EUNREACHABLE ? "iotd closed the connection" : NULL, NULL,
                               opts->json);
            status = iot_error_exit_status(rc);
            break;
        }
        const cJSON *item = cJSON_GetObjectItemCaseSensitive(msg, "item");
        const cJSON *error = cJSON_GetObjectItemCaseSensitive(msg, "error");
        if (item) {
            iotctl_print_stream_item(stdout, item, opts->json);
        } else if (error) {
            int code = iot_error_from_name(ctl_get_string(error, "code"));
            iotctl_print_error(stdout, stderr, code, ctl_get_string(error, "message"), error,
                               opts->json);
            status = iot_error_exit_status(code);
        }
        bool end = ctl_get_bool(msg, "end", 0) || error;
        cJSON_Delete(msg);
        if (end)
            break;
    }
    return status;
}

/* --all after its first page (args: the request without "all", with its "limit"): ask for the
 * pages after next one at a time and print each before asking for the following one, so that
 * neither iotd nor iotctl ever holds more than a page. Takes ownership of args. */
static int run_more_pages(ctl_client_t *client, const struct options *opts,
                          const struct ctl_command *cmd, cJSON *args, const char *next,
                          enum iotctl_format format)
{
    cJSON *reply = NULL;
    int status = 0;
    while (next) {
        cJSON_DeleteItemFromObjectCaseSensitive(args, "after");
        cJSON *request =
            cJSON_AddStringToObject(args, "after", next) ? cJSON_Duplicate(args, true) : NULL;
        cJSON_Delete(reply);
        reply = NULL;
        int rc = request ? ctl_client_call(client, cmd->name, request, opts->timeout_ms, &reply)
                         : IOT_ENOMEM;
        if (rc != IOT_OK) {
            const cJSON *error = cJSON_GetObjectItemCaseSensitive(reply, "error");
            iotctl_print_error(stdout, stderr, rc, ctl_get_string(error, "message"),
                               cJSON_IsObject(error) ? error : NULL, opts->json);
            status = iot_error_exit_status(rc);
            break;
        }
        const cJSON *result = cJSON_GetObjectItemCaseSensitive(reply, "result");
        iotctl_print_page(stdout, cmd, result, format, false);
        next = ctl_get_string(result, "next");
    }
    cJSON_Delete(reply);
    cJSON_Delete(args);
    return status;
}

/* Send the command and show its reply. Takes ownership of args. Returns the exit status. */
static int run_command(const struct options *opts, const struct ctl_command *cmd, cJSON *args)
{
    ctl_client_t *client = NULL;
    cJSON *reply = NULL, *again = NULL;
    char message[512];
    int status = 0;

    const char *path = opts->socket;
    if (!path || !*path)
        path = getenv("IOTD_SOCKET");
    if (!path || !*path)
        path = CTL_DEFAULT_SOCKET;

    int rc = ctl_client_connect(&client, path);
    if (rc != IOT_OK) {
        cJSON_Delete(args);
        if (rc == IOT_EUNREACHABLE)
            snprintf(message, sizeof(message), "cannot reach iotd at %s: is it running?", path);
        else if (rc == IOT_EDENIED)
            snprintf(message, sizeof(message),
                     "permission denied on %s: run as root or as a member of iotd's admin group",
                     path);
        else if (rc == IOT_EINVAL)
            snprintf(message, sizeof(message), "socket path too long: %s", path);
        else
            snprintf(message, sizeof(message), "cannot connect to %s: %s", path, iot_strerror(rc));
        iotctl_print_error(stdout, stderr, rc, message, NULL, opts->json);
        status = iot_error_exit_status(rc);
        goto out;
    }

    /* import and export: many requests, driven by iotctl (fleet.c) */
    iotctl_driver_fn driver = iotctl_driver_of(cmd);
    if (driver) {
        struct iotctl_session session = {client, cmd, opts->timeout_ms, opts->json};
        status = driver(&session, args);
        cJSON_Delete(args);
        goto out;
    }
    /* --all: the pages are asked for one at a time, CTL_PAGE_ALL rows each unless --limit
     * says otherwise (run_more_pages). */
    bool all = ctl_get_bool(args, "all", 0);
    cJSON_DeleteItemFromObjectCaseSensitive(args, "all");
    if (all && !cJSON_GetObjectItemCaseSensitive(args, "limit"))
        cJSON_AddNumberToObject(args, "limit", CTL_PAGE_ALL);
    again = all ? cJSON_Duplicate(args, true) : NULL;
    rc = ctl_client_call(client, cmd->name, args, opts->timeout_ms, &reply);
    if (rc != IOT_OK) {
        const cJSON *error = cJSON_GetObjectItemCaseSensitive(reply, "error");
        const char *text = ctl_get_string(error, "message");
        if (!reply && rc == IOT_EBUSY) {
            /* Our own deadline, not iotd refusing work: a timeout, and said to be ours. */
            rc = IOT_ETIMEOUT;
            snprintf(message, sizeof(message),
                     "no answer from iotd within %d ms (--timeout-ms); the request may still "
                     "complete",
                     opts->timeout_ms);
            text = message;
        } else if (!reply && rc == IOT_EUNREACHABLE) {
            text = "iotd closed the connection before answering";
        } else if (!reply && rc == IOT_EPROTO) {
            text = "iotd sent a malformed reply";
        }
        iotctl_print_error(stdout, stderr, rc, text, cJSON_IsObject(error) ? error : NULL,
                           opts->json);
        status = iot_error_exit_status(rc);
        goto out;
    }

    if (ctl_get_bool(reply, "stream", 0)) {
        status = run_stream(client, opts);
        goto out;
    }
    const cJSON *result = cJSON_GetObjectItemCaseSensitive(reply, "result");
    const char *next = ctl_get_string(result, "next");
    if (again) {
        enum iotctl_format format = opts->json  ? IOTCTL_JSON
                                    : opts->csv ? IOTCTL_CSV
                                                : IOTCTL_TABLE;
        iotctl_print_page(stdout, cmd, result, format, true);
        status = run_more_pages(client, opts, cmd, again, next, format);
        again = NULL;
        goto out;
    }
    cJSON *empty = NULL;
    if (!cJSON_IsObject(result))
        result = empty = cJSON_CreateObject();
    if (opts->csv && !opts->json)
        status = iotctl_print_csv(stdout, cmd, result);
    else
        status = iotctl_print_result(stdout, stderr, cmd, result, opts->json);
    cJSON_Delete(empty);
    /* Never a silent truncation: JSON carries "next", text says so on standard error. */
    if (next && !opts->json) {
        fflush(stdout);
        fprintf(stderr, "iotctl: more rows follow: continue with --after %s (or use --all)\n",
                next);
    }
out:
    cJSON_Delete(again);
    cJSON_Delete(reply);
    ctl_client_close(client);
    return status;
}

int main(int argc, char *argv[])
{
    struct options opts = {.timeout_ms = DEFAULT_TIMEOUT_MS};
    char message[1024], hint[256];
    int status = 0;

    int first = parse_globals(argc, argv, &opts, &status);
    if (first < 0)
        goto out;
    if (!opts.tenant || !*opts.tenant)
        opts.tenant = getenv("IOTCTL_TENANT");
    if (opts.tenant && !*opts.tenant)
        opts.tenant = NULL;
    if (first == argc) {
        iotctl_help_all(stderr);
        status = usage_error(&opts, "missing command", NULL);
        goto out;
    }

    int words = argc - first;
    char *const *word = argv + first;
    int consumed = 0;
    const struct ctl_command *cmd = ctl_command_match(words, word, &consumed);
    if (!cmd) {
        int prefix = iotctl_command_prefix(words, word);
        bool help = prefix < words && is_help_word(word[prefix]);
        if (prefix > 0 && help) {
            iotctl_help_prefix(stdout, prefix, word);
            goto out;
        }
        /* "iotctl frob --json": the error is still the JSON the script asked for. */
        for (int i = prefix; i < words && strcmp(word[i], "--") != 0; i++)
            opts.json = opts.json || strcmp(word[i], "--json") == 0;
        iotctl_unknown_command(message, sizeof(message), prefix, word,
                               prefix < words && word[prefix][0] != '-' ? word[prefix] : NULL);
        join_words(hint, sizeof(hint), prefix, word);
        status = usage_error(&opts, message, hint);
        goto out;
    }

    int rest = words - consumed;
    char *const *rest_argv = word + consumed;
    if (iotctl_args_wants_help(cmd, rest, rest_argv)) {
        iotctl_help_command(stdout, cmd);
        goto out;
    }
    struct iotctl_args_env env = {.default_tenant = opts.tenant, .prompt = iotctl_prompt_secret};
    struct iotctl_parsed parsed = {0};
    int rc = iotctl_args_parse(cmd, rest, rest_argv, &env, &parsed, message, sizeof(message));
    opts.json = opts.json || parsed.json;
    opts.csv = parsed.csv;
    if (rc == IOT_EINVAL) {
        join_words(hint, sizeof(hint), consumed, word);
        status = usage_error(&opts, message, hint);
        goto out;
    }
    if (rc != IOT_OK) {
        iotctl_print_error(stdout, stderr, rc, NULL, NULL, opts.json);
        status = iot_error_exit_status(rc);
        goto out;
    }
    status = run_command(&opts, cmd, parsed.args);
out:
    if (fflush(stdout) != 0 && status == 0)
        status = 1;
    return status;
}
