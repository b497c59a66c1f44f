/*
 * registry.h - tenants, device types, catalogue, devices, users, groups and the access map,
 * held in memory as an immutable, reference-counted snapshot.
 *
 * A snapshot is built from MariaDB on a db thread (registry_load) and published with an atomic
 * pointer swap (registry_publish) after every committed change; readers on any thread take a
 * reference (registry_acquire) and never lock against writers or see a half-applied change.
 * Nothing in a snapshot is mutated after publication.
 */
#ifndef IOTD_REGISTRY_H
#define IOTD_REGISTRY_H

#include "ctl_commands.h"

#include <cjson/cJSON.h>
#include <mysql.h>
#include <stdbool.h>
#include <stdint.h>

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
                          const char *device_id, const char *message,
                          struct access_decision *out);

/* Counts for status and stats. */
void registry_counts(const registry_snapshot_t *snap, size_t *tenants, size_t *devices,
                     size_t *users, size_t *rules);

#endif
