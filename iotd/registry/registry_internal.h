/*
 * registry_internal.h - the data model inside a registry snapshot and the builder that makes
 * one, shared by the registry's own files (load, query, access) and its unit tests. Nothing
 * outside iotd/registry and tests/unit/registry should include it.
 *
 * Building: snapshot_builder_new(), then snapshot_add_* with the rows as the database holds
 * them (numeric ids, references by id), in any order, then snapshot_finish(), which sorts,
 * resolves every reference to a pointer, counts, and builds the lookup indexes. After finish
 * the snapshot is immutable and carries one reference owned by the caller. The same path
 * serves registry_load (rows from MariaDB) and the tests (rows written by hand), so the tests
 * exercise exactly the structures the daemon uses.
 *
 * Deriving: a snapshot is a core (everything but devices) and a device set (devset.h), each
 * shared with the snapshots that did not change it. snapshot_derive and snapshot_builder_on
 * (below) make the next snapshot from the current one for a change to devices and for a
 * change to anything else; registry_refresh (load.c) chooses and reads the rows.
 */
#ifndef IOTD_REGISTRY_INTERNAL_H
#define IOTD_REGISTRY_INTERNAL_H

#include "registry.h"
#include "argspec.h"
#include "devset.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REG_SEALED_LEN 60 /* secretbox nonce 12 + secret 32 + tag 16 */
#define REG_SECRET_LEN 32
#define REG_SERIAL_LEN 9

enum reg_direction { REG_DIR_COMMAND, REG_DIR_EVENT };
enum reg_auth { REG_AUTH_HMAC, REG_AUTH_ATECC508A };
enum reg_role { REG_ROLE_ADMIN, REG_ROLE_OPERATOR, REG_ROLE_VIEWER };
enum reg_group_kind { REG_GROUP_DEVICE, REG_GROUP_USER };
enum reg_subject_kind { REG_SUBJECT_USER, REG_SUBJECT_DEVICE, REG_SUBJECT_GROUP };
/* In order of specificity: access evaluation tries the kinds in this order. */
enum reg_target_kind { REG_TARGET_DEVICE, REG_TARGET_GROUP, REG_TARGET_TYPE, REG_TARGET_ANY };

/* Names of the enum values as the schema and the control protocol spell them; parse returns
 * -1 for an unknown word. */
const char *reg_direction_name(enum reg_direction d);
const char *reg_auth_name(enum reg_auth a);
const char *reg_role_name(enum reg_role r);
const char *reg_group_kind_name(enum reg_group_kind k);
const char *reg_subject_kind_name(enum reg_subject_kind k);
const char *reg_target_kind_name(enum reg_target_kind k);
int reg_direction_parse(const char *s);
int reg_auth_parse(const char *s);
int reg_role_parse(const char *s);
int reg_group_kind_parse(const char *s);
int reg_subject_kind_parse(const char *s);
int reg_target_kind_parse(const char *s);

struct reg_tenant {
    uint32_t id;
    const char *name;
    const char *display_name; /* may be NULL */
    int64_t created;          /* seconds since the epoch */
    /* counts, filled by snapshot_finish (devices: snapshot_tenant_devices) */
    uint32_t ntypes, nusers, ngroups, nrules;
};

struct reg_message;

struct reg_type {
    uint32_t id;
    uint32_t tenant_id;
    const char *name;
    const char *description;
    int64_t created;
    const struct reg_tenant *tenant;
    const struct reg_message *messages; /* the catalogue, sorted by name */
    uint32_t nmessages;                 /* devices of the type: snapshot_type_devices */
};

struct reg_message {
    uint32_t id;
    uint32_t type_id;
    const char *name;
    enum reg_direction direction;
    const char *args;    /* canonical argspec text, "" for none */
    struct argspec spec; /* the same, parsed once here so the relay never parses per message */
    uint32_t timeout_ms;
    const char *description;
    const char *start_message; /* events: the command that starts it on the device, or NULL */
    const char *stop_message;  /* ...and the one that stops it */
    const struct reg_type *type;
};

/* A device record: one allocation with its strings, immutable once in a snapshot and shared by
 * every snapshot that did not change it (devset.h), so it points at nothing else in a snapshot:
 * its tenant and type are found by id (snapshot_device_tenant, snapshot_device_type). */
