/*
 * engine.h - alarm rules and their evaluation: events, silence and device ALARM frames in,
 * alarm transitions (raise, clear) out.
 *
 * The engine is pure state: no database, no libuv, no clock. It runs on one thread (the main
 * loop); every entry point takes the current time (now_ms, wall clock in ms since the epoch) and
 * reports each transition exactly once, synchronously, through hooks->emit. The caller persists
 * them (alarm_writer.h) and streams them. Acknowledgement is not the engine's business: it
 * changes nothing about when an alarm clears.
 *
 * What is evaluated, for an alarm keyed (device, source, name) of which at most one is open:
 *  - threshold rules: "field op threshold" on events named rule.event of the devices in scope.
 *    The condition must hold continuously for for_ms (every event in between satisfies it)
 *    before the alarm is raised. An open alarm clears only when the value has crossed back by
 *    the hysteresis: for '>' when value <= threshold - hysteresis, for '>=' when
 *    value < threshold - hysteresis, for '<' when value >= threshold + hysteresis, for '<='
 *    when value > threshold + hysteresis (with hysteresis 0 that is exactly "the condition is
 *    false"); for '==' and '!=' hysteresis does not apply: the alarm clears as soon as the
 *    condition is false. A field that is missing or not a finite number leaves that rule's state
 *    as it is (counted in alarm_engine_stats).
 *  - silence rules: a device in scope that sent no event named rule.event for silence_s
 *    seconds, or that went offline, raises; the next event of that name clears. The clock of a
 *    device starts when it is tracked (alarm_engine_track) or sends its first event.
 *  - device alarms: ALARM frames a device sent, raised and cleared by the device itself.
 * Raising an alarm that is open emits nothing.
 *
 * Scope: rule.tenant must be the device's tenant; scope 'tenant' is every device of it,
 * 'device' the device named target, 'type' the devices whose type is target, and 'group' asks
 * hooks->in_scope (the caller knows group memberships; without the hook a group matches
 * nothing). The engine never calls in_scope for the other scopes.
 */
#ifndef IOTD_ALARM_ENGINE_H
#define IOTD_ALARM_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ALARM_NAME_MAX    64  /* tenant, device, type, rule, event and field names */
#define ALARM_VALUE_MAX   63  /* a triggering value as text (longer ones are truncated) */
#define ALARM_MESSAGE_MAX 255 /* a transition's message */

enum alarm_severity {
    ALARM_SEVERITY_INFO,
    ALARM_SEVERITY_WARNING,
    ALARM_SEVERITY_MINOR,
    ALARM_SEVERITY_MAJOR,
    ALARM_SEVERITY_CRITICAL,
};
#define ALARM_SEVERITY_COUNT 5

enum alarm_scope { ALARM_SCOPE_DEVICE, ALARM_SCOPE_GROUP, ALARM_SCOPE_TYPE, ALARM_SCOPE_TENANT };

/* ALARM_OP_NONE is the op of silence rules. */
enum alarm_op {
    ALARM_OP_NONE,
    ALARM_OP_GT,
    ALARM_OP_GE,
    ALARM_OP_LT,
    ALARM_OP_LE,
    ALARM_OP_EQ,
    ALARM_OP_NE
};

enum alarm_source { ALARM_SOURCE_RULE, ALARM_SOURCE_DEVICE };

/* Names as in SQL, JSON and iotctl: "critical", "group", ">=", "device". */
const char *alarm_severity_name(enum alarm_severity s);
const char *alarm_scope_name(enum alarm_scope s);
const char *alarm_op_name(enum alarm_op op); /* "" for ALARM_OP_NONE */
const char *alarm_source_name(enum alarm_source s);
/* Parse a name; false (out untouched) for NULL or an unknown name. */
bool alarm_severity_parse(const char *name, enum alarm_severity *out);
bool alarm_scope_parse(const char *name, enum alarm_scope *out);
bool alarm_op_parse(const char *name, enum alarm_op *out);
bool alarm_source_parse(const char *name, enum alarm_source *out);

