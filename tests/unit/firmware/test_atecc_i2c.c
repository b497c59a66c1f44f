/*
 * test_atecc_i2c.c - the ATECC508A I2C command layer against a software model of the chip at
 * the packet level.
 *
 * The model keeps the chip's states (asleep, awake, executing), answers the wake pulse with
 * status 0x11 after tWHI, checks each command packet's count and CRC (answering 0xFF to a bad
 * one), refuses reads while a command executes, runs MAC (with the host computation of
 * iotp_atecc.h over its own key and serial) and pass-through Nonce, and answers 0x03 to other
 * opcodes. Faults are injected by the test: wakes that fail, responses with a corrupted CRC,
 * a forced error status. Time is the sum of the host's delays.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "iotp/iotp.h"
#include "iotp/iotp_atecc_i2c.h"

struct model {
    int awake;
    uint64_t now_us, busy_until_us, woken_at_us;
    uint8_t resp[40];
    size_t resp_len, resp_pos;
    uint8_t key[32], serial[9], tempkey[32];
    int tempkey_valid;
    /* faults */
    unsigned fail_wakes;    /* the next wakes get no answer */
    unsigned corrupt_resps; /* the next data responses have a bad CRC */
    int corrupt_status;     /* ... and the status responses (the wake's) too */
    int force_status;       /* >= 0: every command answers this status */
    /* counts */
    unsigned commands, bad_crc_packets, busy_reads, idles, sleeps;
};

static void set_response(struct model *m, const uint8_t *data, size_t len)
{
    uint16_t crc;

    m->resp[0] = (uint8_t)(len + 3);
    memcpy(m->resp + 1, data, len);
    crc = iotp_atecc_crc16(m->resp, len + 1);
    m->resp[len + 1] = (uint8_t)crc;
    m->resp[len + 2] = (uint8_t)(crc >> 8);
    if (m->corrupt_resps > 0 && (len > 1 || m->corrupt_status)) {
        m->corrupt_resps--;
        m->resp[len + 2] ^= 0x5a;
    }
    m->resp_len = len + 3;
    m->resp_pos = 0;
}

static void set_status(struct model *m, uint8_t status)
{
    set_response(m, &status, 1);
}

static void run_command(struct model *m, const uint8_t *p, size_t len)
{
    uint16_t crc;
    uint8_t out[32];

    if (len < 7 || p[0] != len) {
        set_status(m, IOTP_ATECC_STATUS_PARSE_ERROR);
        return;
    }
    crc = iotp_atecc_crc16(p, len - 2);
    if (p[len - 2] != (uint8_t)crc || p[len - 1] != (uint8_t)(crc >> 8)) {
        m->bad_crc_packets++;
        set_status(m, IOTP_ATECC_STATUS_CRC_ERROR);
        return;
    }
    m->commands++;
    if (m->force_status >= 0) {
        set_status(m, (uint8_t)m->force_status);
        return;
    }
    if (p[1] == IOTP_ATECC_OPCODE_MAC && len == 7 + 32) {
        struct iotp_atecc_mac_input in = {m->key, p + 5,    p[2], (uint16_t)(p[3] | p[4] << 8),
                                          NULL,   m->serial};
        if (in.key_id != 0 || iotp_atecc_mac(&in, out) < 0) {
            set_status(m, IOTP_ATECC_STATUS_EXEC_ERROR);
            return;
        }
        m->busy_until_us = m->now_us + IOTP_ATECC_EXEC_MAC_US / 2; /* typical, not maximum */
        set_response(m, out, 32);
    } else if (p[1] == IOTP_ATECC_OPCODE_NONCE && p[2] == 0x03 && len == 7 + 32) {
        memcpy(m->tempkey, p + 5, 32);
        m->tempkey_valid = 1;
        m->busy_until_us = m->now_us + 100;
        set_status(m, IOTP_ATECC_STATUS_OK);
    } else {
        set_status(m, IOTP_ATECC_STATUS_PARSE_ERROR);
    }
}

