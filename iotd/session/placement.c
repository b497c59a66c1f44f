/*
 * placement.c - which io thread a new connection belongs on: its tenant's.
 *
 * A relay between sessions on two io threads costs an inbox push and a wake-up each way; on
 * the 2-core test machine, with everything on one CPU, a round trip through two io threads
 * took 26 us of CPU against 8 through one. Tenants are what relays stay within (the access
 * map never crosses them), so every session of a tenant goes to the thread its name hashes
 * to. The listener peeks at a new plain TCP connection's first bytes and asks here (on the main
 * loop); a TLS connection asks with its first plaintext once its handshake is done (on an io
 * thread: the registry snapshot is safe from any thread). The first frame, read with the
 * firmware's parser, is HELLO from a device id (its tenant is in the registry) or LOGIN from
 * user@tenant.
 * Anything else, or a device the registry does not know, goes in turn: the session that
 * refuses it can live anywhere. A tenant whose load outgrows one io thread can be spread over
 * all of them with [devices] placement = spread.
 */
#include "session/session.h"

#include "iot_hash.h"
#include "iotp/iotp.h"
#include "session/session_internal.h"

#include <string.h>

/* The io thread of a tenant: its name's hash among the n threads. */
static int tenant_thread(const char *tenant, unsigned n)
{
    return (int)(iot_fnv32_str(IOT_FNV32_SEED, tenant) % n);
}

int sessions_place(const uint8_t *data, size_t len, void *arg)
{
    sessions_t *all = arg;
    unsigned n = all->deps.io_count;
    /* The firmware's parser reads the first frame (into a buffer of its own: data is only
     * peeked at, the session parses it again). */
    uint8_t buf[IOTP_MAX_FRAME];
    struct iotp_parser parser;
    const struct iotp_frame *f = NULL;
    size_t used = 0;
    size_t max_frame = all->opts.max_frame < sizeof(buf) ? all->opts.max_frame : sizeof(buf);

    if (n == 0 || iotp_parser_init(&parser, buf, sizeof(buf), max_frame, 0) != 0)
        return -1;
    int rc = iotp_parser_feed(&parser, data, len, &used, &f, NULL);
    if (rc == 0)
        return NET_PLACE_MORE;
    if (rc < 0)
        return -1;
    if (iotp_frame_type(f) == IOTP_TYPE_LOGIN) {
        const char *at = strrchr(f->from, '@');
        return at ? tenant_thread(at + 1, n) : -1;
    }
    if (iotp_frame_type(f) != IOTP_TYPE_HELLO)
        return -1;
    int target = -1;
    struct registry_device_info info;
    registry_snapshot_t *snap = registry_acquire(all->deps.registry);
    if (snap && registry_device_lookup(snap, f->from, &info) == 0)
        target = tenant_thread(info.tenant, n);
    if (snap)
        registry_release(snap);
    return target;
}

int sessions_place_user(const char *user, void *arg)
{
    sessions_t *all = arg;
    const char *at = strrchr(user, '@');
    return at && all->deps.io_count > 0 ? tenant_thread(at + 1, all->deps.io_count) : -1;
}
