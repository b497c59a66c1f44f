/*
 * sim_tls.c - OpenSSL client sessions over memory BIOs (contract in sim_tls.h).
 *
 * Two plain memory BIOs instead of a BIO pair: the input one is fed by the caller, the output
 * one drained by the caller, and neither has a size limit, so SSL_write never reports
 * WANT_WRITE and the device code has only one "need more input" case to handle.
 */
#include "sim_tls.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

const char *sim_tls_error(char *buf, size_t len)
{
    unsigned long e = ERR_get_error();

    if (e == 0)
        snprintf(buf, len, "unknown TLS error");
    else
        ERR_error_string_n(e, buf, len);
    ERR_clear_error();
    return buf;
}

SSL_CTX *sim_tls_ctx_new(const char *ca_file, int insecure, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    char reason[256];

    if (!ctx)
        goto fail;
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION))
        goto fail;
    if (insecure) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
        return ctx;
    }
    if (ca_file ? !SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
                : !SSL_CTX_set_default_verify_paths(ctx))
        goto fail;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    return ctx;
fail:
    snprintf(err, errlen, "TLS setup%s%s: %s", ca_file ? " with " : "", ca_file ? ca_file : "",
             sim_tls_error(reason, sizeof(reason)));
    SSL_CTX_free(ctx);
    return NULL;
}

void sim_tls_ctx_free(SSL_CTX *ctx)
{
    SSL_CTX_free(ctx);
}

int sim_tls_open(struct sim_tls *t, SSL_CTX *ctx, const char *server_name)
{
    unsigned char addr[16];
    int attached = 0, ok;

    memset(t, 0, sizeof(*t));
    t->ssl = SSL_new(ctx);
    t->in = BIO_new(BIO_s_mem());
    t->out = BIO_new(BIO_s_mem());
    if (!t->ssl || !t->in || !t->out)
        goto fail;
    /* An empty input BIO must read as "retry later", not as end of file. */
    BIO_set_mem_eof_return(t->in, -1);
    SSL_set_bio(t->ssl, t->in, t->out); /* the SSL owns both BIOs from here */
    attached = 1;
    SSL_set_connect_state(t->ssl);
    if (inet_pton(AF_INET, server_name, addr) == 1 || inet_pton(AF_INET6, server_name, addr) == 1)
        /* SNI must not carry an IP literal; verification checks the IP SAN instead. */
        ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), server_name);
    else
        ok = SSL_set_tlsext_host_name(t->ssl, server_name) && SSL_set1_host(t->ssl, server_name);
    if (!ok)
        goto fail;
    return 0;
fail:
    if (!attached) {
        BIO_free(t->in);
        BIO_free(t->out);
    }
    SSL_free(t->ssl);
    memset(t, 0, sizeof(*t));
    return -1;
}

void sim_tls_close(struct sim_tls *t)
{
    SSL_free(t->ssl);
    memset(t, 0, sizeof(*t));
}

int sim_tls_handshake(struct sim_tls *t)
{
    int r = SSL_do_handshake(t->ssl);

    if (r == 1)
        return 1;
    return SSL_get_error(t->ssl, r) == SSL_ERROR_WANT_READ ? 0 : -1;
}

int sim_tls_feed(struct sim_tls *t, const void *data, size_t len)
{
    while (len > 0) {
        int chunk = len > 1 << 30 ? 1 << 30 : (int)len;
        int n = BIO_write(t->in, data, chunk);
        if (n <= 0)
            return -1;
        data = (const char *)data + n;
        len -= (size_t)n;
    }
    return 0;
}

int sim_tls_read(struct sim_tls *t, void *buf, size_t cap)
{
    int n = SSL_read(t->ssl, buf, cap > 1 << 30 ? 1 << 30 : (int)cap);

    if (n > 0)
        return n;
    return SSL_get_error(t->ssl, n) == SSL_ERROR_WANT_READ ? 0 : -1;
}

int sim_tls_write(struct sim_tls *t, const void *data, size_t len)
{
    size_t written;

    if (len == 0)
        return 0;
    return SSL_write_ex(t->ssl, data, len, &written) == 1 && written == len ? 0 : -1;
}

void sim_tls_shutdown(struct sim_tls *t)
{
    if (t->ssl && SSL_is_init_finished(t->ssl))
        SSL_shutdown(t->ssl);
}

size_t sim_tls_take(struct sim_tls *t, void *buf, size_t cap)
{
    int n;

    if (!t->out || cap == 0)
        return 0;
    n = BIO_read(t->out, buf, cap > 1 << 30 ? 1 << 30 : (int)cap);
    return n > 0 ? (size_t)n : 0;
}
