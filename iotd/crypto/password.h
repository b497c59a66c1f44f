/*
 * password.h - user passwords as Argon2id hashes (libargon2's encoded form). Hashing costs tens
 * of milliseconds on purpose: call it only on db threads or other threads allowed to block.
 */
#ifndef IOTD_PASSWORD_H
#define IOTD_PASSWORD_H

#include <stddef.h>

#define PASSWORD_HASH_MAX 128
#define PASSWORD_MIN_LEN  8

/* Hash with a random salt into out (NUL-terminated). IOT_EINVAL for a password shorter than
 * PASSWORD_MIN_LEN or longer than 1024 bytes. */
int password_hash(const char *password, char *out, size_t outlen);
/* 0 when password matches encoded, IOT_EDENIED otherwise (also for a malformed hash). */
int password_verify(const char *encoded, const char *password);

#endif
