/*
 * iot_text.h - text that came from the network, made safe to show.
 *
 * A device names itself, a peer sends a FROM, an event carries fields: none of it may drive the
 * terminal of the operator who reads it, split a log line, or make a JSON document invalid.
 * Every place that prints such text (iotd's log, iotctl's tables and watch lines, iottop's
 * cells) goes through iot_text_escape; every place that puts it into JSON for a program goes
 * through iot_text_utf8_repair.
 *
 * Decoding follows RFC 3629: a sequence is valid only in its shortest form (no overlong
 * encodings such as C0 AF for '/'), never a UTF-16 surrogate (U+D800..U+DFFF), never beyond
 * U+10FFFF, and complete (a sequence cut off by the end of the text is invalid). An invalid
 * sequence costs one byte: decoding starts again at the next byte, so one bad byte never hides
 * the characters after it.
 *
 * The functions never allocate except the _dup variants, and hold no state.
 */
#ifndef IOT_TEXT_H
#define IOT_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The most bytes iot_text_escape can write for len bytes of input, with the final NUL. */
#define IOT_TEXT_ESCAPED_MAX(len) ((len)*4 + 1)
/* The most bytes iot_text_utf8_repair can write for len bytes of input, with the final NUL. */
#define IOT_TEXT_REPAIRED_MAX(len) ((len)*3 + 1)

/*
 * Decode the UTF-8 sequence at s[0..len): returns its length (1 to 4) and sets *code_point, or
 * returns 0 when s does not start with a valid, complete sequence (or len is 0).
 */
size_t iot_text_utf8_decode(const char *s, size_t len, uint32_t *code_point);

/* True when s[0..len) is valid UTF-8 (a NUL byte counts as valid, like any ASCII). */
bool iot_text_utf8_valid(const char *s, size_t len);

/*
 * Copy src[0..len) to dst as text safe for a terminal or a log line:
 *   C0 controls (0x00-0x1F, tab and newline included) and DEL    -> \xNN
 *   C1 controls (U+0080-U+009F, encoded C2 80..C2 9F)             -> \u0080..\u009f
 *   every byte that does not start a valid UTF-8 sequence         -> \xNN
 * Everything else (printable ASCII, valid UTF-8 beyond the C1 range, backslash itself) is copied
 * as it is, so ordinary names read as they were typed.
 * dst (cap bytes, cap > 0) is always NUL-terminated; the text is cut only between characters or
 * escapes, never inside one. Returns the length the whole escaped text has (like snprintf: a
 * result >= cap means it was cut). dst and src must not overlap.
 */
size_t iot_text_escape(char *dst, size_t cap, const char *src, size_t len);

/* A malloc'ed escaped copy of the NUL-terminated s (NULL: "" is escaped); NULL only when out of
 * memory. */
char *iot_text_escape_dup(const char *s);

/*
 * Copy src[0..len) to dst as valid UTF-8 for a JSON string: every byte that does not start a
 * valid sequence becomes U+FFFD (the replacement character); everything else, control
 * characters included, is copied (the JSON printer escapes those). Same dst, cap and return
 * convention as iot_text_escape.
 */
size_t iot_text_utf8_repair(char *dst, size_t cap, const char *src, size_t len);

/* A malloc'ed repaired copy of the NUL-terminated s; NULL only when out of memory. */
char *iot_text_utf8_repair_dup(const char *s);

/* A canonical decimal (digits only, no sign, no leading zero but "0" itself) of at most max:
 * true and *out, or false. The protocol's numbers (ids, sub=, ttl=, limit=, cursors). */
bool iot_text_decimal(const char *s, uint64_t max, uint64_t *out);

#endif
