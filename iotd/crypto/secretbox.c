/*
 * secretbox.c - AES-256-GCM sealing of device secrets under the server key file.
 *
 * The key is 32 random bytes in a file of exactly that size, readable by its owner only. It is
 * created on first use: written to a temporary file made by mkostemp (O_EXCL, mode 0600),
 * fsync'ed, then link()ed to its final name, so a crash or a second iotd starting at the same
 * moment can never leave a short key behind or overwrite a key that already sealed secrets
 * (link fails with EEXIST and the loser reads the winner's key).
 *
 * Every seal draws a fresh random 96-bit nonce from OpenSSL's CSPRNG. With random nonces the
 * GCM bound is about 2^32 seals per key, far above the number of device secrets a server
 * will ever write.
 */
#include "crypto/secretbox.h"

#include "iot_error.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Read exactly SECRETBOX_KEY_LEN bytes from an existing key file, checking its mode and size
 * on the open descriptor (not the path) so the checks apply to the bytes we read. */
static int key_read(int fd, const char *path, uint8_t key[SECRETBOX_KEY_LEN], char *err,
                    size_t errlen)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "cannot stat key file %s: %s", path, strerror(errno));
        return IOT_EIO;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "key file %s is not a regular file", path);
        return IOT_EINVAL;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        snprintf(err, errlen,
                 "key file %s has mode %04o; it must not be accessible by group or others "
                 "(chmod 600 %s)",
                 path, (unsigned)(st.st_mode & 07777), path);
        return IOT_EINVAL;
    }
    if (st.st_size != SECRETBOX_KEY_LEN) {
        snprintf(err, errlen, "key file %s is %lld bytes; a key is exactly %d bytes", path,
                 (long long)st.st_size, SECRETBOX_KEY_LEN);
        return IOT_EINVAL;
    }
    size_t got = 0;
    while (got < SECRETBOX_KEY_LEN) {
        ssize_t n = read(fd, key + got, SECRETBOX_KEY_LEN - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(err, errlen, "cannot read key file %s: %s", path,
                     n < 0 ? strerror(errno) : "unexpected end of file");
            return IOT_EIO;
        }
        got += (size_t)n;
    }
    return 0;
}

/* Create the key file path holding key, made random first when fresh. Returns 0, IOT_EEXIST if
 * another process created the file first (the caller then reads that one), or IOT_EIO. */
static int key_create(const char *path, uint8_t key[SECRETBOX_KEY_LEN], bool fresh, char *err,
                      size_t errlen)
{
    char tmp[PATH_MAX];
    int fd = -1, rc = IOT_EIO;
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.XXXXXX", path) >= sizeof tmp) {
        snprintf(err, errlen, "key file path %s is too long", path);
        return IOT_EINVAL;
    }
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create key file %s: %s", tmp, strerror(errno));
        return IOT_EIO;
    }
    /* mkostemp already uses 0600; fchmod documents it and guards against odd libcs. */
    if (fchmod(fd, S_IRUSR | S_IWUSR) != 0 ||
        (fresh && secretbox_random(key, SECRETBOX_KEY_LEN) != 0)) {
        snprintf(err, errlen, "cannot prepare key file %s", tmp);
        goto out;
    }
    size_t put = 0;
    while (put < SECRETBOX_KEY_LEN) {
        ssize_t n = write(fd, key + put, SECRETBOX_KEY_LEN - put);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(err, errlen, "cannot write key file %s: %s", tmp, strerror(errno));
            goto out;
        }
        put += (size_t)n;
    }
    if (fsync(fd) != 0) {
        snprintf(err, errlen, "cannot sync key file %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (link(tmp, path) != 0) {
        if (errno == EEXIST) {
            rc = IOT_EEXIST;
        } else {
            snprintf(err, errlen, "cannot create key file %s: %s", path, strerror(errno));
        }
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    if (rc != 0 && fresh)
        OPENSSL_cleanse(key, SECRETBOX_KEY_LEN);
    return rc;
}

int secretbox_key_store(const char *path, const uint8_t key[SECRETBOX_KEY_LEN], char *err,
                        size_t errlen)
{
    uint8_t copy[SECRETBOX_KEY_LEN];
    memcpy(copy, key, sizeof copy);
    int rc = key_create(path, copy, false, err, errlen);
    if (rc == IOT_EEXIST)
        snprintf(err, errlen, "key file %s exists already", path);
    OPENSSL_cleanse(copy, sizeof copy);
    return rc;
}

int secretbox_key_load(const char *path, uint8_t key[SECRETBOX_KEY_LEN], char *err, size_t errlen)
{
    /* Two rounds: if we lose the creation race, the second round reads the winner's key. */
    for (int round = 0; round < 2; round++) {
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd >= 0) {
            int rc = key_read(fd, path, key, err, errlen);
            close(fd);
            if (rc != 0)
                OPENSSL_cleanse(key, SECRETBOX_KEY_LEN);
            return rc;
        }
        if (errno != ENOENT) {
            snprintf(err, errlen, "cannot open key file %s: %s", path, strerror(errno));
            return IOT_EIO;
        }
        int rc = key_create(path, key, true, err, errlen);
        if (rc != IOT_EEXIST)
            return rc;
    }
    snprintf(err, errlen, "key file %s keeps appearing and disappearing", path);
    return IOT_EIO;
}

