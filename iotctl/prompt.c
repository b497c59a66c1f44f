/*
 * prompt.c - read a secret from the terminal with echo off (see prompt.h).
 *
 * The prompt goes to stderr, so stdout stays clean for scripts that capture it. Echo is turned
 * off with termios on stdin (TCSAFLUSH discards type-ahead, which might otherwise be taken as
 * the password) and restored on every path before returning. Both answers live in fixed
 * buffers that are wiped before the function returns.
 */
#include "prompt.h"

#include "iot_error.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#define PROMPT_MAX 4098 /* 4096 bytes of secret, '\n' and '\0' */

/* Read one line from stdin with echo off into buf. Returns 0, or IOT_EIO at end of input. */
static int read_hidden(const char *label, char *buf, size_t len)
{
    struct termios saved, quiet;
    bool restore = false;

    fprintf(stderr, "%s", label);
    fflush(stderr);
    if (tcgetattr(STDIN_FILENO, &saved) == 0) {
        quiet = saved;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        quiet.c_lflag |= ECHONL; /* the Enter key still moves the cursor to a new line */
        restore = tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0;
    }
    char *line = fgets(buf, (int)len, stdin);
    if (restore)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
    if (!line)
        return IOT_EIO;
    buf[strcspn(buf, "\r\n")] = '\0';
    return IOT_OK;
}

int iotctl_prompt_secret(void *ctx, const struct ctl_param *param, char **out, char *err,
                         size_t errlen)
{
    int rc = IOT_OK;
    char first[PROMPT_MAX], second[PROMPT_MAX];
    char label[128];

    *out = NULL;
    first[0] = second[0] = '\0';
    if (!isatty(STDIN_FILENO)) {
        snprintf(err, errlen, "missing %s %s: stdin is not a terminal, so iotctl will not prompt",
                 param->flag ? param->flag : param->key, param->metavar ? param->metavar : "");
        rc = IOT_EINVAL;
        goto out;
    }
    snprintf(label, sizeof(label), "%s: ", param->key);
    rc = read_hidden(label, first, sizeof(first));
    if (rc == IOT_OK) {
        snprintf(label, sizeof(label), "%s (again): ", param->key);
        rc = read_hidden(label, second, sizeof(second));
    }
    if (rc != IOT_OK) {
        snprintf(err, errlen, "no %s given", param->key);
        rc = IOT_EINVAL;
        goto out;
    }
    if (strcmp(first, second) != 0) {
        snprintf(err, errlen, "the two %ss do not match", param->key);
        rc = IOT_EINVAL;
        goto out;
    }
    if (!ctl_value_valid(CTL_ARG_SECRET, first)) {
        snprintf(err, errlen, "the %s must be non-empty text without control characters",
                 param->key);
        rc = IOT_EINVAL;
        goto out;
    }
    *out = strdup(first);
    if (!*out)
        rc = IOT_ENOMEM;
out:
    explicit_bzero(first, sizeof(first));
    explicit_bzero(second, sizeof(second));
    return rc;
}
