/*
 * iotp_types.h - the frame types of the wire protocol: one table that names each system type,
 * who may send it to whom, and in which session state.
 *
 * TYPE is upper case for the protocol's own frames (HELLO ... NOTICE) and lower case for an
 * application type from a device type's catalogue (read_temp, set_pixel). Code that acts on a
 * frame switches on its `enum iotp_type` (iotp_frame_type) or indexes a handler table with it,
 * never compares strings. Adding a system type means: an enum value here, its name and rule in
 * iotp_types.c, a handler in each table that receives it, and iot-protocol(7).
 *
 * Direction and state are what the protocol allows, so a receiver can refuse a frame that is
 * well formed but out of place (a LEASE from a device, an EVENT before WELCOME) from the table
 * instead of from code of its own.
 */
#ifndef IOTP_TYPES_H
#define IOTP_TYPES_H

#include <stddef.h>
#include <stdint.h>

/* The frame types. IOTP_TYPE_APP is any lower-case (catalogue) type; IOTP_TYPE_UNKNOWN is an
 * upper-case type this version of the protocol does not define. The values index the table in
 * iotp_types.c and handler tables sized IOTP_TYPE_COUNT. */
enum iotp_type {
    IOTP_TYPE_UNKNOWN = 0,
    IOTP_TYPE_APP,
    IOTP_TYPE_HELLO,
    IOTP_TYPE_CHALLENGE,
    IOTP_TYPE_AUTH,
    IOTP_TYPE_WELCOME,
    IOTP_TYPE_LOGIN,
    IOTP_TYPE_OK,
    IOTP_TYPE_ERROR,
    IOTP_TYPE_PING,
    IOTP_TYPE_PONG,
    IOTP_TYPE_EVENT,
    IOTP_TYPE_ALARM,
    IOTP_TYPE_ACK,
    IOTP_TYPE_BYE,
    IOTP_TYPE_SUBSCRIBE,
    IOTP_TYPE_UNSUBSCRIBE,
    IOTP_TYPE_LEASE,
    IOTP_TYPE_NOTICE,
    IOTP_TYPE_QUERY,
    IOTP_TYPE_ROW,
    IOTP_TYPE_PRESENCE,
    IOTP_TYPE_COUNT
};

/* Who sends a frame to whom: a bit per direction. A "client" is a logged-in user (LOGIN). */
#define IOTP_DIR_DEVICE_TO_SERVER 0x1u
#define IOTP_DIR_SERVER_TO_DEVICE 0x2u
#define IOTP_DIR_CLIENT_TO_SERVER 0x4u
#define IOTP_DIR_SERVER_TO_CLIENT 0x8u

/* The session states a frame is valid in: a bit per state. */
#define IOTP_STATE_HANDSHAKE 0x1u /* before WELCOME (device handshake or LOGIN) */
#define IOTP_STATE_DEVICE    0x2u /* an authenticated device */
#define IOTP_STATE_CLIENT    0x4u /* a logged-in client */

/* The type of a TYPE field of len bytes: IOTP_TYPE_APP when it starts with a lower-case
 * letter, a system type, or IOTP_TYPE_UNKNOWN. Never fails. */
enum iotp_type iotp_type_lookup(const char *name, size_t len);

/* The TYPE field of a system type ("HELLO"), or NULL for UNKNOWN, APP and out-of-range values. */
const char *iotp_type_name(enum iotp_type type);

/* Whether a frame of this type may travel in direction dir (one IOTP_DIR_* bit) while the
 * receiving session is in state (one IOTP_STATE_* bit). APP frames are requests and travel
 * between established peers in every direction; UNKNOWN is never allowed. Returns 1 or 0. */
int iotp_type_allowed(enum iotp_type type, unsigned dir, unsigned state);

#endif