/* Parse a field value as a number: the whole string, finite. */
bool alarm_parse_number(const char *text, double *out);

struct alarm_rule {
    uint64_t id; /* alarm_rules.id; unique over all tenants */
    char tenant[ALARM_NAME_MAX + 1];
    char name[ALARM_NAME_MAX + 1];
    enum alarm_scope scope;
    char target[ALARM_NAME_MAX + 1]; /* device id, group or type name; "" for scope tenant */
    char event[ALARM_NAME_MAX + 1];  /* the event's name in the type's catalogue */
    char field[ALARM_NAME_MAX + 1];  /* threshold rules; "" for silence rules */
    enum alarm_op op;                /* threshold rules; ALARM_OP_NONE for silence rules */
    double threshold;
    double hysteresis;  /* >= 0 */
    uint32_t for_ms;    /* threshold rules: how long the condition must hold before raising */
    uint32_t silence_s; /* 0: threshold rule; > 0: silence rule */
    enum alarm_severity severity;
    bool enabled;
};

static inline bool alarm_rule_is_silence(const struct alarm_rule *r)
{
    return r->silence_s > 0;
}

enum alarm_transition_kind { ALARM_RAISE, ALARM_CLEAR };

/* One change of an alarm; plain data (fixed-size strings) so it can be copied into queues. */
struct alarm_transition {
    enum alarm_transition_kind kind;
    enum alarm_source source;
    uint64_t rule_id;              /* 0 for device alarms */
    char name[ALARM_NAME_MAX + 1]; /* the rule's name, or the ALARM frame's name */
    char tenant[ALARM_NAME_MAX + 1];
    char device[ALARM_NAME_MAX + 1];
    enum alarm_severity severity;
    char value[ALARM_VALUE_MAX + 1];     /* "" when there is none */
    char message[ALARM_MESSAGE_MAX + 1]; /* why, in words */
    int64_t ts_ms;                       /* when it happened (ms since the epoch) */
};

/* An open alarm as stored, for alarm_engine_restore. */
struct alarm_open {
    enum alarm_source source;
    uint64_t rule_id; /* 0 for device alarms, or when the rule is gone */
    char tenant[ALARM_NAME_MAX + 1];
    char device[ALARM_NAME_MAX + 1];
    char name[ALARM_NAME_MAX + 1];
    enum alarm_severity severity;
    char value[ALARM_VALUE_MAX + 1];
    int64_t raised_at_ms;
};

struct alarm_engine_hooks {
    /* Every transition, once, in order. Must not call back into the engine. */
    void (*emit)(const struct alarm_transition *t, void *arg);
    /* Is device (of tenant, of type) in the group rule->target? Only for scope group. */
    bool (*in_scope)(const struct alarm_rule *r, const char *tenant, const char *device,
                     const char *type, void *arg);
    void *arg;
};

typedef struct alarm_engine alarm_engine_t;

/* hooks is copied; emit is required. IOT_ENOMEM or IOT_EINVAL. */
int alarm_engine_new(alarm_engine_t **out, const struct alarm_engine_hooks *hooks);
/* Frees everything; emits nothing (open alarms stay open in the database). NULL is allowed. */
void alarm_engine_free(alarm_engine_t *e);

/* Replace all rules (copied). The state of rules that remain (same id) is kept; an open alarm
 * of a removed (or now disabled) rule is cleared ("rule removed", "rule disabled"). New silence
 * rules start the clock of every tracked device in scope at now_ms. Rules that cannot be
 * evaluated (bad op, empty names) are skipped and counted. IOT_ENOMEM leaves the old set. */
int alarm_engine_set_rules(alarm_engine_t *e, const struct alarm_rule *rules, size_t n,
                           int64_t now_ms);

