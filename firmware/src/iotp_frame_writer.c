/*
 * iotp_frame_writer.c - frame serializer and system-argument helpers (see iotp_frame.h).
 *
 * The writer appends fields to the caller's buffer and applies, field by field, the same rules
 * the parser enforces, so a frame it completes always parses back to the same fields. The
 * first error sticks: later calls do nothing and iotp_writer_end reports it, which keeps
 * callers that build a frame from many pieces down to one check.
 */
#include "iotp/iotp_error.h"
#include "iotp/iotp_frame.h"
#include "iotp/iotp_hex.h"

#include "iotp_scan.h"

#include <string.h>

/* Whether s[0..len) holds a control byte; scanned a word at a time (iotp_scan.h). */
static int has_control(const char *s, size_t len)
{
    return iotp_scan_plain((const uint8_t *)s, len) != len;
}

static int fail(struct iotp_writer *w, int err)
{
    if (!w->error)
        w->error = err;
    return w->error;
}

/* Reserve n bytes at the end of the frame: where to store them, or NULL when they do not fit
 * (a sticky error) or the writer only measures (buf NULL). */
static uint8_t *reserve(struct iotp_writer *w, size_t n)
{
    uint8_t *at;

    if (w->error)
        return NULL;
    if (n > w->limit - w->len) {
        fail(w, w->len + n > IOTP_MAX_FRAME ? IOTP_ETOO_LARGE : IOTP_ENOSPC);
        return NULL;
    }
    at = w->buf ? w->buf + w->len : NULL;
    w->len += n;
    return at;
}

/* Append sep (unless 0) and s[0..len), which may not hold a control byte; an ARG (arg set)
 * counts against IOTP_MAX_ARGS. Every field of a frame goes through here, so each rule is
 * written once. Returns 0 or the sticky error. */
static int append(struct iotp_writer *w, uint8_t sep, const char *s, size_t len, int arg)
{
    uint8_t *at;

    if (w->error)
        return w->error;
    if (!s && len)
        return fail(w, IOTP_EINVAL);
    if (arg && w->nargs >= IOTP_MAX_ARGS)
        return fail(w, IOTP_ETOO_MANY_ARGS);
    if (has_control(s, len))
        return fail(w, IOTP_ECONTROL);
    at = reserve(w, len + (sep != 0));
    if (w->error)
        return w->error;
    w->nargs += (unsigned)arg;
    if (at) {
        if (sep)
            *at++ = sep;
        if (len)
            memcpy(at, s, len);
    }
    return 0;
}

/* Decimal v into out (at least 11 bytes), NUL-terminated, with at least decimals + 1 digits
 * and a point before the last decimals of them; returns the length. */
static size_t format_decimal(uint32_t v, unsigned decimals, char *out)
{
    char digits[10];
    size_t n = 0, i = 0;

    do { /* least significant first, at least one digit before the point */
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0 || n <= decimals);
    while (n > 0) {
        out[i++] = digits[--n];
        if (n == decimals && n > 0)
            out[i++] = '.';
    }
    out[i] = '\0';
    return i;
}

size_t iotp_format_fixed(int32_t value, unsigned decimals, char *out)
{
    size_t sign = value < 0;

    if (decimals > 9)
        decimals = 9;
    *out = '-'; /* overwritten by the digits when value is not negative */
    return sign +
           format_decimal(sign ? 0u - (uint32_t)value : (uint32_t)value, decimals, out + sign);
}

int iotp_writer_begin(struct iotp_writer *w, uint8_t *buf, size_t cap, const char *from,
                      const char *to, const char *type, uint32_t id)
{
    const char *const field[3] = {from, to, type};
    size_t len[3];
    char digits[11];
    unsigned i;

    memset(w, 0, sizeof(*w));
    if (!buf && cap)
        return fail(w, IOTP_EINVAL);
    w->buf = buf;
    w->cap = cap;
    w->limit = buf && cap < IOTP_MAX_FRAME ? cap : IOTP_MAX_FRAME;
    /* All three are checked before any is written, so a bad field is reported as such. */
    for (i = 0; i < 3; i++) {
        if (!field[i])
            return fail(w, IOTP_EINVAL);
        len[i] = strlen(field[i]);
        if (len[i] == 0)
            return fail(w, IOTP_EEMPTY_FIELD);
        if (len[i] > (i == 2 ? IOTP_MAX_TYPE_LEN : IOTP_MAX_ADDRESS_LEN))
            return fail(w, IOTP_EFIELD_TOO_LONG);
        if (has_control(field[i], len[i]))
            return fail(w, IOTP_ECONTROL);
    }
    for (i = 0; i < 3; i++)
        append(w, i ? IOTP_US : 0, field[i], len[i], 0);
    return append(w, IOTP_US, digits, format_decimal(id, 0, digits), 0);
}

int iotp_writer_arg_bytes(struct iotp_writer *w, const char *arg, size_t len)
{
    return append(w, IOTP_US, arg, len, 1);
}

int iotp_writer_arg(struct iotp_writer *w, const char *arg)
{
    if (!arg)
        return fail(w, IOTP_EINVAL);
    return iotp_writer_arg_bytes(w, arg, strlen(arg));
}

