/*
 * hub.h - where durable events go: ACKs back to their devices, alarm rules, subscribers, and
 * the leases that start and stop periodic events.
 *
 * The hub lives on the main loop. The event store hands it every batch once durable
 * (hub_durable, the store's completion); sessions reach it through their event hooks (a
 * device's event for storage, presence, a user's SUBSCRIBE/UNSUBSCRIBE/LEASE), which push to
 * the main loop's inbox; the control server subscribes its watch streams directly.
 *
 * An item on a stream is a struct event: the device's event itself, or an alarm transition
 * made into one (kind alarm, name = the alarm, fields state= severity= source= event= value=
 * msg= by=). Fan-out shares the one item among all subscribers (a reference each); subscribers
 * on io threads get one inbox message per thread per item.
 *
 * Who sees what: an operator's stream (the control socket) sees its tenant, or every tenant;
 * a user sees only events of its tenant that the access map lets it send to that device (the
 * event's name as the message type): read access is the same map as write access.
 *
 * Leases: an event type whose catalogue entry names start and stop commands is started on a
 * device when its first holder asks, and stopped when the last holder releases it, goes away,
 * or lets its lease expire. iotd sends the commands itself (sender "iotd", operator rights).
 */
#ifndef IOTD_HUB_H
#define IOTD_HUB_H

#include "db/db.h"
#include "events/event.h"
#include "loop/inbox.h"
#include "registry/registry.h"
#include "relay/audit.h"
#include "relay/relay.h"
#include "relay/presence.h"
#include "session/session.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

typedef struct hub hub_t;
struct event_store;
struct alarm_writer;

/* What the hub asks of the session layer: ACKs, deliveries and answers to user sessions, and
 * relaying the start and stop commands of leases to devices. Function pointers, so that a test
 * of the hub can stand in for sessions and the relay (tests/unit/hub); iotd/core/daemon.c
 * fills them with sessions_ack, sessions_deliver, sessions_reply and sessions_relay, whose
 * contracts they keep (session/session.h). Called only while hub_deps.sessions is set, which
 * they get as their first argument. */
struct hub_sessions_port {
    void (*ack)(sessions_t *s, struct event *const *events, size_t n);
    int (*deliver)(sessions_t *s, unsigned io, struct event *item,
                   const struct session_target *targets, size_t n);
    void (*reply)(sessions_t *s, unsigned io, uint32_t slot, uint64_t serial, uint32_t id,
                  const char *code, const char *key, const char *value);
    enum relay_outcome (*relay)(sessions_t *s, int current, struct relay_request *req);
};

struct hub_deps {
    uv_loop_t *loop; /* the main loop */
    inbox_t *inbox;  /* its inbox: the session hooks push here */
    registry_t *registry;
    presence_t *presence;
    sessions_t *sessions;          /* may be set after hub_start (sessions need the hooks first) */
    struct hub_sessions_port port; /* how the hub reaches sessions (and the relay) */
    struct event_store *store;
    db_pool_t *db;                     /* alarm rules are loaded through it; NULL: no alarms */
    struct alarm_writer *alarm_writer; /* stores alarm transitions; may be NULL */
    relay_audit_t *audit;              /* the lease commands iotd sends are audited; may be NULL */
};

struct hub_options {
    uint32_t lease_max_s; /* longest lease a client may ask for (default 3600) */
};

/* What a subscriber wants. Empty strings mean "any". */
enum hub_alarms { HUB_EVENTS_ONLY, HUB_EVENTS_AND_ALARMS, HUB_ALARMS_ONLY };
struct hub_filter {
    char tenant[65];     /* "" = every tenant (operators only) */
    char principal[129]; /* user@tenant held to its access map; "" = operator */
    char device[65], group[65], type[65];
    char event[65]; /* events of this name; alarms whose rule watches it */
    enum hub_alarms alarms;
    bool presence; /* also devices' online/offline changes (PRESENCE items) */
};

/* A subscriber on the main loop (control streams): called once per matching item. The item is
 * valid during the call; take a reference to keep it. */
typedef void (*hub_sink_fn)(void *arg, struct event *item);

