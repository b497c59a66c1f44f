/*
 * iotp_types.c - the table of frame types and the lookup from a TYPE field to its enum.
 *
 * The lookup runs for every frame a server or device parses, so it narrows by first letter
 * and length before comparing bytes: one or two memcmp calls, no hashing, no allocation.
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

/* type if name[0..len) is its name, else IOTP_TYPE_UNKNOWN. */
static enum iotp_type match(const char *name, size_t len, enum iotp_type type)
{
    const char *want = iotp_type_table[type].name;
    return strlen(want) == len && memcmp(name, want, len) == 0 ? type : IOTP_TYPE_UNKNOWN;
}

enum iotp_type iotp_type_lookup(const char *name, size_t len)
{
    if (!name || len == 0)
        return IOTP_TYPE_UNKNOWN;
    if (name[0] >= 'a' && name[0] <= 'z')
        return IOTP_TYPE_APP;
    switch (name[0]) {
    case 'A':
        if (len == 3)
            return match(name, len, IOTP_TYPE_ACK);
        return len == 4 ? match(name, len, IOTP_TYPE_AUTH) : match(name, len, IOTP_TYPE_ALARM);
    case 'B':
        return match(name, len, IOTP_TYPE_BYE);
    case 'C':
        return match(name, len, IOTP_TYPE_CHALLENGE);
    case 'E':
        return len == 5 && name[1] == 'V' ? match(name, len, IOTP_TYPE_EVENT)
                                          : match(name, len, IOTP_TYPE_ERROR);
    case 'H':
        return match(name, len, IOTP_TYPE_HELLO);
    case 'L':
        return name[1] == 'O' ? match(name, len, IOTP_TYPE_LOGIN)
                              : match(name, len, IOTP_TYPE_LEASE);
    case 'N':
        return match(name, len, IOTP_TYPE_NOTICE);
    case 'O':
        return match(name, len, IOTP_TYPE_OK);
    case 'P':
        if (len == 8)
            return match(name, len, IOTP_TYPE_PRESENCE);
        return len == 4 && name[1] == 'I' ? match(name, len, IOTP_TYPE_PING)
                                          : match(name, len, IOTP_TYPE_PONG);
    case 'Q':
        return match(name, len, IOTP_TYPE_QUERY);
    case 'R':
        return match(name, len, IOTP_TYPE_ROW);
    case 'S':
        return match(name, len, IOTP_TYPE_SUBSCRIBE);
    case 'U':
        return match(name, len, IOTP_TYPE_UNSUBSCRIBE);
    case 'W':
        return match(name, len, IOTP_TYPE_WELCOME);
    default:
        return IOTP_TYPE_UNKNOWN;
    }
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
