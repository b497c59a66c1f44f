/*
 * access.c - the access decision: may this principal send this message type to this device,
 * and what decided it.
 *
 * Deny by default. In order:
 *  1. a principal never reaches a device of another tenant;
 *  2. the message type must be a command of the device type's catalogue (an unknown type, or an
 *     event, which only devices push, can never be sent to a device);
 *  3. a user with role admin may send anything to any device of its tenant ("role admin"), and
 *     a user with role viewer no command at all ("role viewer may not send commands": its rules
 *     let it read the events they name, see registry_access_allows_read);
 *  4. otherwise the first matching access rule allows, and is named in the reason. Rules are
 *     tried most specific first: target device, then the device's groups, then its type, then
 *     "any"; at each level a rule naming the message beats one for any message, then the lowest
 *     rule id wins. A rule's subject matches the principal directly or through one of the
 *     principal's groups.
 * Rules only allow, so the order does not change the answer, only which rule is named; it is
 * fixed so that "access check" names the same rule every time and names the narrowest reason.
 *
 * Cost: rules are indexed by target (snapshot.c), so a decision looks at the rules of at most
 * 3 + (number of the device's groups) targets, each a binary search plus a scan of that
 * target's rules; no rule of an unrelated target is ever visited.
 */
#include "registry_internal.h"

#include "iot_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct principal {
    const struct reg_user *user; /* exactly one of user and device */
    const struct reg_device *device;
    const struct reg_membership *groups; /* the principal's groups */
    size_t ngroups;
    uint32_t tenant_id;
};

void reg_rule_subject(const struct reg_rule *r, char *out, size_t outlen)
{
    const char *name = "?";
    if (r->subject_kind == REG_SUBJECT_USER && r->subject_user)
        name = r->subject_user->name;
    else if (r->subject_kind == REG_SUBJECT_DEVICE && r->subject_device_id)
        name = r->subject_device_id;
    else if (r->subject_kind == REG_SUBJECT_GROUP && r->subject_group)
        name = r->subject_group->name;
    snprintf(out, outlen, "%s:%s", reg_subject_kind_name(r->subject_kind), name);
}

void reg_rule_target(const struct reg_rule *r, char *out, size_t outlen)
{
    const char *name = "?";
    switch (r->target_kind) {
    case REG_TARGET_ANY:
        snprintf(out, outlen, "any");
        return;
    case REG_TARGET_DEVICE:
        name = r->target_device_id ? r->target_device_id : name;
        break;
    case REG_TARGET_TYPE:
        name = r->target_type ? r->target_type->name : name;
        break;
    case REG_TARGET_GROUP:
        name = r->target_group ? r->target_group->name : name;
        break;
    }
    snprintf(out, outlen, "%s:%s", reg_target_kind_name(r->target_kind), name);
}

static bool subject_matches(const struct reg_rule *r, const struct principal *p)
{
    switch (r->subject_kind) {
    case REG_SUBJECT_USER:
        return p->user && r->subject_user == p->user;
    case REG_SUBJECT_DEVICE:
        return p->device && strcmp(r->subject_device_id, p->device->id) == 0;
    case REG_SUBJECT_GROUP:
        for (size_t i = 0; i < p->ngroups; i++)
            if (p->groups[i].group == r->subject_group)
                return true;
        return false;
    }
    return false;
}

/* True if a should decide before b (both match, same target level). */
static bool decides_before(const struct reg_rule *a, const struct reg_rule *b)
{
    if (!b)
        return true;
    if ((a->message != NULL) != (b->message != NULL))
        return a->message != NULL;
    return a->id < b->id;
}

/* The deciding rule among one target's rules (already in evaluation order), or best. */
static const struct reg_rule *first_match(const registry_snapshot_t *s, uint32_t tenant_id,
                                          enum reg_target_kind kind, uint32_t target_id,
                                          const char *target_device, const char *message,
                                          const struct principal *p, const struct reg_rule *best)
{
    size_t n;
    const struct reg_rule *const *rules =
        snapshot_target_rules(s, tenant_id, kind, target_id, target_device, &n);
    for (size_t i = 0; i < n; i++) {
        const struct reg_rule *r = rules[i];
        if (r->message && strcmp(r->message, message) != 0)
            continue;
        if (!subject_matches(r, p))
            continue;
        return decides_before(r, best) ? r : best;
    }
    return best;
}

static const struct reg_rule *find_rule(const registry_snapshot_t *s, const struct reg_device *d,
                                        const char *message, const struct principal *p)
{
    uint32_t tenant = d->tenant_id;
    const struct reg_rule *r =
        first_match(s, tenant, REG_TARGET_DEVICE, 0, d->id, message, p, NULL);
    if (r)
        return r;
    size_t ngroups;
    const struct reg_membership *groups = snapshot_device_groups(s, d, &ngroups);
    for (size_t i = 0; i < ngroups; i++)
        r = first_match(s, tenant, REG_TARGET_GROUP, groups[i].group->id, NULL, message, p, r);
    if (r)
        return r;
    r = first_match(s, tenant, REG_TARGET_TYPE, d->type_id, NULL, message, p, NULL);
    if (r)
        return r;
    return first_match(s, tenant, REG_TARGET_ANY, tenant, NULL, message, p, NULL);
}

/* Fill a decision and return rc. The reason is written only when one was asked for (explain):
 * on the relay's and the hub's per-message path, formatting it was 5% of the relay's CPU. It is
 * cut at its buffer's size in the (theoretical) case of names that long: it is for people, and
 * the rule id stays exact. */