struct reg_device {
    atomic_uint refs; /* set by reg_device_new; ignored in a row passed to the builder */
    const char *id;
    uint32_t tenant_id;
    uint32_t type_id;
    const char *display_name;
    enum reg_auth auth;
    uint8_t sealed[REG_SEALED_LEN]; /* the secret as stored: secretbox-sealed, AAD = id */
    size_t sealed_len;
    bool has_serial;
    uint8_t serial[REG_SERIAL_LEN];
    bool enabled;
    int64_t created;
    int64_t last_seen; /* 0: never; as of the snapshot's load */
    const char *last_address;
    uint64_t incarnation; /* devices.incarnation: never shared by two rows of one name */
};

struct reg_user {
    uint32_t id;
    uint32_t tenant_id;
    const char *name;
    enum reg_role role;
    const char *password_hash;
    int64_t created;
    const struct reg_tenant *tenant;
    const char *address; /* "name@tenant", made by snapshot_finish */
};

struct reg_group {
    uint32_t id;
    uint32_t tenant_id;
    const char *name;
    enum reg_group_kind kind;
    int64_t created;
    const struct reg_tenant *tenant;
    uint32_t nmembers;
};

/* One membership, resolved. Two sorted copies exist: by group (for listing a group's members)
 * and by member (for the groups of a principal). */
struct reg_membership {
    const struct reg_group *group;
    const char *device_id;       /* device groups */
    const struct reg_user *user; /* user groups */
};

struct reg_rule {
    int64_t id;
    uint32_t tenant_id;
    enum reg_subject_kind subject_kind;
    uint32_t subject_id;           /* user or group id */
    const char *subject_device_id; /* device subject */
    enum reg_target_kind target_kind;
    uint32_t target_id;           /* type or group id */
    const char *target_device_id; /* device target */
    const char *message;          /* NULL: any message type */
    int64_t created;
    const char *created_by;
    /* resolved by snapshot_finish */
    const struct reg_tenant *tenant;
    const struct reg_user *subject_user;
    const struct reg_group *subject_group;
    const struct reg_type *target_type;
    const struct reg_group *target_group;
};

struct reg_arena_chunk;

/* Everything of a snapshot but its devices: small enough to rebuild on the change of any of it
 * (tenants, types and catalogue, users, groups and memberships, rules), and shared, reference
 * counted, by consecutive snapshots that differ only in devices. References to devices
 * (memberships, rules) are by id, so a device record can change without this changing. */
struct reg_core {
    atomic_uint refs;
    struct reg_arena_chunk *arena; /* every string of the core */

    struct reg_tenant *tenants; /* sorted by id */
    size_t ntenants, cap_tenants;
    struct reg_type *types; /* sorted by id */
    size_t ntypes, cap_types;
    struct reg_message *messages; /* sorted by (type id, name) */
    size_t nmessages, cap_messages;
    struct reg_user *users; /* sorted by id */
    size_t nusers, cap_users;
    struct reg_group *groups; /* sorted by id */
    size_t ngroups, cap_groups;
    struct reg_rule *rules; /* sorted by id */
    size_t nrules, cap_rules;

    /* membership rows as added (ids), resolved into the sorted copies by finish */
    struct reg_member_row *member_rows;
    size_t nmember_rows, cap_member_rows;
    struct reg_membership *members_by_group;  /* (group tenant, group name, member) */
    struct reg_membership *members_by_member; /* (member, group name) */
    size_t nmembers;

    /* name indexes: pointers sorted by (tenant name, name) */
    const struct reg_tenant **tenant_by_name;
    const struct reg_type **type_by_name;
    const struct reg_user **user_by_name;
    const struct reg_group **group_by_name;
    /* rules in evaluation order: (tenant, target kind, target, specific message first, id) */
    const struct reg_rule **rule_by_target;
};

