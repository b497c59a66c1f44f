/*
 * help.c - iotctl's help and "unknown command" messages, built from ctl_commands (see help.h).
 *
 * Nothing here names a noun or a verb: command words are compared word by word against argv, and
 * usage lines are assembled from each param's flag, metavar and required bit. Usage lines wrap
 * at HELP_WIDTH columns under the command name, the way man pages show synopses.
 */
#include "help.h"

#include "ctl_client.h"
#include "iot_error.h"

#include <stdbool.h>
#include <string.h>

#define HELP_WIDTH 100
/* Width of the first column of option and command lists. */
#define HELP_COLUMN 26

static const char global_options[] =
    "Global options (before NOUN):\n"
    "  -s, --socket PATH         control socket (default: $IOTD_SOCKET, then " CTL_DEFAULT_SOCKET
    ")\n"
    "  -t, --tenant TENANT       tenant for commands that take --tenant, when not given there\n"
    "                            (default: $IOTCTL_TENANT)\n"
    "      --json                print results and errors as JSON on stdout (also after the "
    "command)\n"
    "      --csv                 after a list command: print its rows as RFC 4180 CSV\n"
    "      --timeout-ms MS       how long to wait for iotd's answer (default 30000; then exit 10)\n"
    "  -h, --help                this help; \"iotctl NOUN --help\", \"iotctl NOUN VERB --help\"\n"
    "      --version             print the version\n";

/* Length of the i-th space-separated word of words starting at *p; advances *p past it. */
static size_t next_word(const char **p)
{
    while (**p == ' ')
        (*p)++;
    size_t len = strcspn(*p, " ");
    return len;
}

/* True when the first n words of cmd are argv[0..n). On success *rest points after them. */
static bool has_prefix(const struct ctl_command *cmd, int n, char *const argv[], const char **rest)
{
    const char *p = cmd->words;
    for (int i = 0; i < n; i++) {
        size_t len = next_word(&p);
        if (len == 0 || strlen(argv[i]) != len || strncmp(argv[i], p, len) != 0)
            return false;
        p += len;
    }
    while (*p == ' ')
        p++;
    if (rest)
        *rest = p;
    return true;
}

int iotctl_command_prefix(int argc, char *const argv[])
{
    int best = 0;
    for (int c = 0; c < CTL_COMMAND_COUNT; c++)
        for (int n = best + 1; n <= argc && has_prefix(&ctl_commands[c], n, argv, NULL); n++)
            best = n;
    return best;
}

/* Print "  LEFT" padded to HELP_COLUMN, then text (on the next line if LEFT is too long). */
static void print_row(FILE *out, const char *left, const char *text)
{
    int written = fprintf(out, "  %s", left);
    if (written + 2 > HELP_COLUMN) {
        fprintf(out, "\n%*s", HELP_COLUMN, "");
    } else {
        fprintf(out, "%*s", HELP_COLUMN - written, "");
    }
    fprintf(out, "%s\n", text ? text : "");
}

/* What each exit status means, indexed by status; the codes that map to it come from
 * iot_error_exit_status, so the list cannot drift from what iotctl returns. */
static const char *const exit_meanings[] = {
    "success (access check: allowed)",
    "any other error",
    "usage: unknown command or option, missing or malformed argument",
    "a named tenant, type, message, device, user, group or rule does not exist",
    "permission denied (access check: denied)",
    "already exists",
    "iotd is not running or not at the socket",
    "still referenced, or refers to another tenant",
    "database unavailable, iotd overloaded, or too many requests wait at the device",
    "send: the device is not connected",
    "send: no answer within the timeout; or none from iotd within --timeout-ms",
    "send: the message type is not a command of the device's type",
    "send: the device answered ERROR (its code and message are printed)",
};
#define EXIT_STATUS_COUNT (int)(sizeof exit_meanings / sizeof exit_meanings[0])

static void print_exit_statuses(FILE *out)
{
    for (int status = 0; status < EXIT_STATUS_COUNT; status++) {
        fprintf(out, "  %2d  %s", status, exit_meanings[status]);
        const char *separator = " (";
        for (int code = 0; code > -IOT_ERROR_COUNT; code--) {
            if (code == IOT_OK || iot_error_exit_status(code) != status)
                continue;
            fprintf(out, "%s%s", separator, iot_error_name(code));
            separator = ", ";
        }
        fprintf(out, "%s\n", separator[0] == ',' ? ")" : "");
    }
}

