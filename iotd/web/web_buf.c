/*
 * web_buf.c - the growable buffer (see web_buf.h): doubling, from 1 KiB.
 */
#include "web/web_buf.h"

#include "iot_grow.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint8_t *web_buf_reserve(struct web_buf *b, size_t n)
{
    if (b->failed)
        return NULL;
    if (b->cap - b->len >= n)
        return b->data + b->len; /* also n == 0 on an empty buffer: no allocation */
    if (n > SIZE_MAX - b->len) {
        b->failed = true;
        return NULL;
    }
    uint8_t *data = iot_reserve(b->data, b->len + n, &b->cap, 1024, 1);
    if (!data) {
        b->failed = true;
        return NULL;
    }
    b->data = data;
    return b->data + b->len;
}

void web_buf_append(struct web_buf *b, const void *data, size_t len)
{
    uint8_t *to = web_buf_reserve(b, len);
    if (!to)
        return;
    memcpy(to, data, len);
    b->len += len;
}

void web_buf_puts(struct web_buf *b, const char *text)
{
    web_buf_append(b, text, strlen(text));
}

void web_buf_printf(struct web_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    uint8_t *to = web_buf_reserve(b, (size_t)n + 1);
    if (!to)
        return;
    va_start(ap, fmt);
    vsnprintf((char *)to, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void web_buf_free(struct web_buf *b)
{
    free(b->data);
    *b = (struct web_buf){0};
}
