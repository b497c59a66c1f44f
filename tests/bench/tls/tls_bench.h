/*
 * tls_bench.h - what the in-process TLS benches (ssl_idle.c, record_speed.c) share: an SSL over
 * a pair of memory BIOs as conn_tls.c makes it, moving bytes from one SSL to the other, and a
 * record-layer send callback for a read that must not answer.
 */
#ifndef TLS_BENCH_H
#define TLS_BENCH_H

#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>

/* An SSL of ctx over memory BIOs; an empty read BIO means "wait", not end of stream. */
static inline SSL *bench_mem_ssl(SSL_CTX *ctx)
{
    SSL *s = SSL_new(ctx);
    BIO *r = BIO_new(BIO_s_mem()), *w = BIO_new(BIO_s_mem());
    if (!s || !r || !w)
        return NULL;
    BIO_set_mem_eof_return(r, -1);
    SSL_set_bio(s, r, w);
    return s;
}

/* Move whatever from's write BIO holds into to's read BIO. */
static inline void bench_pump(SSL *from, SSL *to)
{
    char buf[4096];
    int n;
    while ((n = BIO_read(SSL_get_wbio(from), buf, sizeof(buf))) > 0)
        BIO_write(SSL_get_rbio(to), buf, n);
}

/* tls13_reader's send for reads that expect no KeyUpdate and no alert: refuse. */
static inline int bench_no_send(void *arg, const uint8_t *wire, size_t len)
{
    (void)arg;
    (void)wire;
    (void)len;
    return -1;
}

#endif