/* Open an ARG field "key" whose "=value" the caller appends; checks the key. */
static int begin_kv(struct iotp_writer *w, const char *key)
{
    if (w->error)
        return w->error;
    /* A key with '=' would be found under a different name by iotp_frame_arg. */
    if (!key || !*key || memchr(key, '=', strlen(key)))
        return fail(w, IOTP_EINVAL);
    return iotp_writer_arg(w, key);
}

int iotp_writer_kv(struct iotp_writer *w, const char *key, const char *value)
{
    if (!value)
        return fail(w, IOTP_EINVAL);
    if (begin_kv(w, key))
        return w->error;
    return append(w, '=', value, strlen(value), 0);
}

int iotp_writer_kv_u32(struct iotp_writer *w, const char *key, uint32_t value)
{
    char digits[11];

    format_decimal(value, 0, digits);
    return iotp_writer_kv(w, key, digits);
}

int iotp_writer_kv_hex(struct iotp_writer *w, const char *key, const uint8_t *bytes, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    uint8_t *at;
    size_t i;

    if (!bytes && len)
        return fail(w, IOTP_EINVAL);
    if (begin_kv(w, key))
        return w->error;
    if (len > (SIZE_MAX - 2) / 2)
        return fail(w, IOTP_ETOO_LARGE);
    at = reserve(w, 2 * len + 1);
    if (!at)
        return w->error;
    *at++ = '=';
    for (i = 0; i < len; i++) {
        at[2 * i] = (uint8_t)digits[bytes[i] >> 4];
        at[2 * i + 1] = (uint8_t)digits[bytes[i] & 0x0F];
    }
    return 0;
}

int iotp_writer_end(struct iotp_writer *w)
{
    append(w, IOTP_EOT, NULL, 0, 0);
    if (w->error)
        return w->error;
    return (int)w->len;
}

int iotp_frame_write(const struct iotp_frame *f, uint8_t *buf, size_t cap)
{
    struct iotp_writer w;
    unsigned i;

    if (!f)
        return IOTP_EINVAL;
    if (f->nargs > IOTP_MAX_ARGS)
        return IOTP_ETOO_MANY_ARGS;
    iotp_writer_begin(&w, buf, cap, f->from, f->to, f->type, f->id);
    for (i = 0; i < f->nargs; i++)
        iotp_writer_arg(&w, f->args[i]);
    return iotp_writer_end(&w);
}

int iotp_frame_write_error(uint8_t *buf, size_t cap, const char *from, const char *to, uint32_t id,
                           const char *code, uint32_t retry_s, const char *msg)
{
    struct iotp_writer w;

    iotp_writer_begin(&w, buf, cap, from, to, iotp_type_name(IOTP_TYPE_ERROR), id);
    iotp_writer_kv(&w, "code", code);
    if (retry_s > 0)
        iotp_writer_kv_u32(&w, "retry", retry_s);
    if (msg && msg[0])
        iotp_writer_kv(&w, "msg", msg);
    return iotp_writer_end(&w);
}

enum iotp_type iotp_frame_type(const struct iotp_frame *f)
{
    if (!f || !f->type)
        return IOTP_TYPE_UNKNOWN;
    return iotp_type_lookup(f->type, strlen(f->type));
}

const char *iotp_frame_arg(const struct iotp_frame *f, const char *key)
{
    size_t key_len;
    unsigned i;

    if (!f || !key)
        return NULL;
    key_len = strlen(key);
    for (i = 0; i < f->nargs && i < IOTP_MAX_ARGS; i++) {
        const char *arg = f->args[i];
        if (arg && strncmp(arg, key, key_len) == 0 && arg[key_len] == '=')
            return arg + key_len + 1;
    }
    return NULL;
}

int iotp_parse_u32(const char *s, size_t len, uint32_t *value)
{
    uint32_t v = 0;
    size_t i;

    if (!s || len == 0 || len > 10 || (len > 1 && s[0] == '0'))
        return IOTP_EBAD_ID;
    for (i = 0; i < len; i++) {
        uint32_t d;
        if (s[i] < '0' || s[i] > '9')
            return IOTP_EBAD_ID;
        d = (uint32_t)(s[i] - '0');
        if (v > (UINT32_MAX - d) / 10)
            return IOTP_EBAD_ID;
        v = v * 10 + d;
    }
    *value = v;
    return 0;
}

int iotp_frame_arg_u32(const struct iotp_frame *f, const char *key, uint32_t *value)
{
    const char *s = iotp_frame_arg(f, key);

    if (!s)
        return IOTP_ENOTFOUND;
    return iotp_parse_u32(s, strlen(s), value) ? IOTP_EBAD_ARGS : 0;
}

int iotp_frame_arg_hex(const struct iotp_frame *f, const char *key, uint8_t *out, size_t len)
{
    const char *s = iotp_frame_arg(f, key);
    size_t hex_len;

    if (!s)
        return IOTP_ENOTFOUND;
    hex_len = strlen(s);
    if (hex_len != 2 * len || iotp_hex_decode(s, hex_len, out, len) != (int)len)
        return IOTP_EBAD_ARGS;
    return 0;
}
