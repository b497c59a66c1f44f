/* Unit tests of iotd/net's TLS transport with real sockets on 127.0.0.1 and a throwaway
 * self-signed certificate made here with OpenSSL: verified echo (small and multi-record
 * messages), coalescing into one write, close_notify on close, a TLS 1.1 client refused,
 * garbage and silent clients dropped, certificate reload, and placement after the handshake
 * (a connection moving to another io thread with its TLS state). The clients are plain
 * blocking OpenSSL clients on the test thread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "net_harness.h"

#include "iot_error.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct tls_fixture {
    char dir[64];
    char cert[96], key[96];
    X509 *x509; /* the certificate currently in the files */
    struct harness h;
};

/* Write a fresh self-signed P-256 certificate for localhost / 127.0.0.1 to f's files. */
static void make_cert(struct tls_fixture *f, const char *cn)
{
    EVP_PKEY *pkey = EVP_EC_gen("P-256");
    assert_non_null(pkey);
    X509 *x = X509_new();
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), (long)(harness_now() * 1000) & 0x7fffffff);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509_set_pubkey(x, pkey);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext =
        X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
    assert_non_null(ext);
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    assert_true(X509_sign(x, pkey, EVP_sha256()) > 0);

    FILE *fp = fopen(f->key, "w");
    assert_non_null(fp);
    assert_int_equal(PEM_write_PrivateKey(fp, pkey, NULL, NULL, 0, NULL, NULL), 1);
    fclose(fp);
    fp = fopen(f->cert, "w");
    assert_non_null(fp);
    assert_int_equal(PEM_write_X509(fp, x), 1);
    fclose(fp);
    EVP_PKEY_free(pkey);
    X509_free(f->x509);
    f->x509 = x;
}

static int setup(void **state)
{
    struct tls_fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/iotd-net-tls-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->cert, sizeof(f->cert), "%s/cert.pem", f->dir);
    snprintf(f->key, sizeof(f->key), "%s/key.pem", f->dir);
    make_cert(f, "localhost");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct tls_fixture *f = *state;
    unlink(f->cert);
    unlink(f->key);
    rmdir(f->dir);
    X509_free(f->x509);
    free(f);
    return 0;
}

static void start(struct tls_fixture *f, unsigned handshake_timeout_ms)
{
    struct net_listener_options o = {.transport = CONN_TLS,
                                     .tls_cert = f->cert,
                                     .tls_key = f->key,
                                     .handshake_timeout_ms = handshake_timeout_ms};
    harness_start(&f->h, &o);
}

struct tls_client {
    SSL_CTX *ctx;
    SSL *ssl;
    int fd;
};

/* Connect and handshake, trusting only trust and checking the name 127.0.0.1. Returns
 * SSL_connect's result; versions limits the protocol (0: defaults). */
static int tls_connect(struct tls_client *t, unsigned port, X509 *trust, int max_version)
{
    t->ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(t->ctx);
    if (max_version) {
        /* Old protocols need the lowest security level even to be offered. */
        SSL_CTX_set_security_level(t->ctx, 0);
        SSL_CTX_set_min_proto_version(t->ctx, TLS1_VERSION);
        SSL_CTX_set_max_proto_version(t->ctx, max_version);
    }
    X509_STORE_add_cert(SSL_CTX_get_cert_store(t->ctx), trust);
    SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
    t->ssl = SSL_new(t->ctx);
    assert_non_null(t->ssl);
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), "127.0.0.1");
    t->fd = client_connect(port, 0);
    SSL_set_fd(t->ssl, t->fd);
    return SSL_connect(t->ssl);
}

static void tls_client_free(struct tls_client *t)
{
    SSL_free(t->ssl);
    SSL_CTX_free(t->ctx);
    close(t->fd);
    ERR_clear_error();
}

static void tls_write_all(struct tls_client *t, const void *data, size_t len)
{
    size_t written;
    assert_int_equal(SSL_write_ex(t->ssl, data, len, &written), 1);
    assert_int_equal(written, len);
}

static void tls_read_exact(struct tls_client *t, void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len > 0) {
        size_t got;
        if (SSL_read_ex(t->ssl, p, len, &got) != 1)
            fail_msg("tls read failed with %d", SSL_get_error(t->ssl, 0));
        p += got;
        len -= got;
    }
}

