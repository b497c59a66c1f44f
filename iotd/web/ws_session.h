/*
 * ws_session.h - what turns an upgraded /ws connection into a user session: the codec of its
 * WebSocket conn type (net/conn.h), which translates messages with ws_frames and asks the
 * token table for WELCOME's ticket, and the hand-over to the session layer (web_deps's
 * ws_session), after which iotd/web no longer owns the connection.
 *
 * The codec's state of each connection stays on its io thread's list until the connection is
 * released, with the token family it logged in with (web_tokens.h), so that a logout can end
 * the WebSockets of its token: BYE reason=logout, then the close.
 */
#ifndef IOTD_WEB_WS_SESSION_H
#define IOTD_WEB_WS_SESSION_H

#include "net/conn.h"
#include "web/web_tokens.h"

#include <stddef.h>
#include <stdint.h>

struct ws_session_state;
/* The /ws connections of one io thread (used on that thread only). */
struct ws_session_list {
    struct ws_session_state *head;
};

/* The codec every /ws connection of a web module uses (max_unit: the frame limit). */
void ws_session_codec(struct conn_ws_codec *codec, size_t max_frame);
/* Per-connection state of the codec for c, on list, logged in by a token of family (0: none
 * yet; WELCOME's ticket starts one). Freed by the codec's release. NULL without memory. */
void *ws_session_state_new(web_tokens_t *tokens, struct ws_session_list *list, conn_t *c,
                           uint64_t family);
/* Free a state that no connection took (NULL is fine). */
void ws_session_state_free(void *state);
/* End every connection on list of family (not 0): BYE reason=<reason> (a literal), then
 * closed. How many. */
size_t ws_session_end_family(struct ws_session_list *list, uint64_t family, const char *reason);

#endif
