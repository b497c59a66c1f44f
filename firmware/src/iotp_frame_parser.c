/*
 * iotp_frame_parser.c - incremental frame parser (see iotp_frame.h for the contract).
 *
 * The parser is a byte-at-a-time state machine over the frame being received. Each byte is
 * checked the moment it arrives (frame length first, then control bytes, then the rule of the
 * field it belongs to) and copied to buf[len]; a separator is stored as NUL, which closes the
 * field and makes it a C string in place. So the buffer never holds more than one frame, never
 * more than max_frame bytes (checked before every store), and a complete frame needs no
 * second pass. Errors are reported at the byte that proves them; the parser then swallows
 * input up to the next EOT (resynchronization) without storing it.
 *
 * Most bytes of a frame are ordinary bytes in a field whose only rules are "no control byte"
 * and a length bound, so the state machine has a fast path for them (take_run): it measures
 * the run of ordinary bytes that the byte-at-a-time path would accept as they are, a word at a
 * time (iotp_scan.h), and stores the whole run with one memcpy. The run stops before the first
 * byte that could do anything else (a separator, a control byte, the byte over the frame or
 * field limit), and that byte goes through step() as before, so errors, *consumed and
 * resynchronization come out exactly as if every byte had been stepped. The ID field keeps
 * the per-byte path: its bytes are checked and accumulated one by one. With IOTP_SCAN_WORDS=0
 * (a microcontroller, where the word scan gains nothing) the fast path is left out and every
 * byte is stepped.
 */
#include "iotp/iotp_error.h"
#include "iotp/iotp_frame.h"

#include "iotp_scan.h"

#include <string.h>

#define ID_FIELD        3
#define FIRST_ARG_FIELD 4
#define MAX_ID_DIGITS   10

int iotp_parser_init(struct iotp_parser *p, uint8_t *buf, size_t cap, size_t max_frame,
                     unsigned max_args)
{
    if (!p || !buf)
        return IOTP_EINVAL;
    if (max_frame == 0)
        max_frame = IOTP_MAX_FRAME;
    if (max_args == 0)
        max_args = IOTP_MAX_ARGS;
    /* Eight bytes is the shortest valid frame ("a\x1fb\x1fT\x1f" "0\x04"). */
    if (max_args > IOTP_MAX_ARGS || max_frame > cap || max_frame < 8)
        return IOTP_EINVAL;
    memset(p, 0, sizeof(*p));
    p->buf = buf;
    p->cap = cap;
    p->max_frame = max_frame;
    p->max_args = max_args;
    return 0;
}

/* Start over at the first byte of a frame; the bytes of the previous frame stay in buf so
 * that a frame just handed out remains readable until the next feed stores over it. */
static void start_frame(struct iotp_parser *p)
{
    p->len = 0;
    p->field_start = 0;
    p->field = 0;
    p->id = 0;
    p->id_known = 0;
}

void iotp_parser_reset(struct iotp_parser *p)
{
    start_frame(p);
    p->skipping = 0;
}

/* The separator that ends the current field was just stored as NUL at buf[len - 1]. */
static int close_field(struct iotp_parser *p)
{
    const char *start = (const char *)p->buf + p->field_start;
    size_t field_len = p->len - 1 - p->field_start;

    if (p->field <= ID_FIELD && field_len == 0)
        return IOTP_EEMPTY_FIELD;
    switch (p->field) {
    case 0:
        p->frame.from = start;
        break;
    case 1:
        p->frame.to = start;
        break;
    case 2:
        p->frame.type = start;
        break;
    case ID_FIELD:
        p->frame.id = p->id;
        p->id_known = 1;
        break;
    default:
        p->frame.args[p->field - FIRST_ARG_FIELD] = start;
        break;
    }
    p->field++;
    p->field_start = p->len;
    return 0;
}

