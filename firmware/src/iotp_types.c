/*
 * iotp_types.c - the table of frame types and the lookup from a TYPE field to its enum.
 *
 * The lookup runs for every frame a server or device parses: a walk over the 20 system types
 * in which the first byte rules out all but one or two before a comparison, no hashing, no
 * allocation; it is small (a device's flash), not a switch over letters.
 */
#include "iotp/iotp_types.h"

#include <string.h>

#define D2S     IOTP_DIR_DEVICE_TO_SERVER
#define S2D     IOTP_DIR_SERVER_TO_DEVICE
#define C2S     IOTP_DIR_CLIENT_TO_SERVER
#define S2C     IOTP_DIR_SERVER_TO_CLIENT
#define ANY_DIR (D2S | S2D | C2S | S2C)
#define HS      IOTP_STATE_HANDSHAKE
#define DEV     IOTP_STATE_DEVICE
#define CLI     IOTP_STATE_CLIENT

const struct iotp_type_info iotp_type_table[IOTP_TYPE_COUNT] = {
    [IOTP_TYPE_UNKNOWN] = {NULL, 0, 0},
    [IOTP_TYPE_APP] = {NULL, ANY_DIR, DEV | CLI},
    [IOTP_TYPE_HELLO] = {"HELLO", D2S, HS},
    [IOTP_TYPE_CHALLENGE] = {"CHALLENGE", S2D, HS},
    [IOTP_TYPE_AUTH] = {"AUTH", D2S, HS},
    [IOTP_TYPE_WELCOME] = {"WELCOME", S2D | S2C, HS},
    [IOTP_TYPE_LOGIN] = {"LOGIN", C2S, HS},
    /* Answers to requests; the server also refuses a handshake with ERROR. */
    [IOTP_TYPE_OK] = {"OK", ANY_DIR, DEV | CLI},
    [IOTP_TYPE_ERROR] = {"ERROR", ANY_DIR, HS | DEV | CLI},
    [IOTP_TYPE_PING] = {"PING", ANY_DIR, DEV | CLI},
    [IOTP_TYPE_PONG] = {"PONG", ANY_DIR, DEV | CLI},
    /* Pushed by a device, and forwarded to the clients that subscribed. */
    [IOTP_TYPE_EVENT] = {"EVENT", D2S | S2C, DEV | CLI},
    [IOTP_TYPE_ALARM] = {"ALARM", D2S | S2C, DEV | CLI},
    /* A device's event stored (to the device), or an alarm acknowledged (from a client). */
    [IOTP_TYPE_ACK] = {"ACK", S2D | C2S, DEV | CLI},
    [IOTP_TYPE_BYE] = {"BYE", ANY_DIR, HS | DEV | CLI},
    [IOTP_TYPE_SUBSCRIBE] = {"SUBSCRIBE", C2S, CLI},
    [IOTP_TYPE_UNSUBSCRIBE] = {"UNSUBSCRIBE", C2S, CLI},
    [IOTP_TYPE_LEASE] = {"LEASE", C2S, CLI},
    [IOTP_TYPE_NOTICE] = {"NOTICE", S2C, CLI},
    /* A client's paged list (devices, catalogue, history, alarms, commands): ROWs, then OK. */
    [IOTP_TYPE_QUERY] = {"QUERY", C2S, CLI},
    [IOTP_TYPE_ROW] = {"ROW", S2C, CLI},
    /* A device came online or went offline, to subscribers that asked (presence=1). */
    [IOTP_TYPE_PRESENCE] = {"PRESENCE", S2C, CLI},
};

enum iotp_type iotp_type_lookup(const char *name, size_t len)
{
    unsigned t;

    if (!name || len == 0)
        return IOTP_TYPE_UNKNOWN;
    if (name[0] >= 'a' && name[0] <= 'z')
        return IOTP_TYPE_APP;
    for (t = IOTP_TYPE_APP + 1; t < IOTP_TYPE_COUNT; t++) {
        const char *want = iotp_type_table[t].name;
        /* The first byte rules out all but one or two rows before any length is taken. */
        if (want[0] == name[0] && strlen(want) == len && memcmp(want, name, len) == 0)
            return (enum iotp_type)t;
    }
    return IOTP_TYPE_UNKNOWN;
}

const char *iotp_type_name(enum iotp_type type)
{
    if ((unsigned)type >= IOTP_TYPE_COUNT)
        return NULL;
    return iotp_type_table[type].name;
}

int iotp_type_allowed(enum iotp_type type, unsigned dir, unsigned state)
{
    const struct iotp_type_info *info;

    if ((unsigned)type >= IOTP_TYPE_COUNT)
        return 0;
    info = &iotp_type_table[type];
    return (info->directions & dir) != 0 && (info->states & state) != 0;
}
