/*
 * iotdev_config.c - parse iotdev's configuration file: one table of keys, each with its setter.
 */
#include "iotdev_config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iotp/iotp_hex.h"

#ifndef IOTDEV_VERSION
#define IOTDEV_VERSION "0"
#endif

/* A setter: 0, or -1 with the reason in err. */
typedef int (*setter_fn)(struct iotdev_config *c, const char *value, size_t off, size_t size,
                         char *err, size_t errlen);

static int set_string(struct iotdev_config *c, const char *value, size_t off, size_t size,
                      char *err, size_t errlen)
{
    if (strlen(value) >= size) {
        snprintf(err, errlen, "value longer than %zu bytes", size - 1);
        return -1;
    }
    memcpy((char *)c + off, value, strlen(value) + 1);
    return 0;
}

/* host:port; the host may be a [v6] literal. */
static int set_server(struct iotdev_config *c, const char *value, size_t off, size_t size,
                      char *err, size_t errlen)
{
    const char *colon = strrchr(value, ':');
    const char *host = value;
    size_t hlen;
    char *end;
    long port;

    (void)off;
    (void)size;
    if (!colon || colon == value)
        goto bad;
    hlen = (size_t)(colon - value);
    if (value[0] == '[' && hlen >= 2 && value[hlen - 1] == ']') {
        host++;
        hlen -= 2;
    }
    errno = 0;
    port = strtol(colon + 1, &end, 10);
    if (hlen == 0 || hlen >= sizeof(c->host) || *end || end == colon + 1 || port < 1 ||
        port > 65535)
        goto bad;
    memcpy(c->host, host, hlen);
    c->host[hlen] = '\0';
    c->port = (uint16_t)port;
    return 0;
bad:
    snprintf(err, errlen, "server must be HOST:PORT (port 1-65535)");
    return -1;
}

static int set_secret_file(struct iotdev_config *c, const char *value, size_t off, size_t size,
                           char *err, size_t errlen)
{
    char hex[2 * IOTP_KEY_LEN + 4];
    FILE *f = fopen(value, "r");
    size_t n;
    int rc = -1;

    (void)off;
    (void)size;
    if (!f) {
        snprintf(err, errlen, "secret_file %s: %s", value, strerror(errno));
        return -1;
    }
    n = fread(hex, 1, sizeof(hex) - 1, f);
    while (n > 0 && isspace((unsigned char)hex[n - 1]))
        n--;
    if (n != 2 * IOTP_KEY_LEN || iotp_hex_decode(hex, n, c->key, sizeof(c->key)) != IOTP_KEY_LEN)
        snprintf(err, errlen, "secret_file %s: not %d hex digits", value, 2 * IOTP_KEY_LEN);
    else
        rc = 0;
    fclose(f);
    return rc;
}

static int set_timeout(struct iotdev_config *c, const char *value, size_t off, size_t size,
                       char *err, size_t errlen)
{
    char *end;
    long v = strtol(value, &end, 10);

    (void)off;
    (void)size;
    if (*value == '\0' || *end || v < 1 || v > 86400) {
        snprintf(err, errlen, "command_timeout_s must be 1-86400");
        return -1;
    }
    c->command_timeout_s = (unsigned)v;
    return 0;
}

#define STR(field) offsetof(struct iotdev_config, field), sizeof(((struct iotdev_config *)0)->field)

static const struct {
    const char *key;
    setter_fn set;
    size_t off, size;
    int required;
} keys[] = {
    {"server", set_server, 0, 0, 1},
    {"id", set_string, STR(id), 1},
    {"type", set_string, STR(type), 1},
    {"secret_file", set_secret_file, 0, 0, 1},
    {"fw", set_string, STR(fw), 0},
    {"tls_ca", set_string, STR(tls_ca), 0},
    {"commands_dir", set_string, STR(commands_dir), 0},
    {"state_dir", set_string, STR(state_dir), 0},
    {"events", set_string, STR(events), 0},
    {"command_timeout_s", set_timeout, 0, 0, 0},
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static char *trim(char *s)
{
    char *e = s + strlen(s);

    while (isspace((unsigned char)*s))
        s++;
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

int iotdev_config_load(struct iotdev_config *c, const char *path, char *err, size_t errlen)
{
    char line[8192], why[512];
    int seen[NKEYS] = {0};
    unsigned lineno = 0;
    FILE *f;
    int rc = -1;

    memset(c, 0, sizeof(*c));
    snprintf(c->fw, sizeof(c->fw), "iotdev-%s", IOTDEV_VERSION);
    snprintf(c->commands_dir, sizeof(c->commands_dir), "/etc/iotdev/commands");
    snprintf(c->state_dir, sizeof(c->state_dir), "/var/lib/iotdev");
    c->command_timeout_s = 10;
    f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), f)) {
        char *eq, *key, *value;
        size_t k;

        lineno++;
        key = trim(line);
        if (*key == '\0' || *key == '#')
            continue;
        eq = strchr(key, '=');
        if (!eq) {
            snprintf(err, errlen, "%s:%u: expected key = value", path, lineno);
            goto out;
        }
        *eq = '\0';
        key = trim(key);
        value = trim(eq + 1);
        for (k = 0; k < NKEYS && strcmp(keys[k].key, key) != 0; k++)
            ;
        if (k == NKEYS) {
            snprintf(err, errlen, "%s:%u: unknown key '%s'", path, lineno, key);
            goto out;
        }
        if (keys[k].set(c, value, keys[k].off, keys[k].size, why, sizeof(why)) < 0) {
            snprintf(err, errlen, "%s:%u: %s", path, lineno, why);
            goto out;
        }
        seen[k] = 1;
    }
    for (size_t k = 0; k < NKEYS; k++) {
        if (keys[k].required && !seen[k]) {
            snprintf(err, errlen, "%s: '%s' is required", path, keys[k].key);
            goto out;
        }
    }
    rc = 0;
out:
    fclose(f);
    return rc;
}