int secretbox_random(uint8_t *buf, size_t len)
{
    if (len > INT_MAX)
        return IOT_EINVAL;
    return RAND_bytes(buf, (int)len) == 1 ? 0 : IOT_EINTERNAL;
}

int secretbox_seal(const uint8_t key[SECRETBOX_KEY_LEN], const uint8_t *plain, size_t len,
                   const uint8_t *aad, size_t aad_len, uint8_t *out)
{
    int rc = IOT_EINTERNAL, n = 0;
    EVP_CIPHER_CTX *ctx = NULL;
    if (len > INT_MAX - SECRETBOX_OVERHEAD || aad_len > INT_MAX)
        return IOT_EINVAL;
    uint8_t *nonce = out, *cipher = out + SECRETBOX_NONCE_LEN, *tag = cipher + len;
    if (secretbox_random(nonce, SECRETBOX_NONCE_LEN) != 0)
        goto out;
    ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL) {
        rc = IOT_ENOMEM;
        goto out;
    }
    /* The default GCM IV length is 12 bytes, which is SECRETBOX_NONCE_LEN. */
    if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce) != 1)
        goto out;
    if (aad_len > 0 && EVP_EncryptUpdate(ctx, NULL, &n, aad, (int)aad_len) != 1)
        goto out;
    if (len > 0 && EVP_EncryptUpdate(ctx, cipher, &n, plain, (int)len) != 1)
        goto out;
    if (EVP_EncryptFinal_ex(ctx, cipher + len, &n) != 1)
        goto out;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SECRETBOX_TAG_LEN, tag) != 1)
        goto out;
    rc = 0;
out:
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

int secretbox_open(const uint8_t key[SECRETBOX_KEY_LEN], const uint8_t *sealed, size_t sealed_len,
                   const uint8_t *aad, size_t aad_len, uint8_t *out)
{
    int rc = IOT_EINTERNAL, n = 0;
    EVP_CIPHER_CTX *ctx = NULL;
    if (sealed_len < SECRETBOX_OVERHEAD)
        return IOT_EDENIED; /* too short to be anything we sealed */
    if (sealed_len > INT_MAX || aad_len > INT_MAX)
        return IOT_EINVAL;
    size_t len = sealed_len - SECRETBOX_OVERHEAD;
    const uint8_t *nonce = sealed, *cipher = sealed + SECRETBOX_NONCE_LEN, *tag = cipher + len;
    uint8_t tagcopy[SECRETBOX_TAG_LEN];
    memcpy(tagcopy, tag, sizeof tagcopy); /* EVP wants a non-const tag pointer */

    ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL) {
        rc = IOT_ENOMEM;
        goto out;
    }
    if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce) != 1)
        goto out;
    if (aad_len > 0 && EVP_DecryptUpdate(ctx, NULL, &n, aad, (int)aad_len) != 1)
        goto out;
    if (len > 0 && EVP_DecryptUpdate(ctx, out, &n, cipher, (int)len) != 1)
        goto out;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SECRETBOX_TAG_LEN, tagcopy) != 1)
        goto out;
    if (EVP_DecryptFinal_ex(ctx, out + len, &n) != 1) {
        /* Never hand back plaintext that failed authentication. */
        OPENSSL_cleanse(out, len);
        rc = IOT_EDENIED;
        goto out;
    }
    rc = 0;
out:
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}
