/*
 * sim_devices_file.h - the list of devices iotsim simulates, loaded from iotctl's JSON output.
 *
 * A device file is a sequence of JSON values: one object per line (what appending
 * `iotctl --json device add` outputs gives, whether compact or pretty-printed), a JSON array
 * of objects, or an object with a "devices" array. Each device object needs "id" and "secret"
 * (64 hex digits); "type", "auth" ("hmac" or "atecc508a") and "serial" (18 hex digits, needed
 * for atecc508a) are optional. Anything else in the object is ignored.
 */
#ifndef SIM_DEVICES_FILE_H
#define SIM_DEVICES_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "iotp/iotp.h"

/* One provisioned device as the simulator needs it. */
struct sim_device_entry {
    char id[IOTP_MAX_ADDRESS_LEN + 1];
    char type[IOTP_MAX_HELLO_VALUE_LEN + 1]; /* "" if the file gave none */
    enum iotp_alg alg;
    uint8_t key[IOTP_KEY_LEN];
    uint8_t serial[IOTP_ATECC_SERIAL_LEN]; /* atecc508a only */
};

/* A growable array of entries; zero-initialise before first use. */
struct sim_device_list {
    struct sim_device_entry *entries;
    size_t count;
    size_t cap;
};

/* Append the devices in text (len bytes, need not be NUL-terminated) to list. origin names the
 * source in error messages ("devices.jsonl", "-"). Returns 0, or -1 with a one-line reason in
 * err (errlen bytes) naming the origin and line; on error the list keeps the devices appended
 * before the bad one. */
int sim_devices_parse(struct sim_device_list *list, const char *text, size_t len,
                      const char *origin, char *err, size_t errlen);

/* Read path ("-" = standard input) whole and parse it as above. Returns 0 or -1 with err. */
int sim_devices_load_file(struct sim_device_list *list, const char *path, char *err, size_t errlen);

/* Final checks over the whole list, then apply the command line: keep only the first limit
 * entries (0 = all); type_override, when not NULL, replaces every entry's type. Fails (-1 with
 * err) for an empty list, a device id listed twice (two connections of one device would keep
 * replacing each other in iotd) or an entry left without a type. */
int sim_devices_finish(struct sim_device_list *list, size_t limit, const char *type_override,
                       char *err, size_t errlen);

/* Release the entries (wiping the keys) and reset list to empty. */
void sim_devices_free(struct sim_device_list *list);

#endif