void iotctl_help_all(FILE *out)
{
    fprintf(out, "usage: iotctl [-s SOCKET] [--json] [-t TENANT] [--timeout-ms MS] NOUN VERB "
                 "[ARGS...]\n\n"
                 "Administer a running iotd through its control socket.\n\nCommands:\n");
    const char *previous_noun = NULL;
    size_t previous_len = 0;
    for (int c = 0; c < CTL_COMMAND_COUNT; c++) {
        const char *words = ctl_commands[c].words;
        size_t noun_len = strcspn(words, " ");
        if (previous_noun &&
            (noun_len != previous_len || strncmp(words, previous_noun, noun_len) != 0))
            fputc('\n', out);
        previous_noun = words;
        previous_len = noun_len;
        print_row(out, words, ctl_commands[c].summary);
    }
    fprintf(out, "\n%s\nExit status (error codes as in --json output; see iotctl(8)):\n",
            global_options);
    print_exit_statuses(out);
}

void iotctl_help_prefix(FILE *out, int nwords, char *const words[])
{
    fprintf(out, "usage: iotctl");
    for (int i = 0; i < nwords; i++)
        fprintf(out, " %s", words[i]);
    fprintf(out, " VERB [ARGS...]\n\nVerbs:\n");
    for (int c = 0; c < CTL_COMMAND_COUNT; c++) {
        const char *rest = NULL;
        if (has_prefix(&ctl_commands[c], nwords, words, &rest))
            print_row(out, *rest ? rest : "(none)", ctl_commands[c].summary);
    }
    fprintf(out, "\nRun \"iotctl");
    for (int i = 0; i < nwords; i++)
        fprintf(out, " %s", words[i]);
    fprintf(out, " VERB --help\" for a verb's arguments.\n");
}

/* Append one usage token, wrapping to a new line indented by indent when it would overflow. */
static void usage_token(FILE *out, const char *token, int indent, int *column)
{
    int len = (int)strlen(token);
    if (*column + 1 + len > HELP_WIDTH && *column > indent) {
        fprintf(out, "\n%*s", indent, "");
        *column = indent;
    } else {
        fputc(' ', out);
        (*column)++;
    }
    fputs(token, out);
    *column += len;
}

/* The usage token of one param: "ID", "[TEXT]", "--type TYPE", "[--force]". */
static void param_token(const struct ctl_param *p, char *buf, size_t len)
{
    /* A secret can always come from the prompt, so its flag is never mandatory on a terminal. */
    bool optional = !p->required || p->kind == CTL_ARG_SECRET;
    const char *metavar = p->metavar ? p->metavar : "VALUE";
    if (!p->flag)
        snprintf(buf, len, optional ? "[%s]" : "%s", metavar);
    else if (p->kind == CTL_ARG_BOOL)
        snprintf(buf, len, "[%s]", p->flag);
    else
        snprintf(buf, len, optional ? "[%s %s]" : "%s %s", p->flag, metavar);
}

void iotctl_help_command(FILE *out, const struct ctl_command *cmd)
{
    size_t count = ctl_command_param_count(cmd);
    char token[256];
    bool any_positional = false, any_option = false;

    int column = fprintf(out, "usage: iotctl %s", cmd->words);
    int indent = column + 1;
    for (size_t i = 0; i < count; i++) {
        if (cmd->params[i].kind == CTL_ARG_ROWS)
            continue; /* built by iotctl, not typed */
        param_token(&cmd->params[i], token, sizeof(token));
        usage_token(out, token, indent, &column);
        any_positional = any_positional || !cmd->params[i].flag;
        any_option = any_option || cmd->params[i].flag;
    }
    /* Summaries are written as fragments for lists; as a paragraph they read as a sentence. */
    char first = cmd->summary[0];
    fprintf(out, "\n\n%c%s.\n", (first >= 'a' && first <= 'z') ? first - 'a' + 'A' : first,
            cmd->summary + (first ? 1 : 0));

    if (any_positional) {
        fprintf(out, "\nArguments:\n");
        for (size_t i = 0; i < count; i++)
            if (!cmd->params[i].flag && cmd->params[i].kind != CTL_ARG_ROWS)
                print_row(out, cmd->params[i].metavar, cmd->params[i].help);
    }
    if (any_option) {
        fprintf(out, "\nOptions:\n");
        for (size_t i = 0; i < count; i++) {
            const struct ctl_param *p = &cmd->params[i];
            if (!p->flag)
                continue;
            char left[128], text[512];
            if (p->kind == CTL_ARG_BOOL)
                snprintf(left, sizeof(left), "%s", p->flag);
            else
                snprintf(left, sizeof(left), "%s %s", p->flag, p->metavar ? p->metavar : "VALUE");
            if (p->kind == CTL_ARG_SECRET)
                snprintf(text, sizeof(text), "%s (first line; asked for on a terminal if absent)",
                         p->help);
            else if (p->required && strcmp(p->key, "tenant") == 0)
                snprintf(text, sizeof(text), "%s (required; default: -t or $IOTCTL_TENANT)",
                         p->help);
            else if (strcmp(p->key, "tenant") == 0)
                snprintf(text, sizeof(text), "%s (default: -t or $IOTCTL_TENANT)", p->help);
            else
                snprintf(text, sizeof(text), p->required ? "%s (required)" : "%s", p->help);
            print_row(out, left, text);
        }
    }
    fprintf(out, "\nGlobal options (-s SOCKET, --json, -t TENANT, --timeout-ms MS) go before the "
                 "command;\nsee \"iotctl --help\" and iotctl(8).\n");
}

