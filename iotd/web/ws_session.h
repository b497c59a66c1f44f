/*
 * ws_session.h - what turns an upgraded /ws connection into a user session: the codec of its
 * WebSocket conn type (net/conn.h), which translates messages with ws_frames and asks the
 * token table for WELCOME's ticket, and the hand-over to the session layer (web_deps's
 * ws_session), after which iotd/web no longer owns the connection.
 */
#ifndef IOTD_WEB_WS_SESSION_H
#define IOTD_WEB_WS_SESSION_H

#include "net/conn.h"
#include "web/web_tokens.h"

#include <stddef.h>

/* The codec every /ws connection of a web module uses (max_unit: the frame limit). */
void ws_session_codec(struct conn_ws_codec *codec, size_t max_frame);
/* Per-connection state of the codec, freed by the codec's release. NULL without memory. */
void *ws_session_state_new(web_tokens_t *tokens);
/* Free a state that no connection took (NULL is fine). */
void ws_session_state_free(void *state);

#endif
