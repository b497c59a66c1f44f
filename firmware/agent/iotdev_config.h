/*
 * iotdev_config.h - iotdev's configuration file (iotdev(8)): `key = value` lines, `#` comments.
 */
#ifndef IOTDEV_CONFIG_H
#define IOTDEV_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "iotp/iotp_handshake.h"

struct iotdev_config {
    char host[256];
    uint16_t port;
    char id[64];
    char type[64];
    char fw[64];
    uint8_t key[IOTP_KEY_LEN];
    char tls_ca[4096]; /* empty: plain TCP; "system": the system's trust store */
    char commands_dir[4096];
    char state_dir[4096];
    char events[4096]; /* a FIFO, "-" for stdin, empty for none */
    unsigned command_timeout_s;
};

/* Read path into *c (defaults first). Returns 0, or -1 with a message naming the line in err. */
int iotdev_config_load(struct iotdev_config *c, const char *path, char *err, size_t errlen);

#endif