static void test_tls_echo(void **state)
{
    struct tls_fixture *f = *state;
    struct tls_client clients[20];
    (void)state;
    start(f, 0);

    double t0 = harness_now();
    for (int i = 0; i < 20; i++)
        assert_int_equal(tls_connect(&clients[i], f->h.port, f->x509, 0), 1);
    double t1 = harness_now();
    print_message("20 tls handshakes (sequential client) in %.1f ms (%.0f/s)\n", (t1 - t0) * 1e3,
                  20 / (t1 - t0));
    WAIT_FOR(harness_accepted(&f->h) == 20, 5000);
    assert_int_equal(atomic_load(&f->h.accepted[0]), 10);
    assert_int_equal(atomic_load(&f->h.accepted[1]), 10);

    char msg[64], back[64];
    for (int m = 0; m < 3; m++) {
        for (int i = 0; i < 20; i++) {
            int n = snprintf(msg, sizeof(msg), "tls client %02d message %d", i, m);
            tls_write_all(&clients[i], msg, (size_t)n);
        }
        for (int i = 0; i < 20; i++) {
            int n = snprintf(msg, sizeof(msg), "tls client %02d message %d", i, m);
            tls_read_exact(&clients[i], back, (size_t)n);
            assert_memory_equal(back, msg, (size_t)n);
        }
    }
    /* Larger than a record: split by the client, re-assembled by the echo. */
    size_t big = 100 * 1000;
    uint8_t *out = malloc(big), *in = malloc(big);
    for (size_t i = 0; i < big; i++)
        out[i] = (uint8_t)(i * 7);
    tls_write_all(&clients[0], out, big);
    tls_read_exact(&clients[0], in, big);
    assert_memory_equal(in, out, big);
    free(out);
    free(in);

    pthread_mutex_lock(&f->h.lock);
    for (struct echo_conn *e = f->h.conns; e; e = e->next)
        assert_int_equal(e->transport, CONN_TLS);
    pthread_mutex_unlock(&f->h.lock);
    struct net_loop_counters c;
    harness_counters(&f->h, &c);
    assert_int_equal(c.tls_handshakes, 20);
    assert_int_equal(c.tls_failures, 0);
    /* Every one of them is TLS 1.3: their records are iotd's own after the handshake. */
    assert_int_equal(c.tls13_records, 20);

    /* KeyUpdate from the client, asking for ours: the echo comes back under new keys. */
    assert_int_equal(SSL_key_update(clients[1].ssl, SSL_KEY_UPDATE_REQUESTED), 1);
    tls_write_all(&clients[1], "updated", 7);
    tls_read_exact(&clients[1], back, 7);
    assert_memory_equal(back, "updated", 7);
    tls_write_all(&clients[1], "and again", 9);
    tls_read_exact(&clients[1], back, 9);
    assert_memory_equal(back, "and again", 9);

    for (int i = 0; i < 20; i++) {
        SSL_shutdown(clients[i].ssl);
        tls_client_free(&clients[i]);
    }
    WAIT_FOR(atomic_load(&f->h.closed) == 20, 5000);
    assert_int_equal(atomic_load(&f->h.closed), 20);
    assert_non_null(harness_find_closed(&f->h, "peer closed"));
    harness_stop(&f->h);
}

static void test_tls_coalescing_and_close_notify(void **state)
{
    struct tls_fixture *f = *state;
    struct tls_client t;
    struct net_loop_counters before, after;
    char buf[500];
    start(f, 0);
    assert_int_equal(tls_connect(&t, f->h.port, f->x509, 0), 1);
    WAIT_FOR(harness_accepted(&f->h) == 1, 5000);
    tls_write_all(&t, "ping", 4);
    tls_read_exact(&t, buf, 4);
    harness_sleep_ms(50);

    harness_counters(&f->h, &before);
    tls_write_all(&t, "!burst 500", 10);
    tls_read_exact(&t, buf, sizeof(buf));
    for (size_t i = 0; i < sizeof(buf); i++)
        assert_int_equal(buf[i], 'x');
    harness_sleep_ms(50);
    harness_counters(&f->h, &after);
    assert_int_equal(after.flushes - before.flushes, 1);
    assert_int_equal(after.try_writes - before.try_writes, 1);
    /* One record: 500 bytes of plaintext plus one record's overhead, not 500 records. */
    assert_true(after.bytes_out - before.bytes_out < 600);

    tls_write_all(&t, "!close", 6);
    size_t got;
    assert_int_equal(SSL_read_ex(t.ssl, buf, sizeof(buf), &got), 0);
    assert_int_equal(SSL_get_error(t.ssl, 0), SSL_ERROR_ZERO_RETURN); /* close_notify */
    tls_client_free(&t);
    WAIT_FOR(atomic_load(&f->h.closed) == 1, 3000);
    assert_non_null(harness_find_closed(&f->h, "closed by owner"));
    harness_stop(&f->h);
}

