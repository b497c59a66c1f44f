/*
 * sim_script.c - scripted and generic answers (see sim_script.h).
 *
 * The file is read into one buffer; each entry points at its type and words inside it, so a
 * loaded script is two allocations. Entries are searched linearly, like the handler table: a
 * device answers a few requests a second and a script names a handful of types.
 */
#include "sim_script.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCRIPT_MAX_BYTES (1024 * 1024)
#define SCRIPT_MAX_LINES 4096

struct script_entry {
    const char *type;
    int is_error; /* words[0] is the code, the rest the message */
    unsigned nwords;
    const char *words[SIM_ANSWER_MAX_ARGS];
};

struct sim_script {
    char *text;
    size_t n;
    struct script_entry entries[];
};

static int fail(char *err, size_t errlen, const char *path, unsigned line, const char *what)
{
    snprintf(err, errlen, "%s:%u: %s", path, line, what);
    return -1;
}

/* Read the whole file (at most SCRIPT_MAX_BYTES) into a NUL-terminated buffer. */
static char *read_file(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    char *text = NULL;
    size_t len = 0;
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    text = malloc(SCRIPT_MAX_BYTES + 1);
    if (text)
        len = fread(text, 1, SCRIPT_MAX_BYTES + 1, f);
    if (!text || ferror(f) || len > SCRIPT_MAX_BYTES || memchr(text, '\0', len)) {
        snprintf(err, errlen, "%s: %s", path,
                 !text                    ? "out of memory"
                 : ferror(f)              ? "cannot read"
                 : len > SCRIPT_MAX_BYTES ? "larger than 1 MiB"
                                          : "holds a NUL byte");
        free(text);
        text = NULL;
    } else {
        text[len] = '\0';
    }
    fclose(f);
    return text;
}

/* An application type: lower case first, then letters, digits, '_', '.', '-'. */
static int valid_type(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= IOTP_MAX_TYPE_LEN || s[0] < 'a' || s[0] > 'z')
        return 0;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

/* Split one line (NUL-terminated, in place) into entry; 0, or -1 with the reason in *why. */
static int parse_line(char *line, struct script_entry *e, const char **why)
{
    char *save = NULL, *word = strtok_r(line, " \t\r", &save);
    memset(e, 0, sizeof(*e));
    e->type = word;
    if (!valid_type(word)) {
        *why = "the type must be lower case: letters, digits, '_', '.' or '-'";
        return -1;
    }
    while ((word = strtok_r(NULL, " \t\r", &save)) != NULL) {
        if (e->nwords == 0 && !e->is_error && strcmp(word, "!error") == 0) {
            e->is_error = 1;
            continue;
        }
        if (e->nwords == SIM_ANSWER_MAX_ARGS) {
            *why = "too many words";
            return -1;
        }
        e->words[e->nwords++] = word;
    }
    if (e->is_error && e->nwords == 0) {
        *why = "!error needs a code";
        return -1;
    }
    return 0;
}

int sim_script_load(const char *path, struct sim_script **out, char *err, size_t errlen)
{
    char *text = read_file(path, err, errlen);
    struct sim_script *s = NULL;
    unsigned lineno = 0;
    const char *why = NULL;
    *out = NULL;
    if (!text)
        return -1;
    s = calloc(1, sizeof(*s) + SCRIPT_MAX_LINES * sizeof(struct script_entry));
    if (!s) {
        free(text);
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    s->text = text;
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        lineno++;
        line += strspn(line, " \t\r");
        if (*line == '\0' || *line == '#')
            continue;
        if (s->n == SCRIPT_MAX_LINES) {
            fail(err, errlen, path, lineno, "more than 4096 answers");
            goto bad;
        }
        if (parse_line(line, &s->entries[s->n], &why) < 0) {
            fail(err, errlen, path, lineno, why);
            goto bad;
        }
        for (size_t i = 0; i < s->n; i++)
            if (strcmp(s->entries[i].type, s->entries[s->n].type) == 0) {
                fail(err, errlen, path, lineno, "a second answer for this type");
                goto bad;
            }
        s->n++;
    }
    *out = s;
    return 0;
bad:
    sim_script_free(s);
    return -1;
}

void sim_script_free(struct sim_script *script)
{
    if (!script)
        return;
    free(script->text);
    free(script);
}

/* Append the text of $NAME at *p (just past the '$') to buf, advancing *p; unknown names are
 * copied as they are. */
static size_t expand_one(const char **p, const char *device_id, const struct iotp_frame *request,
                         char *buf, size_t used, size_t cap)
{
    const char *value = NULL, *s = *p;
    size_t skip = 0;
    if (*s >= '1' && *s <= '9') {
        unsigned i = (unsigned)(*s - '1');
        value = i < request->nargs ? request->args[i] : "";
        skip = 1;
    } else if (strncmp(s, "device", 6) == 0) {
        value = device_id, skip = 6;
    } else if (strncmp(s, "type", 4) == 0) {
        value = request->type, skip = 4;
    } else if (*s == '$') {
        value = "$", skip = 1;
    } else {
        value = "$";
    }
    *p = s + skip;
    int n = snprintf(buf + used, cap - used, "%s", value);
    return n < 0 ? used : used + ((size_t)n < cap - used ? (size_t)n : cap - used - 1);
}

/* One word with its $ references replaced, as an answer arg. */
static void add_word(struct sim_answer *answer, const char *word, const char *device_id,
                     const struct iotp_frame *request)
{
    char buf[SIM_ANSWER_TEXT];
    size_t used = 0;
    buf[0] = '\0';
    for (const char *p = word; *p && used + 1 < sizeof(buf);) {
        if (*p == '$') {
            p++;
            used = expand_one(&p, device_id, request, buf, used, sizeof(buf));
        } else {
            buf[used++] = *p++;
            buf[used] = '\0';
        }
    }
    sim_answer_addf(answer, "%s", buf);
}

int sim_script_answer(const struct sim_script *script, const char *device_id,
                      const struct iotp_frame *request, struct sim_answer *answer)
{
    const struct script_entry *e = NULL;
    for (size_t i = 0; script && i < script->n && !e; i++)
        if (strcmp(script->entries[i].type, request->type) == 0)
            e = &script->entries[i];
    if (!e)
        return 0;
    if (e->is_error) {
        /* The message is the rest of the words, joined with spaces. */
        size_t used = 0;
        answer->error_code = e->words[0];
        for (unsigned i = 1; i < e->nwords && used < sizeof(answer->text); i++) {
            int n = snprintf(answer->text + used, sizeof(answer->text) - used, "%s%s",
                             i > 1 ? " " : "", e->words[i]);
            if (n < 0)
                break;
            used += (size_t)n;
        }
        answer->error_msg = e->nwords > 1 ? answer->text : NULL;
        return 1;
    }
    for (unsigned i = 0; i < e->nwords; i++) {
        if (strcmp(e->words[i], "$*") == 0) {
            for (unsigned a = 0; a < request->nargs && answer->nargs < SIM_ANSWER_MAX_ARGS; a++)
                answer->args[answer->nargs++] = request->args[a];
            continue;
        }
        add_word(answer, e->words[i], device_id, request);
    }
    return 1;
}
