/*
 * registry.h - tenants, device types, catalogue, devices, users, groups and the access map,
 * held in memory as an immutable, reference-counted snapshot.
 *
 * A snapshot is built from MariaDB on a db thread (registry_load at start-up; after a committed
 * change, a snapshot derived from the current one with what the change touched read again,
 * see admin_apply) and published with an atomic pointer swap (registry_publish); readers on any
 * thread take a reference (registry_acquire) and never lock against writers or see a
 * half-applied change. Nothing in a snapshot is mutated after publication; consecutive
 * snapshots share what did not change.
 */
#ifndef IOTD_REGISTRY_H
#define IOTD_REGISTRY_H

#include "ctl_commands.h"

#include <cjson/cJSON.h>
#include <mysql.h>
#include <stdbool.h>
#include <stdint.h>

struct argspec;

typedef struct registry_snapshot registry_snapshot_t;
typedef struct registry registry_t;

/* The holder of the current snapshot; starts with an empty snapshot (generation 0). */
int registry_new(registry_t **out);
void registry_free(registry_t *reg);

/* Build a snapshot from the database (db thread only). */
int registry_load(MYSQL *conn, registry_snapshot_t **out, char *err, size_t errlen);
/* Make snap current (takes the caller's reference); the previous one is released. */
void registry_publish(registry_t *reg, registry_snapshot_t *snap);
/* The current snapshot with a reference the caller must release. Never NULL. */
registry_snapshot_t *registry_acquire(registry_t *reg);
void registry_release(registry_snapshot_t *snap);
/* Increases with every publish; lets a thread cache a snapshot and notice when it is stale. */
uint64_t registry_generation(const registry_t *reg);

/* Read-only control commands answered from a snapshot: tenant/type/device/user/group/access
 * list and show, message list, access check. Returns IOT_ENOTFOUND etc. with a sentence in err;
 * on success *result is a new object. */
int registry_query(const registry_snapshot_t *snap, const struct ctl_command *cmd,
                   const cJSON *args, cJSON **result, char *err, size_t errlen);
/* Whether a device is connected now: device list --online/--offline ask it, since presence
 * is not registry state (the relay's presence map knows it). */
struct registry_presence {
    bool (*online)(void *ctx, const char *device_id);
    void *ctx;
};
/* registry_query with presence known (NULL: as registry_query, which refuses --online). */
int registry_query_present(const registry_snapshot_t *snap, const struct ctl_command *cmd,
                           const cJSON *args, const struct registry_presence *presence,
                           cJSON **result, char *err, size_t errlen);
/* True if the command is answered by registry_query (no database round trip). */
bool registry_answers(const struct ctl_command *cmd);

/* Access decision for one message: which rule decided, in words, for "access check" and for
 * the relay. A principal is "name@tenant" for users or a device id. */
struct access_decision {
    bool allow;
    long long rule_id; /* deciding rule, 0 if none (default deny) or a role decided */
    char reason[200];  /* "rule 12: group:ops -> type:thermo message any" or "no rule matches" */
};
int registry_access_check(const registry_snapshot_t *snap, const char *principal,
                          const char *device_id, const char *message, struct access_decision *out);
/* The same decision, without the reason in words: the per-message check of the relay. False
 * also for an unknown principal or device. */
bool registry_access_allows(const registry_snapshot_t *snap, const char *principal,
                            const char *device_id, const char *message);
/* May principal read event (an event message type of the device's catalogue) of the device?
 * The same map decides: a rule that lets it send that name to the device lets it read it. */
bool registry_access_allows_read(const registry_snapshot_t *snap, const char *principal,
                                 const char *device_id, const char *event);

/* Counts for status and stats. */
void registry_counts(const registry_snapshot_t *snap, size_t *tenants, size_t *devices,
                     size_t *users, size_t *rules);

/* The generation a snapshot was published with (0: the initial empty one); compare with
 * registry_generation() to notice a newer snapshot without taking a reference. */
uint64_t registry_snapshot_generation(const registry_snapshot_t *snap);

/* Accessors for the session and relay code. Pointers in the *_info structs point into the
 * snapshot and stay valid while the caller holds its reference. All return IOT_ENOTFOUND for an
 * unknown name. */
#define REGISTRY_SECRET_LEN 32
#define REGISTRY_SERIAL_LEN 9

/* Open a device's sealed 32-byte secret with the server key (SECRETBOX_KEY_LEN bytes).
 * IOT_EDENIED if the sealed value does not authenticate (wrong key file, tampered row). The
 * caller should wipe out after use. */
int registry_device_secret(const registry_snapshot_t *snap, const uint8_t *key, const char *id,
                           uint8_t out[REGISTRY_SECRET_LEN]);

