/*
 * record_speed.c - the server side of a relay over TLS 1.3, in process: what iotd's own record
 * layer (iotd/net/tls13_record.c) costs per round trip against OpenSSL's (an SSL per
 * connection, memory BIOs as conn_tls.c had them). Two client connections, A (the user) and B
 * (the device); a round trip: A's 100-byte request is read, written to B, B's answer read and
 * written to A, the server opening and sealing one record each time, so the cipher contexts
 * alternate between the two connections' keys as in a relay. Only the server's calls are
 * timed (the clients are OpenSSL either way). Rounds alternate the two, so that the machine's
 * load falls on both alike.
 *
 *   record_speed CERT KEY [ROUND_TRIPS [ROUNDS]]      (defaults 20000, 9)
 *
 * Prints per round the server's ns per round trip for each and their ratio, then the median.
 * ONLY=records or ONLY=openssl in the environment runs that one for ROUND_TRIPS, untimed: for
 * an instruction count that the machine's load does not move,
 *   valgrind --tool=callgrind --toggle-collect=relay record_speed CERT KEY 20000
 * (relay() is the server's part; divide by the round trips, twice relay() each).
 */
#include "net/tls13_record.h"
#include "tls_bench.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct conn {
    SSL *client, *server;
    tls13_record_t *rec; /* NULL: the server side stays on OpenSSL */
};

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void keylog(const SSL *ssl, const char *line)
{
    struct conn *c = SSL_get_app_data(ssl);
    unsigned char random[32];
    SSL_get_client_random(ssl, random, sizeof(random));
    if (c->rec)
        tls13_record_take_keylog(c->rec, line, random);
}

static void conn_open(struct conn *c, SSL_CTX *sctx, SSL_CTX *cctx, int own)
{
    memset(c, 0, sizeof(*c));
    if (own)
        c->rec = tls13_record_new();
    c->server = bench_mem_ssl(sctx);
    c->client = bench_mem_ssl(cctx);
    SSL_set_app_data(c->server, c);
    SSL_set_accept_state(c->server);
    SSL_set_connect_state(c->client);
    for (int i = 0; i < 8 && !SSL_is_init_finished(c->server); i++) {
        SSL_do_handshake(c->client);
        bench_pump(c->client, c->server);
        SSL_do_handshake(c->server);
        bench_pump(c->server, c->client);
    }
    if (own) {
        uint16_t id = SSL_CIPHER_get_protocol_id(SSL_get_current_cipher(c->server));
        if (tls13_record_start(c->rec, id, 0) != 0) {
            fprintf(stderr, "record_speed: no TLS 1.3 secrets\n");
            exit(1);
        }
        SSL_free(c->server);
        c->server = NULL;
    }
}

static void conn_close(struct conn *c)
{
    SSL_free(c->client);
    SSL_free(c->server);
    tls13_record_free(c->rec);
}

struct moved {
    unsigned char buf[512];
    size_t len;
};

static bool keep(void *arg, const uint8_t *data, size_t len)
{
    struct moved *m = arg;
    memcpy(m->buf + m->len, data, len);
    m->len += len;
    return true;
}

/* The server reads what from's client sent and writes it to to's client: the timed part. */
static __attribute__((noinline)) double relay(struct conn *from, struct conn *to, tls13_engine_t *e)
{
    unsigned char wire[1024];
    struct moved m = {.len = 0};
    int n = BIO_read(SSL_get_wbio(from->client), wire, sizeof(wire));
    double t0 = now();
    if (from->rec) {
        struct tls13_reader rd = {.data = keep, .send = bench_no_send, .arg = &m};
        tls13_record_read(from->rec, e, wire, (size_t)n, &rd);
        long w = tls13_record_seal(to->rec, e, m.buf, m.len, wire);
        n = (int)w;
    } else {
        BIO_write(SSL_get_rbio(from->server), wire, n);
        int got = SSL_read(from->server, m.buf, sizeof(m.buf));
        SSL_write(to->server, m.buf, got);
        n = BIO_read(SSL_get_wbio(to->server), wire, sizeof(wire));
    }
    double t1 = now();
    BIO_write(SSL_get_rbio(to->client), wire, n);
    return t1 - t0;
}

/* ns of server work per round trip over count round trips. */
static double run(SSL_CTX *sctx, SSL_CTX *cctx, int own, tls13_engine_t *e, int count)
{
    struct conn a, b;
    unsigned char msg[100], back[200];
    double spent = 0;
    memset(msg, 'm', sizeof(msg));
    conn_open(&a, sctx, cctx, own);
    conn_open(&b, sctx, cctx, own);
    for (int i = 0; i < count; i++) {
        SSL_write(a.client, msg, sizeof(msg));
        spent += relay(&a, &b, e);
        SSL_read(b.client, back, sizeof(back));
        SSL_write(b.client, back, sizeof(msg));
        spent += relay(&b, &a, e);
        if (SSL_read(a.client, back, sizeof(back)) != (int)sizeof(msg)) {
            fprintf(stderr, "record_speed: the round trip failed\n");
            exit(1);
        }
    }
    conn_close(&a);
    conn_close(&b);
    return spent / count * 1e9;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: record_speed CERT KEY [ROUND_TRIPS [ROUNDS]]\n");
        return 2;
    }
    int count = argc > 3 ? atoi(argv[3]) : 20000, rounds = argc > 4 ? atoi(argv[4]) : 9;
    SSL_CTX *sctx = SSL_CTX_new(TLS_server_method()), *cctx = SSL_CTX_new(TLS_client_method());
    if (SSL_CTX_use_certificate_chain_file(sctx, argv[1]) != 1 ||
        SSL_CTX_use_PrivateKey_file(sctx, argv[2], SSL_FILETYPE_PEM) != 1) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    SSL_CTX_set_mode(sctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_num_tickets(sctx, 0);
    SSL_CTX_set_keylog_callback(sctx, keylog);
    if (getenv("CIPHERS")) {
        SSL_CTX_set_ciphersuites(sctx, getenv("CIPHERS"));
        SSL_CTX_set_ciphersuites(cctx, getenv("CIPHERS"));
    }
    tls13_engine_t *e = tls13_engine_new();
    const char *only = getenv("ONLY");
    if (only) {
        run(sctx, cctx, strcmp(only, "records") == 0, e, count);
        tls13_engine_free(e);
        SSL_CTX_free(sctx);
        SSL_CTX_free(cctx);
        return 0;
    }
    double *ratio = calloc((size_t)rounds, sizeof(double));
    run(sctx, cctx, 1, e, count / 10 + 1); /* warm up both */
    run(sctx, cctx, 0, e, count / 10 + 1);
    for (int r = 0; r < rounds; r++) {
        double ours = run(sctx, cctx, 1, e, count), openssl = run(sctx, cctx, 0, e, count);
        ratio[r] = ours / openssl;
        printf("round %d: iotd records %.0f ns, OpenSSL %.0f ns per round trip: %.2fx\n", r + 1,
               ours, openssl, ratio[r]);
    }
    qsort(ratio, (size_t)rounds, sizeof(double), by_value);
    printf("median iotd/OpenSSL %.2fx (%.2f-%.2f) over %d rounds of %d round trips\n",
           ratio[rounds / 2], ratio[0], ratio[rounds - 1], rounds, count);
    free(ratio);
    tls13_engine_free(e);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 0;
}
