/*
 * iotp_atecc_i2c.c - the ATECC508A's I2C command layer (contract and packet layout in
 * iotp_atecc_i2c.h).
 *
 * One attempt is: wake, send the packet, wait the execution time, poll for the response (the
 * chip does not acknowledge a read while it executes), check its CRC. A bus error, a response
 * with a bad CRC or the chip's own 0xFF (it saw a bad CRC on our packet) costs another attempt,
 * up to ATTEMPTS; a status the chip meant (parse error, execution error, ...) ends at once.
 */
#include "iotp/iotp_atecc_i2c.h"

#include <string.h>

#include "iotp/iotp_error.h"
#include "iotp/iotp_sha256.h"

#define ATTEMPTS        3
#define POLL_US         1000 /* between reads of a chip still executing */
#define POLLS           20
#define MAX_PACKET_DATA 64 /* the largest data this layer sends (MAC: 32) */
#define CHALLENGE_LEN   IOTP_ATECC_CHALLENGE_LEN

void iotp_atecc_i2c_init(struct iotp_atecc_i2c *c, const struct iotp_i2c *bus, uint8_t addr)
{
    memset(c, 0, sizeof(*c));
    c->bus = *bus;
    c->addr = addr ? addr : IOTP_ATECC_I2C_ADDR;
}

uint16_t iotp_atecc_crc16(const uint8_t *data, size_t len)
{
    uint16_t crc = 0;

    for (size_t i = 0; i < len; i++) {
        for (uint8_t bit = 0x01; bit != 0; bit = (uint8_t)(bit << 1)) {
            unsigned in = (data[i] & bit) ? 1u : 0u;
            unsigned top = crc >> 15;
            crc = (uint16_t)(crc << 1);
            if (in != top)
                crc ^= 0x8005;
        }
    }
    return crc;
}

/* Read one response (count | data | CRC) into buf (cap bytes, at least 4), polling while the
 * chip is busy. Returns the count, or IOTP_ECHIP for no answer, a bad count or a bad CRC. */
static int read_response(struct iotp_atecc_i2c *c, uint8_t *buf, size_t cap)
{
    uint16_t crc;
    int r = IOTP_EIO;

    for (unsigned i = 0; i < POLLS && r < 0; i++) {
        r = c->bus.read(c->bus.ctx, c->addr, buf, 1);
        if (r < 0)
            c->bus.delay_us(c->bus.ctx, POLL_US);
    }
    if (r < 0 || buf[0] < 4 || buf[0] > cap)
        return IOTP_ECHIP;
    if (c->bus.read(c->bus.ctx, c->addr, buf + 1, (size_t)buf[0] - 1) < 0)
        return IOTP_ECHIP;
    crc = iotp_atecc_crc16(buf, (size_t)buf[0] - 2);
    if (buf[buf[0] - 2] != (uint8_t)crc || buf[buf[0] - 1] != (uint8_t)(crc >> 8))
        return IOTP_ECHIP;
    return buf[0];
}

static int wake_once(struct iotp_atecc_i2c *c)
{
    static const uint8_t zero = 0;
    uint8_t buf[4];

    if (c->bus.wake_pulse)
        c->bus.wake_pulse(c->bus.ctx);
    else
        c->bus.write(c->bus.ctx, 0x00, &zero, 1); /* not acknowledged: that is the point */
    c->bus.delay_us(c->bus.ctx, IOTP_ATECC_WAKE_US);
    if (read_response(c, buf, sizeof(buf)) != 4)
        return IOTP_ECHIP;
    c->last_status = buf[1];
    return buf[1] == IOTP_ATECC_STATUS_AFTER_WAKE ? 0 : IOTP_ECHIP;
}

int iotp_atecc_i2c_wake(struct iotp_atecc_i2c *c)
{
    for (unsigned i = 0; i < ATTEMPTS; i++)
        if (wake_once(c) == 0)
            return 0;
    return IOTP_ECHIP;
}

static int word(struct iotp_atecc_i2c *c, uint8_t address)
{
    return c->bus.write(c->bus.ctx, c->addr, &address, 1) < 0 ? IOTP_ECHIP : 0;
}

int iotp_atecc_i2c_idle(struct iotp_atecc_i2c *c)
{
    return word(c, IOTP_ATECC_WORD_IDLE);
}

int iotp_atecc_i2c_sleep(struct iotp_atecc_i2c *c)
{
    return word(c, IOTP_ATECC_WORD_SLEEP);
}

/* One attempt: 0 with the response in resp, 1 to try again, or IOTP_ECHIP for a status the
 * chip meant. */
