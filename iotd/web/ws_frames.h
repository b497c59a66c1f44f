/*
 * ws_frames.h - a browser's JSON messages onto iot-protocol(7) frames and back, one to one
 * (the mapping is iot-websocket(7)). Pure: no I/O and no state but the caller's small
 * per-connection struct, so the unit tests and the fuzzer run it alone; the WebSocket conn
 * type (net/conn.h) calls it through its codec (ws_session.h).
 *
 * Towards the server a message becomes the bytes of one frame, from the logged-in user (the
 * browser never says who it is: LOGIN says it once); a message that cannot be one is answered
 * here with an ERROR object and goes no further. Towards the browser a frame becomes one
 * object: system arguments key=value as members, positional ones in "args".
 */
#ifndef IOTD_WEB_WS_FRAMES_H
#define IOTD_WEB_WS_FRAMES_H

#include "iotp/iotp.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest reply ws_frames_decode writes (an ERROR object with a short msg), NUL included. */
#define WS_FRAMES_REPLY_MAX 192
/* A WELCOME's ticket, as text, NUL included (see ws_frames.on_welcome). */
#define WS_FRAMES_TICKET_MAX 65

struct ws_frames {
    /* FROM of the browser's frames: LOGIN's user, then WELCOME's TO. "" before LOGIN. */
    char user[IOTP_MAX_ADDRESS_LEN + 1];
    bool welcomed; /* a WELCOME went to the browser: messages other than LOGIN pass */
    /* Called when a WELCOME with a non-zero id (a password LOGIN) is encoded: write a ticket
     * (text) into ticket to add to it as "ticket", or return false to add none. May be NULL. */
    bool (*on_welcome)(void *arg, const char *user, char ticket[WS_FRAMES_TICKET_MAX]);
    void *arg;
};

/* One text message msg[0, len) from the browser: the frame it stands for written into
 * out[0, cap) (cap is the frame limit), returning its length (> 0). Or 0: the message goes no
 * further, and reply (NUL-terminated, at most WS_FRAMES_REPLY_MAX bytes) is the ERROR object
 * to send back: bad_frame (not a JSON object with a string "type", a malformed id, a member
 * that has no place in a frame), bad_args (an argument that is not text or a number, or holds
 * a control byte), too_large (the frame would be over cap), auth (before WELCOME, anything but
 * LOGIN). A LOGIN notes its user in fx. */
int ws_frames_decode(struct ws_frames *fx, const char *msg, size_t len, uint8_t *out, size_t cap,
                     char *reply);

/* One frame frame[0, len) (EOT included) going to the browser: its JSON object written into
 * out[0, cap), NUL-terminated, returning its length (> 0); text that is not valid UTF-8 is
 * repaired (U+FFFD). A WELCOME notes the session's user and that it is welcomed, and asks
 * on_welcome for a ticket. IOT_EINVAL when frame is not one frame, IOT_EBUSY when out is too
 * small (a bound reached), IOT_ENOMEM. */
int ws_frames_encode(struct ws_frames *fx, const uint8_t *frame, size_t len, char *out, size_t cap);

#endif
