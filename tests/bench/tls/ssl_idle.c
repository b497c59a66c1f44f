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
 *            iotd    cache + bios: what conn_tls.c did before its own TLS 1.3 records
 *            all     tickets + cache + bios
 *            records what conn_tls.c does now: cache off, no tickets, and once the TLS 1.3
 *                    handshake is done the SSL is freed and the record layer is iotd's own
 *                    (iotd/net/tls13_record.c, the traffic secrets from the keylog callback);
 *                    the request and its answer go through it. TLS 1.2 stays on OpenSSL
 *                    (this variant then measures "iotd" with no tickets)
 *   TLS12=1 in the environment caps the protocol at TLS 1.2; CIPHERS=... sets the TLS 1.3
 *   suites (TLS_CHACHA20_POLY1305_SHA256: its state is smaller than AES-GCM's).
 *
 * Prints "variant=V n=N heap_per_conn=B".
 */
#include "net/tls13_record.h"
#include "tls_bench.h"

#include <malloc.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pair {
    SSL *server, *client;
    tls13_record_t *rec; /* variant records: the server's records after the handshake */
};

static void keylog(const SSL *ssl, const char *line)
{
    struct pair *p = SSL_get_app_data(ssl);
    unsigned char random[32];
    SSL_get_client_random(ssl, random, sizeof(random));
    tls13_record_take_keylog(p->rec, line, random);
}

static bool keep(void *arg, const uint8_t *data, size_t len)
{
    (void)data;
    *(size_t *)arg += len;
    return true;
}

/* The server's side after the handshake, as conn_tls.c's tls_offload: the SSL freed, the
 * request read and the answer written by the record layer. 0 when TLS 1.2 (nothing done). */
static int take_over(struct pair *p, tls13_engine_t *e, const char *req, size_t len)
{
    if (SSL_version(p->server) != TLS1_3_VERSION)
        return 0;
    uint16_t suite = SSL_CIPHER_get_protocol_id(SSL_get_current_cipher(p->server));
    if (SSL_has_pending(p->server) || tls13_record_start(p->rec, suite, 0) != 0)
        return -1;
    SSL_free(p->server);
    p->server = NULL;
    unsigned char wire[512];
    size_t got = 0;
    SSL_write(p->client, req, (int)len);
    int n = BIO_read(SSL_get_wbio(p->client), wire, sizeof(wire));
    struct tls13_reader rd = {.data = keep, .send = bench_no_send, .arg = &got};
    if (n <= 0 || tls13_record_read(p->rec, e, wire, (size_t)n, &rd) != TLS13_MORE || got != len)
        return -1;
    long w = tls13_record_seal(p->rec, e, (const uint8_t *)req, len, wire);
    if (w <= 0)
        return -1;
    BIO_write(SSL_get_rbio(p->client), wire, (int)w);
    return 1;
}

static size_t heap_in_use(void)
{
    struct mallinfo2 m = mallinfo2();
    return m.uordblks + m.hblkhd;
}

static SSL *new_ssl(SSL_CTX *ctx, int server)
{
    SSL *s = bench_mem_ssl(ctx);
    if (!s)
        exit(1);
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
        fprintf(stderr, "usage: ssl_idle CERT KEY N today|tickets|cache|bios|iotd|all|records\n");
        return 2;
    }
    const char *v = argv[4];
    int n = atoi(argv[3]);
    int records = !strcmp(v, "records");
    int no_tickets = !strcmp(v, "tickets") || !strcmp(v, "all") || records;
    int no_cache = !strcmp(v, "cache") || !strcmp(v, "iotd") || !strcmp(v, "all") || records;
    int bios = !strcmp(v, "bios") || !strcmp(v, "iotd") || !strcmp(v, "all") || records;
    tls13_engine_t *engine = tls13_engine_new(); /* one per io thread in iotd */
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
    if (records)
        SSL_CTX_set_keylog_callback(sctx, keylog);
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
            if (records) {
                p[i].rec = tls13_record_new();
                SSL_set_app_data(p[i].server, &p[i]);
            }
            for (int round = 0; round < 8 && !SSL_is_init_finished(p[i].server); round++) {
                SSL_do_handshake(p[i].client);
                bench_pump(p[i].client, p[i].server);
                SSL_do_handshake(p[i].server);
                bench_pump(p[i].server, p[i].client);
            }
            char req[96], buf[512];
            memset(req, 'L', sizeof(req));
            int took = records ? take_over(&p[i], engine, req, sizeof(req)) : 0;
            if (took < 0) {
                fprintf(stderr, "ssl_idle: the record layer did not take over\n");
                return 1;
            }
            if (took) {
                SSL_read(p[i].client, buf, sizeof(buf));
                SSL_free(p[i].client);
                p[i].client = NULL;
                continue;
            }
            tls13_record_free(p[i].rec); /* TLS 1.2: OpenSSL keeps the records */
            p[i].rec = NULL;
            SSL_write(p[i].client, req, sizeof(req));
            bench_pump(p[i].client, p[i].server);
            if (SSL_read(p[i].server, buf, sizeof(buf)) != (int)sizeof(req)) {
                fprintf(stderr, "ssl_idle: handshake or request failed\n");
                ERR_print_errors_fp(stderr);
                return 1;
            }
            SSL_write(p[i].server, req, sizeof(req));
            bench_pump(p[i].server, p[i].client);
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
        for (int i = 0; i < count && !warm; i++) {
            SSL_free(p[i].server);
            tls13_record_free(p[i].rec);
        }
    }
    for (int i = 0; i < n; i++) {
        SSL_free(p[i].server);
        tls13_record_free(p[i].rec);
    }
    free(p);
    tls13_engine_free(engine);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 0;
}
