/*
 * ssl_idle.c - what one idle server-side TLS connection costs OpenSSL, in process: N server
 * SSL objects set up as iotd's conn_tls.c sets them up (a context like tls_context_new's, a
 * pair of memory BIOs), each taken through a TLS 1.3 handshake with an in-process client, one
 * small request and its answer (a device's LOGIN), then left idle; the clients are freed, and
 * the heap in use (glibc mallinfo2) divided by N is the cost of an idle server connection.
 * Run it for each way of keeping idle TLS small, to see which part is worth what:
 *
 *   ssl_idle CERT KEY N VARIANT
 *   VARIANT: today   iotd before issue 21 (SSL_MODE_RELEASE_BUFFERS, 2 tickets, server cache)
 *            tickets + no session tickets sent (SSL_CTX_set_num_tickets 0)
 *            cache   + no server session cache (SSL_SESS_CACHE_OFF)
 *            bios    + the memory BIOs' buffers given back once drained (a fresh BIO)
 *            iotd    cache + bios: what conn_tls.c does since
 *            all     tickets + cache + bios
 *   TLS12=1 in the environment caps the protocol at TLS 1.2; CIPHERS=... sets the TLS 1.3
 *   suites (TLS_CHACHA20_POLY1305_SHA256: its state is smaller than AES-GCM's).
 *
 * Prints "variant=V n=N heap_per_conn=B".
 */
#include <malloc.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pair {
    SSL *server, *client;
};

static size_t heap_in_use(void)
{
    struct mallinfo2 m = mallinfo2();
    return m.uordblks + m.hblkhd;
}

/* Move whatever from's write BIO holds into to's read BIO. */
static void pump(SSL *from, SSL *to)
{
    char buf[4096];
    int n;
    while ((n = BIO_read(SSL_get_wbio(from), buf, sizeof(buf))) > 0)
        BIO_write(SSL_get_rbio(to), buf, n);
}

static SSL *new_ssl(SSL_CTX *ctx, int server)
{
    SSL *s = SSL_new(ctx);
    BIO *r = BIO_new(BIO_s_mem()), *w = BIO_new(BIO_s_mem());
    if (!s || !r || !w)
        exit(1);
    BIO_set_mem_eof_return(r, -1);
    SSL_set_bio(s, r, w);
    if (server)
        SSL_set_accept_state(s);
    else
        SSL_set_connect_state(s);
    return s;
}

/* A fresh, empty memory BIO in place of a drained one: a BIO keeps the largest buffer it ever
 * held (the handshake's flight) for as long as it lives. */
static void renew_bios(SSL *s)
{
    if (BIO_ctrl_pending(SSL_get_rbio(s)) == 0) {
        BIO *r = BIO_new(BIO_s_mem());
        BIO_set_mem_eof_return(r, -1);
        SSL_set0_rbio(s, r);
    }
    if (BIO_ctrl_pending(SSL_get_wbio(s)) == 0)
        SSL_set0_wbio(s, BIO_new(BIO_s_mem()));
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: ssl_idle CERT KEY N today|tickets|cache|bios|iotd|all\n");
        return 2;
    }
    const char *v = argv[4];
    int n = atoi(argv[3]);
    int no_tickets = !strcmp(v, "tickets") || !strcmp(v, "all");
    int no_cache = !strcmp(v, "cache") || !strcmp(v, "iotd") || !strcmp(v, "all");
    int bios = !strcmp(v, "bios") || !strcmp(v, "iotd") || !strcmp(v, "all");
    SSL_CTX *sctx = SSL_CTX_new(TLS_server_method()), *cctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(sctx, TLS1_2_VERSION);
    SSL_CTX_set_options(sctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                  SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(sctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_mode(cctx, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_use_certificate_chain_file(sctx, argv[1]) != 1 ||
        SSL_CTX_use_PrivateKey_file(sctx, argv[2], SSL_FILETYPE_PEM) != 1) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    if (no_tickets)
        SSL_CTX_set_num_tickets(sctx, 0);
    if (getenv("CIPHERS"))
        SSL_CTX_set_ciphersuites(sctx, getenv("CIPHERS"));
    if (getenv("TLS12"))
        SSL_CTX_set_max_proto_version(sctx, TLS1_2_VERSION);
    if (no_cache)
        SSL_CTX_set_session_cache_mode(sctx, SSL_SESS_CACHE_OFF);
    struct pair *p = calloc((size_t)n, sizeof(*p));
    /* Warm up OpenSSL's lazily made tables (one connection, freed) before measuring. */
    for (int warm = 0; warm < 2; warm++) {
        size_t before = heap_in_use();
        int count = warm ? n : 1;
        for (int i = 0; i < count; i++) {
            p[i].server = new_ssl(sctx, 1);
            p[i].client = new_ssl(cctx, 0);
            for (int round = 0; round < 8 && !SSL_is_init_finished(p[i].server); round++) {
                SSL_do_handshake(p[i].client);
                pump(p[i].client, p[i].server);
                SSL_do_handshake(p[i].server);
                pump(p[i].server, p[i].client);
            }
            char req[96], buf[512];
            memset(req, 'L', sizeof(req));
            SSL_write(p[i].client, req, sizeof(req));
            pump(p[i].client, p[i].server);
            if (SSL_read(p[i].server, buf, sizeof(buf)) != (int)sizeof(req)) {
                fprintf(stderr, "ssl_idle: handshake or request failed\n");
                ERR_print_errors_fp(stderr);
                return 1;
            }
            SSL_write(p[i].server, req, sizeof(req));
            pump(p[i].server, p[i].client);
            SSL_read(p[i].client, buf, sizeof(buf)); /* the answer (and any tickets) */
            if (bios)
                renew_bios(p[i].server);
            SSL_free(p[i].client);
            p[i].client = NULL;
        }
        size_t after = heap_in_use();
        if (warm)
            printf("variant=%s n=%d heap_per_conn=%.0f\n", v, n,
                   ((double)after - (double)before) / n);
        for (int i = 0; i < count && !warm; i++)
            SSL_free(p[i].server);
    }
    for (int i = 0; i < n; i++)
        SSL_free(p[i].server);
    free(p);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 0;
}