struct registry_snapshot {
    atomic_uint refs;
    uint64_t generation; /* set by registry_publish before the snapshot becomes visible */
    bool finished;
    struct reg_core *core;
    struct reg_devset devices;
    /* devices per tenant and per type, by index into core->tenants and core->types */
    uint32_t *tenant_devices, *type_devices;
    /* builder: records added by snapshot_add_device, put into devices by finish */
    struct reg_device **staged;
    size_t nstaged, cap_staged;
    bool has_devices; /* devices came from another snapshot (snapshot_builder_on) */
};

struct reg_member_row {
    uint32_t group_id;
    uint32_t user_id;      /* user groups */
    const char *device_id; /* device groups (copied into the arena) */
};

/* Held by admin_apply from a change's execution until its snapshot is published, so two
 * changes on different db threads can never publish their snapshots out of order. */
void registry_change_lock(registry_t *reg);
void registry_change_unlock(registry_t *reg);
/* True until the first publish (the empty snapshot of registry_new is not the database) and
 * after a refresh that failed (the published snapshot may be behind the database); the next
 * refresh then reloads everything. Every publish clears it. */
bool registry_change_stale(const registry_t *reg);
void registry_change_set_stale(registry_t *reg, bool stale);

/* What a committed change publishes (load.c), under the change lock:
 *  - REGISTRY_REFRESH_DEVICES: the devices ids (added, changed or removed), re-read by key and
 *    put into a snapshot derived from the current one: O(n) queries, O(n log N) work and
 *    O(N / DEVSET_CHUNK + n * DEVSET_CHUNK) pointers copied for N devices. A removed device
 *    that a membership or a rule named also re-reads the core.
 *  - REGISTRY_REFRESH_DEVICES_CORE: the same, then the core re-read in the same snapshot: a
 *    change that also touched what the core holds of them (an import's group memberships).
 *  - REGISTRY_REFRESH_CORE: everything but devices re-read, the devices shared.
 *  - REGISTRY_REFRESH_FULL: registry_load.
 * A refresh that fails falls back to a full reload; if that fails too, the error is returned
 * (err), nothing is published and the registry is marked stale. */
enum registry_refresh {
    REGISTRY_REFRESH_FULL,
    REGISTRY_REFRESH_CORE,
    REGISTRY_REFRESH_DEVICES,
    REGISTRY_REFRESH_DEVICES_CORE
};
int registry_refresh(registry_t *reg, MYSQL *conn, enum registry_refresh what,
                     const char *const *ids, size_t n, char *err, size_t errlen);

/* Builder. Strings are copied; NULL is kept as NULL for optional fields. */
registry_snapshot_t *snapshot_builder_new(void);
/* Copy str into the snapshot's arena (freed with the snapshot); NULL stays NULL. *ok is cleared
 * on allocation failure. */
const char *snapshot_strdup(registry_snapshot_t *s, const char *str, bool *ok);
int snapshot_add_tenant(registry_snapshot_t *s, const struct reg_tenant *row);
int snapshot_add_type(registry_snapshot_t *s, const struct reg_type *row);
int snapshot_add_message(registry_snapshot_t *s, const struct reg_message *row);
int snapshot_add_device(registry_snapshot_t *s, const struct reg_device *row);
int snapshot_add_user(registry_snapshot_t *s, const struct reg_user *row);
int snapshot_add_group(registry_snapshot_t *s, const struct reg_group *row);
int snapshot_add_member(registry_snapshot_t *s, const struct reg_member_row *row);
int snapshot_add_rule(registry_snapshot_t *s, const struct reg_rule *row);
/* Resolve and index. IOT_EINVAL with a sentence when a row names something missing or another
 * tenant's row (the schema prevents both; a hand-built snapshot might not). */
int snapshot_finish(registry_snapshot_t *s, char *err, size_t errlen);
/* snapshot_finish for a builder made by snapshot_builder_on(prev), prev still held: the
 * device counts are carried over from prev by tenant and type id. */
int snapshot_finish_on(registry_snapshot_t *s, const registry_snapshot_t *prev, char *err,
                       size_t errlen);
/* Free a snapshot whatever its reference count (builder failure paths, last release). */
void snapshot_destroy(registry_snapshot_t *s);

