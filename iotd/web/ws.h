/*
 * ws.h - a WebSocket on an upgraded HTTP connection: RFC 6455 framing by libwslay over the
 * conn interface (what the connection reads goes in, frames go out through conn_write).
 *
 * This first step frames only: wslay answers pings, refuses unmasked client frames (close
 * 1002), closes messages over WS_MAX_MESSAGE with 1009, reassembles fragments and completes
 * the closing handshake. Every text or binary message is answered with one JSON error object
 * saying that the browser protocol (iot-protocol(7)'s frames as JSON, with login) is not
 * served yet; the session behind it comes in the next step.
 */
#ifndef IOTD_WEB_WS_H
#define IOTD_WEB_WS_H

#include "net/conn.h"

#include <stddef.h>
#include <stdint.h>

#define WS_MAX_MESSAGE (64 * 1024)

typedef struct ws ws_t;

/* Frame c from now on (its 101 answer is already written). IOT_ENOMEM. */
int ws_start(ws_t **out, conn_t *c);
/* Bytes read from the connection. Closes the connection itself on a protocol error, when
 * its output bound is reached, or once the closing handshake is done. */
void ws_feed(ws_t *ws, const uint8_t *data, size_t len);
/* On the connection's close. NULL is fine. */
void ws_free(ws_t *ws);

#endif
