/*
 * iot_text.c - escaping and repairing text from the network (see iot_text.h).
 *
 * Both transformations are one loop over the input that decodes a character at a time and
 * appends either the character's bytes or a replacement; append() keeps the snprintf-like
 * contract (count everything, write what fits, never cut a piece in two).
 */
#include "iot_text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t iot_text_utf8_decode(const char *s, size_t len, uint32_t *code_point)
{
    const unsigned char *p = (const unsigned char *)s;
    uint32_t cp, min;
    size_t need;

    if (len == 0)
        return 0;
    if (p[0] < 0x80) {
        *code_point = p[0];
        return 1;
    }
    if (p[0] >= 0xc2 && p[0] <= 0xdf) { /* C0 and C1 would only start overlong forms */
        need = 2;
        cp = p[0] & 0x1fu;
        min = 0x80;
    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        need = 3;
        cp = p[0] & 0x0fu;
        min = 0x800;
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        need = 4;
        cp = p[0] & 0x07u;
        min = 0x10000;
    } else {
        return 0; /* a continuation byte, C0/C1, or F5..FF */
    }
    if (len < need)
        return 0;
    for (size_t i = 1; i < need; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3fu);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    *code_point = cp;
    return need;
}

bool iot_text_utf8_valid(const char *s, size_t len)
{
    uint32_t cp;
    for (size_t i = 0; i < len;) {
        size_t n = iot_text_utf8_decode(s + i, len - i, &cp);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

/* Append piece (n bytes) at *used: counts it always, writes it only when it fits whole. */
static void append(char *dst, size_t cap, size_t *used, size_t *written, const char *piece,
                   size_t n)
{
    if (*written == *used && *used + n < cap) {
        memcpy(dst + *used, piece, n);
        *written += n;
    }
    *used += n;
}

/* The one loop behind both transformations: escape for a terminal, or repair for JSON. */
static size_t transform(char *dst, size_t cap, const char *src, size_t len, bool escape)
{
    static const char replacement[] = "\xef\xbf\xbd"; /* U+FFFD */
    size_t used = 0, written = 0;
    char esc[8];
    uint32_t cp;

    for (size_t i = 0; i < len;) {
        size_t n = iot_text_utf8_decode(src + i, len - i, &cp);
        if (n == 0 && !escape) {
            append(dst, cap, &used, &written, replacement, 3);
            n = 1;
        } else if (escape && (n == 0 || cp < 0x20 || cp == 0x7f)) {
            snprintf(esc, sizeof(esc), "\\x%02x", (unsigned char)src[i]);
            append(dst, cap, &used, &written, esc, 4);
            n = 1;
        } else if (escape && cp >= 0x80 && cp <= 0x9f) {
            snprintf(esc, sizeof(esc), "\\u%04x", (unsigned)cp);
            append(dst, cap, &used, &written, esc, 6);
        } else {
            append(dst, cap, &used, &written, src + i, n);
        }
        i += n;
    }
    if (cap > 0)
        dst[written] = '\0';
    return used;
}

size_t iot_text_escape(char *dst, size_t cap, const char *src, size_t len)
{
    return transform(dst, cap, src, len, true);
}

size_t iot_text_utf8_repair(char *dst, size_t cap, const char *src, size_t len)
{
    return transform(dst, cap, src, len, false);
}

/* A malloc'ed transformed copy of s, sized for the worst case (max bytes per input byte). */
static char *transform_dup(const char *s, bool escape)
{
    size_t len = s ? strlen(s) : 0;
    size_t cap = escape ? IOT_TEXT_ESCAPED_MAX(len) : IOT_TEXT_REPAIRED_MAX(len);
    char *copy = malloc(cap);
    if (copy)
        transform(copy, cap, s ? s : "", len, escape);
    return copy;
}

char *iot_text_escape_dup(const char *s)
{
    return transform_dup(s, true);
}

char *iot_text_utf8_repair_dup(const char *s)
{
    return transform_dup(s, false);
}

bool iot_text_decimal(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t n = 0;
    if (!s[0] || (s[0] == '0' && s[1]) || strlen(s) > 20)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || n > (max - (uint64_t)(*s - '0')) / 10)
            return false;
        n = n * 10 + (uint64_t)(*s - '0');
    }
    *out = n;
    return true;
}