/* Check one ordinary byte c against the rule of the field it extends. */
static int check_field_byte(struct iotp_parser *p, uint8_t c)
{
    size_t field_len = p->len - p->field_start; /* before c */

    if (iotp_scan_is_control(c))
        return IOTP_ECONTROL;
    switch (p->field) {
    case 0:
    case 1:
        return field_len + 1 > IOTP_MAX_ADDRESS_LEN ? IOTP_EFIELD_TOO_LONG : 0;
    case 2:
        return field_len + 1 > IOTP_MAX_TYPE_LEN ? IOTP_EFIELD_TOO_LONG : 0;
    case ID_FIELD:
        if (c < '0' || c > '9')
            return IOTP_EBAD_ID;
        /* A leading zero would give two spellings of one id; only "0" itself is allowed. */
        if (field_len == 1 && p->id == 0)
            return IOTP_EBAD_ID;
        if (p->id > (UINT32_MAX - (uint32_t)(c - '0')) / 10)
            return IOTP_EBAD_ID;
        p->id = p->id * 10 + (uint32_t)(c - '0');
        return 0;
    default:
        return 0;
    }
}

/* Take one byte: 0 to continue, 1 when it completed a frame, or a frame error. */
static int step(struct iotp_parser *p, uint8_t c)
{
    int err;

    if (p->len + 1 > p->max_frame)
        return IOTP_ETOO_LARGE;
    if (c == IOTP_EOT) {
        p->buf[p->len++] = '\0';
        if (p->field < ID_FIELD)
            return IOTP_ETOO_FEW_FIELDS;
        err = close_field(p);
        if (err)
            return err;
        p->frame.nargs = p->field - FIRST_ARG_FIELD;
        return 1;
    }
    if (c == IOTP_US) {
        p->buf[p->len++] = '\0';
        err = close_field(p);
        if (err)
            return err;
        if (p->field >= FIRST_ARG_FIELD && p->field - FIRST_ARG_FIELD >= p->max_args)
            return IOTP_ETOO_MANY_ARGS;
        return 0;
    }
    err = check_field_byte(p, c);
    if (err)
        return err;
    p->buf[p->len++] = c;
    return 0;
}

#if IOTP_SCAN_WORDS
/* Store the run of ordinary bytes at the start of data[0..n) that step() would store one by
 * one without any other effect, and return its length (possibly 0). The run is bounded by the
 * room left under max_frame and, in FROM, TO and TYPE, by the room left in the field, so the
 * byte after it, if any, is one step() must see: a separator, a control byte or the first
 * byte over a limit. Not for the ID field, whose bytes step() must check one by one. */
static size_t take_run(struct iotp_parser *p, const uint8_t *data, size_t n)
{
    size_t room = p->max_frame - p->len; /* step() keeps len <= max_frame */
    size_t run;

    if (p->field < ID_FIELD) {
        size_t max_len = p->field == 2 ? IOTP_MAX_TYPE_LEN : IOTP_MAX_ADDRESS_LEN;
        /* step() keeps the field within max_len, so this does not wrap. */
        size_t field_room = max_len - (p->len - p->field_start);
        if (room > field_room)
            room = field_room;
    }
    if (n > room)
        n = room;
    run = iotp_scan_plain(data, n);
    if (run > 0) {
        memcpy(p->buf + p->len, data, run);
        p->len += run;
    }
    return run;
}
#endif

int iotp_parser_feed(struct iotp_parser *p, const uint8_t *data, size_t len, size_t *consumed,
                     const struct iotp_frame **out, uint32_t *error_id)
{
    size_t i;
    int r;

    for (i = 0; i < len; i++) {
        uint8_t c;

        if (p->skipping) {
            const uint8_t *eot = memchr(data + i, IOTP_EOT, len - i);
            if (!eot)
                break;
            /* The EOT ends the bad frame; parsing resumes with the byte after it. */
            p->skipping = 0;
            i = (size_t)(eot - data);
            continue;
        }
#if IOTP_SCAN_WORDS
        if (p->field != ID_FIELD) {
            i += take_run(p, data + i, len - i);
            if (i == len)
                break;
        }
#endif
        c = data[i];
        r = step(p, c);
        if (r == 0)
            continue;
        *consumed = i + 1;
        if (r == 1) {
            *out = &p->frame;
            start_frame(p);
            return 1;
        }
        if (error_id)
            *error_id = p->id_known ? p->id : 0;
        /* An error found at the EOT ended its frame already; any other leaves a tail. */
        p->skipping = c != IOTP_EOT;
        start_frame(p);
        return r;
    }
    *consumed = len;
    return 0;
}
