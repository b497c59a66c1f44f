/*
 * iotp_atecc.h - the ATECC508A MAC command, computed on the host and asked of a chip.
 *
 * A device with an ATECC508A keeps its secret in a chip slot and answers a 32-byte challenge
 * with the chip's MAC command: SHA-256 over an 88-byte message. The server, which stored the
 * same key and the chip's 9-byte serial number at provisioning, rebuilds that message and
 * compares. The layout below is the datasheet's (section "MAC command"), the same as
 * Microchip cryptoauthlib's host-side atcah_mac() builds; offsets are into the message:
 *
 *    0..31  32  key of slot key_id (mode bit 0 = 0; TempKey otherwise, not supported here)
 *   32..63  32  challenge from the command (mode bit 1 = 0; TempKey otherwise, not supported)
 *       64   1  opcode 0x08
 *       65   1  mode
 *   66..67   2  key id (param2), least significant byte first
 *   68..75   8  OTP[0:7] if mode bit 5 (0x20) or bit 4 (0x10), else zeros
 *   76..78   3  OTP[8:10] if mode bit 4 (0x10), else zeros
 *       79   1  SN[8] (always; 0xEE on every ATECC508A)
 *   80..83   4  SN[4:7] if mode bit 6 (0x40), else zeros
 *   84..85   2  SN[0:1] (always; 0x01 0x23 on every ATECC508A)
 *   86..87   2  SN[2:3] if mode bit 6 (0x40), else zeros
 *
 * Modes that take either block from TempKey (bits 0, 1, 2) need the chip's Nonce/GenDig state,
 * which the server cannot know; they are refused with IOTP_EINVAL.
 */
#ifndef IOTP_ATECC_H
#define IOTP_ATECC_H

#include <stddef.h>
#include <stdint.h>

#define IOTP_ATECC_MSG_LEN       88
#define IOTP_ATECC_KEY_LEN       32
#define IOTP_ATECC_CHALLENGE_LEN 32
#define IOTP_ATECC_RESPONSE_LEN  32
#define IOTP_ATECC_SERIAL_LEN    9
#define IOTP_ATECC_OTP_LEN       11 /* the OTP bytes the MAC can include: OTP[0:10] */
#define IOTP_ATECC_OPCODE_MAC    0x08
#define IOTP_ATECC_MAX_KEY_ID    15

#define IOTP_ATECC_MODE_BLOCK1_TEMPKEY 0x01
#define IOTP_ATECC_MODE_BLOCK2_TEMPKEY 0x02
#define IOTP_ATECC_MODE_SOURCE_FLAG    0x04
#define IOTP_ATECC_MODE_INCLUDE_OTP_88 0x10
#define IOTP_ATECC_MODE_INCLUDE_OTP_64 0x20
#define IOTP_ATECC_MODE_INCLUDE_SN     0x40

struct iotp_atecc_mac_input {
    const uint8_t *key;       /* IOTP_ATECC_KEY_LEN bytes */
    const uint8_t *challenge; /* IOTP_ATECC_CHALLENGE_LEN bytes */
    uint8_t mode;
    uint16_t key_id;
    const uint8_t *otp;    /* IOTP_ATECC_OTP_LEN bytes; may be NULL unless an OTP bit is set */
    const uint8_t *serial; /* IOTP_ATECC_SERIAL_LEN bytes, always needed (SN[8], SN[0:1]) */
};

/* Build the 88-byte message the chip hashes. Returns 0 or IOTP_EINVAL (TempKey mode bits,
 * unknown mode bits, a missing key, challenge, serial or needed OTP). */
int iotp_atecc_mac_message(const struct iotp_atecc_mac_input *in, uint8_t msg[IOTP_ATECC_MSG_LEN]);

/* The chip's MAC response: SHA-256 of the message above. Returns 0 or IOTP_EINVAL. */
int iotp_atecc_mac(const struct iotp_atecc_mac_input *in,
                   uint8_t response[IOTP_ATECC_RESPONSE_LEN]);

/* A chip as the device handshake sees it: run the MAC command with the challenge given in the
 * command (no TempKey) on slot key_id. A real port talks I2C to the chip; the software
 * emulation below computes it. mac returns 0 or a negative code (IOTP_ECHIP). */
struct iotp_atecc_chip {
    void *ctx;
    uint16_t key_id; /* slot holding the device key */
    int (*mac)(void *ctx, uint8_t mode, uint16_t key_id,
               const uint8_t challenge[IOTP_ATECC_CHALLENGE_LEN],
               uint8_t response[IOTP_ATECC_RESPONSE_LEN]);
};

/* Software emulation of one provisioned slot of an ATECC508A, for tests and iotsim. */
struct iotp_atecc_soft {
    uint8_t key[IOTP_ATECC_KEY_LEN];
    uint8_t serial[IOTP_ATECC_SERIAL_LEN];
    uint8_t otp[IOTP_ATECC_OTP_LEN];
    uint16_t key_id;
};

/* Set up an emulated chip holding key in slot key_id with the given serial (OTP zeroed) and
 * fill *chip with an interface to it. The emulation answers only for key_id (IOTP_ECHIP for
 * other slots, like an empty slot) and refuses TempKey modes. soft must outlive chip. */
void iotp_atecc_soft_init(struct iotp_atecc_soft *soft, const uint8_t key[IOTP_ATECC_KEY_LEN],
                          uint16_t key_id, const uint8_t serial[IOTP_ATECC_SERIAL_LEN],
                          struct iotp_atecc_chip *chip);

#endif
