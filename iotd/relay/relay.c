/*
 * relay.c - the relay's checks, its cache of them, and its two messages (see relay.h).
 */
#include "relay/relay.h"

#include "iot_error.h"
#include "iot_hash.h"
#include "iot_outcome.h"
#include "registry/argspec.h"
#include "relay/relay_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(RELAY_OUTCOME_COUNT == IOT_OUTCOME_COUNT, "relay.h's outcomes are iot_outcome.h's");

const char *relay_outcome_name(enum relay_outcome outcome)
{
    return iot_outcome_name((unsigned)outcome);
}

int relay_outcome_code(enum relay_outcome outcome)
{
    static const int codes[RELAY_OUTCOME_COUNT] = {IOT_OK,       IOT_EDENIED,  IOT_EUNKNOWN_TYPE,
                                                   IOT_EINVAL,   IOT_EOFFLINE, IOT_EBUSY,
                                                   IOT_ETIMEOUT, IOT_EDEVICE,  IOT_EINTERNAL};
    return (unsigned)outcome < RELAY_OUTCOME_COUNT ? codes[outcome] : IOT_EINTERNAL;
}

/* The tenant of a sender address: "name@tenant" for users, the device's for devices. *role is
 * the user's role when that role may not send commands (a viewer), else NULL. */
static const char *sender_tenant(const registry_snapshot_t *snap, const char *sender,
                                 const char **role)
{
    struct registry_user_info user;
    struct registry_device_info device;
    *role = NULL;
    if (strchr(sender, '@')) {
        if (registry_user_lookup(snap, sender, &user) != 0)
            return NULL;
        if (!user.may_act)
            *role = user.role;
        return user.tenant;
    }
    return registry_device_lookup(snap, sender, &device) == 0 ? device.tenant : NULL;
}

/* relay_check, and on RELAY_OK the message type's argument spec in *spec. */
static enum relay_outcome check(const registry_snapshot_t *snap, const char *sender,
                                const char *operator_tenant, const char *device, const char *type,
                                unsigned nargs, const char *const *args, uint32_t requested_ms,
                                uint32_t max_ms, uint32_t *timeout_ms, const struct argspec **spec,
                                char *why, size_t whylen)
{
    struct registry_device_info dev;
    struct registry_message_info msg;
    const char *refused_role = NULL;
    const char *tenant = sender ? sender_tenant(snap, sender, &refused_role) : operator_tenant;

    why[0] = '\0';
    /* Unknown device and a device of another tenant look the same to the sender. */
    if (!tenant || registry_device_lookup(snap, device, &dev) != 0 ||
        strcmp(dev.tenant, tenant) != 0) {
        snprintf(why, whylen, "no such device");
        return RELAY_DENIED;
    }
    if (registry_message_lookup(snap, device, type, &msg) != 0 || msg.event) {
        snprintf(why, whylen, "%s is not a command of type %s", type, dev.type);
        return RELAY_UNKNOWN_TYPE;
    }
    char err[128];
    if (argspec_check_values(msg.spec, nargs, args, err, sizeof(err)) != 0) {
        snprintf(why, whylen, "%s", err);
        return RELAY_BAD_ARGS;
    }
    /* The role before the access map: a viewer's rules let it read, never send. */
    if (refused_role) {
        snprintf(why, whylen, "role %s may not send commands", refused_role);
        return RELAY_DENIED;
    }
    if (sender && !registry_access_allows(snap, sender, device, type)) {
        snprintf(why, whylen, "not allowed");
        return RELAY_DENIED;
    }
    uint32_t t = msg.timeout_ms;
    if (requested_ms && requested_ms < t)
        t = requested_ms;
    if (max_ms && t > max_ms)
        t = max_ms;
    *timeout_ms = t;
    *spec = msg.spec;
    return RELAY_OK;
}

enum relay_outcome relay_check(const registry_snapshot_t *snap, const char *sender,
                               const char *operator_tenant, const char *device, const char *type,
                               unsigned nargs, const char *const *args, uint32_t requested_ms,
                               uint32_t max_ms, uint32_t *timeout_ms, char *why, size_t whylen)
{
    const struct argspec *spec;
    return check(snap, sender, operator_tenant, device, type, nargs, args, requested_ms, max_ms,
                 timeout_ms, &spec, why, whylen);
}

uint32_t relay_hash_names(const char *a, const char *b, const char *c)
{
    /* Each name with its NUL, so that ("ab", "c") and ("a", "bc") differ. */
    uint32_t h = IOT_FNV32_SEED;
    h = iot_fnv32(h, a, strlen(a) + 1);
    h = iot_fnv32(h, b, strlen(b) + 1);
    return iot_fnv32(h, c, strlen(c) + 1);
}

