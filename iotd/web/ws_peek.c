/*
 * ws_peek.c - the first text message of a WebSocket from its wire bytes (see ws_peek.h). The
 * frame layout is RFC 6455 5.2: two bytes (FIN, RSV1-3, opcode; MASK, 7-bit length), then a
 * 16- or 64-bit length when the 7 bits say 126 or 127, the 4-byte masking key, the payload.
 */
#include "web/ws_peek.h"

#define WS_FIN       0x80
#define WS_RSV       0x70
#define WS_OPCODE    0x0f
#define WS_MASKED    0x80
#define WS_LEN7      0x7f
#define WS_OP_TEXT   0x1
#define WS_MASK_SIZE 4

int ws_peek_text(const uint8_t *wire, size_t len, char *out, size_t cap)
{
    if (len < 2)
        return WS_PEEK_MORE;
    if ((wire[0] & (WS_FIN | WS_RSV | WS_OPCODE)) != (WS_FIN | WS_OP_TEXT) ||
        !(wire[1] & WS_MASKED))
        return WS_PEEK_NO;
    uint64_t plen = wire[1] & WS_LEN7;
    size_t at = 2;
    size_t ext = plen == 126 ? 2 : plen == 127 ? 8 : 0;
    if (len < at + ext)
        return WS_PEEK_MORE;
    if (ext) {
        plen = 0;
        for (size_t i = 0; i < ext; i++)
            plen = plen << 8 | wire[at + i];
        at += ext;
    }
    if (plen == 0 || plen > cap || plen > (uint64_t)INT32_MAX)
        return WS_PEEK_NO;
    if (len < at + WS_MASK_SIZE + plen)
        return WS_PEEK_MORE;
    const uint8_t *key = wire + at;
    const uint8_t *payload = key + WS_MASK_SIZE;
    for (size_t i = 0; i < plen; i++)
        out[i] = (char)(payload[i] ^ key[i % WS_MASK_SIZE]);
    return (int)plen;
}
