/*
 * ctl_proto.h - the control protocol spoken on iotd's Unix control socket.
 *
 * Framing: one JSON object per line ('\n'-terminated, UTF-8, at most CTL_MAX_LINE bytes).
 *
 *   request   {"id": 7, "cmd": "tenant.add", "args": {"name": "acme"}}
 *   success   {"id": 7, "ok": true, "result": {...}}
 *   failure   {"id": 7, "ok": false, "error": {"code": "not_found", "message": "..."}}
 *   stream    {"id": 7, "ok": true, "stream": true}      then any number of
 *             {"id": 7, "item": {...}}                   and finally
 *             {"id": 7, "end": true, "reason": "..."}
 *
 * "id" is chosen by the client (a non-negative integer) and echoed, so a client may have several
 * requests in flight. A line that is not a JSON object gets a failure with id 0 and code
 * "bad_request"; the connection stays open. A line over the limit closes the connection after
 * the failure reply.
 */
#ifndef CTL_PROTO_H
#define CTL_PROTO_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CTL_MAX_LINE (1024 * 1024)

/* Build a request object. Takes ownership of args (may be NULL for an empty object). */
cJSON *ctl_request_new(uint32_t id, const char *cmd, cJSON *args);
/* Build a success reply. Takes ownership of result (may be NULL for {}). */
cJSON *ctl_reply_ok(uint32_t id, cJSON *result);
/* Build a failure reply with the code's name and a message (NULL: iot_strerror(code)). */
cJSON *ctl_reply_error(uint32_t id, int code, const char *message);
/* Serialize compactly (as ctl_json_print) and append '\n'. Returns a malloc'ed string or NULL. */
char *ctl_serialize_line(const cJSON *msg);

/*
 * Print item as JSON that is always valid: every key and string that is not valid UTF-8 is
 * printed repaired (each bad byte as U+FFFD, see iot_text_utf8_repair), and DEL and the C1
 * controls are written as \u escapes like the C0 ones, so the text is also safe on a terminal.
 * formatted: indented like cJSON_Print, else compact. Returns a malloc'ed string or NULL (out of
 * memory). The item is not changed.
 */
char *ctl_json_print(const cJSON *item, bool formatted);

/* True when every key and string of item (and of everything inside it) is valid UTF-8. */
bool ctl_json_valid(const cJSON *item);

/* Make every key and string of item (and of everything inside it) valid UTF-8, in place, as
 * ctl_json_print prints them. Returns IOT_OK or IOT_ENOMEM (then some strings may be left as
 * they were). */
int ctl_json_repair(cJSON *item);

/*
 * Check a request line before it is parsed: it must be valid UTF-8 with no control bytes
 * (JSON allows none raw) and no "\u0000" escape, since a decoded NUL would silently cut the
 * string it is in (cJSON's strings end at the first NUL). Returns IOT_OK or IOT_EINVAL with a
 * sentence in err that never quotes the offending bytes.
 */
int ctl_request_check(const char *line, size_t len, char *err, size_t errlen);
/* Accessors that tolerate wrong types: return def/NULL when absent or of another type. */
const char *ctl_get_string(const cJSON *obj, const char *key);
long long ctl_get_int(const cJSON *obj, const char *key, long long def);
int ctl_get_bool(const cJSON *obj, const char *key, int def);

#endif