struct registry_device_info {
    const char *id;
    const char *tenant;
    const char *type; /* must match HELLO's type= */
    bool enabled;
    bool atecc508a;                      /* auth kind: false = hmac */
    uint8_t serial[REGISTRY_SERIAL_LEN]; /* ATECC508A serial, zeros for hmac devices */
    /* Which row of this id: a device removed and added again has a new one (sql/011), so that
     * events of the old one never count as the new one's. */
    uint64_t incarnation;
};
int registry_device_lookup(const registry_snapshot_t *snap, const char *id,
                           struct registry_device_info *out);

struct registry_user_info {
    const char *address; /* "name@tenant" */
    const char *tenant;
    const char *role;          /* "admin", "operator" or "viewer" */
    const char *password_hash; /* Argon2id encoded: for password_verify, never for output */
    /* What the role allows (iotctl(8), ROLES): false for a viewer, which may read and watch
     * what its access map lets it see, but never send a command, take a lease or acknowledge
     * an alarm. Every path that acts for a user checks it, naming the role when it refuses. */
    bool may_act;
};
int registry_user_lookup(const registry_snapshot_t *snap, const char *address,
                         struct registry_user_info *out);

/* A message type of a device's catalogue: the relay checks args (argspec.h) and the timeout. */
struct registry_message_info {
    const char *name;
    bool event;                 /* direction event (pushed by the device), else command */
    const char *args;           /* argument spec, "" for none */
    const struct argspec *spec; /* the same, parsed (registry/argspec.h) */
    unsigned timeout_ms;
    const char *start; /* events with a lease: the commands that start and stop them, or NULL */
    const char *stop;
};
int registry_message_lookup(const registry_snapshot_t *snap, const char *device_id,
                            const char *message, struct registry_message_info *out);

/* True if name is an event of the catalogue of device type `type` of tenant (of any of its
 * types when type is NULL or ""). For a subscription's event= without a device. */
bool registry_event_defined(const registry_snapshot_t *snap, const char *tenant, const char *type,
                            const char *name);

/* True if the device is a member of the (device) group of its tenant. */
bool registry_device_in_group(const registry_snapshot_t *snap, const char *device_id,
                              const char *group);

/* Call fn for every registered device: id, tenant and type name (valid while snap is held). */
void registry_devices_foreach(const registry_snapshot_t *snap,
                              void (*fn)(const char *id, const char *tenant, const char *type,
                                         void *arg),
                              void *arg);

/* Call fn for every device that differs between two snapshots of one registry, older first:
 * added or changed (removed false: id, tenant and type of newer) or removed (removed true: of
 * older). Costs what changed between them, not what they hold (they share the rest). Returns
 * false, without calling fn, when anything but devices changed too (tenants, types, groups,
 * rules: any device may be affected; the caller then looks at them all). */
bool registry_devices_diff(const registry_snapshot_t *older, const registry_snapshot_t *newer,
                           void (*fn)(const char *id, const char *tenant, const char *type,
                                      bool removed, void *arg),
                           void *arg);

/* Call fn for every registered device that has authenticated before (even before a restart):
 * its id and the address it last connected from (devices.last_address, "host:port"). */
void registry_devices_last_address(const registry_snapshot_t *snap,
                                   void (*fn)(const char *id, const char *address, void *arg),
                                   void *arg);

/* ---- listings for clients (QUERY, iot-protocol(7)); listing.c ---- */

/* May principal (user@tenant) see device_id at all? An admin sees every device of its tenant;
 * other roles see a device when one access rule grants them some message type of its
 * catalogue (a command or an event; a viewer's command rules count too: they let it see the
 * device, not command it). False for another tenant's device or an unknown one. */
bool registry_device_visible(const registry_snapshot_t *snap, const char *principal,
                             const char *device_id);

/* A device as a device list shows it (pointers into the snapshot). */
struct registry_device_entry {
    const char *id, *type, *display_name; /* display_name "" when none */
    const char *groups[16];               /* its first groups, by name */
    size_t ngroups;
};
/* Call fn for the devices of tenant whose id sorts after `after` ("" or NULL: from the
 * first), in id order, until fn returns false. */
void registry_devices_after(const registry_snapshot_t *snap, const char *tenant, const char *after,
                            bool (*fn)(const struct registry_device_entry *d, void *arg),
                            void *arg);

/* Call fn for every message of the catalogue of type_name of tenant, by name (a type
 * cannot hold two of a name). IOT_ENOTFOUND when there is no such type. */
int registry_catalogue_foreach(const registry_snapshot_t *snap, const char *tenant,
                               const char *type_name,
                               void (*fn)(const struct registry_message_info *m, void *arg),
                               void *arg);

/* True if name is a (device) group of tenant. */
bool registry_group_exists(const registry_snapshot_t *snap, const char *tenant, const char *name);
/* True if name is a device type of tenant. */
bool registry_type_exists(const registry_snapshot_t *snap, const char *tenant, const char *name);

#endif