/* TLS 1.2 stays on OpenSSL; a TLS 1.3 record that does not authenticate is answered with
 * bad_record_mac and the connection closes; a client's max_fragment_length is kept to. */
static void test_tls12_and_bad_record(void **state)
{
    struct tls_fixture *f = *state;
    struct tls_client t12, t13;
    struct net_loop_counters c;
    char buf[16];
    start(f, 0);
    assert_int_equal(tls_connect(&t12, f->h.port, f->x509, TLS1_2_VERSION), 1);
    assert_int_equal(SSL_version(t12.ssl), TLS1_2_VERSION);
    tls_write_all(&t12, "twelve", 6);
    tls_read_exact(&t12, buf, 6);
    assert_memory_equal(buf, "twelve", 6);
    harness_counters(&f->h, &c);
    assert_int_equal(c.tls13_records, 0);

    assert_int_equal(tls_connect(&t13, f->h.port, f->x509, 0), 1);
    tls_write_all(&t13, "thirteen", 8);
    tls_read_exact(&t13, buf, 8);
    harness_counters(&f->h, &c);
    assert_int_equal(c.tls13_records, 1);
    /* An application_data record of garbage, written past OpenSSL on the socket. */
    uint8_t garbage[5 + 40] = {23, 3, 3, 0, 40};
    memset(garbage + 5, 0x5a, 40);
    assert_int_equal(client_send(t13.fd, garbage, sizeof(garbage)), 0);
    size_t got;
    assert_int_equal(SSL_read_ex(t13.ssl, buf, sizeof(buf), &got), 0);
    assert_int_equal(SSL_get_error(t13.ssl, 0), SSL_ERROR_SSL);
    char reason[128] = "";
    ERR_error_string_n(ERR_peek_last_error(), reason, sizeof(reason));
    assert_non_null(strstr(reason, "bad record mac"));
    WAIT_FOR(harness_find_closed(&f->h, "tls: bad record mac") != NULL, 3000);
    assert_non_null(harness_find_closed(&f->h, "tls: bad record mac"));
    tls_client_free(&t13);

    /* A client that negotiated max_fragment_length 512 (RFC 6066) refuses longer records:
     * a 2,000-byte echo comes back in records of 512. */
    struct tls_client small = {.ctx = SSL_CTX_new(TLS_client_method())};
    assert_int_equal(
        SSL_CTX_set_tlsext_max_fragment_length(small.ctx, TLSEXT_max_fragment_length_512), 1);
    X509_STORE_add_cert(SSL_CTX_get_cert_store(small.ctx), f->x509);
    SSL_CTX_set_verify(small.ctx, SSL_VERIFY_PEER, NULL);
    small.ssl = SSL_new(small.ctx);
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(small.ssl), "127.0.0.1");
    small.fd = client_connect(f->h.port, 0);
    SSL_set_fd(small.ssl, small.fd);
    assert_int_equal(SSL_connect(small.ssl), 1);
    uint8_t out[2000], in[2000];
    for (size_t i = 0; i < sizeof(out); i++)
        out[i] = (uint8_t)('a' + i % 26);
    tls_write_all(&small, out, sizeof(out));
    tls_read_exact(&small, in, sizeof(in));
    assert_memory_equal(in, out, sizeof(out));
    harness_counters(&f->h, &c);
    assert_int_equal(c.tls13_records, 2);
    SSL_shutdown(small.ssl);
    tls_client_free(&small);

    SSL_shutdown(t12.ssl);
    tls_client_free(&t12);
    WAIT_FOR(atomic_load(&f->h.closed) == 3, 3000);
    harness_stop(&f->h);
}

