/*
 * config.c - the INI configuration (see config.h).
 *
 * Every key is described once in a table (section, name, kind, offset), so parsing, unknown-key
 * errors and iotd.conf(5) stay in step; libinih does the lexing and calls on_key per line.
 */
#include "base/config.h"

#include "iot_error.h"

#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum key_kind { KEY_STRING, KEY_UINT, KEY_MODE };

struct config_key {
    const char *section, *name;
    enum key_kind kind;
    size_t offset;
    unsigned max; /* for KEY_UINT */
};

#define STR(sec, key, field)                                                                       \
    {                                                                                              \
        sec, key, KEY_STRING, offsetof(struct iotd_config, field), 0                               \
    }
#define UINT(sec, key, field, max)                                                                 \
    {                                                                                              \
        sec, key, KEY_UINT, offsetof(struct iotd_config, field), max                               \
    }

static const struct config_key keys[] = {
    STR("iotd", "state_dir", state_dir),
    STR("iotd", "control_socket", control_socket),
    STR("iotd", "control_group", control_group),
    {"iotd", "control_mode", KEY_MODE, offsetof(struct iotd_config, control_mode), 0777},
    UINT("iotd", "threads", threads, 256),
    STR("iotd", "log_level", log_level),
    STR("iotd", "log_target", log_target),
    UINT("iotd", "inbox_capacity", inbox_capacity, 1u << 24),
    STR("devices", "listen", listen),
    STR("devices", "tls_listen", tls_listen),
    STR("devices", "tls_cert", tls_cert),
    STR("devices", "tls_key", tls_key),
    STR("devices", "placement", placement),
    UINT("devices", "handshake_timeout_ms", handshake_timeout_ms, 600000),
    UINT("devices", "ping_s", ping_s, 3600),
    UINT("devices", "keepalive_timeout_s", keepalive_timeout_s, 36000),
    STR("devices", "duplicate", duplicate),
    UINT("devices", "max_frame", max_frame, 65536),
    UINT("devices", "max_bad_frames", max_bad_frames, 65535),
    UINT("devices", "output_limit", output_limit, 1u << 30),
    UINT("devices", "auth_fail_limit", auth_fail_limit, 100000),
    UINT("devices", "max_in_flight", max_in_flight, 65535),
    UINT("devices", "max_timeout_ms", max_timeout_ms, 3600000),
    STR("devices", "login_plain", login_plain),
    STR("relay", "audit", relay_audit),
    UINT("relay", "audit_retention_days", relay_audit_retention_days, 36500),
    UINT("events", "retention_days", events_retention_days, 36500),
    UINT("events", "spool_max_mb", events_spool_max_mb, 1u << 20),
    UINT("events", "queue", events_queue, 1u << 24),
    UINT("events", "batch_max", events_batch_max, 100000),
    UINT("events", "flush_ms", events_flush_ms, 10000),
    UINT("events", "lease_max_s", events_lease_max_s, 86400 * 7),
    UINT("events", "subscriber_backlog_kb", events_backlog_kb, 1u << 20),
    STR("web", "listen", web_listen),
    STR("web", "root", web_root),
    STR("web", "metrics", web_metrics),
    STR("web", "metrics_allow", web_metrics_allow),
    STR("web", "allowed_origins", web_allowed_origins),
    UINT("web", "head_timeout_ms", web_head_timeout_ms, 600000),
    UINT("web", "idle_timeout_s", web_idle_timeout_s, 86400),
    UINT("web", "session_ttl_s", web_session_ttl_s, 86400 * 365),
    STR("database", "url", db_url),
    STR("database", "password_file", db_password_file),
    UINT("database", "threads", db_threads, 64),
    UINT("database", "queue", db_queue, 1u << 24),
};

struct parse_state {
    struct iotd_config *cfg;
    char *err;
    size_t errlen;
    const char *source;
};

static int set_string(char **field, const char *value)
{
    char *copy = strdup(value);
    if (!copy)
        return 0;
    free(*field);
    *field = copy;
    return 1;
}