int hub_start(hub_t **out, const struct hub_deps *deps, const struct hub_options *opts);
/* The store and the sessions are created after the hub (they take its callbacks). */
void hub_set_store(hub_t *hub, struct event_store *store);
void hub_set_sessions(hub_t *hub, sessions_t *sessions);
/* The hooks sessions call (session_deps.events). */
struct session_event_hooks hub_session_hooks(hub_t *hub);
/* The store's completion (event_store_done_fn): arg is the hub. */
void hub_durable(struct event *const *events, size_t n, void *arg);

/* Subscribe a main-loop sink; *id identifies it for hub_unsubscribe. */
int hub_subscribe(hub_t *hub, const struct hub_filter *f, hub_sink_fn sink, void *arg,
                  uint64_t *id);
void hub_unsubscribe(hub_t *hub, uint64_t id);

/* Hold (or renew) the lease of an event on a device for ttl_ms; holder is any id unique to the
 * holder (hub_holder_id). IOT_ENOTFOUND (no such device or event), IOT_EINVAL (the event has
 * no start/stop commands) with a sentence in err. */
int hub_lease(hub_t *hub, uint64_t holder, const char *tenant, const char *device,
              const char *event, uint32_t ttl_ms, char *err, size_t errlen);
/* Release every lease of holder. */
void hub_release(hub_t *hub, uint64_t holder);
/* End every lease on device, for all its holders, without a stop command: the device was
 * removed, disabled or given a new key and its session has ended. A holder that asks again
 * starts a new lease (sent when the device is back). */
void hub_release_device(hub_t *hub, const char *device);
uint64_t hub_holder_id(hub_t *hub);
/* Release holder's lease of event on device only (the holders of another node). */
void hub_release_one(hub_t *hub, uint64_t holder, const char *device, const char *event);

/* Leases in a cluster (iotd-cluster(7)): the node a device is online on counts its holders,
 * those of every node, and sends its start and stop commands. A lease held here on a device
 * online on another node is held there in this node's name, renewed every
 * HUB_LEASE_RENEW_MS; the other nodes' holds come back through hub_lease with
 * hub_node_holder(node) as the holder, and hub_release_one or hub_release. */
#define HUB_LEASE_RENEW_MS 2000
struct hub_cluster_port {
    void *arg;
    /* Ask node (presence's id) to hold (or renew), or to release, this node's lease of event on
     * device. Main loop. */
    void (*lease)(void *arg, uint16_t node, const char *tenant, const char *device,
                  const char *event, bool hold);
};
/* Set by the cluster when it starts; NULL (or never set): a single node, leases counted here. */
void hub_set_cluster(hub_t *hub, const struct hub_cluster_port *port);
/* The holder id of another node's leases: both top bits set, which session serials and
 * hub_holder_id never have (an operator's holder hash has them once in 2^62 draws). */
uint64_t hub_node_holder(uint16_t node);

/* Publish an alarm transition made elsewhere (an operator's ack): fields as for alarm items. */
void hub_publish(hub_t *hub, struct event *item);

/* The event a rule watches ("" if the rule is unknown): for alarm items made elsewhere. */
const char *hub_alarm_rule_event(const hub_t *hub, uint64_t rule_id);

/* Reload alarm rules from the database after a change (asynchronous). */
void hub_alarm_rules_changed(hub_t *hub);

/* The recent items (events and alarm changes) after *seq, oldest first, for monitors such as
 * iottop; *seq is advanced. Main loop. */
void hub_recent(hub_t *hub, uint64_t *seq, void (*fn)(void *arg, const struct event *item),
                void *arg);

struct hub_stats {
    uint64_t events, alarms, duplicates; /* items through hub_durable / transitions */
    uint64_t delivered; /* items handed to main-loop subscribers (control streams) */
    uint64_t dropped;   /* items that could not reach an io thread (its inbox refused) */
    size_t subscribers, leases, leases_started;
};
void hub_stats(const hub_t *hub, struct hub_stats *out);

/* Drop every subscriber and lease (without sending stops: the daemon is going away); later
 * completions of the store are ignored. */
void hub_stop(hub_t *hub);
/* Free, once the main loop has run its last callbacks (after the store and the db pool). */
void hub_free(hub_t *hub);

#endif
