/*
 * sim_tls.h - TLS for simulated devices: OpenSSL driven through memory BIOs.
 *
 * The simulator owns its sockets (libuv); OpenSSL never touches them. Ciphertext read from the
 * socket goes in with sim_tls_feed, plaintext comes out of sim_tls_read; plaintext to send goes
 * in with sim_tls_write and the ciphertext to put on the socket comes out of sim_tls_take.
 * Any call may produce ciphertext (handshake messages, alerts), so the caller drains
 * sim_tls_take after each of them.
 */
#ifndef SIM_TLS_H
#define SIM_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

/* A client context: TLS 1.2 or later; verifies the server against ca_file, or the system's
 * trust store when ca_file is NULL, unless insecure. Returns NULL with a reason in err. */
SSL_CTX *sim_tls_ctx_new(const char *ca_file, int insecure, char *err, size_t errlen);
void sim_tls_ctx_free(SSL_CTX *ctx);

struct sim_tls {
    SSL *ssl;
    BIO *in;  /* socket -> OpenSSL */
    BIO *out; /* OpenSSL -> socket */
};

/* Start a client session; server_name (a host name or an IP literal) is sent as SNI and, when
 * the context verifies, checked against the certificate. Returns 0 or -1. */
int sim_tls_open(struct sim_tls *t, SSL_CTX *ctx, const char *server_name);

/* Free the session; safe on a zeroed or already closed struct. */
void sim_tls_close(struct sim_tls *t);

/* Advance the handshake. Returns 1 when it is complete, 0 while it needs more input, -1 on
 * failure (including a certificate that does not verify). */
int sim_tls_handshake(struct sim_tls *t);

/* Hand len bytes of ciphertext from the socket to OpenSSL. Returns 0 or -1. */
int sim_tls_feed(struct sim_tls *t, const void *data, size_t len);

/* Decrypt into buf. Returns bytes (> 0), 0 when more ciphertext is needed, -1 when the peer
 * closed the session or an error occurred. */
int sim_tls_read(struct sim_tls *t, void *buf, size_t cap);

/* Encrypt len bytes of plaintext (all of it: the memory BIO never fills). Returns 0 or -1. */
int sim_tls_write(struct sim_tls *t, const void *data, size_t len);

/* Queue a close_notify alert for the peer. */
void sim_tls_shutdown(struct sim_tls *t);

/* Move up to cap bytes of pending ciphertext into buf. Returns the count (0 = none). */
size_t sim_tls_take(struct sim_tls *t, void *buf, size_t cap);

/* The last OpenSSL error as text, for logs. */
const char *sim_tls_error(char *buf, size_t len);

#endif
