/*
 * iotp_types.c - the table of frame types and the lookup from a TYPE field to its enum.
 *
 * The names are one string and the rules a byte per type (a device's flash: no pointer table).
 * The lookup runs for every frame a server or device parses: a walk over the 20 names with a
 * length test before each comparison, no hashing, no allocation; not a switch over letters.
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

/* The rules of a type in one byte: its directions in the low nibble, its states above. */
#define RULE(dirs, states) (uint8_t)((dirs) | (states) << 4)

/* The names of HELLO..PRESENCE in enum order, each ended by its NUL: one string and no pointer
 * table (4 bytes a row on a 32-bit device, 8 on a host). */
static const char names[] = "HELLO\0CHALLENGE\0AUTH\0WELCOME\0LOGIN\0OK\0ERROR\0PING\0PONG\0"
                            "EVENT\0ALARM\0ACK\0BYE\0SUBSCRIBE\0UNSUBSCRIBE\0LEASE\0NOTICE\0"
                            "QUERY\0ROW\0PRESENCE";

static const uint8_t rules[IOTP_TYPE_COUNT] = {
    [IOTP_TYPE_UNKNOWN] = 0,
    [IOTP_TYPE_APP] = RULE(ANY_DIR, DEV | CLI),
    [IOTP_TYPE_HELLO] = RULE(D2S, HS),
    [IOTP_TYPE_CHALLENGE] = RULE(S2D, HS),
    [IOTP_TYPE_AUTH] = RULE(D2S, HS),
    [IOTP_TYPE_WELCOME] = RULE(S2D | S2C, HS),
    [IOTP_TYPE_LOGIN] = RULE(C2S, HS),
    /* Answers to requests; the server also refuses a handshake with ERROR. */
    [IOTP_TYPE_OK] = RULE(ANY_DIR, DEV | CLI),
    [IOTP_TYPE_ERROR] = RULE(ANY_DIR, HS | DEV | CLI),
    [IOTP_TYPE_PING] = RULE(ANY_DIR, DEV | CLI),
    [IOTP_TYPE_PONG] = RULE(ANY_DIR, DEV | CLI),
    /* Pushed by a device, and forwarded to the clients that subscribed. */
    [IOTP_TYPE_EVENT] = RULE(D2S | S2C, DEV | CLI),
    [IOTP_TYPE_ALARM] = RULE(D2S | S2C, DEV | CLI),
    /* A device's event stored (to the device), or an alarm acknowledged (from a client). */
    [IOTP_TYPE_ACK] = RULE(S2D | C2S, DEV | CLI),
    [IOTP_TYPE_BYE] = RULE(ANY_DIR, HS | DEV | CLI),
    [IOTP_TYPE_SUBSCRIBE] = RULE(C2S, CLI),
    [IOTP_TYPE_UNSUBSCRIBE] = RULE(C2S, CLI),
    [IOTP_TYPE_LEASE] = RULE(C2S, CLI),
    [IOTP_TYPE_NOTICE] = RULE(S2C, CLI),
    /* A client's paged list (devices, catalogue, history, alarms, commands): ROWs, then OK. */
    [IOTP_TYPE_QUERY] = RULE(C2S, CLI),
    [IOTP_TYPE_ROW] = RULE(S2C, CLI),
    /* A device came online or went offline, to subscribers that asked (presence=1). */
    [IOTP_TYPE_PRESENCE] = RULE(S2C, CLI),
};

enum iotp_type iotp_type_lookup(const char *name, size_t len)
{
    const char *want = names;
    unsigned t;

    if (!name || len == 0)
        return IOTP_TYPE_UNKNOWN;
    if (name[0] >= 'a' && name[0] <= 'z')
        return IOTP_TYPE_APP;
    for (t = IOTP_TYPE_HELLO; t < IOTP_TYPE_COUNT; t++) {
        size_t want_len = strlen(want);
        if (want_len == len && memcmp(want, name, len) == 0)
            return (enum iotp_type)t;
        want += want_len + 1;
    }
    return IOTP_TYPE_UNKNOWN;
}

const char *iotp_type_name(enum iotp_type type)
{
    const char *name = names;
    unsigned t;

    if (type < IOTP_TYPE_HELLO || type >= IOTP_TYPE_COUNT)
        return NULL;
    for (t = IOTP_TYPE_HELLO; t < (unsigned)type; t++)
        name += strlen(name) + 1;
    return name;
}

int iotp_type_allowed(enum iotp_type type, unsigned dir, unsigned state)
{
    unsigned rule;

    if ((unsigned)type >= IOTP_TYPE_COUNT)
        return 0;
    rule = rules[type];
    return (rule & dir & 0x0F) != 0 && (rule >> 4 & state) != 0;
}
