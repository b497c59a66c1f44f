/*
 * fuzz_ctl_request.c - libFuzzer target for the control socket's request handling in common/:
 * the raw-line check (ctl_request_check), the JSON parse the control server does, the lookup
 * by command name and the table-driven argument validation (ctl_args_validate), then the
 * reply the server would send (ctl_reply_error with the validation's message, serialized by
 * ctl_serialize_line) and the text escaping every printer uses.
 *
 * Properties checked (a failure aborts, which libFuzzer reports):
 *   - a line ctl_request_check accepts is valid UTF-8 with no control byte but tab and CR;
 *   - every serialized reply and every ctl_json_print output is valid UTF-8, holds no raw
 *     control byte, DEL or C1, and parses back as JSON;
 *   - ctl_args_validate either accepts or writes a non-empty, valid UTF-8 message;
 *   - iot_text_escape's output is valid UTF-8 without controls, within its bound, and its
 *     returned length matches what a large enough buffer receives; a cut buffer gets a prefix.
 * The first byte selects a command from the table too, so every command's parameters are
 * exercised even when the fuzzer has not found a "cmd" name.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_commands.h"
#include "ctl_proto.h"
#include "iot_error.h"
#include "iot_text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
    if (!ok)
        abort();
}

/* Shown text: valid UTF-8 with no raw control (tab, CR and LF allowed when json_layout). */
static void check_shown(const char *text, size_t len, int json_layout)
{
    uint32_t cp;
    check(iot_text_utf8_valid(text, len));
    for (size_t i = 0; i < len;) {
        size_t n = iot_text_utf8_decode(text + i, len - i, &cp);
        check(n > 0);
        if (cp < 0x20)
            check(json_layout && (cp == '\t' || cp == '\n'));
        check(cp != 0x7f && !(cp >= 0x80 && cp <= 0x9f));
        i += n;
    }
}

static void check_json_text(char *text)
{
    if (!text)
        return; /* out of memory only */
    check_shown(text, strlen(text), 1);
    cJSON *back = cJSON_Parse(text);
    check(back != NULL);
    cJSON_Delete(back);
    free(text);
}

static void check_escape(const char *s, size_t len)
{
    static char big[IOT_TEXT_ESCAPED_MAX(8192)], small[17];
    size_t n = iot_text_escape(big, sizeof(big), s, len);
    check(n < IOT_TEXT_ESCAPED_MAX(len) && strlen(big) == n);
    check_shown(big, n, 0);
    size_t m = iot_text_escape(small, sizeof(small), s, len);
    check(m == n && strlen(small) < sizeof(small) && memcmp(small, big, strlen(small)) == 0);
    n = iot_text_utf8_repair(big, sizeof(big), s, len);
    check(n < IOT_TEXT_REPAIRED_MAX(len) && iot_text_utf8_valid(big, n));
}

static void validate(const struct ctl_command *cmd, const cJSON *args)
{
    char err[256] = "";
    if (ctl_args_validate(cmd, args, err, sizeof(err)) == IOT_OK)
        return;
    check(err[0] != '\0' && iot_text_utf8_valid(err, strlen(err)));
    cJSON *reply = ctl_reply_error(7, IOT_EINVAL, err);
    if (reply)
        check_json_text(ctl_serialize_line(reply));
    cJSON_Delete(reply);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    if (size == 0 || size > 8192)
        return 0;
    const char *line = (const char *)data;
    const struct ctl_command *chosen = &ctl_commands[data[0] % CTL_COMMAND_COUNT];

    check_escape(line, size);
    if (ctl_request_check(line, size, err, sizeof(err)) == IOT_OK) {
        for (size_t i = 0; i < size; i++)
            check((uint8_t)line[i] >= 0x20 || line[i] == '\t' || line[i] == '\r');
        check(iot_text_utf8_valid(line, size));
    } else {
        check(iot_text_utf8_valid(err, strlen(err)));
    }

    /* The server parses whatever the check says (it may run without it). */
    cJSON *req = cJSON_ParseWithLength(line, size);
    if (!req)
        return 0;
    check_json_text(ctl_json_print(req, data[0] & 1));
    const struct ctl_command *named = ctl_command_by_name(ctl_get_string(req, "cmd"));
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(req, "args");
    if (named)
        validate(named, args);
    validate(chosen, cJSON_IsObject(args) ? args : req);
    if (cJSON_IsString(args))
        (void)ctl_value_valid((enum ctl_arg_kind)(data[0] % 7), args->valuestring);
    check(ctl_json_repair(req) == IOT_OK);
    check(ctl_json_valid(req));
    cJSON_Delete(req);
    return 0;
}
