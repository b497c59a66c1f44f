/*
 * relay.h - messages from a user or device to a device, and the answers back.
 *
 * The checks run on the sender's thread against the registry snapshot, in this order, with one
 * outcome vocabulary everywhere (wire, JSON, iotctl exit codes, stats):
 *   destination in the sender's tenant (else denied: the same answer as for a device of another
 *   tenant, so tenants cannot probe each other) -> message type in the destination type's
 *   catalogue (unknown_type) -> arguments match its spec (bad_args) -> access map (denied) ->
 *   device online (offline, at once) -> in-flight limit of the device (busy) -> delivered ->
 *   answer within the timeout (timeout) -> the device's own OK or ERROR relayed unchanged.
 *
 * A request is one allocation that travels from the sender's thread to the device's thread
 * (relay_deliver in pending.h, the routing step: presence says where the device is) and waits
 * there in the device's pending table under an id iotd chose, so ids of different senders
 * never clash. The answer is a second allocation that travels back through the sender's inbox.
 *
 * This file: the outcomes, the checks (and each thread's cache of them), and the two messages.
 */
#ifndef IOTD_RELAY_H
#define IOTD_RELAY_H

#include "loop/deadlines.h"
#include "loop/inbox.h"
#include "registry/registry.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

enum relay_outcome {
    RELAY_OK,
    RELAY_DENIED,
    RELAY_UNKNOWN_TYPE,
    RELAY_BAD_ARGS,
    RELAY_OFFLINE,
    RELAY_BUSY,
    RELAY_TIMEOUT,
    RELAY_ERROR,    /* the device answered ERROR (relayed unchanged) */
    RELAY_INTERNAL, /* iotd could not relay (out of memory) */
    RELAY_OUTCOME_COUNT
};

/* "ok", "denied", ..., "error", "internal": the wire's code= and the stats' names. */
const char *relay_outcome_name(enum relay_outcome outcome);
/* The IOT_E* code of an outcome (for the control socket and iotctl's exit status). */
int relay_outcome_code(enum relay_outcome outcome);

/* Where an answer must go: a loop's inbox, the handler that delivers it there, and the
 * sender's identity on that loop (opaque to the relay). */
struct relay_origin {
    inbox_t *inbox;
    inbox_handler_fn on_answer;
    uint32_t slot;
    uint64_t serial;
    void *cookie;
    uint32_t id; /* the sender's request id */
};

/* A request on its way to a device and waiting there: one allocation (relay_request_new). The
 * caller owns it until relay_deliver takes it, and frees it (free()) otherwise. Its fields up to
 * started_ns and its args are the request; the rest is the relay's. */
struct relay_request {
    inbox_msg_t msg;
    struct relay_origin origin;
    char from[129];  /* sender address: user@tenant or device id */
    char tenant[65]; /* the sender's (and so the device's) tenant, for the audit */
    char device[65];
    char type[65];
    uint32_t timeout_ms;
    uint64_t started_ns;
    /* Asked by another node (iotd/cluster), which audits it: not audited here, so that a
     * cross-node message is audited once, on the sender's node. */
    bool audited_elsewhere;
    /* The relay's own, set by relay_deliver: the relay, and where the device is (presence's
     * route); then, on the device's thread, iotd's id toward the device and the request's place
     * in its thread's list of deadlines (one timer per thread, not one per request). */
    struct relay *relay;
    unsigned device_io;
    uint32_t device_slot;
    uint64_t device_serial;
    uint32_t relay_id;
    struct deadline_node deadline;
    /* args, NUL-separated, nargs of them */
    unsigned nargs;
    size_t args_len;
    char args[];
};

struct relay_answer {
    inbox_msg_t msg;
    struct relay_origin origin;
    enum relay_outcome outcome;
    char device[65];
    char why[96]; /* msg= for iotd's own errors */
    uint64_t latency_ns;
    unsigned nargs; /* the device's answer args (OK or ERROR), NUL-separated */
    size_t args_len;
    char args[];
};

/* The checks up to the access map (see above). sender is a user or device address; NULL means
 * the operator acting within operator_tenant (iotctl send without --as: tenant-scoped, no
 * access map). On RELAY_OK, *timeout_ms is the catalogue's timeout, shortened to requested_ms
 * when that is smaller (0 = none), capped by max_ms. why gets a sentence for other outcomes. */
enum relay_outcome relay_check(const registry_snapshot_t *snap, const char *sender,
                               const char *operator_tenant, const char *device, const char *type,
                               unsigned nargs, const char *const *args, uint32_t requested_ms,
                               uint32_t max_ms, uint32_t *timeout_ms, char *why, size_t whylen);

/* One thread's memory of the senders, devices and message types relay_check let through,
 * for the snapshot generation it decided them in: a sender that repeats a request is
 * checked with a hash, three string compares and its arguments' check, instead of the
 * registry's binary searches and the access rules. Only RELAY_OK is kept (a refusal takes the
 * full check and explains itself); a new snapshot (any change in iotctl: a revoked rule, a
 * removed device) makes every entry stale at once, so the next message is checked afresh.
 * Zeroed memory is an empty cache. Not thread-safe: one per io thread. */
#define RELAY_CHECK_SLOTS 64

struct relay_check_slot {
    uint64_t generation;        /* of the snapshot that decided; 0: empty */
    const struct argspec *spec; /* the message type's, in that snapshot */
    uint32_t timeout_ms;
    char sender[129], device[65], type[65];
};

struct relay_check_cache {
    struct relay_check_slot slots[RELAY_CHECK_SLOTS];
};

/* relay_check for a sender (not the operator) with no requested timeout, through cache. snap
 * must be the caller's current snapshot, held for as long as the cache is used with it. */
enum relay_outcome relay_check_cached(struct relay_check_cache *cache,
                                      const registry_snapshot_t *snap, const char *sender,
                                      const char *device, const char *type, unsigned nargs,
                                      const char *const *args, uint32_t max_ms,
                                      uint32_t *timeout_ms, char *why, size_t whylen);

/* FNV-1a over three NUL-terminated names (each with its NUL): the key of the decision cache
 * above and of the audit's grouping by sender and device. */
uint32_t relay_hash_names(const char *a, const char *b, const char *c);

/* A request (one allocation) ready for relay_deliver; NULL if out of memory. started_ns: when
 * it arrived (uv_hrtime(), or the time of the read that carried it), for its latency.
 * on_request is ignored (NULL): relay_deliver sets the device side's own handler. */
struct relay_request *relay_request_new(const struct relay_origin *origin, const char *from,
                                        const char *tenant, const char *device, const char *type,
                                        unsigned nargs, const char *const *args,
                                        uint32_t timeout_ms, inbox_handler_fn on_request,
                                        uint64_t started_ns);
/* An answer to origin; args may be NULL. NULL if out of memory. */
struct relay_answer *relay_answer_new(const struct relay_origin *origin, enum relay_outcome outcome,
                                      const char *device, const char *why, unsigned nargs,
                                      const char *const *args);
/* Copy src (NULL = "") into dst of size n, truncating; for the per-message path, where
 * snprintf's format parsing showed up in profiles. */
void relay_copy(char *dst, size_t n, const char *src);

/* The i-th NUL-separated arg of a packed list (i < n). */
const char *relay_arg(const char *packed, size_t len, unsigned i, unsigned n);

#endif
