/*
 * iotp_atecc.c - host computation of the ATECC508A MAC command and a software chip.
 *
 * iotp_atecc_mac_message lays the 88 bytes out exactly as the table in iotp_atecc.h (the
 * datasheet's MAC command message); the offsets are written out one field at a time so each
 * line can be checked against the table. The software chip runs the same computation on its
 * own copy of the key, which is what a real chip does in silicon.
 */
#include "iotp/iotp_atecc.h"
#include "iotp/iotp_error.h"
#include "iotp/iotp_sha256.h"

#include <string.h>

#define TEMPKEY_BITS                                                                               \
    (IOTP_ATECC_MODE_BLOCK1_TEMPKEY | IOTP_ATECC_MODE_BLOCK2_TEMPKEY | IOTP_ATECC_MODE_SOURCE_FLAG)
#define KNOWN_BITS                                                                                 \
    (TEMPKEY_BITS | IOTP_ATECC_MODE_INCLUDE_OTP_88 | IOTP_ATECC_MODE_INCLUDE_OTP_64 |              \
     IOTP_ATECC_MODE_INCLUDE_SN)

int iotp_atecc_mac_message(const struct iotp_atecc_mac_input *in, uint8_t msg[IOTP_ATECC_MSG_LEN])
{
    uint8_t mode;
    int include_sn;

    if (!in || !msg || !in->key || !in->challenge || !in->serial)
        return IOTP_EINVAL;
    mode = in->mode;
    if ((mode & ~KNOWN_BITS) || (mode & TEMPKEY_BITS))
        return IOTP_EINVAL;
    if ((mode & (IOTP_ATECC_MODE_INCLUDE_OTP_88 | IOTP_ATECC_MODE_INCLUDE_OTP_64)) && !in->otp)
        return IOTP_EINVAL;
    include_sn = (mode & IOTP_ATECC_MODE_INCLUDE_SN) != 0;

    memcpy(msg + 0, in->key, 32);
    memcpy(msg + 32, in->challenge, 32);
    msg[64] = IOTP_ATECC_OPCODE_MAC;
    msg[65] = mode;
    msg[66] = (uint8_t)(in->key_id & 0xFF);
    msg[67] = (uint8_t)(in->key_id >> 8);
    /* Bit 4 includes all eleven OTP bytes and overrides bit 5, which includes eight. */
    if (mode & (IOTP_ATECC_MODE_INCLUDE_OTP_88 | IOTP_ATECC_MODE_INCLUDE_OTP_64))
        memcpy(msg + 68, in->otp, 8);
    else
        memset(msg + 68, 0, 8);
    if (mode & IOTP_ATECC_MODE_INCLUDE_OTP_88)
        memcpy(msg + 76, in->otp + 8, 3);
    else
        memset(msg + 76, 0, 3);
    msg[79] = in->serial[8];
    if (include_sn)
        memcpy(msg + 80, in->serial + 4, 4);
    else
        memset(msg + 80, 0, 4);
    msg[84] = in->serial[0];
    msg[85] = in->serial[1];
    if (include_sn)
        memcpy(msg + 86, in->serial + 2, 2);
    else
        memset(msg + 86, 0, 2);
    return 0;
}

int iotp_atecc_mac(const struct iotp_atecc_mac_input *in, uint8_t response[IOTP_ATECC_RESPONSE_LEN])
{
    uint8_t msg[IOTP_ATECC_MSG_LEN];
    int err;

    err = iotp_atecc_mac_message(in, msg);
    if (err)
        goto out;
    iotp_sha256(msg, sizeof(msg), response);
out:
    iotp_wipe(msg, sizeof(msg)); /* it holds the key */
    return err;
}

static int soft_mac(void *ctx, uint8_t mode, uint16_t key_id,
                    const uint8_t challenge[IOTP_ATECC_CHALLENGE_LEN],
                    uint8_t response[IOTP_ATECC_RESPONSE_LEN])
{
    const struct iotp_atecc_soft *soft = ctx;
    struct iotp_atecc_mac_input in;

    if (key_id != soft->key_id || (mode & TEMPKEY_BITS))
        return IOTP_ECHIP;
    in.key = soft->key;
    in.challenge = challenge;
    in.mode = mode;
    in.key_id = key_id;
    in.otp = soft->otp;
    in.serial = soft->serial;
    return iotp_atecc_mac(&in, response) ? IOTP_ECHIP : 0;
}

void iotp_atecc_soft_init(struct iotp_atecc_soft *soft, const uint8_t key[IOTP_ATECC_KEY_LEN],
                          uint16_t key_id, const uint8_t serial[IOTP_ATECC_SERIAL_LEN],
                          struct iotp_atecc_chip *chip)
{
    memcpy(soft->key, key, IOTP_ATECC_KEY_LEN);
    memcpy(soft->serial, serial, IOTP_ATECC_SERIAL_LEN);
    memset(soft->otp, 0, sizeof(soft->otp));
    soft->key_id = key_id;
    chip->ctx = soft;
    chip->key_id = key_id;
    chip->mac = soft_mac;
}