/* Building from another snapshot (both cost what changes, not what the registry holds):
 *  - snapshot_builder_on(prev): a builder that takes prev's devices as they are (shared) and
 *    gets every other row from snapshot_add_*; snapshot_finish resolves memberships and rules
 *    against those devices. For a change to anything but devices. snapshot_add_device is
 *    refused (IOT_EINVAL) on such a builder.
 *  - snapshot_derive(prev): prev's core (shared) and devices, changed one device at a time by
 *    snapshot_put_device / snapshot_remove_device and closed by snapshot_derive_finish. For a
 *    change to devices only; the caller rebuilds the core (snapshot_builder_on the derived
 *    snapshot) when a removed device was named by a membership or a rule
 *    (snapshot_device_referenced).
 * prev must be finished and stay referenced until the new snapshot is finished. */
registry_snapshot_t *snapshot_builder_on(const registry_snapshot_t *prev);
registry_snapshot_t *snapshot_derive(const registry_snapshot_t *prev);
/* Insert or replace the device row->id. IOT_EINVAL when its tenant or type is missing or the
 * type is another tenant's, IOT_ENOMEM. */
int snapshot_put_device(registry_snapshot_t *s, const struct reg_device *row);
/* Remove the device id; IOT_ENOTFOUND when absent. */
int snapshot_remove_device(registry_snapshot_t *s, const char *id);
int snapshot_derive_finish(registry_snapshot_t *s);
/* True if a membership or a rule of s names device id. */
bool snapshot_device_referenced(const registry_snapshot_t *s, const char *id);

/* Lookups on a finished snapshot; NULL when absent. */
const struct reg_tenant *snapshot_tenant(const registry_snapshot_t *s, const char *name);
const struct reg_type *snapshot_type(const registry_snapshot_t *s, const char *tenant,
                                     const char *name);
const struct reg_message *snapshot_message(const struct reg_type *type, const char *name);
const struct reg_device *snapshot_device(const registry_snapshot_t *s, const char *id);
/* A device's tenant and type (never NULL in a finished snapshot). */
const struct reg_tenant *snapshot_device_tenant(const registry_snapshot_t *s,
                                                const struct reg_device *d);
const struct reg_type *snapshot_device_type(const registry_snapshot_t *s,
                                            const struct reg_device *d);
/* Devices of a tenant, of a type. */
uint32_t snapshot_tenant_devices(const registry_snapshot_t *s, const struct reg_tenant *t);
uint32_t snapshot_type_devices(const registry_snapshot_t *s, const struct reg_type *t);
const struct reg_user *snapshot_user(const registry_snapshot_t *s, const char *tenant,
                                     const char *name);
const struct reg_group *snapshot_group(const registry_snapshot_t *s, const char *tenant,
                                       const char *name);
/* Memberships of a group (sorted by member name), of a device or of a user (sorted by group
 * name): *n entries starting at the returned pointer. */
const struct reg_membership *snapshot_group_members(const registry_snapshot_t *s,
                                                    const struct reg_group *g, size_t *n);
const struct reg_membership *snapshot_device_groups(const registry_snapshot_t *s,
                                                    const struct reg_device *d, size_t *n);
const struct reg_membership *snapshot_user_groups(const registry_snapshot_t *s,
                                                  const struct reg_user *u, size_t *n);
/* Rules of one target in evaluation order; for REG_TARGET_ANY pass the tenant's id as
 * target_id. */
const struct reg_rule *const *snapshot_target_rules(const registry_snapshot_t *s,
                                                    uint32_t tenant_id, enum reg_target_kind kind,
                                                    uint32_t target_id,
                                                    const char *target_device_id, size_t *n);
/* A rule's subject ("user:alice", "device:d1", "group:ops") and target ("type:thermo", "any")
 * as "access list" shows them and access reasons name them. */
void reg_rule_subject(const struct reg_rule *r, char *out, size_t outlen);
void reg_rule_target(const struct reg_rule *r, char *out, size_t outlen);

/* "name@tenant" -> name and tenant (copied into the buffers). false if malformed. */
bool reg_split_address(const char *address, char *name, size_t namelen, char *tenant,
                       size_t tenantlen);
/* Format seconds since the epoch as "2024-05-01T12:00:00Z" (UTC). */
void reg_format_time(int64_t seconds, char *out, size_t outlen);

#endif
