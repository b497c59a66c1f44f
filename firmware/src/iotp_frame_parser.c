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
 */
#include "iotp/iotp_error.h"
#include "iotp/iotp_frame.h"

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

    if (c < 0x20 || c == 0x7F)
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

int iotp_parser_feed(struct iotp_parser *p, const uint8_t *data, size_t len, size_t *consumed,
                     const struct iotp_frame **out, uint32_t *error_id)
{
    size_t i;
    int r;

    for (i = 0; i < len; i++) {
        uint8_t c = data[i];

        if (p->skipping) {
            if (c == IOTP_EOT)
                p->skipping = 0;
            continue;
        }
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
