/*
 * query.h - what a client (a browser's console, an app) asks beyond send and subscribe: paged
 * lists (QUERY what=devices|catalogue|history|alarms|commands, answered by ROW frames then OK
 * rows=N [next=cursor]) and acknowledging an alarm (a client's ACK alarm=<id>). See
 * iot-protocol(7), QUERIES.
 *
 * Sessions hand both frames here through their query hooks (session_deps.query), on the
 * session's io thread. The request is checked there against the table of what= (query_parse);
 * devices and catalogue are answered at once from the registry snapshot and presence; history,
 * alarms and commands run as one bounded statement on the db pool, and the ACK as one job
 * there too; their completions come back to the main loop, which hands the encoded page to the
 * session (sessions_send_frames) and, for an ACK, publishes the acknowledgement to the alarm
 * subscribers (hub_publish). Nothing here blocks an io thread or the main loop.
 *
 * Who sees what is the subscription's rule: a user sees its own tenant only; an admin every
 * device of it; others a device when the access map grants them some message type on it
 * (registry_device_visible), and events and alarms only those the map would let them send to
 * that device (registry_access_allows_read). A device the user may not see is answered like
 * one that does not exist: ERROR code=denied.
 */
#ifndef IOTD_QUERY_H
#define IOTD_QUERY_H

#include "db/db.h"
#include "hub/hub.h"
#include "loop/inbox.h"
#include "registry/registry.h"
#include "relay/presence.h"
#include "session/session.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QUERY_LIMIT_DEFAULT 100
#define QUERY_LIMIT_MAX     500
/* A page ends early once its frames pass this many bytes (next= then continues it): a page is
 * one write to the session, and stays well inside its output bound. */
#define QUERY_PAGE_BYTES (256 * 1024)
/* history: the default window, when since= is not given: the last hour. */
#define QUERY_HISTORY_DEFAULT_MS (3600 * 1000)
/* alarms: rows a page reads past those the user may not read before it ends with next=. */
#define QUERY_SCAN_MAX 2000

enum query_what { QUERY_DEVICES, QUERY_CATALOGUE, QUERY_HISTORY, QUERY_ALARMS, QUERY_COMMANDS };

/* A QUERY as checked by query_parse. Empty strings: not given. */
struct query_request {
    enum query_what what;
    char device[65], group[65], type[65], event[65], match[65];
    char state[16];             /* alarms: open (default) | raised | acknowledged | cleared | all */
    int online;                 /* devices: -1 any, 0 offline, 1 online */
    int64_t since_ms, until_ms; /* history: [since, until); 0 = not given */
    unsigned limit;             /* 1..QUERY_LIMIT_MAX */
    /* after=, decoded (query_cursor_parse): where the page starts */
    bool has_cursor;
    char cursor_text[80];  /* devices: the last id; catalogue: "<0|1>.<name>" */
    int64_t cursor_num[3]; /* history: at, id; alarms: open, raised_at, id; commands: at,
                              block, seq */
};

/* Check a QUERY frame's arguments (all key=value; what= first or anywhere) against the table
 * of what=: an unknown what=, an unknown key for it, an empty or malformed value, a bad cursor
 * all give IOT_EINVAL with a sentence in why (the client gets code=bad_args). */
int query_parse(const struct iotp_frame *f, struct query_request *r, char *why, size_t whylen);

/* Cursors: the text a page's next= gives and after= brings back, per what=. Parse: IOT_EINVAL
 * for text that is not one of what's cursors. Format: into out (at least 96 bytes). */
int query_cursor_parse(enum query_what what, const char *text, struct query_request *r);
void query_cursor_format(enum query_what what, const char *text, const int64_t num[3], char *out,
                         size_t outlen);

/* The name of what ("devices"...). */
const char *query_what_name(enum query_what what);

typedef struct query_service query_t;

struct query_deps {
    registry_t *registry;
    presence_t *presence;
    db_pool_t *db;  /* history, alarms, commands and ACK run here; NULL: answered internal */
    inbox_t *inbox; /* the main loop's: db completions come back here */
    hub_t *hub;     /* acknowledgements are published through it */
};

int query_start(query_t **out, const struct query_deps *deps);
/* The hooks sessions call (session_deps.query). */
struct session_query_hooks query_session_hooks(query_t *q);
/* Main loop: the sessions answers go to (NULL while stopping: completions are dropped). */
void query_set_sessions(query_t *q, sessions_t *sessions);
/* After the db pool has stopped (its completions hold the service). */
void query_free(query_t *q);

#endif
