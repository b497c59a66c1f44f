/*
 * test_atecc.c - the ATECC508A MAC computed by iotp against an independent computation.
 *
 * The reference below builds the 88-byte message byte by byte from the datasheet's
 * description (as cryptoauthlib's host-side atcah_mac lays it out), without any iotp code,
 * and hashes it with OpenSSL. Random keys, challenges, serials, OTP bytes, every supported
 * mode and key ids above 255 (to catch a swapped key-id byte order) are compared.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/sha.h>

#include "iotp/iotp.h"

/* The reference message, in the datasheet's order of parts. */
static void reference_message(const uint8_t key[32], const uint8_t challenge[32], uint8_t mode,
                              uint16_t key_id, const uint8_t otp[11], const uint8_t sn[9],
                              uint8_t msg[88])
{
    size_t n = 0;
    int i;

    for (i = 0; i < 32; i++) /* slot key */
        msg[n++] = key[i];
    for (i = 0; i < 32; i++) /* challenge from the command */
        msg[n++] = challenge[i];
    msg[n++] = 0x08; /* MAC opcode */
    msg[n++] = mode;
    msg[n++] = (uint8_t)(key_id & 0xff); /* param2, LSB first */
    msg[n++] = (uint8_t)(key_id >> 8);
    for (i = 0; i < 8; i++) /* OTP[0:7] when mode bit 5 or bit 4 */
        msg[n++] = (mode & 0x30) ? otp[i] : 0;
    for (i = 8; i < 11; i++) /* OTP[8:10] when mode bit 4 */
        msg[n++] = (mode & 0x10) ? otp[i] : 0;
    msg[n++] = sn[8];
    for (i = 4; i < 8; i++) /* SN[4:7] when mode bit 6 */
        msg[n++] = (mode & 0x40) ? sn[i] : 0;
    msg[n++] = sn[0];
    msg[n++] = sn[1];
    for (i = 2; i < 4; i++) /* SN[2:3] when mode bit 6 */
        msg[n++] = (mode & 0x40) ? sn[i] : 0;
    assert_int_equal(n, 88);
}

static void random_bytes(uint8_t *p, size_t n)
{
    while (n--)
        *p++ = (uint8_t)rand();
}

static void test_matches_reference(void **state)
{
    static const uint8_t modes[] = {0x00, 0x40, 0x20, 0x10, 0x60, 0x50, 0x30, 0x70};
    static const uint16_t key_ids[] = {0, 1, 9, 15, 0x0102, 0xff00};
    uint8_t key[32], challenge[32], otp[11], sn[9], ours[88], theirs[88];
    uint8_t mac[32], want[32];
    size_t m, k;
    int round;

    (void)state;
    srand(508);
    for (round = 0; round < 50; round++) {
        random_bytes(key, sizeof(key));
        random_bytes(challenge, sizeof(challenge));
        random_bytes(otp, sizeof(otp));
        random_bytes(sn, sizeof(sn));
        for (m = 0; m < sizeof(modes); m++) {
            for (k = 0; k < sizeof(key_ids) / sizeof(key_ids[0]); k++) {
                struct iotp_atecc_mac_input in = {key, challenge, modes[m], key_ids[k], otp, sn};
                reference_message(key, challenge, modes[m], key_ids[k], otp, sn, theirs);
                assert_int_equal(iotp_atecc_mac_message(&in, ours), 0);
                assert_memory_equal(ours, theirs, 88);
                assert_int_equal(iotp_atecc_mac(&in, mac), 0);
                SHA256(theirs, 88, want);
                assert_memory_equal(mac, want, 32);
            }
        }
    }
}

