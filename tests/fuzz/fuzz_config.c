/*
 * fuzz_config.c - libFuzzer target for iotd's configuration parser (iotd/base/config.c over
 * libinih): the input is an iotd.conf, parsed from memory with config_load_string over the
 * defaults and then checked by config_finish, as at start-up and on SIGHUP.
 *
 * Properties checked: each call returns IOT_OK or a negative code with a non-empty message;
 * after a successful finish the bounds config_finish promises hold (ping_s > 0, max_frame >=
 * 256, handshake_timeout_ms >= 100, a control socket path that fits a sockaddr_un); a second
 * load over the same struct (as a reload does) leaks nothing (ASan's leak check).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/config.h"
#include "iot_error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
    if (!ok)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct iotd_config cfg;
    char err[1024];
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0'; /* the file's text up to its first NUL, as a C string */

    config_defaults(&cfg);
    for (int pass = 0; pass < 2; pass++) {
        int rc = config_load_string(&cfg, text, err, sizeof(err));
        check(rc == IOT_OK || (rc < 0 && err[0] != '\0'));
        if (rc != IOT_OK)
            break;
        rc = config_finish(&cfg, err, sizeof(err));
        check(rc == IOT_OK || (rc < 0 && err[0] != '\0'));
        if (rc != IOT_OK)
            break;
        check(cfg.ping_s > 0 && cfg.max_frame >= 256 && cfg.handshake_timeout_ms >= 100);
        check(cfg.control_socket && strlen(cfg.control_socket) < 108);
        check(cfg.state_dir && cfg.state_dir[0] == '/');
        check(cfg.keepalive_timeout_s > cfg.ping_s && cfg.threads > 0 && cfg.db_threads > 0);
        check(cfg.inbox_capacity >= 16);
    }
    config_free(&cfg);
    free(text);
    return 0;
}
