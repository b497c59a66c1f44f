/*
 * iotp_atecc_i2c.h - talking to a real ATECC508A over I2C: the chip's command layer behind a
 * small bus interface, and an iotp_atecc_chip over it for the handshake.
 *
 * The chip sleeps until a wake pulse (SDA low for at least 60 us), then answers a 4-byte
 * status 0x11 ("awake") after tWHI (1.5 ms). Every transfer starts with a word address byte:
 * 0x03 command, 0x02 idle (keeps TempKey), 0x01 sleep. A command packet is
 *
 *   0x03 | count | opcode | param1 | param2 (2, LSB first) | data | CRC-16 (2, LSB first)
 *
 * where count covers itself through the CRC, and the CRC (polynomial 0x8005, bits taken least
 * significant first, initial value 0) covers count through data. After the command's maximum
 * execution time the host reads the response: count | data | CRC-16; a 4-byte response is a
 * status byte (0x00 success, 0x01 CheckMac miscompare, 0x03 parse error, 0x05 ECC fault, 0x0F
 * execution error, 0x11 after wake, 0xEE watchdog about to expire, 0xFF bad CRC on the host's
 * packet). A chip still executing does not acknowledge the read, so the host polls a little.
 *
 * Transport errors and bad CRCs are retried a few times (a fresh wake each time, since the
 * watchdog may have put the chip back to sleep); a status other than success is the chip's
 * answer and is not. Every failure is IOTP_ECHIP; the chip's last status byte is kept for the
 * log. Nothing here allocates; the port supplies the bus and a microsecond delay.
 */
#ifndef IOTP_ATECC_I2C_H
#define IOTP_ATECC_I2C_H

#include <stddef.h>
#include <stdint.h>

#include "iotp_atecc.h"

#define IOTP_ATECC_I2C_ADDR 0x60 /* 7-bit; 0xC0 as the datasheet writes it */

#define IOTP_ATECC_WORD_RESET   0x00
#define IOTP_ATECC_WORD_SLEEP   0x01
#define IOTP_ATECC_WORD_IDLE    0x02
#define IOTP_ATECC_WORD_COMMAND 0x03

#define IOTP_ATECC_OPCODE_NONCE      0x16
#define IOTP_ATECC_NONCE_PASSTHROUGH 0x03 /* Nonce mode: the 32 bytes given become TempKey */

enum iotp_atecc_status {
    IOTP_ATECC_STATUS_OK = 0x00,
    IOTP_ATECC_STATUS_CHECKMAC_FAIL = 0x01,
    IOTP_ATECC_STATUS_PARSE_ERROR = 0x03,
    IOTP_ATECC_STATUS_ECC_FAULT = 0x05,
    IOTP_ATECC_STATUS_EXEC_ERROR = 0x0F,
    IOTP_ATECC_STATUS_AFTER_WAKE = 0x11,
    IOTP_ATECC_STATUS_WATCHDOG = 0xEE,
    IOTP_ATECC_STATUS_CRC_ERROR = 0xFF,
};

/* Maximum execution times (datasheet, ATECC508A), in microseconds. */
#define IOTP_ATECC_EXEC_MAC_US   14000
#define IOTP_ATECC_EXEC_NONCE_US 7000
#define IOTP_ATECC_WAKE_US       1500 /* tWHI: wake pulse to first command */

struct iotp_i2c {
    void *ctx;
    /* Write len bytes to 7-bit address addr. Returns 0, or a negative code (IOTP_EIO for a
     * missing acknowledge: a sleeping or busy chip). */
    int (*write)(void *ctx, uint8_t addr, const uint8_t *buf, size_t len);
    /* Read len bytes from addr. Returns 0 or a negative code (IOTP_EIO: not acknowledged). */
    int (*read)(void *ctx, uint8_t addr, uint8_t *buf, size_t len);
    /* Hold SDA low for at least 60 us. NULL: write one zero byte to address 0 (at 100 kHz that
     * is the pulse; the write is not acknowledged, which is expected). */
    int (*wake_pulse)(void *ctx);
    /* Wait at least us microseconds. */
    void (*delay_us)(void *ctx, uint32_t us);
};

struct iotp_atecc_i2c {
    struct iotp_i2c bus;
    uint8_t addr;        /* 7-bit address */
    uint8_t last_status; /* the last status byte the chip sent (0x00 after a data answer) */
};

/* addr 0 means IOTP_ATECC_I2C_ADDR. */
void iotp_atecc_i2c_init(struct iotp_atecc_i2c *c, const struct iotp_i2c *bus, uint8_t addr);

/* The chip's CRC-16 of len bytes (low byte first on the wire). */
uint16_t iotp_atecc_crc16(const uint8_t *data, size_t len);

/* Wake the chip and check its 0x11 answer. Returns 0 or IOTP_ECHIP. */
int iotp_atecc_i2c_wake(struct iotp_atecc_i2c *c);
/* Idle (TempKey kept) or sleep (everything volatile lost). Returns 0 or IOTP_ECHIP. */
int iotp_atecc_i2c_idle(struct iotp_atecc_i2c *c);
int iotp_atecc_i2c_sleep(struct iotp_atecc_i2c *c);

/* Run one command on an awake chip: send the packet, wait exec_us, read the response into out
 * (out_cap bytes: the data between count and CRC) and set *out_len. A status response other
 * than success is IOTP_ECHIP with c->last_status set. Returns 0 or IOTP_ECHIP / IOTP_EINVAL. */
int iotp_atecc_i2c_command(struct iotp_atecc_i2c *c, uint8_t opcode, uint8_t param1,
                           uint16_t param2, const uint8_t *data, size_t len, uint32_t exec_us,
                           uint8_t *out, size_t out_cap, size_t *out_len);

/* Nonce in pass-through mode: TempKey = value. Wakes the chip and leaves it awake. */
int iotp_atecc_i2c_nonce(struct iotp_atecc_i2c *c, const uint8_t value[32]);

/* MAC over a challenge given in the command: wake, MAC, idle. Returns 0 or IOTP_ECHIP. */
int iotp_atecc_i2c_mac(struct iotp_atecc_i2c *c, uint8_t mode, uint16_t key_id,
                       const uint8_t challenge[IOTP_ATECC_CHALLENGE_LEN],
                       uint8_t response[IOTP_ATECC_RESPONSE_LEN]);

/* An iotp_atecc_chip (for the handshake) over c, using slot key_id. c must outlive chip. */
void iotp_atecc_i2c_chip(struct iotp_atecc_i2c *c, uint16_t key_id, struct iotp_atecc_chip *chip);

#endif
