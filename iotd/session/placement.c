/*
 * placement.c - which io thread a new connection belongs on: its tenant's.
 *
 * A relay between sessions on two io threads costs an inbox push and a wake-up each way; on
 * the 2-core test machine, with everything on one CPU, a round trip through two io threads
 * took 26 us of CPU against 8 through one. Tenants are what relays stay within (the access
 * map never crosses them), so every session of a tenant goes to the thread its name hashes
 * to. The listener peeks at a new plain TCP connection's first bytes and asks here (on the main
 * loop); a TLS connection asks with its first plaintext once its handshake is done (on an io
 * thread: the registry snapshot is safe from any thread). The first frame is HELLO from a
 * device id (its tenant is in the registry) or LOGIN from user@tenant.
 * Anything else, or a device the registry does not know, goes in turn: the session that
 * refuses it can live anywhere. A tenant whose load outgrows one io thread can be spread over
 * all of them with [devices] placement = spread.
 */
#include "session/session.h"

#include "iotp/iotp.h"
#include "session/session_internal.h"

#include <string.h>

/* FNV-1a: cheap and well spread over short names. */
static uint32_t hash_name(const char *s, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)s[i];
        h *= 16777619u;
    }
    return h;
}

int sessions_place(const uint8_t *data, size_t len, void *arg)
{
    sessions_t *all = arg;
    const uint8_t *eot = memchr(data, IOTP_EOT, len);
    if (!eot)
        return NET_PLACE_MORE;
    /* FROM US TO US TYPE US ...: the first field and the third. */
    size_t frame_len = (size_t)(eot - data);
    const uint8_t *from_end = memchr(data, IOTP_US, frame_len);
    const uint8_t *to_end =
        from_end ? memchr(from_end + 1, IOTP_US, (size_t)(eot - from_end - 1)) : NULL;
    if (!to_end)
        return -1;
    const uint8_t *type = to_end + 1;
    const uint8_t *type_end = memchr(type, IOTP_US, (size_t)(eot - type));
    size_t type_len = (size_t)((type_end ? type_end : eot) - type);
    const char *from = (const char *)data;
    size_t from_len = (size_t)(from_end - data);
    unsigned n = all->deps.io_count;

    if (type_len == 5 && memcmp(type, "LOGIN", 5) == 0) {
        const char *at = memrchr(from, '@', from_len);
        if (!at || n == 0)
            return -1;
        return (int)(hash_name(at + 1, from_len - (size_t)(at + 1 - from)) % n);
    }
    if (type_len != 5 || memcmp(type, "HELLO", 5) != 0 || from_len > IOTP_MAX_ADDRESS_LEN || n == 0)
        return -1;
    char id[IOTP_MAX_ADDRESS_LEN + 1];
    memcpy(id, from, from_len);
    id[from_len] = '\0';
    int target = -1;
    struct registry_device_info info;
    registry_snapshot_t *snap = registry_acquire(all->deps.registry);
    if (snap && registry_device_lookup(snap, id, &info) == 0)
        target = (int)(hash_name(info.tenant, strlen(info.tenant)) % n);
    if (snap)
        registry_release(snap);
    return target;
}
