/*
 * check.c - what iotd -t checks beyond the file's syntax (see check.h).
 *
 * The parser (base/config.c) refuses what one line can get wrong; config_finish what spans
 * keys. This is the rest of what start-up would trip over, found without starting: listen
 * hosts that do not resolve, TLS files that cannot be read, are not PEM or do not belong
 * together, a database URL iotd cannot parse or a password file it cannot read, a web root
 * that is not a directory. Each error names the key and says what is wrong in words.
 */
#include "core/check.h"

#include "db/db.h"
#include "iot_error.h"
#include "net/conn.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

/* The host part of a listen address the parser accepted ("h:p", "[v6]:p", ":p", "*:p"). */
static void address_host(const char *address, char *host, size_t hostlen)
{
    const char *colon = strrchr(address, ':');
    size_t n = colon ? (size_t)(colon - address) : strlen(address);
    const char *h = address;
    if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
        h++;
        n -= 2;
    }
    if (n >= hostlen)
        n = hostlen - 1;
    memcpy(host, h, n);
    host[n] = '\0';
}

static int check_listen(const char *key, const char *address, char *err, size_t errlen)
{
    char host[256];
    if (!address || !address[0])
        return IOT_OK;
    address_host(address, host, sizeof(host));
    if (!host[0] || strcmp(host, "*") == 0)
        return IOT_OK;
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host, NULL, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "%s: host '%s' does not resolve: %s", key, host, gai_strerror(gai));
        return IOT_EINVAL;
    }
    freeaddrinfo(res);
    return IOT_OK;
}

int iotd_check_config(const struct iotd_config *cfg, char *err, size_t errlen)
{
    char why[512];
    int rc;

    if ((rc = check_listen("[devices] listen", cfg->listen, err, errlen)) != 0 ||
        (rc = check_listen("[devices] tls_listen", cfg->tls_listen, err, errlen)) != 0 ||
        (rc = check_listen("[web] listen", cfg->web_listen, err, errlen)) != 0 ||
        (rc = check_listen("[web] tls_listen", cfg->web_tls_listen, err, errlen)) != 0)
        return rc;
    if (cfg->tls_listen && cfg->tls_listen[0] &&
        net_tls_check(cfg->tls_cert, cfg->tls_key, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "[devices] tls_cert/tls_key: %s", why);
        return IOT_EINVAL;
    }
    if (cfg->web_tls_listen && cfg->web_tls_listen[0] &&
        net_tls_check(cfg->web_tls_cert, cfg->web_tls_key, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "[web] tls_cert/tls_key: %s", why);
        return IOT_EINVAL;
    }
    if (strcmp(cfg->db_url, "local") != 0) {
        struct db_target target = {0};
        rc = db_target_parse(cfg->db_url, cfg->db_password_file, &target, why, sizeof(why));
        db_target_free(&target);
        if (rc != 0) {
            snprintf(err, errlen, "[database] url: %s", why);
            return IOT_EINVAL;
        }
    }
    struct stat st;
    bool web =
        (cfg->web_listen && cfg->web_listen[0]) || (cfg->web_tls_listen && cfg->web_tls_listen[0]);
    if (web && cfg->web_root) {
        if (stat(cfg->web_root, &st) != 0) {
            snprintf(err, errlen, "[web] root %s: %s", cfg->web_root, strerror(errno));
            return IOT_EINVAL;
        }
        if (!S_ISDIR(st.st_mode)) {
            snprintf(err, errlen, "[web] root %s: not a directory", cfg->web_root);
            return IOT_EINVAL;
        }
    }
    return IOT_OK;
}