/* How the engine reads an event's fields: the value of key, or NULL. */
typedef const char *(*alarm_field_fn)(const void *ctx, const char *key);

/* An EVENT a device pushed (not an ALARM frame: see alarm_engine_device_alarm). Evaluates the
 * threshold rules on event_name and resets (and clears) the device's silence rules on it. A
 * device not tracked yet is tracked from here on. */
void alarm_engine_event(alarm_engine_t *e, const char *tenant, const char *device, const char *type,
                        const char *event_name, alarm_field_fn field, const void *ctx,
                        int64_t now_ms);

/* Raise what is due: threshold alarms whose condition has held for for_ms (raised at exactly
 * since + for_ms) and silence alarms. Returns the next deadline (ms since the epoch;
 * INT64_MAX when nothing is pending): ticking earlier is harmless, the caller may tick on a
 * fixed period (e.g. 250 ms) or arm a timer for the deadline. */
int64_t alarm_engine_tick(alarm_engine_t *e, int64_t now_ms);
/* The deadline the last call computed (never later than the real one). */
int64_t alarm_engine_next_deadline(const alarm_engine_t *e);

/* Watch a device for silence rules even if it never sends anything: its silence clocks start
 * at now_ms. Calling it again for a tracked device re-evaluates its scope (type or group
 * membership changed): silence rules that no longer apply are dropped, clearing their open
 * alarms ("device out of scope"), new ones start at now_ms, the others keep their clocks. */
int alarm_engine_track(alarm_engine_t *e, const char *tenant, const char *device, const char *type,
                       int64_t now_ms);
/* A removed device: every open alarm of it (rule or device) is cleared ("device removed") and
 * its state dropped. Unknown devices are ignored. */
void alarm_engine_untrack(alarm_engine_t *e, const char *device, int64_t now_ms);

/* The device's session ended: every silence rule in scope raises at once ("device offline").
 * The device is tracked if it was not. */
void alarm_engine_device_offline(alarm_engine_t *e, const char *tenant, const char *device,
                                 const char *type, int64_t now_ms);
/* The device is back: clears nothing by itself (the next event of each kind does). */
void alarm_engine_device_online(alarm_engine_t *e, const char *tenant, const char *device,
                                const char *type, int64_t now_ms);

/* An ALARM frame: raise the device alarm name (severity NULL or unknown: warning) unless it is
 * open, or clear it when clear is set (nothing when it is not open). value and message may be
 * NULL. Returns 1 if a transition was emitted, 0 if not, IOT_EINVAL for an empty or too long
 * name, tenant or device, IOT_ENOMEM. */
int alarm_engine_device_alarm(alarm_engine_t *e, const char *tenant, const char *device,
                              const char *name, const char *severity, bool clear, const char *value,
                              const char *message, int64_t now_ms);

/* At start, after the first alarm_engine_set_rules: the alarms open in the database, so that a
 * re-raise does not duplicate them and their clears still happen. An open rule alarm whose rule
 * is unknown or disabled is cleared at once ("rule removed"). Emits nothing else. */
int alarm_engine_restore(alarm_engine_t *e, const struct alarm_open *open, size_t n,
                         int64_t now_ms);

struct alarm_engine_stats {
    size_t rules;         /* rules being evaluated */
    size_t rules_skipped; /* rules of the last set that could not be evaluated */
    size_t devices;       /* devices known (tracked or seen) */
    size_t watches;       /* (rule or device alarm, device) states held */
    size_t open;          /* open alarms */
    size_t pending;       /* threshold conditions waiting for for_ms */
    uint64_t raised, cleared;
    uint64_t missing_field; /* threshold evaluations skipped: the event lacks the field */
    uint64_t non_numeric;   /* threshold evaluations skipped: the value is not a number */
    uint64_t no_memory;     /* states that could not be allocated (evaluation skipped) */
};
void alarm_engine_stats(const alarm_engine_t *e, struct alarm_engine_stats *out);

#endif