__attribute__((format(printf, 6, 7))) static int decide(struct access_decision *out, bool explain,
                                                        int rc, bool allow, long long rule_id,
                                                        const char *fmt, ...)
{
    out->allow = allow;
    out->rule_id = rule_id;
    out->reason[0] = '\0';
    if (explain) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(out->reason, sizeof(out->reason), fmt, ap);
        va_end(ap);
    }
    return rc;
}

#define deny(out, rc, ...) decide(out, explain, rc, false, 0, __VA_ARGS__)

/* The decision for a message of the given direction: a command the principal would send, or
 * an event it would read. */
static int access_check(const registry_snapshot_t *snap, const char *principal,
                        const char *device_id, const char *message, enum reg_direction direction,
                        bool explain, struct access_decision *out)
{
    struct principal p = {0};
    char name[65], tenant[65];

    if (!principal || !device_id || !message)
        return deny(out, IOT_EINVAL, "missing principal, device or message");
    /* Accept the subject spellings of "access check" as well as bare principals. */
    if (strncmp(principal, "user:", 5) == 0)
        principal += 5;
    else if (strncmp(principal, "device:", 7) == 0)
        principal += 7;
    if (strchr(principal, '@')) {
        if (reg_split_address(principal, name, sizeof(name), tenant, sizeof(tenant)))
            p.user = snapshot_user(snap, tenant, name);
        if (!p.user)
            return deny(out, IOT_ENOTFOUND, "unknown user %s", principal);
        p.tenant_id = p.user->tenant_id;
        p.groups = snapshot_user_groups(snap, p.user, &p.ngroups);
    } else {
        p.device = snapshot_device(snap, principal);
        if (!p.device)
            return deny(out, IOT_ENOTFOUND, "unknown device %s", principal);
        p.tenant_id = p.device->tenant_id;
        p.groups = snapshot_device_groups(snap, p.device, &p.ngroups);
    }

    const struct reg_device *d = snapshot_device(snap, device_id);
    if (!d)
        return deny(out, IOT_ENOTFOUND, "unknown device %s", device_id);
    if (d->tenant_id != p.tenant_id)
        return deny(out, IOT_OK, "device %s not in principal's tenant", device_id);

    const struct reg_type *type = snapshot_device_type(snap, d);
    const struct reg_message *m = snapshot_message(type, message);
    if (!m)
        return deny(out, IOT_OK, "message type %s not in catalogue of type %s", message,
                    type->name);
    if (m->direction != direction)
        return deny(out, IOT_OK,
                    direction == REG_DIR_COMMAND
                        ? "message type %s of type %s is an event: only devices send it"
                        : "message type %s of type %s is a command, not an event",
                    message, type->name);

    if (p.user && p.user->role == REG_ROLE_ADMIN) {
        return decide(out, explain, IOT_OK, true, 0, "role admin");
    }
    if (p.user && p.user->role == REG_ROLE_VIEWER && direction == REG_DIR_COMMAND)
        return deny(out, IOT_OK, "role viewer may not send commands");

    const struct reg_rule *r = find_rule(snap, d, message, &p);
    if (!r)
        return deny(out, IOT_OK, "no rule allows %s to send %s", principal, message);
    char subject[100] = "", target[100] = "";
    if (explain) {
        reg_rule_subject(r, subject, sizeof(subject));
        reg_rule_target(r, target, sizeof(target));
    }
    return decide(out, explain, IOT_OK, true, r->id, "rule %lld: %s -> %s message %s",
                  (long long)r->id, subject, target, r->message ? r->message : "any");
}

int registry_access_check(const registry_snapshot_t *snap, const char *principal,
                          const char *device_id, const char *message, struct access_decision *out)
{
    return access_check(snap, principal, device_id, message, REG_DIR_COMMAND, true, out);
}

bool registry_access_allows(const registry_snapshot_t *snap, const char *principal,
                            const char *device_id, const char *message)
{
    struct access_decision d;
    return access_check(snap, principal, device_id, message, REG_DIR_COMMAND, false, &d) ==
               IOT_OK &&
           d.allow;
}

bool registry_access_allows_read(const registry_snapshot_t *snap, const char *principal,
                                 const char *device_id, const char *event)
{
    struct access_decision d;
    return access_check(snap, principal, device_id, event, REG_DIR_EVENT, false, &d) == IOT_OK &&
           d.allow;
}

bool registry_device_visible(const registry_snapshot_t *snap, const char *principal,
                             const char *device_id)
{
    struct principal p = {0};
    char name[65], tenant[65];
    if (!principal || !device_id ||
        !reg_split_address(principal, name, sizeof(name), tenant, sizeof(tenant)))
        return false;
    if (!(p.user = snapshot_user(snap, tenant, name)))
        return false;
    const struct reg_device *d = snapshot_device(snap, device_id);
    if (!d || d->tenant_id != p.user->tenant_id)
        return false;
    if (p.user->role == REG_ROLE_ADMIN)
        return true;
    p.tenant_id = p.user->tenant_id;
    p.groups = snapshot_user_groups(snap, p.user, &p.ngroups);
    /* Some rule must grant some message of the catalogue: at most one lookup per message, and
     * a catalogue is a handful of messages. */
    const struct reg_type *type = snapshot_device_type(snap, d);
    for (uint32_t i = 0; i < type->nmessages; i++)
        if (find_rule(snap, d, type->messages[i].name, &p))
            return true;
    return false;
}
