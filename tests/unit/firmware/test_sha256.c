/*
 * test_sha256.c - iotp's SHA-256 and HMAC-SHA-256 against the FIPS 180-4 examples, the
 * RFC 4231 test cases 1-7 and OpenSSL on random inputs (random lengths, random split points
 * for the streaming interface), plus the constant-time compare.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "iotp/iotp.h"

static void check_hex(const uint8_t *bytes, size_t len, const char *want)
{
    char hex[2 * 64 + 1];

    assert_true(len <= 64);
    iotp_hex_encode(bytes, len, hex);
    assert_string_equal(hex, want);
}

static void sha_hex(const void *data, size_t len, const char *want)
{
    uint8_t d[32];

    iotp_sha256(data, len, d);
    check_hex(d, 32, want);
}

static void test_fips_vectors(void **state)
{
    static uint8_t million[1000000];
    struct iotp_sha256 c;
    uint8_t d[32];
    int i;

    (void)state;
    sha_hex("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    sha_hex("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    sha_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56,
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    sha_hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnop"
            "qrlmnopqrsmnopqrstnopqrstu",
            112, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
    memset(million, 'a', sizeof(million));
    sha_hex(million, sizeof(million),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    /* The million a's again, streamed in odd pieces across block boundaries. */
    iotp_sha256_init(&c);
    for (i = 0; i < 1000000;) {
        size_t n = (size_t)(1 + (i * 7) % 131);
        if (n > (size_t)(1000000 - i))
            n = (size_t)(1000000 - i);
        iotp_sha256_update(&c, million + i, n);
        i += (int)n;
    }
    iotp_sha256_final(&c, d);
    check_hex(d, 32, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

/* Padding edge cases: lengths around 55/56/64 bytes must match OpenSSL. */
static void test_padding_lengths(void **state)
{
    uint8_t data[300], ours[32], theirs[32];
    size_t len;

    (void)state;
    for (len = 0; len < sizeof(data); len++) {
        data[len] = (uint8_t)(len * 31 + 7);
        iotp_sha256(data, len, ours);
        SHA256(data, len, theirs);
        assert_memory_equal(ours, theirs, 32);
    }
}

struct hmac_case {
    const uint8_t *key;
    size_t key_len;
    const char *data;
    size_t data_len;
    const char *mac; /* hex; shorter than 64 digits means truncated (case 5) */
};

static void test_rfc4231(void **state)
{
    static uint8_t k0b[20], kaa20[20], k25[25], k0c[20], kaa131[131], dd[50], cd[50];
    const char *long_data = "This is a test using a larger than block-size key and a larger "
                            "than block-size data. The key needs to be hashed before being "
                            "used by the HMAC algorithm.";
    struct hmac_case cases[7];
    uint8_t mac[32];
    char hex[65];
    int i;

    (void)state;
    memset(k0b, 0x0b, sizeof(k0b));
    memset(kaa20, 0xaa, sizeof(kaa20));
    for (i = 0; i < 25; i++)
        k25[i] = (uint8_t)(i + 1);
    memset(k0c, 0x0c, sizeof(k0c));
    memset(kaa131, 0xaa, sizeof(kaa131));
    memset(dd, 0xdd, sizeof(dd));
    memset(cd, 0xcd, sizeof(cd));
    cases[0] = (struct hmac_case){
        k0b, 20, "Hi There", 8, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"};
    cases[1] =
        (struct hmac_case){(const uint8_t *)"Jefe", 4, "what do ya want for nothing?", 28,
                           "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"};
    cases[2] =
        (struct hmac_case){kaa20, 20, (const char *)dd, 50,
                           "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"};
    cases[3] =
        (struct hmac_case){k25, 25, (const char *)cd, 50,
                           "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"};
    cases[4] =
        (struct hmac_case){k0c, 20, "Test With Truncation", 20, "a3b6167473100ee06e0c796c2955552b"};
    cases[5] =
        (struct hmac_case){kaa131, 131, "Test Using Larger Than Block-Size Key - Hash Key First",
                           54, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"};
    cases[6] =
        (struct hmac_case){kaa131, 131, long_data, strlen(long_data),
                           "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"};
    for (i = 0; i < 7; i++) {
        size_t want_len = strlen(cases[i].mac) / 2;
        iotp_hmac_sha256(cases[i].key, cases[i].key_len, cases[i].data, cases[i].data_len, mac);
        iotp_hex_encode(mac, want_len, hex);
        if (strcmp(hex, cases[i].mac) != 0)
            fail_msg("RFC 4231 case %d: got %s", i + 1, hex);
    }
}

static void random_bytes(uint8_t *p, size_t n)
{
    while (n--)
        *p++ = (uint8_t)rand();
}

static void test_against_openssl(void **state)
{
    static uint8_t data[5000], key[200];
    uint8_t ours[32], theirs[32];
    unsigned int theirs_len;
    int round;

    (void)state;
    srand(4231);
    for (round = 0; round < 500; round++) {
        size_t len = (size_t)rand() % sizeof(data), key_len = (size_t)rand() % sizeof(key);
        size_t split = len ? (size_t)rand() % len : 0;
        struct iotp_sha256 c;
        struct iotp_hmac_sha256 h;

        random_bytes(data, len);
        random_bytes(key, key_len);
        SHA256(data, len, theirs);
        iotp_sha256(data, len, ours);
        assert_memory_equal(ours, theirs, 32);
        iotp_sha256_init(&c);
        iotp_sha256_update(&c, data, split);
        iotp_sha256_update(&c, data + split, len - split);
        iotp_sha256_final(&c, ours);
        assert_memory_equal(ours, theirs, 32);

        assert_non_null(HMAC(EVP_sha256(), key, (int)key_len, data, len, theirs, &theirs_len));
        assert_int_equal(theirs_len, 32);
        iotp_hmac_sha256(key, key_len, data, len, ours);
        assert_memory_equal(ours, theirs, 32);
        iotp_hmac_sha256_init(&h, key, key_len);
        iotp_hmac_sha256_update(&h, data, split);
        iotp_hmac_sha256_update(&h, data + split, len - split);
        iotp_hmac_sha256_final(&h, ours);
        assert_memory_equal(ours, theirs, 32);
    }
}

static void test_ct_equal(void **state)
{
    uint8_t a[32], b[32];
    int i;

    (void)state;
    memset(a, 0x5a, sizeof(a));
    memcpy(b, a, sizeof(b));
    assert_int_equal(iotp_ct_equal(a, b, 32), 1);
    assert_int_equal(iotp_ct_equal(a, b, 0), 1);
    for (i = 0; i < 32 * 8; i++) {
        b[i / 8] ^= (uint8_t)(1u << (i % 8));
        assert_int_equal(iotp_ct_equal(a, b, 32), 0);
        b[i / 8] ^= (uint8_t)(1u << (i % 8));
    }
    iotp_wipe(a, sizeof(a));
    memset(b, 0, sizeof(b));
    assert_memory_equal(a, b, 32);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fips_vectors), cmocka_unit_test(test_padding_lengths),
        cmocka_unit_test(test_rfc4231),      cmocka_unit_test(test_against_openssl),
        cmocka_unit_test(test_ct_equal),
    };
    return cmocka_run_group_tests_name("firmware_sha256", tests, NULL, NULL);
}
