/*
 * test_posix.c - the POSIX port: a full handshake between a device and a server machine over
 * a socketpair through the socket transport, getrandom nonces, the monotonic clock, EAGAIN on
 * an empty non-blocking socket and IOTP_EIO once the peer has closed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "iotp/iotp.h"
#include "iotp_posix.h"

/* Receive from t until the parser yields one frame. */
static const struct iotp_frame *receive_frame(const struct iotp_transport *t, struct iotp_parser *p)
{
    static uint8_t chunk[7]; /* small on purpose: frames arrive in many pieces */
    const struct iotp_frame *f = NULL;

    for (;;) {
        size_t off = 0, used;
        int32_t n = t->recv(t->ctx, chunk, sizeof(chunk));
        assert_true(n > 0);
        while (off < (size_t)n) {
            int r = iotp_parser_feed(p, chunk + off, (size_t)n - off, &used, &f, NULL);
            assert_true(r >= 0);
            off += used;
            if (r == 1) {
                /* A frame never straddles the end of what a peer sent in this test. */
                assert_int_equal(off, (size_t)n);
                return f;
            }
        }
    }
}

static void test_handshake_over_socketpair(void **state)
{
    static const uint8_t key[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    static uint8_t dev_buf[IOTP_MAX_FRAME], srv_buf[IOTP_MAX_FRAME];
    struct iotp_posix_socket dev_sock, srv_sock;
    struct iotp_transport dev_t, srv_t;
    struct iotp_parser dev_p, srv_p;
    struct iotp_device_config cfg;
    struct iotp_device_hs dev;
    struct iotp_server_hs srv;
    struct iotp_device_secret secret;
    struct iotp_random random;
    uint8_t out[512];
    size_t out_len;
    int fds[2];

    (void)state;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    iotp_posix_transport(&dev_sock, fds[0], &dev_t);
    iotp_posix_transport(&srv_sock, fds[1], &srv_t);
    assert_int_equal(iotp_parser_init(&dev_p, dev_buf, sizeof(dev_buf), 0, 0), 0);
    assert_int_equal(iotp_parser_init(&srv_p, srv_buf, sizeof(srv_buf), 0, 0), 0);
    iotp_posix_random(&random);

    memset(&cfg, 0, sizeof(cfg));
    cfg.device_id = "sim-1";
    cfg.device_type = "sim";
    cfg.fw_version = "0.1";
    cfg.key = key;
    cfg.random = random;
    memset(&secret, 0, sizeof(secret));
    secret.alg = IOTP_ALG_HMAC_SHA256;
    memcpy(secret.key, key, 32);
    iotp_server_hs_init(&srv, &random);

    assert_int_equal(iotp_device_hs_start(&dev, &cfg, out, sizeof(out), &out_len), 0);
    assert_int_equal(iotp_transport_send_all(&dev_t, out, out_len, 0), 0);
    assert_int_equal(iotp_server_hs_on_hello(&srv, receive_frame(&srv_t, &srv_p)), 0);
    assert_int_equal(iotp_server_hs_challenge(&srv, &secret, out, sizeof(out), &out_len), 0);
    assert_int_equal(iotp_transport_send_all(&srv_t, out, out_len, 0), 0);
    assert_int_equal(
        iotp_device_hs_on_frame(&dev, receive_frame(&dev_t, &dev_p), out, sizeof(out), &out_len),
        0);
    assert_int_equal(iotp_transport_send_all(&dev_t, out, out_len, 0), 0);
    assert_int_equal(iotp_server_hs_on_auth(&srv, receive_frame(&srv_t, &srv_p), 25, 0, out,
                                            sizeof(out), &out_len),
                     IOTP_HS_DONE);
    assert_int_equal(iotp_transport_send_all(&srv_t, out, out_len, 0), 0);
    assert_int_equal(
        iotp_device_hs_on_frame(&dev, receive_frame(&dev_t, &dev_p), out, sizeof(out), &out_len),
        IOTP_HS_DONE);
    assert_int_equal(dev.ping_s, 25);

    /* Non-blocking and empty: 0 bytes, not an error. Closed peer: IOTP_EIO both ways. */
    assert_int_equal(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
    assert_int_equal(dev_t.recv(dev_t.ctx, out, sizeof(out)), 0);
    close(fds[1]);
    assert_int_equal(dev_t.recv(dev_t.ctx, out, sizeof(out)), IOTP_EIO);
    assert_int_equal(iotp_transport_send_all(&dev_t, out, 10, 0), IOTP_EIO);
    close(fds[0]);
}

static void test_random_and_clock(void **state)
{
    struct iotp_random r;
    struct iotp_clock c;
    uint8_t a[64], b[64], zero[64] = {0};
    uint64_t t1, t2;

    (void)state;
    iotp_posix_random(&r);
    assert_int_equal(r.fill(r.ctx, a, sizeof(a)), 0);
    assert_int_equal(r.fill(r.ctx, b, sizeof(b)), 0);
    assert_memory_not_equal(a, b, sizeof(a));
    assert_memory_not_equal(a, zero, sizeof(a));
    iotp_posix_clock(&c);
    t1 = c.now_ms(c.ctx);
    usleep(20000);
    t2 = c.now_ms(c.ctx);
    assert_true(t2 >= t1 + 15);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_over_socketpair),
        cmocka_unit_test(test_random_and_clock),
    };
    return cmocka_run_group_tests_name("firmware_posix", tests, NULL, NULL);
}
