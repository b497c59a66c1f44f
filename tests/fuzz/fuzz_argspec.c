/*
 * fuzz_argspec.c - libFuzzer target for the catalogue's argument specs and field checks
 * (iotd/registry/argspec.c, used read-only through its header).
 *
 * The input is cut at the first NUL: before it, a spec for argspec_parse; after it, NUL-separated
 * values, checked as positional arguments (argspec_check_values) and as key=value event fields
 * (argspec_check_fields, with "seq" reserved). Properties: a parse either succeeds or writes a
 * message; a parsed spec is well formed (count within bounds, required <= count, names
 * non-empty and unique, no required argument after an optional one) and its canonical form
 * (argspec_format) parses back to the same spec and formats to the same text; every check
 * returns IOT_OK or IOT_EINVAL with a message.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "argspec.h"
#include "iot_error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_VALUES 40

static void check(int ok)
{
    if (!ok)
        abort();
}

static void check_well_formed(const struct argspec *s)
{
    check(s->count <= ARGSPEC_MAX_ARGS && s->required <= s->count);
    for (unsigned i = 0; i < s->count; i++) {
        check(s->args[i].name[0] != '\0' && strlen(s->args[i].name) <= ARGSPEC_NAME_MAX);
        check(s->args[i].optional == (i >= s->required));
        check(argspec_kind_name(s->args[i].kind) != NULL);
        for (unsigned j = 0; j < i; j++)
            check(strcmp(s->args[i].name, s->args[j].name) != 0);
    }
}

static void same_spec(const struct argspec *a, const struct argspec *b)
{
    check(a->count == b->count && a->required == b->required);
    for (unsigned i = 0; i < a->count; i++) {
        check(strcmp(a->args[i].name, b->args[i].name) == 0);
        check(a->args[i].kind == b->args[i].kind && a->args[i].optional == b->args[i].optional);
    }
}

static void check_rc(int rc, const char *err)
{
    check(rc == IOT_OK || (rc == IOT_EINVAL && err[0] != '\0'));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const reserved[] = {"seq", NULL};
    struct argspec spec, again;
    char err[512], canon[4096], canon2[4096];
    const char *values[MAX_VALUES];
    size_t nvalues = 0;

    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    size_t spec_len = strlen(text);
    for (size_t at = spec_len + 1; at <= size && nvalues < MAX_VALUES; at += strlen(text + at) + 1)
        values[nvalues++] = text + at;

    err[0] = '\0';
    int rc = argspec_parse(text, &spec, err, sizeof(err));
    check_rc(rc, err);
    if (rc == IOT_OK) {
        check_well_formed(&spec);
        if (argspec_format(&spec, canon, sizeof(canon)) == IOT_OK) {
            err[0] = '\0';
            check(argspec_parse(canon, &again, err, sizeof(err)) == IOT_OK);
            same_spec(&spec, &again);
            check(argspec_format(&again, canon2, sizeof(canon2)) == IOT_OK);
            check(strcmp(canon, canon2) == 0);
        }
        err[0] = '\0';
        check_rc(argspec_check_values(&spec, nvalues, values, err, sizeof(err)), err);
        err[0] = '\0';
        check_rc(argspec_check_fields(&spec, nvalues, values, reserved, err, sizeof(err)), err);
        err[0] = '\0';
        check_rc(argspec_check_fields(&spec, nvalues, values, NULL, err, sizeof(err)), err);
    }
    free(text);
    return 0;
}