static int m_write(void *ctx, uint8_t addr, const uint8_t *buf, size_t len)
{
    struct model *m = ctx;

    if (addr != IOTP_ATECC_I2C_ADDR || !m->awake || len == 0)
        return IOTP_EIO; /* asleep or not us: no acknowledge */
    if (m->now_us < m->woken_at_us + IOTP_ATECC_WAKE_US || m->now_us < m->busy_until_us)
        return IOTP_EIO;
    switch (buf[0]) {
    case IOTP_ATECC_WORD_COMMAND:
        run_command(m, buf + 1, len - 1);
        break;
    case IOTP_ATECC_WORD_IDLE:
        m->idles++;
        m->awake = 0;
        break;
    case IOTP_ATECC_WORD_SLEEP:
        m->sleeps++;
        m->awake = 0;
        m->tempkey_valid = 0;
        break;
    default:
        break;
    }
    return 0;
}

static int m_read(void *ctx, uint8_t addr, uint8_t *buf, size_t len)
{
    struct model *m = ctx;

    if (addr != IOTP_ATECC_I2C_ADDR || !m->awake)
        return IOTP_EIO;
    if (m->now_us < m->busy_until_us) {
        m->busy_reads++;
        return IOTP_EIO;
    }
    if (m->resp_pos + len > m->resp_len)
        return IOTP_EIO;
    memcpy(buf, m->resp + m->resp_pos, len);
    m->resp_pos += len;
    return 0;
}

static int m_wake(void *ctx)
{
    struct model *m = ctx;

    if (m->fail_wakes > 0) {
        m->fail_wakes--;
        return 0;
    }
    m->awake = 1;
    m->woken_at_us = m->now_us;
    m->busy_until_us = m->now_us + IOTP_ATECC_WAKE_US;
    set_status(m, IOTP_ATECC_STATUS_AFTER_WAKE);
    return 0;
}

static void m_delay(void *ctx, uint32_t us)
{
    ((struct model *)ctx)->now_us += us;
}

static struct model M;
static struct iotp_atecc_i2c C;

static void setup_chip(void)
{
    struct iotp_i2c bus = {&M, m_write, m_read, m_wake, m_delay};
    static const uint8_t serial[9] = {0x01, 0x23, 0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0xee};

    memset(&M, 0, sizeof(M));
    M.force_status = -1;
    for (int i = 0; i < 32; i++)
        M.key[i] = (uint8_t)(0x40 + i);
    memcpy(M.serial, serial, sizeof(serial));
    iotp_atecc_i2c_init(&C, &bus, 0);
}

static void crc_matches_the_datasheet(void **state)
{
    /* The wake answer as the datasheet prints it: 04 11 33 43. */
    static const uint8_t wake[2] = {0x04, 0x11};
    uint16_t crc = iotp_atecc_crc16(wake, 2);

    (void)state;
    assert_int_equal(crc & 0xff, 0x33);
    assert_int_equal(crc >> 8, 0x43);
}

static void mac_matches_the_host_computation(void **state)
{
    struct iotp_atecc_soft soft;
    struct iotp_atecc_chip via_i2c, reference;
    uint8_t challenge[32], a[32], b[32];

    (void)state;
    setup_chip();
    for (int i = 0; i < 32; i++)
        challenge[i] = (uint8_t)(i * 7);
    iotp_atecc_i2c_chip(&C, 0, &via_i2c);
    iotp_atecc_soft_init(&soft, M.key, 0, M.serial, &reference);
    assert_int_equal(via_i2c.mac(via_i2c.ctx, IOTP_ATECC_MAC_MODE, 0, challenge, a), 0);
    assert_int_equal(reference.mac(reference.ctx, IOTP_ATECC_MAC_MODE, 0, challenge, b), 0);
    assert_memory_equal(a, b, 32);
    assert_int_equal(M.commands, 1);
    /* The host waited the execution time instead of hammering the bus, and left it idle. */
    assert_int_equal(M.busy_reads, 0);
    assert_int_equal(M.idles, 1);
    assert_false(M.awake);
    assert_int_equal(C.last_status, IOTP_ATECC_STATUS_OK);
}