/* Levenshtein distance of a and b, capped: anything above 3 is reported as 4. */
static int edit_distance(const char *a, const char *b, size_t b_len)
{
    size_t a_len = strlen(a);
    int row[64];
    if (a_len >= 63 || b_len >= 63)
        return 4;
    for (size_t j = 0; j <= b_len; j++)
        row[j] = (int)j;
    for (size_t i = 1; i <= a_len; i++) {
        int diagonal = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= b_len; j++) {
            int above = row[j];
            int cost = a[i - 1] == b[j - 1] ? 0 : 1;
            int best = diagonal + cost;
            if (above + 1 < best)
                best = above + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diagonal = above;
        }
    }
    return row[b_len] > 3 ? 4 : row[b_len];
}

/* Append to buf (which holds used bytes) without overflowing. */
static void append(char *buf, size_t len, size_t *used, const char *fmt, const char *a, size_t n)
{
    if (*used >= len)
        return;
    int written = snprintf(buf + *used, len - *used, fmt, (int)n, a);
    if (written > 0)
        *used += (size_t)written;
    if (*used >= len)
        *used = len - 1;
}

void iotctl_unknown_command(char *buf, size_t len, int nwords, char *const words[],
                            const char *word)
{
    size_t used = 0;
    const char *candidates[CTL_COMMAND_COUNT];
    size_t candidate_len[CTL_COMMAND_COUNT];
    int ncandidates = 0;

    /* The distinct next words after the prefix, in table order. */
    for (int c = 0; c < CTL_COMMAND_COUNT; c++) {
        const char *rest = NULL;
        if (!has_prefix(&ctl_commands[c], nwords, words, &rest) || !*rest)
            continue;
        size_t n = strcspn(rest, " ");
        bool seen = false;
        for (int i = 0; i < ncandidates && !seen; i++)
            seen = candidate_len[i] == n && strncmp(candidates[i], rest, n) == 0;
        if (!seen) {
            candidates[ncandidates] = rest;
            candidate_len[ncandidates++] = n;
        }
    }

    char prefix[256] = "";
    size_t prefix_used = 0;
    for (int i = 0; i < nwords; i++)
        append(prefix, sizeof(prefix), &prefix_used, i ? " %.*s" : "%.*s", words[i],
               strlen(words[i]));

    buf[0] = '\0';
    if (!word)
        append(buf, len, &used, "'%.*s' needs a verb", prefix, prefix_used);
    else if (nwords == 0)
        append(buf, len, &used, "unknown command '%.*s'", word, strlen(word));
    else {
        append(buf, len, &used, "unknown verb '%.*s'", word, strlen(word));
        append(buf, len, &used, " for '%.*s'", prefix, prefix_used);
    }

    if (word) {
        int best = -1, best_distance = 3;
        for (int i = 0; i < ncandidates; i++) {
            int d = edit_distance(word, candidates[i], candidate_len[i]);
            bool starts = strlen(word) >= 2 && strncmp(candidates[i], word, strlen(word)) == 0;
            if (starts)
                d = 1;
            if (d < best_distance) {
                best = i;
                best_distance = d;
            }
        }
        if (best >= 0)
            append(buf, len, &used, "; did you mean '%.*s'?", candidates[best],
                   candidate_len[best]);
    }
    append(buf, len, &used, " (%.*s",
           nwords ? "verbs:" : "commands:", strlen(nwords ? "verbs:" : "commands:"));
    for (int i = 0; i < ncandidates; i++)
        append(buf, len, &used, " %.*s", candidates[i], candidate_len[i]);
    append(buf, len, &used, "%.*s)", "", 0);
}
