/*
 * iotp_frame.h - frames of the iotd wire protocol: an incremental parser and a serializer.
 *
 * A frame is `FROM US TO US TYPE US ID {US ARG} EOT` with US = 0x1F and EOT = 0x04. Fields are
 * bytes without control bytes (0x00-0x1F and 0x7F); FROM, TO, TYPE and ID are never empty; ID
 * is the canonical decimal form of 0..4294967295 (no sign, no leading zero except "0"); ARG
 * fields may be empty. Bytes >= 0x80 pass through unchanged (UTF-8 is not validated here).
 *
 * The parser copies the bytes of the frame being received into a buffer the caller owns,
 * turning each separator into a NUL, so a complete frame is handed out as NUL-terminated
 * strings pointing into that buffer, with no allocation and no second pass. It is fed chunks
 * of any size (one byte, half a frame, three frames) and stops after each complete frame or
 * error so the caller can answer before feeding the rest. After an error it discards input up
 * to and including the next EOT, then parses normally again: one bad frame costs one ERROR
 * answer, not the connection.
 *
 * The writer builds a frame into a caller buffer field by field and refuses anything the
 * parser would reject, so what iotp writes, iotp reads back identically.
 */
#ifndef IOTP_FRAME_H
#define IOTP_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "iotp_config_defaults.h"
#include "iotp_types.h"

#define IOTP_US  0x1F
#define IOTP_EOT 0x04

/* A parsed frame (or a frame to write). Strings are NUL-terminated. For a parsed frame they
 * point into the parser's buffer and stay valid until the next iotp_parser_feed call. */
struct iotp_frame {
    const char *from;
    const char *to;
    const char *type;
    uint32_t id;
    unsigned nargs;
    const char *args[IOTP_MAX_ARGS];
};

struct iotp_parser {
    uint8_t *buf;       /* caller's buffer; the current frame starts at buf[0] */
    size_t cap;         /* its size */
    size_t max_frame;   /* frame limit in bytes, EOT included */
    unsigned max_args;  /* ARG limit */
    size_t len;         /* bytes of the current frame seen so far (EOT included once seen) */
    size_t field_start; /* offset in buf of the field being received */
    unsigned field;     /* index of that field: 0 FROM, 1 TO, 2 TYPE, 3 ID, 4.. ARG */
    uint32_t id;        /* ID accumulated so far */
    int id_known;       /* the ID field of the current frame is complete */
    int skipping;       /* an error was reported; discard up to the next EOT */
    struct iotp_frame frame;
};

/* Prepare a parser over buf (cap bytes). max_frame is the frame limit in bytes (0 means
 * IOTP_MAX_FRAME) and must fit in cap; max_args is the ARG limit (0 means IOTP_MAX_ARGS, more
 * than IOTP_MAX_ARGS is invalid). Returns 0 or IOTP_EINVAL. The buffer belongs to the parser
 * until the caller stops using it; there is nothing to free. */
int iotp_parser_init(struct iotp_parser *p, uint8_t *buf, size_t cap, size_t max_frame,
                     unsigned max_args);

/* Forget any partial frame and any pending resynchronization. */
void iotp_parser_reset(struct iotp_parser *p);

/* Feed up to len bytes of input. Stops at the first complete frame or error:
 *   1  a frame is complete: *out points to it (valid until the next feed or reset);
 *   0  all len bytes were consumed without completing a frame;
 *  <0  a frame error (IOTP_EEMPTY_FIELD ... IOTP_ETOO_FEW_FIELDS); *error_id is set to the bad
 *      frame's ID if its ID field was complete and valid, otherwise to 0.
 * *consumed always says how many bytes were used, including the one that completed the frame or
 * revealed the error; the caller feeds the rest (data + *consumed) next. An error is reported
 * as soon as it is certain (an overlong frame at its first byte over the limit), and the rest
 * of that frame, up to its EOT, is then discarded silently. error_id may be NULL. */
int iotp_parser_feed(struct iotp_parser *p, const uint8_t *data, size_t len, size_t *consumed,
                     const struct iotp_frame **out, uint32_t *error_id);

