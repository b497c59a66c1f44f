/* iotp_hex.c - hex encoding and decoding of nonces and MACs (see iotp_hex.h). */
#include <limits.h>

#include "iotp/iotp_error.h"
#include "iotp/iotp_hex.h"

void iotp_hex_encode(const uint8_t *bytes, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < len; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 0x0F];
    }
    out[2 * len] = '\0';
}

static int nibble(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int iotp_hex_decode(const char *hex, size_t hex_len, uint8_t *out, size_t out_cap)
{
    size_t i;

    if (hex_len % 2 || hex_len / 2 > out_cap || hex_len / 2 > (size_t)INT_MAX)
        return IOTP_EINVAL;
    for (i = 0; i < hex_len / 2; i++) {
        int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return IOTP_EINVAL;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return (int)(hex_len / 2);
}
