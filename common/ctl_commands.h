/*
 * ctl_commands.h - the one command table shared by iotctl and iotd's control server.
 *
 * Each command is a phrase of words ("group member add"), its wire name is the words joined by
 * dots ("group.member.add"), and its parameters say how argv maps onto the JSON "args" object:
 * a parameter with a NULL flag is positional (in table order), otherwise it is an option
 * ("--tenant VALUE", or a bare "--force" for CTL_ARG_BOOL). iotctl parses argv with this table,
 * iotd validates the args object with the same table (ctl_args_validate) before dispatching on
 * the command's id, so the two cannot disagree about what a command takes.
 */
#ifndef CTL_COMMANDS_H
#define CTL_COMMANDS_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

enum ctl_command_id {
    CTL_STATUS,
    CTL_STATS,
    CTL_TENANT_ADD,
    CTL_TENANT_LIST,
    CTL_TENANT_SHOW,
    CTL_TENANT_REMOVE,
    CTL_TYPE_ADD,
    CTL_TYPE_LIST,
    CTL_TYPE_SHOW,
    CTL_TYPE_REMOVE,
    CTL_MESSAGE_ADD,
    CTL_MESSAGE_LIST,
    CTL_MESSAGE_REMOVE,
    CTL_DEVICE_ADD,
    CTL_DEVICE_LIST,
    CTL_DEVICE_SHOW,
    CTL_DEVICE_REMOVE,
    CTL_DEVICE_ENABLE,
    CTL_DEVICE_DISABLE,
    CTL_DEVICE_REKEY,
    CTL_DEVICE_KICK,
    CTL_DEVICE_HISTORY,
    CTL_DEVICE_IMPORT,
    CTL_DEVICE_EXPORT,
    CTL_USER_ADD,
    CTL_USER_LIST,
    CTL_USER_SHOW,
    CTL_USER_REMOVE,
    CTL_USER_PASSWD,
    CTL_USER_ROLE,
    CTL_USER_KICK,
    CTL_GROUP_ADD,
    CTL_GROUP_LIST,
    CTL_GROUP_SHOW,
    CTL_GROUP_REMOVE,
    CTL_GROUP_MEMBER_ADD,
    CTL_GROUP_MEMBER_REMOVE,
    CTL_ACCESS_GRANT,
    CTL_ACCESS_REVOKE,
    CTL_ACCESS_LIST,
    CTL_ACCESS_CHECK,
    CTL_CHANGES_LIST,
    CTL_SEND,
    CTL_AUDIT,
    CTL_WATCH,
    CTL_EVENTS,
    CTL_LEASE,
    CTL_ALARM_RULE_ADD,
    CTL_ALARM_RULE_LIST,
    CTL_ALARM_RULE_REMOVE,
    CTL_ALARM_LIST,
    CTL_ALARM_ACK,
    CTL_BACKUP,
    CTL_COMMAND_COUNT
};

enum ctl_arg_kind {
    CTL_ARG_STRING,     /* non-empty UTF-8 without control characters (C0 but tab, DEL, C1) */
    CTL_ARG_NAME,       /* identifier: [A-Za-z0-9_.-]{1,64}, first char alphanumeric */
    CTL_ARG_INT,        /* decimal integer in -2^53..2^53 (exact as a JSON number), sent as one */
    CTL_ARG_BOOL,       /* bare flag, sent as true */
    CTL_ARG_HEX,        /* even-length hex string */
    CTL_ARG_SECRET,     /* read by iotctl from a file (--password-file) or a TTY prompt */
    CTL_ARG_REST,       /* the remaining positional words, sent as an array of strings (may be
                         * empty; each without control characters); only as the last positional */
    CTL_ARG_PATH,       /* a file iotd opens: text as CTL_ARG_STRING, which iotctl makes absolute
                         * (from its working directory) before sending */
    CTL_ARG_LOCAL_FILE, /* a file iotctl itself reads or writes (a CTL_ARG_STRING): never sent,
                         * so the daemon never requires it */
    CTL_ARG_ROWS,       /* an array of up to CTL_ROWS_MAX flat objects iotctl builds from a file
                         * (device import); never given on the command line */
};
#define CTL_ROWS_MAX 1000
#define CTL_MAX_REST 32

struct ctl_param {
    const char *key;  /* key in the JSON args object */
    const char *flag; /* "--tenant", or NULL for a positional parameter */
    enum ctl_arg_kind kind;
    bool required;
    const char *metavar; /* shown in usage: "NAME", "HEX" */
    const char *help;
};

/* Flags of a command. */
#define CTL_MUTATES 0x1 /* changes the registry or ends live sessions; audited */
#define CTL_STREAM  0x2 /* answers with a stream */
/* With CTL_MUTATES: audited like a change, but the registry stays as it is (the kicks end live
 * sessions only), so nothing is reloaded or published. */
#define CTL_KEEPS_REGISTRY 0x4
/* The text form of the result is its "args" array, one item per line, and nothing else (send:
 * the device's answer, for shells and cron); --json shows the whole result. */
#define CTL_PRINTS_ARGS 0x8

#define CTL_MAX_PARAMS 14

/* Paged lists (events, audit, device list, alarm list, changes list): a page holds 1 to
 * CTL_PAGE_MAX rows (--limit); a result with more rows after it carries "next", the cursor
 * --after takes to continue. iotctl --all asks for pages of CTL_PAGE_ALL rows. */
#define CTL_PAGE_MAX      10000
#define CTL_PAGE_MAX_TEXT "10000"
#define CTL_PAGE_ALL      1000

struct ctl_command {
    enum ctl_command_id id;
    const char *words; /* "group member add" */
    const char *name;  /* "group.member.add" */
    unsigned flags;
    const char *summary;
    struct ctl_param params[CTL_MAX_PARAMS];
    /* For list-like results: the keys shown as columns of the human table, NULL-terminated.
     * NULL: the result object is printed as "key: value" lines. */
    const char *columns[10];
    const char *list_key; /* key of the array in the result for list commands ("tenants") */
};

extern const struct ctl_command ctl_commands[CTL_COMMAND_COUNT];

/* Find by wire name; NULL if unknown. */
const struct ctl_command *ctl_command_by_name(const char *name);

/* Find the command whose words are the longest prefix of argv[0..argc). Sets *consumed to the
 * number of words matched. NULL if none. */
const struct ctl_command *ctl_command_match(int argc, char *const argv[], int *consumed);

/* Number of params a command declares. */
size_t ctl_command_param_count(const struct ctl_command *cmd);

/* Check an args object against the command's parameters: required keys present, kinds right,
 * no unknown keys. On failure returns IOT_EINVAL and writes a sentence into err. */
int ctl_args_validate(const struct ctl_command *cmd, const cJSON *args, char *err, size_t errlen);

/* Check a value against a kind (used by iotctl before sending and by ctl_args_validate). */
bool ctl_value_valid(enum ctl_arg_kind kind, const char *value);

#endif