/* Writer: builds one frame into a caller buffer. Errors are sticky: after the first failure
 * every call returns it, so a sequence of calls needs one check, at iotp_writer_end. */
struct iotp_writer {
    uint8_t *buf;
    size_t cap;
    size_t len;
    size_t limit; /* smaller of cap and IOTP_MAX_FRAME */
    unsigned nargs;
    int error;
};

/* Start a frame FROM TO TYPE ID into buf. from, to and type must be non-empty, within their
 * length limits and free of control bytes. Returns 0 or a negative code (also kept sticky).
 * With buf NULL and cap 0 the writer only measures: every check is made, nothing is stored,
 * and iotp_writer_end returns the length the frame would have (at most IOTP_MAX_FRAME). */
int iotp_writer_begin(struct iotp_writer *w, uint8_t *buf, size_t cap, const char *from,
                      const char *to, const char *type, uint32_t id);
/* Append one ARG field (may be empty, no control bytes). */
int iotp_writer_arg(struct iotp_writer *w, const char *arg);
/* Append one ARG field of exactly len bytes (no control bytes, no NUL). */
int iotp_writer_arg_bytes(struct iotp_writer *w, const char *arg, size_t len);
/* Append a system argument key=value. */
int iotp_writer_kv(struct iotp_writer *w, const char *key, const char *value);
/* Append key=<decimal value>. */
int iotp_writer_kv_u32(struct iotp_writer *w, const char *key, uint32_t value);
/* Append key=<lower-case hex of len bytes>. */
int iotp_writer_kv_hex(struct iotp_writer *w, const char *key, const uint8_t *bytes, size_t len);
/* Terminate the frame with EOT. Returns the frame length in bytes (> 0) or the first error:
 * IOTP_EEMPTY_FIELD, IOTP_EFIELD_TOO_LONG, IOTP_ECONTROL, IOTP_ETOO_MANY_ARGS, IOTP_ETOO_LARGE
 * (over IOTP_MAX_FRAME) or IOTP_ENOSPC (over cap). */
int iotp_writer_end(struct iotp_writer *w);

/* Serialize a whole frame struct. Returns the length (> 0) or a negative code as above. */
int iotp_frame_write(const struct iotp_frame *f, uint8_t *buf, size_t cap);

/* Write `from to ERROR id code=<code>`, then `retry=<retry_s>` when retry_s > 0 and
 * `msg=<msg>` when msg is neither NULL nor empty: the one way an ERROR frame is built. */
int iotp_frame_write_error(uint8_t *buf, size_t cap, const char *from, const char *to, uint32_t id,
                           const char *code, uint32_t retry_s, const char *msg);

/* The type of f (IOTP_TYPE_UNKNOWN when f or its type is NULL): what handler tables are
 * indexed with, for parsed frames and frames built by hand alike. */
enum iotp_type iotp_frame_type(const struct iotp_frame *f);

/* System arguments: the value of the first ARG of the form key=value, or NULL. */
const char *iotp_frame_arg(const struct iotp_frame *f, const char *key);
/* The value of key parsed as a canonical decimal u32. Returns 0, IOTP_ENOTFOUND or
 * IOTP_EBAD_ARGS. */
int iotp_frame_arg_u32(const struct iotp_frame *f, const char *key, uint32_t *value);
/* Decode key's value as exactly len bytes of hex. Returns 0, IOTP_ENOTFOUND or IOTP_EBAD_ARGS. */
int iotp_frame_arg_hex(const struct iotp_frame *f, const char *key, uint8_t *out, size_t len);

/* Format value / 10^decimals as decimal text without printf: (-123, 1) is "-12.3", (5, 2)
 * "0.05", (42, 0) "42". decimals above 9 count as 9. out holds at least 13 bytes (sign, ten
 * digits, point, NUL). Returns the length. */
size_t iotp_format_fixed(int32_t value, unsigned decimals, char *out);

/* Parse a canonical decimal u32 of len bytes (the ID rule). Returns 0 or IOTP_EBAD_ID. */
int iotp_parse_u32(const char *s, size_t len, uint32_t *value);

#endif