enum relay_outcome relay_check_cached(struct relay_check_cache *cache,
                                      const registry_snapshot_t *snap, const char *sender,
                                      const char *device, const char *type, unsigned nargs,
                                      const char *const *args, uint32_t max_ms,
                                      uint32_t *timeout_ms, char *why, size_t whylen)
{
    uint64_t generation = registry_snapshot_generation(snap);
    struct relay_check_slot *slot =
        &cache->slots[relay_hash_names(sender, device, type) % RELAY_CHECK_SLOTS];
    if (generation != 0 && slot->generation == generation && strcmp(slot->device, device) == 0 &&
        strcmp(slot->type, type) == 0 && strcmp(slot->sender, sender) == 0) {
        /* Decided in this snapshot: only the arguments are new. */
        char err[128];
        if (argspec_check_values(slot->spec, nargs, args, err, sizeof(err)) != 0) {
            snprintf(why, whylen, "%s", err);
            return RELAY_BAD_ARGS;
        }
        *timeout_ms = slot->timeout_ms;
        why[0] = '\0';
        return RELAY_OK;
    }
    const struct argspec *spec = NULL;
    enum relay_outcome outcome = check(snap, sender, NULL, device, type, nargs, args, 0, max_ms,
                                       timeout_ms, &spec, why, whylen);
    /* Names too long to keep are checked in full every time. */
    if (outcome == RELAY_OK && generation != 0 && strlen(sender) < sizeof(slot->sender) &&
        strlen(device) < sizeof(slot->device) && strlen(type) < sizeof(slot->type)) {
        slot->generation = generation;
        slot->spec = spec;
        slot->timeout_ms = *timeout_ms;
        strcpy(slot->sender, sender);
        strcpy(slot->device, device);
        strcpy(slot->type, type);
    }
    return outcome;
}

/* Pack args NUL-separated into out (sized by packed_len). */
static size_t packed_len(unsigned nargs, const char *const *args)
{
    size_t len = 0;
    for (unsigned i = 0; i < nargs; i++)
        len += strlen(args[i]) + 1;
    return len;
}

static void pack(char *out, unsigned nargs, const char *const *args)
{
    for (unsigned i = 0; i < nargs; i++) {
        size_t n = strlen(args[i]) + 1;
        memcpy(out, args[i], n);
        out += n;
    }
}

void relay_copy(char *dst, size_t n, const char *src)
{
    size_t len = src ? strnlen(src, n - 1) : 0;
    memcpy(dst, src ? src : "", len);
    dst[len] = '\0';
}

const char *relay_arg(const char *packed, size_t len, unsigned i, unsigned n)
{
    const char *p = packed;
    for (unsigned k = 0; k < i && k < n && (size_t)(p - packed) < len; k++)
        p += strlen(p) + 1;
    return p;
}

struct relay_request *relay_request_new(const struct relay_origin *origin, const char *from,
                                        const char *tenant, const char *device, const char *type,
                                        unsigned nargs, const char *const *args,
                                        uint32_t timeout_ms, inbox_handler_fn on_request,
                                        uint64_t started_ns)
{
    size_t len = packed_len(nargs, args);
    struct relay_request *req = calloc(1, sizeof(*req) + len);
    if (!req)
        return NULL;
    req->msg.handle = on_request;
    req->origin = *origin;
    relay_copy(req->from, sizeof(req->from), from);
    relay_copy(req->tenant, sizeof(req->tenant), tenant);
    relay_copy(req->device, sizeof(req->device), device);
    relay_copy(req->type, sizeof(req->type), type);
    req->timeout_ms = timeout_ms;
    req->started_ns = started_ns;
    req->nargs = nargs;
    req->args_len = len;
    pack(req->args, nargs, args);
    return req;
}

struct relay_answer *relay_answer_new(const struct relay_origin *origin, enum relay_outcome outcome,
                                      const char *device, const char *why, unsigned nargs,
                                      const char *const *args)
{
    size_t len = packed_len(nargs, args);
    struct relay_answer *a = calloc(1, sizeof(*a) + len);
    if (!a)
        return NULL;
    a->msg.handle = origin->on_answer;
    a->origin = *origin;
    a->outcome = outcome;
    relay_copy(a->device, sizeof(a->device), device);
    relay_copy(a->why, sizeof(a->why), why);
    a->nargs = nargs;
    a->args_len = len;
    pack(a->args, nargs, args);
    return a;
}
