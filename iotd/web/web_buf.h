/*
 * web_buf.h - a growable byte buffer for building HTTP responses and metrics text. An
 * allocation failure is remembered (web_buf_failed) instead of being checked after every
 * append: the builder writes on, and the caller checks once before sending.
 */
#ifndef IOTD_WEB_BUF_H
#define IOTD_WEB_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct web_buf {
    uint8_t *data;
    size_t len, cap;
    bool failed;
};

/* Zeroed is empty and valid. */
void web_buf_append(struct web_buf *b, const void *data, size_t len);
void web_buf_puts(struct web_buf *b, const char *text);
void web_buf_printf(struct web_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Room for n more bytes at data + len (commit them by adding to len), or NULL (failed set). */
uint8_t *web_buf_reserve(struct web_buf *b, size_t n);
static inline bool web_buf_failed(const struct web_buf *b)
{
    return b->failed;
}
void web_buf_free(struct web_buf *b);

#endif