static void nonce_passthrough_sets_tempkey(void **state)
{
    uint8_t value[32];

    (void)state;
    setup_chip();
    memset(value, 0xa5, sizeof(value));
    assert_int_equal(iotp_atecc_i2c_nonce(&C, value), 0);
    assert_true(M.tempkey_valid);
    assert_memory_equal(M.tempkey, value, 32);
    assert_int_equal(iotp_atecc_i2c_sleep(&C), 0);
    assert_false(M.tempkey_valid);
    assert_int_equal(M.sleeps, 1);
}

static void wake_failures(void **state)
{
    uint8_t challenge[32] = {0}, out[32];

    (void)state;
    setup_chip();
    /* One lost wake is retried. */
    M.fail_wakes = 1;
    assert_int_equal(iotp_atecc_i2c_mac(&C, IOTP_ATECC_MAC_MODE, 0, challenge, out), 0);
    /* A chip that never wakes is an error, and nothing was sent to it. */
    M.fail_wakes = 100;
    M.commands = 0;
    assert_int_equal(iotp_atecc_i2c_mac(&C, IOTP_ATECC_MAC_MODE, 0, challenge, out), IOTP_ECHIP);
    assert_int_equal(M.commands, 0);
}

static void crc_errors_are_retried(void **state)
{
    uint8_t challenge[32] = {1}, out[32], expect[32];

    (void)state;
    setup_chip();
    assert_int_equal(iotp_atecc_i2c_mac(&C, IOTP_ATECC_MAC_MODE, 0, challenge, expect), 0);
    /* The MAC's response arrives garbled once: the command goes again, same answer. */
    M.commands = 0;
    M.corrupt_resps = 1;
    assert_int_equal(iotp_atecc_i2c_mac(&C, IOTP_ATECC_MAC_MODE, 0, challenge, out), 0);
    assert_memory_equal(out, expect, 32);
    assert_int_equal(M.commands, 2);
    /* Garbled every time (the wake answers too): an error after a bounded number of tries. */
    M.corrupt_resps = 1000;
    M.corrupt_status = 1;
    assert_int_equal(iotp_atecc_i2c_mac(&C, IOTP_ATECC_MAC_MODE, 0, challenge, out), IOTP_ECHIP);
    assert_true(M.corrupt_resps > 900);
}

static void error_status_is_not_retried(void **state)
{
    uint8_t challenge[32] = {2}, out[32];

    (void)state;
    setup_chip();
    M.force_status = IOTP_ATECC_STATUS_EXEC_ERROR;
    assert_int_equal(iotp_atecc_i2c_mac(&C, IOTP_ATECC_MAC_MODE, 0, challenge, out), IOTP_ECHIP);
    assert_int_equal(C.last_status, IOTP_ATECC_STATUS_EXEC_ERROR);
    assert_int_equal(M.commands, 1);
    /* A slot the chip refuses (the model knows slot 0 only). */
    M.force_status = -1;
    assert_int_equal(iotp_atecc_i2c_mac(&C, IOTP_ATECC_MAC_MODE, 3, challenge, out), IOTP_ECHIP);
    assert_int_equal(C.last_status, IOTP_ATECC_STATUS_EXEC_ERROR);
}

static void bad_packet_crc_is_answered_0xff(void **state)
{
    uint8_t packet[8] = {IOTP_ATECC_WORD_COMMAND, 7, 0x02, 0, 0, 0, 0xde, 0xad}, resp[4];

    (void)state;
    setup_chip();
    assert_int_equal(iotp_atecc_i2c_wake(&C), 0);
    M.now_us += IOTP_ATECC_WAKE_US;
    assert_int_equal(m_write(&M, IOTP_ATECC_I2C_ADDR, packet, sizeof(packet)), 0);
    assert_int_equal(m_read(&M, IOTP_ATECC_I2C_ADDR, resp, 4), 0);
    assert_int_equal(resp[1], IOTP_ATECC_STATUS_CRC_ERROR);
    assert_int_equal(M.bad_crc_packets, 1);
}

static int counter_fill(void *ctx, uint8_t *buf, size_t len)
{
    unsigned *n = ctx;

    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(++*n * 13u);
    return 0;
}