static void test_tls11_refused(void **state)
{
    struct tls_fixture *f = *state;
    struct tls_client t;
    struct net_loop_counters c;
    start(f, 0);
    assert_true(tls_connect(&t, f->h.port, f->x509, TLS1_1_VERSION) <= 0);
    unsigned long e = ERR_peek_last_error();
    assert_int_equal(ERR_GET_REASON(e), SSL_R_TLSV1_ALERT_PROTOCOL_VERSION);
    tls_client_free(&t);
    WAIT_FOR((harness_counters(&f->h, &c), c.tls_failures == 1), 3000);
    assert_int_equal(c.tls_failures, 1);
    assert_int_equal(harness_accepted(&f->h), 0);
    harness_stop(&f->h);
}

static void test_tls_garbage_and_silence_dropped(void **state)
{
    struct tls_fixture *f = *state;
    struct net_loop_counters c;
    start(f, 300);
    int garbage = client_connect(f->h.port, 0);
    int silent = client_connect(f->h.port, 0);
    const char *http = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    double t0 = harness_now();
    assert_int_equal(client_send(garbage, http, strlen(http)), 0);
    assert_true(client_wait_closed(garbage, 2000));
    assert_true(client_wait_closed(silent, 2000));
    double waited = harness_now() - t0;
    assert_true(waited >= 0.25);
    harness_counters(&f->h, &c);
    assert_int_equal(c.tls_failures, 1);
    assert_int_equal(c.tls_timeouts, 1);
    assert_int_equal(harness_accepted(&f->h), 0);
    size_t conns, pending;
    net_loop_stats(f->h.nl[0], &conns, &pending);
    assert_int_equal(conns, 0);
    close(garbage);
    close(silent);
    harness_stop(&f->h);
}

struct reload_call {
    int rc;
    char err[256];
};

static void reload_on_main(struct harness *h, void *arg)
{
    struct reload_call *r = arg;
    r->rc = net_listener_reload_tls(h->listener, r->err, sizeof(r->err));
}

static void test_tls_reload(void **state)
{
    struct tls_fixture *f = *state;
    struct tls_client old, fresh;
    struct reload_call r;
    char buf[8];
    start(f, 0);
    assert_int_equal(tls_connect(&old, f->h.port, f->x509, 0), 1);

    make_cert(f, "localhost-2");
    harness_main_call(&f->h, reload_on_main, &r);
    assert_int_equal(r.rc, 0);
    /* New connections get the new certificate; the open one keeps working. */
    assert_int_equal(tls_connect(&fresh, f->h.port, f->x509, 0), 1);
    X509 *seen = SSL_get1_peer_certificate(fresh.ssl);
    assert_int_equal(X509_cmp(seen, f->x509), 0);
    X509_free(seen);
    tls_write_all(&old, "still", 5);
    tls_read_exact(&old, buf, 5);
    assert_memory_equal(buf, "still", 5);

    /* A broken key file: the reload fails and the current certificate stays. */
    FILE *fp = fopen(f->key, "w");
    fputs("not a key\n", fp);
    fclose(fp);
    harness_main_call(&f->h, reload_on_main, &r);
    assert_true(r.rc < 0);
    assert_non_null(strstr(r.err, f->key));
    struct tls_client third;
    assert_int_equal(tls_connect(&third, f->h.port, f->x509, 0), 1);
    tls_client_free(&third);

    tls_client_free(&old);
    tls_client_free(&fresh);
    harness_stop(&f->h);
}

/* Up to the first '\n', "A..." belongs on thread 0, "B..." on 1, anything else in turn. */
static int place_by_letter(const uint8_t *data, size_t len, void *arg)
{
    (void)arg;
    if (!memchr(data, '\n', len))
        return NET_PLACE_MORE;
    return data[0] == 'A' ? 0 : data[0] == 'B' ? 1 : -1;
}

static void expect_tls_echo(struct tls_client *t, const char *text)
{
    char back[64];
    size_t n = strlen(text);
    tls_write_all(t, text, n);
    tls_read_exact(t, back, n);
    assert_memory_equal(back, text, n);
}

static unsigned conns_on(struct harness *h, unsigned thread)
{
    return atomic_load(&h->accepted[thread]);
}