/* libinih callback: returns 1 to continue, 0 to stop with the sentence left in st->err. */
static int on_key(void *user, const char *section, const char *name, const char *value)
{
    struct parse_state *st = user;
    if (st->err[0])
        return 0; /* libinih goes on after an error; keep the sentence of the first one */
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const struct config_key *k = &keys[i];
        if (strcmp(k->section, section) != 0 || strcmp(k->name, name) != 0)
            continue;
        void *field = (char *)st->cfg + k->offset;
        if (k->kind == KEY_STRING) {
            if (set_string(field, value))
                return 1;
            snprintf(st->err, st->errlen, "out of memory");
            return 0;
        }
        char *end = NULL;
        unsigned long v = strtoul(value, &end, k->kind == KEY_MODE ? 8 : 10);
        if (!*value || *end || v > k->max) {
            snprintf(st->err, st->errlen, "[%s] %s: expected %s up to %u, got '%s'", section, name,
                     k->kind == KEY_MODE ? "an octal mode" : "a number", k->max, value);
            return 0;
        }
        *(unsigned *)field = (unsigned)v;
        return 1;
    }
    snprintf(st->err, st->errlen, "unknown key '%s' in section [%s]", name, section);
    return 0;
}

void config_defaults(struct iotd_config *cfg)
{
    *cfg = (struct iotd_config){0};
    cfg->state_dir = strdup("/var/lib/iotd");
    cfg->log_level = strdup("info");
    cfg->log_target = strdup("stderr");
    cfg->listen = strdup("0.0.0.0:7800");
    cfg->db_url = strdup("local");
    cfg->web_root = strdup(IOTD_WEB_ROOT);
    cfg->web_metrics = strdup("on");
    cfg->web_head_timeout_ms = 10000;
    cfg->web_idle_timeout_s = 60;
    cfg->web_session_ttl_s = 86400;
    cfg->duplicate = strdup("replace");
    cfg->handshake_timeout_ms = 10000;
    cfg->ping_s = 30;
    cfg->max_frame = 4096;
    cfg->max_bad_frames = 8;
    cfg->output_limit = 1024 * 1024;
    cfg->auth_fail_limit = 5;
    cfg->max_in_flight = 16;
    cfg->max_timeout_ms = 60000;
    cfg->login_plain = strdup("no");
    cfg->relay_audit = strdup("all");
    cfg->placement = strdup("tenant");
    cfg->relay_audit_retention_days = 30;
    cfg->events_retention_days = 30;
    cfg->events_spool_max_mb = 256;
    cfg->events_queue = 65536;
    cfg->events_batch_max = 1000;
    cfg->events_flush_ms = 5;
    cfg->events_lease_max_s = 3600;
    cfg->events_backlog_kb = 1024;
    cfg->db_threads = 2;
    cfg->db_queue = 4096;
    cfg->inbox_capacity = 65536;
}

static int finish_parse(struct parse_state *st, int rc)
{
    if (rc == 0)
        return IOT_OK;
    if (rc == -1)
        snprintf(st->err, st->errlen, "%s: cannot open: %m", st->source);
    else if (rc == -2)
        snprintf(st->err, st->errlen, "%s: out of memory", st->source);
    else {
        /* libinih reports the first failing line; on_key said what was wrong with it. */
        char what[400];
        snprintf(what, sizeof(what), "%s", st->err[0] ? st->err : "syntax error");
        snprintf(st->err, st->errlen, "%s:%d: %s", st->source, rc, what);
    }
    return IOT_EINVAL;
}

int config_load(struct iotd_config *cfg, const char *path, char *err, size_t errlen)
{
    struct parse_state st = {cfg, err, errlen, path};
    err[0] = '\0';
    return finish_parse(&st, ini_parse(path, on_key, &st));
}

int config_load_string(struct iotd_config *cfg, const char *text, char *err, size_t errlen)
{
    struct parse_state st = {cfg, err, errlen, "<string>"};
    err[0] = '\0';
    return finish_parse(&st, ini_parse_string(text, on_key, &st));
}

static int check_one_of(const char *what, const char *value, const char *const *allowed, char *err,
                        size_t errlen)
{
    for (size_t i = 0; allowed[i]; i++)
        if (strcmp(value, allowed[i]) == 0)
            return IOT_OK;
    snprintf(err, errlen, "%s: unknown value '%s'", what, value);
    return IOT_EINVAL;
}

