/*
 * secretbox.h - device secrets encrypted at rest: AES-256-GCM under the server key file.
 *
 * Sealed layout: 12-byte random nonce | ciphertext | 16-byte tag. The associated data binds a
 * sealed secret to its row (the device id), so a ciphertext copied to another row fails to open.
 */
#ifndef IOTD_SECRETBOX_H
#define IOTD_SECRETBOX_H

#include <stddef.h>
#include <stdint.h>

#define SECRETBOX_KEY_LEN   32
#define SECRETBOX_NONCE_LEN 12
#define SECRETBOX_TAG_LEN   16
#define SECRETBOX_OVERHEAD  (SECRETBOX_NONCE_LEN + SECRETBOX_TAG_LEN)

/* Read the 32-byte key from path, or create it (mode 0600, random) if it does not exist.
 * Refuses a key file readable by group or others, or of the wrong size (IOT_EINVAL). */
int secretbox_key_load(const char *path, uint8_t key[SECRETBOX_KEY_LEN], char *err, size_t errlen);
/* Create the key file path (0600, fsync'ed) holding key, as a restore does; IOT_EEXIST when a
 * key file is there already (it is never replaced). */
int secretbox_key_store(const char *path, const uint8_t key[SECRETBOX_KEY_LEN], char *err,
                        size_t errlen);
/* out must hold len + SECRETBOX_OVERHEAD bytes. */
int secretbox_seal(const uint8_t key[SECRETBOX_KEY_LEN], const uint8_t *plain, size_t len,
                   const uint8_t *aad, size_t aad_len, uint8_t *out);
/* out must hold sealed_len - SECRETBOX_OVERHEAD bytes. IOT_EDENIED if authentication fails. */
int secretbox_open(const uint8_t key[SECRETBOX_KEY_LEN], const uint8_t *sealed, size_t sealed_len,
                   const uint8_t *aad, size_t aad_len, uint8_t *out);
/* Fill buf with cryptographically random bytes. */
int secretbox_random(uint8_t *buf, size_t len);

#endif