/* A fixed example with the offsets spelled out, as the man page documents them. */
static void test_layout_offsets(void **state)
{
    uint8_t key[32], challenge[32], msg[88];
    static const uint8_t sn[9] = {0x01, 0x23, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0xee};
    struct iotp_atecc_mac_input in = {key, challenge, 0x40, 0x0203, NULL, sn};

    (void)state;
    memset(key, 0xaa, sizeof(key));
    memset(challenge, 0xcc, sizeof(challenge));
    assert_int_equal(iotp_atecc_mac_message(&in, msg), 0);
    assert_int_equal(msg[31], 0xaa);
    assert_int_equal(msg[32], 0xcc);
    assert_int_equal(msg[63], 0xcc);
    assert_int_equal(msg[64], 0x08);
    assert_int_equal(msg[65], 0x40);
    assert_int_equal(msg[66], 0x03);
    assert_int_equal(msg[67], 0x02);
    assert_memory_equal(msg + 68, "\0\0\0\0\0\0\0\0\0\0\0", 11);
    assert_int_equal(msg[79], 0xee);
    assert_memory_equal(msg + 80, "\x33\x44\x55\x66", 4);
    assert_memory_equal(msg + 84, "\x01\x23", 2);
    assert_memory_equal(msg + 86, "\x11\x22", 2);
    /* Without bit 6 the serial-specific bytes are zeros; SN[8] and SN[0:1] remain. */
    in.mode = 0x00;
    assert_int_equal(iotp_atecc_mac_message(&in, msg), 0);
    assert_int_equal(msg[79], 0xee);
    assert_memory_equal(msg + 80, "\0\0\0\0", 4);
    assert_memory_equal(msg + 84, "\x01\x23", 2);
    assert_memory_equal(msg + 86, "\0\0", 2);
}

static void test_refusals(void **state)
{
    uint8_t key[32] = {0}, challenge[32] = {0}, sn[9] = {0}, out[32];
    struct iotp_atecc_mac_input in = {key, challenge, 0x01, 0, NULL, sn};

    (void)state;
    assert_int_equal(iotp_atecc_mac(&in, out), IOTP_EINVAL); /* block 1 from TempKey */
    in.mode = 0x02;
    assert_int_equal(iotp_atecc_mac(&in, out), IOTP_EINVAL);
    in.mode = 0x04;
    assert_int_equal(iotp_atecc_mac(&in, out), IOTP_EINVAL);
    in.mode = 0x80;
    assert_int_equal(iotp_atecc_mac(&in, out), IOTP_EINVAL); /* unknown bit */
    in.mode = 0x08;
    assert_int_equal(iotp_atecc_mac(&in, out), IOTP_EINVAL);
    in.mode = 0x20;
    assert_int_equal(iotp_atecc_mac(&in, out), IOTP_EINVAL); /* OTP wanted, none given */
    in.mode = 0x40;
    in.serial = NULL;
    assert_int_equal(iotp_atecc_mac(&in, out), IOTP_EINVAL);
    in.serial = sn;
    in.key = NULL;
    assert_int_equal(iotp_atecc_mac(&in, out), IOTP_EINVAL);
    in.key = key;
    assert_int_equal(iotp_atecc_mac(&in, out), 0);
}

static void test_soft_chip(void **state)
{
    uint8_t key[32], challenge[32], sn[9], got[32], want[32];
    struct iotp_atecc_soft soft;
    struct iotp_atecc_chip chip;
    struct iotp_atecc_mac_input in;

    (void)state;
    random_bytes(key, sizeof(key));
    random_bytes(challenge, sizeof(challenge));
    random_bytes(sn, sizeof(sn));
    iotp_atecc_soft_init(&soft, key, 3, sn, &chip);
    assert_int_equal(chip.key_id, 3);
    assert_int_equal(chip.mac(chip.ctx, 0x40, 3, challenge, got), 0);
    in.key = key;
    in.challenge = challenge;
    in.mode = 0x40;
    in.key_id = 3;
    in.otp = NULL;
    in.serial = sn;
    assert_int_equal(iotp_atecc_mac(&in, want), 0);
    assert_memory_equal(got, want, 32);
    assert_int_equal(chip.mac(chip.ctx, 0x40, 4, challenge, got), IOTP_ECHIP);
    assert_int_equal(chip.mac(chip.ctx, 0x41, 3, challenge, got), IOTP_ECHIP);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_reference),
        cmocka_unit_test(test_layout_offsets),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_soft_chip),
    };
    return cmocka_run_group_tests_name("firmware_atecc", tests, NULL, NULL);
}