static int attempt(struct iotp_atecc_i2c *c, const uint8_t *packet, size_t len, uint32_t exec_us,
                   uint8_t *resp, size_t cap)
{
    int n;

    if (c->bus.write(c->bus.ctx, c->addr, packet, len) < 0)
        return 1;
    c->bus.delay_us(c->bus.ctx, exec_us);
    n = read_response(c, resp, cap);
    if (n < 0)
        return 1;
    if (n == 4) {
        c->last_status = resp[1];
        if (resp[1] == IOTP_ATECC_STATUS_CRC_ERROR || resp[1] == IOTP_ATECC_STATUS_WATCHDOG ||
            resp[1] == IOTP_ATECC_STATUS_AFTER_WAKE)
            return 1; /* garbled on the way, or the chip dozed off: send again */
        return resp[1] == IOTP_ATECC_STATUS_OK ? 0 : IOTP_ECHIP;
    }
    c->last_status = IOTP_ATECC_STATUS_OK;
    return 0;
}

int iotp_atecc_i2c_command(struct iotp_atecc_i2c *c, uint8_t opcode, uint8_t param1,
                           uint16_t param2, const uint8_t *data, size_t len, uint32_t exec_us,
                           uint8_t *out, size_t out_cap, size_t *out_len)
{
    uint8_t packet[1 + 7 + MAX_PACKET_DATA], resp[3 + 64];
    size_t count = 7 + len;
    uint16_t crc;
    int r = 1;

    if (len > MAX_PACKET_DATA || (len && !data) || out_cap > sizeof(resp) - 3)
        return IOTP_EINVAL;
    packet[0] = IOTP_ATECC_WORD_COMMAND;
    packet[1] = (uint8_t)count;
    packet[2] = opcode;
    packet[3] = param1;
    packet[4] = (uint8_t)param2;
    packet[5] = (uint8_t)(param2 >> 8);
    if (len)
        memcpy(packet + 6, data, len);
    crc = iotp_atecc_crc16(packet + 1, count - 2);
    packet[6 + len] = (uint8_t)crc;
    packet[7 + len] = (uint8_t)(crc >> 8);
    for (unsigned i = 0; i < ATTEMPTS && r == 1; i++) {
        if (i > 0 && iotp_atecc_i2c_wake(c) < 0)
            break;
        r = attempt(c, packet, 1 + count, exec_us, resp, 3 + out_cap);
    }
    if (r == 0) {
        *out_len = (size_t)resp[0] - 3;
        memcpy(out, resp + 1, *out_len);
    }
    iotp_wipe(packet, sizeof(packet)); /* a challenge or nonce is no secret, but a key might be */
    return r == 0 ? 0 : IOTP_ECHIP;
}

int iotp_atecc_i2c_nonce(struct iotp_atecc_i2c *c, const uint8_t value[32])
{
    uint8_t out[1];
    size_t n = 0;

    if (iotp_atecc_i2c_wake(c) < 0)
        return IOTP_ECHIP;
    return iotp_atecc_i2c_command(c, IOTP_ATECC_OPCODE_NONCE, IOTP_ATECC_NONCE_PASSTHROUGH, 0,
                                  value, 32, IOTP_ATECC_EXEC_NONCE_US, out, sizeof(out), &n);
}

int iotp_atecc_i2c_mac(struct iotp_atecc_i2c *c, uint8_t mode, uint16_t key_id,
                       const uint8_t challenge[IOTP_ATECC_CHALLENGE_LEN],
                       uint8_t response[IOTP_ATECC_RESPONSE_LEN])
{
    size_t n = 0;
    int r;

    if (iotp_atecc_i2c_wake(c) < 0)
        return IOTP_ECHIP;
    r = iotp_atecc_i2c_command(c, IOTP_ATECC_OPCODE_MAC, mode, key_id, challenge, CHALLENGE_LEN,
                               IOTP_ATECC_EXEC_MAC_US, response, IOTP_ATECC_RESPONSE_LEN, &n);
    if (r == 0 && n != IOTP_ATECC_RESPONSE_LEN)
        r = IOTP_ECHIP;
    iotp_atecc_i2c_idle(c); /* idle rather than sleep: quicker to wake, TempKey kept */
    return r;
}

static int chip_mac(void *ctx, uint8_t mode, uint16_t key_id,
                    const uint8_t challenge[IOTP_ATECC_CHALLENGE_LEN],
                    uint8_t response[IOTP_ATECC_RESPONSE_LEN])
{
    return iotp_atecc_i2c_mac(ctx, mode, key_id, challenge, response);
}

void iotp_atecc_i2c_chip(struct iotp_atecc_i2c *c, uint16_t key_id, struct iotp_atecc_chip *chip)
{
    chip->ctx = c;
    chip->key_id = key_id;
    chip->mac = chip_mac;
}