static void test_tls_placement(void **state)
{
    struct tls_fixture *f = *state;
    struct net_listener_options o = {
        .transport = CONN_TLS, .tls_cert = f->cert, .tls_key = f->key, .place = place_by_letter};
    struct tls_client t[5];
    harness_start(&f->h, &o);

    /* The handshakes go in turn: t0 and t2 on thread 0, t1 and t3 on thread 1. Nobody owns them
     * until their first line says where they belong. */
    for (int i = 0; i < 4; i++)
        assert_int_equal(tls_connect(&t[i], f->h.port, f->x509, 0), 1);
    double silent_since = harness_now(); /* t3 says nothing until it is placed */
    harness_sleep_ms(50);
    assert_int_equal(harness_accepted(&f->h), 0);

    /* t0 moves to thread 1 and t1 to thread 0, socket and TLS state; t2 stays. What they sent
     * first reaches the new owner first, the TLS 1.3 session tickets written before the move
     * reach the client intact (or its reads would fail), and everything after it flows. */
    tls_write_all(&t[0], "B one\n", 6);
    tls_write_all(&t[1], "A two\n", 6);
    tls_write_all(&t[2], "A three\n", 8);
    char back[16];
    tls_read_exact(&t[0], back, 6);
    assert_memory_equal(back, "B one\n", 6);
    tls_read_exact(&t[1], back, 6);
    assert_memory_equal(back, "A two\n", 6);
    tls_read_exact(&t[2], back, 8);
    assert_memory_equal(back, "A three\n", 8);
    assert_int_equal(conns_on(&f->h, 0), 2);
    assert_int_equal(conns_on(&f->h, 1), 1);
    expect_tls_echo(&t[0], "after the move");
    expect_tls_echo(&t[1], "after the move too");
    size_t big = 100 * 1000; /* several records each way on the new thread */
    uint8_t *out = malloc(big), *in = malloc(big);
    for (size_t i = 0; i < big; i++)
        out[i] = (uint8_t)(i * 13);
    tls_write_all(&t[0], out, big);
    tls_read_exact(&t[0], in, big);
    assert_memory_equal(in, out, big);
    free(out);
    free(in);

    /* A first line in two records is read on until it is whole. */
    assert_int_equal(tls_connect(&t[4], f->h.port, f->x509, 0), 1); /* thread 0 */
    tls_write_all(&t[4], "B sp", 4);
    harness_sleep_ms(60);
    assert_int_equal(harness_accepted(&f->h), 3);
    tls_write_all(&t[4], "lit\n", 4);
    tls_read_exact(&t[4], back, 8);
    assert_memory_equal(back, "B split\n", 8);
    assert_int_equal(conns_on(&f->h, 1), 2);

    /* Silent: stays where its handshake was (thread 1) once NET_PLACE_WAIT_MS has passed. */
    WAIT_FOR(harness_accepted(&f->h) == 5, 3000);
    assert_int_equal(harness_accepted(&f->h), 5);
    assert_true(harness_now() - silent_since >= (NET_PLACE_WAIT_MS - 100) / 1000.0);
    assert_int_equal(conns_on(&f->h, 1), 3);
    expect_tls_echo(&t[3], "late\n");

    /* Moves are neither closes nor extra handshakes. */
    struct net_loop_counters c;
    harness_counters(&f->h, &c);
    assert_int_equal(c.closed, 0);
    assert_int_equal(c.accepted, 5);
    assert_int_equal(c.tls_handshakes, 5);
    assert_int_equal(c.moves, 3); /* t0, t1 and t4 */

    /* One that says part of a line and ends its side (close_notify): its bytes still reach an
     * owner, whose echo still comes back, and which sees the close. (The client reads before it
     * closes: closing a socket with unread bytes, here the session tickets, would send a
     * reset, which throws away what the server has not read yet.) */
    struct tls_client gone;
    assert_int_equal(tls_connect(&gone, f->h.port, f->x509, 0), 1);
    tls_write_all(&gone, "B bye", 5);
    SSL_shutdown(gone.ssl);
    tls_read_exact(&gone, back, 5);
    assert_memory_equal(back, "B bye", 5);
    tls_client_free(&gone);
    WAIT_FOR(harness_accepted(&f->h) == 6 && atomic_load(&f->h.closed) == 1, 3000);
    assert_int_equal(atomic_load(&f->h.closed), 1);
    assert_non_null(harness_find_closed(&f->h, "peer closed"));

    for (int i = 0; i < 5; i++) {
        SSL_shutdown(t[i].ssl);
        tls_client_free(&t[i]);
    }
    WAIT_FOR(atomic_load(&f->h.closed) == 6, 5000);
    assert_int_equal(atomic_load(&f->h.closed), 6);
    harness_stop(&f->h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_tls_echo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_coalescing_and_close_notify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls11_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls12_and_bad_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_garbage_and_silence_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_reload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_placement, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