/* Feed one frame of len bytes to a fresh parser and return it. */
static const struct iotp_frame *parse(struct iotp_parser *p, uint8_t *pbuf, size_t cap,
                                      const uint8_t *frame, size_t len)
{
    const struct iotp_frame *f = NULL;
    size_t used;

    assert_int_equal(iotp_parser_init(p, pbuf, cap, cap, 0), 0);
    assert_int_equal(iotp_parser_feed(p, frame, len, &used, &f, NULL), 1);
    return f;
}

/* HELLO to the server, its CHALLENGE to the device: returns what the device made of it (0 with
 * its AUTH in out, 512 bytes). */
static int challenge_and_auth(struct iotp_device_hs *dev, const struct iotp_device_config *cfg,
                              struct iotp_server_hs *srv, const struct iotp_random *srv_rnd,
                              const struct iotp_device_secret *secret, uint8_t *out, size_t *len)
{
    struct iotp_parser p;
    uint8_t pbuf[512];

    assert_int_equal(iotp_device_hs_start(dev, cfg, out, 512, len), 0);
    iotp_server_hs_init(srv, srv_rnd);
    assert_int_equal(iotp_server_hs_on_hello(srv, parse(&p, pbuf, sizeof(pbuf), out, *len)), 0);
    assert_int_equal(iotp_server_hs_challenge(srv, secret, out, 512, len), 0);
    return iotp_device_hs_on_frame(dev, parse(&p, pbuf, sizeof(pbuf), out, *len), out, 512, len);
}

/* The whole alg=atecc508a-mac handshake with the device's MACs computed by the chip model
 * over I2C and the server holding the same key and serial. */
static void handshake_through_the_i2c_chip(void **state)
{
    struct iotp_device_hs dev;
    struct iotp_server_hs srv;
    struct iotp_device_config cfg;
    struct iotp_device_secret secret;
    struct iotp_atecc_chip chip;
    struct iotp_parser p;
    uint8_t out[512], pbuf[512];
    size_t len;
    unsigned dev_n = 0, srv_n = 1000;
    struct iotp_random srv_rnd = {&srv_n, counter_fill};

    (void)state;
    setup_chip();
    iotp_atecc_i2c_chip(&C, 0, &chip);
    memset(&cfg, 0, sizeof(cfg));
    cfg.device_id = "lamp-1";
    cfg.device_type = "lamp";
    cfg.fw_version = "1";
    cfg.alg = IOTP_ALG_ATECC508A_MAC;
    cfg.chip = &chip;
    cfg.random.ctx = &dev_n;
    cfg.random.fill = counter_fill;
    memset(&secret, 0, sizeof(secret));
    secret.alg = IOTP_ALG_ATECC508A_MAC;
    memcpy(secret.key, M.key, 32);
    memcpy(secret.serial, M.serial, 9);

    assert_int_equal(challenge_and_auth(&dev, &cfg, &srv, &srv_rnd, &secret, out, &len), 0);
    assert_int_equal(iotp_server_hs_on_auth(&srv, parse(&p, pbuf, sizeof(pbuf), out, len), 30, 0,
                                            out, sizeof(out), &len),
                     IOTP_HS_DONE);
    /* WELCOME is checked by asking the chip again: two MAC commands in all. */
    assert_int_equal(iotp_device_hs_on_frame(&dev, parse(&p, pbuf, sizeof(pbuf), out, len), out,
                                             sizeof(out), &len),
                     IOTP_HS_DONE);
    assert_int_equal(M.commands, 2);

    /* A chip that stops answering fails the device's AUTH with IOTP_ECHIP. */
    M.fail_wakes = 100;
    assert_int_equal(challenge_and_auth(&dev, &cfg, &srv, &srv_rnd, &secret, out, &len),
                     IOTP_ECHIP);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(crc_matches_the_datasheet),
        cmocka_unit_test(mac_matches_the_host_computation),
        cmocka_unit_test(nonce_passthrough_sets_tempkey),
        cmocka_unit_test(wake_failures),
        cmocka_unit_test(crc_errors_are_retried),
        cmocka_unit_test(error_status_is_not_retried),
        cmocka_unit_test(bad_packet_crc_is_answered_0xff),
        cmocka_unit_test(handshake_through_the_i2c_chip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
