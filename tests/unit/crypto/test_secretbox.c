/*
 * test_secretbox.c - AES-256-GCM sealing and the key file: round trip, every kind of tampering
 * (ciphertext, tag, nonce, associated data, wrong key) refused, and the key file's creation
 * mode and the refusal of group-readable or wrong-sized key files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "crypto/secretbox.h"
#include "iot_error.h"

#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const uint8_t secret[32] = "0123456789abcdef0123456789abcde";
static const uint8_t aad[] = "dev1";

static void fixed_key(uint8_t key[SECRETBOX_KEY_LEN], uint8_t fill)
{
    memset(key, fill, SECRETBOX_KEY_LEN);
}

static void test_round_trip(void **state)
{
    uint8_t key[SECRETBOX_KEY_LEN], sealed[sizeof secret + SECRETBOX_OVERHEAD],
        again[sizeof sealed], plain[sizeof secret];
    fixed_key(key, 7);
    assert_int_equal(secretbox_seal(key, secret, sizeof secret, aad, 4, sealed), 0);
    assert_memory_not_equal(sealed + SECRETBOX_NONCE_LEN, secret, sizeof secret);
    assert_int_equal(secretbox_open(key, sealed, sizeof sealed, aad, 4, plain), 0);
    assert_memory_equal(plain, secret, sizeof secret);
    /* A fresh nonce each time: sealing twice never gives the same bytes. */
    assert_int_equal(secretbox_seal(key, secret, sizeof secret, aad, 4, again), 0);
    assert_memory_not_equal(sealed, again, sizeof sealed);
    /* Empty plaintext and no associated data are valid too. */
    uint8_t empty[SECRETBOX_OVERHEAD];
    assert_int_equal(secretbox_seal(key, NULL, 0, NULL, 0, empty), 0);
    assert_int_equal(secretbox_open(key, empty, sizeof empty, NULL, 0, plain), 0);
}

static void test_tampering_refused(void **state)
{
    uint8_t key[SECRETBOX_KEY_LEN], sealed[sizeof secret + SECRETBOX_OVERHEAD],
        plain[sizeof secret];
    fixed_key(key, 9);
    assert_int_equal(secretbox_seal(key, secret, sizeof secret, aad, 4, sealed), 0);
    /* Flip one bit in the nonce, the ciphertext and the tag in turn. */
    size_t where[] = {0, SECRETBOX_NONCE_LEN + 5, sizeof sealed - 1};
    for (size_t i = 0; i < sizeof where / sizeof where[0]; i++) {
        sealed[where[i]] ^= 0x01;
        memset(plain, 0xAA, sizeof plain);
        assert_int_equal(secretbox_open(key, sealed, sizeof sealed, aad, 4, plain), IOT_EDENIED);
        sealed[where[i]] ^= 0x01;
    }
    /* Same ciphertext moved to another row (other device id), or with no aad. */
    assert_int_equal(secretbox_open(key, sealed, sizeof sealed, (const uint8_t *)"dev2", 4, plain),
                     IOT_EDENIED);
    assert_int_equal(secretbox_open(key, sealed, sizeof sealed, NULL, 0, plain), IOT_EDENIED);
    /* Truncated. */
    assert_int_equal(secretbox_open(key, sealed, sizeof sealed - 1, aad, 4, plain), IOT_EDENIED);
    assert_int_equal(secretbox_open(key, sealed, SECRETBOX_OVERHEAD - 1, aad, 4, plain),
                     IOT_EDENIED);
    /* Wrong key. */
    uint8_t other[SECRETBOX_KEY_LEN];
    fixed_key(other, 10);
    assert_int_equal(secretbox_open(other, sealed, sizeof sealed, aad, 4, plain), IOT_EDENIED);
    /* And the untouched original still opens. */
    assert_int_equal(secretbox_open(key, sealed, sizeof sealed, aad, 4, plain), 0);
}

struct dir {
    char path[64];
    char key[128];
};

static int setup_dir(void **state)
{
    struct dir *d = calloc(1, sizeof *d);
    if (d == NULL)
        return -1;
    strcpy(d->path, "/tmp/iotd-secretbox-XXXXXX");
    if (mkdtemp(d->path) == NULL) {
        free(d);
        return -1;
    }
    snprintf(d->key, sizeof d->key, "%s/server.key", d->path);
    *state = d;
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int teardown_dir(void **state)
{
    struct dir *d = *state;
    nftw(d->path, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
    free(d);
    return 0;
}

static void test_key_created_0600_and_reloaded(void **state)
{
    struct dir *d = *state;
    uint8_t key[SECRETBOX_KEY_LEN], again[SECRETBOX_KEY_LEN], zero[SECRETBOX_KEY_LEN] = {0};
    char err[256];
    mode_t old = umask(0); /* a permissive umask must not leak into the key's mode */
    int rc = secretbox_key_load(d->key, key, err, sizeof err);
    umask(old);
    assert_int_equal(rc, 0);
    assert_memory_not_equal(key, zero, sizeof key);
    struct stat st;
    assert_int_equal(stat(d->key, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(st.st_size, SECRETBOX_KEY_LEN);
    assert_int_equal(secretbox_key_load(d->key, again, err, sizeof err), 0);
    assert_memory_equal(key, again, sizeof key);
}

static void test_key_refused_when_readable_or_wrong_size(void **state)
{
    struct dir *d = *state;
    uint8_t key[SECRETBOX_KEY_LEN];
    char err[256] = "";
    assert_int_equal(secretbox_key_load(d->key, key, err, sizeof err), 0);

    assert_int_equal(chmod(d->key, 0644), 0);
    assert_int_equal(secretbox_key_load(d->key, key, err, sizeof err), IOT_EINVAL);
    assert_non_null(strstr(err, "group or others"));
    assert_int_equal(chmod(d->key, 0640), 0);
    assert_int_equal(secretbox_key_load(d->key, key, err, sizeof err), IOT_EINVAL);
    assert_int_equal(chmod(d->key, 0600), 0);

    assert_int_equal(truncate(d->key, 31), 0);
    assert_int_equal(secretbox_key_load(d->key, key, err, sizeof err), IOT_EINVAL);
    assert_non_null(strstr(err, "exactly 32 bytes"));
    assert_int_equal(truncate(d->key, 33), 0);
    assert_int_equal(secretbox_key_load(d->key, key, err, sizeof err), IOT_EINVAL);
    /* A wrong-sized key is never silently replaced: the file is left as it was. */
    struct stat st;
    assert_int_equal(stat(d->key, &st), 0);
    assert_int_equal(st.st_size, 33);

    /* A directory (or anything not a regular file) in the key's place is refused too. */
    char sub[160];
    snprintf(sub, sizeof sub, "%s/dir.key", d->path);
    assert_int_equal(mkdir(sub, 0700), 0);
    assert_int_not_equal(secretbox_key_load(sub, key, err, sizeof err), 0);
    /* A missing parent directory is an I/O error with the path in the message. */
    snprintf(sub, sizeof sub, "%s/missing/server.key", d->path);
    assert_int_equal(secretbox_key_load(sub, key, err, sizeof err), IOT_EIO);
    assert_non_null(strstr(err, "missing"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_tampering_refused),
        cmocka_unit_test_setup_teardown(test_key_created_0600_and_reloaded, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(test_key_refused_when_readable_or_wrong_size, setup_dir,
                                        teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