int config_finish(struct iotd_config *cfg, char *err, size_t errlen)
{
    static const char *const levels[] = {"error", "warn", "info", "debug", NULL};
    static const char *const targets[] = {"stderr", "syslog", NULL};
    static const char *const duplicates[] = {"replace", "refuse", NULL};
    static const char *const yes_no[] = {"yes", "no", NULL};
    static const char *const audits[] = {"all", "denied", "none", NULL};
    static const char *const placements[] = {"tenant", "spread", NULL};
    static const char *const on_off[] = {"on", "off", NULL};
    int rc;

    if (!cfg->state_dir || cfg->state_dir[0] != '/') {
        snprintf(err, errlen, "[iotd] state_dir must be an absolute path");
        return IOT_EINVAL;
    }
    if ((rc = check_one_of("[iotd] log_level", cfg->log_level, levels, err, errlen)) != 0 ||
        (rc = check_one_of("[iotd] log_target", cfg->log_target, targets, err, errlen)) != 0 ||
        (rc = check_one_of("[devices] duplicate", cfg->duplicate, duplicates, err, errlen)) != 0 ||
        (rc = check_one_of("[devices] login_plain", cfg->login_plain, yes_no, err, errlen)) != 0 ||
        (rc = check_one_of("[relay] audit", cfg->relay_audit, audits, err, errlen)) != 0 ||
        (rc = check_one_of("[devices] placement", cfg->placement, placements, err, errlen)) != 0 ||
        (rc = check_one_of("[web] metrics", cfg->web_metrics, on_off, err, errlen)) != 0)
        return rc;
    if (cfg->ping_s == 0 || cfg->max_frame < 256 || cfg->handshake_timeout_ms < 100) {
        snprintf(err, errlen,
                 "[devices] ping_s must be > 0, max_frame >= 256, "
                 "handshake_timeout_ms >= 100");
        return IOT_EINVAL;
    }
    if (cfg->web_head_timeout_ms < 100 || cfg->web_idle_timeout_s == 0 ||
        cfg->web_session_ttl_s == 0) {
        snprintf(err, errlen,
                 "[web] head_timeout_ms must be >= 100, idle_timeout_s and session_ttl_s > 0");
        return IOT_EINVAL;
    }
    if (cfg->keepalive_timeout_s == 0)
        cfg->keepalive_timeout_s = cfg->ping_s * 5 / 2;
    if (cfg->keepalive_timeout_s <= cfg->ping_s) {
        snprintf(err, errlen, "[devices] keepalive_timeout_s must be longer than ping_s");
        return IOT_EINVAL;
    }
    if (!cfg->control_socket || !cfg->control_socket[0]) {
        char *path = NULL;
        if (asprintf(&path, "%s/control.sock", cfg->state_dir) < 0)
            return IOT_ENOMEM;
        free(cfg->control_socket);
        cfg->control_socket = path;
    }
    if (strlen(cfg->control_socket) >= 108) {
        snprintf(err, errlen, "[iotd] control_socket: path longer than a Unix socket allows");
        return IOT_EINVAL;
    }
    if (cfg->control_mode == 0)
        cfg->control_mode = cfg->control_group ? 0660 : 0600;
    if (cfg->threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        cfg->threads = n > 0 ? (unsigned)n : 1;
    }
    if (cfg->db_threads == 0)
        cfg->db_threads = 1;
    if (cfg->inbox_capacity < 16)
        cfg->inbox_capacity = 16;
    if (cfg->tls_listen && cfg->tls_listen[0] && (!cfg->tls_cert || !cfg->tls_key)) {
        snprintf(err, errlen, "[devices] tls_listen needs tls_cert and tls_key");
        return IOT_EINVAL;
    }
    return IOT_OK;
}

void config_free(struct iotd_config *cfg)
{
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (keys[i].kind == KEY_STRING)
            free(*(char **)((char *)cfg + keys[i].offset));
    *cfg = (struct iotd_config){0};
}
