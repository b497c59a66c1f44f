/*
 * ws_peek.h - the first message of a WebSocket, read from raw wire bytes without taking them.
 *
 * A browser that opens /ws without a session cookie says who it is in its first message
 * (LOGIN); iotd reads that message before the WebSocket is set up, to know which io thread
 * the session belongs on (ws_place.c), and leaves the bytes for the WebSocket layer, which
 * reads them again where the session ends up. Pure: no I/O, no state.
 */
#ifndef IOTD_WEB_WS_PEEK_H
#define IOTD_WEB_WS_PEEK_H

#include <stddef.h>
#include <stdint.h>

/* Not a whole message yet: more bytes may make it one. */
#define WS_PEEK_MORE 0
/* Not a message placement can read: a control frame first, a fragment, a frame from the
 * client that is not masked (RFC 6455 5.1), reserved bits, or longer than cap. */
#define WS_PEEK_NO (-1)

/* The payload of the first frame of wire[0, len), unmasked into out[0, cap), when it is one
 * whole text message (FIN set, opcode 1): its length (> 0), or WS_PEEK_MORE, or WS_PEEK_NO.
 * An empty text message is WS_PEEK_NO too (it says nothing). */
int ws_peek_text(const uint8_t *wire, size_t len, char *out, size_t cap);

#endif
