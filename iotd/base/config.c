/*
 * config.c - the INI configuration (see config.h).
 *
 * Every key is described once in a table (section, name, kind, offset, range or allowed
 * values), so parsing, unknown-key errors and iotd.conf(5) stay in step; libinih does the
 * lexing and calls on_key per line. Everything a single line can get wrong (a number out of
 * range, a value not among the allowed ones, a port that is not 0..65535) is refused while that
 * line is read, so the error names the file and line. config_finish checks what spans keys.
 */
#include "base/config.h"

#include "iot_error.h"
#include "iot_text.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* STRING: any text. UINT, MODE: a decimal (octal) number in min..max. ENUM: one of allowed.
 * ADDRESS: host:port ([v6]:port), the port 0..65535, or empty (off). */
enum key_kind { KEY_STRING, KEY_UINT, KEY_MODE, KEY_ENUM, KEY_ADDRESS };

struct config_key {
    const char *section, *name;
    enum key_kind kind;
    size_t offset;
    unsigned min, max;          /* for KEY_UINT and KEY_MODE */
    const char *const *allowed; /* for KEY_ENUM, NULL-terminated */
};

static const char *const levels[] = {"error", "warn", "info", "debug", NULL};
static const char *const targets[] = {"stderr", "syslog", NULL};
static const char *const duplicates[] = {"replace", "refuse", NULL};
static const char *const yes_no[] = {"yes", "no", NULL};
static const char *const audits[] = {"all", "denied", "none", NULL};
static const char *const placements[] = {"tenant", "spread", NULL};
static const char *const on_off[] = {"on", "off", NULL};

#define FIELD(field) offsetof(struct iotd_config, field)
#define STR(sec, key, field)                                                                       \
    {                                                                                              \
        sec, key, KEY_STRING, FIELD(field), 0, 0, NULL                                             \
    }
#define ADDR(sec, key, field)                                                                      \
    {                                                                                              \
        sec, key, KEY_ADDRESS, FIELD(field), 0, 0, NULL                                            \
    }
#define ENUM(sec, key, field, list)                                                                \
    {                                                                                              \
        sec, key, KEY_ENUM, FIELD(field), 0, 0, list                                               \
    }
#define UINT(sec, key, field, max)                                                                 \
    {                                                                                              \
        sec, key, KEY_UINT, FIELD(field), 0, max, NULL                                             \
    }
#define UINT_MIN(sec, key, field, min, max)                                                        \
    {                                                                                              \
        sec, key, KEY_UINT, FIELD(field), min, max, NULL                                           \
    }

static const struct config_key keys[] = {
    STR("iotd", "state_dir", state_dir),
    STR("iotd", "control_socket", control_socket),
    STR("iotd", "control_group", control_group),
    {"iotd", "control_mode", KEY_MODE, FIELD(control_mode), 0, 0777, NULL},
    UINT("iotd", "threads", threads, 256),
    ENUM("iotd", "log_level", log_level, levels),
    ENUM("iotd", "log_target", log_target, targets),
    UINT("iotd", "inbox_capacity", inbox_capacity, 1u << 24),
    ADDR("devices", "listen", listen),
    ADDR("devices", "tls_listen", tls_listen),
    STR("devices", "tls_cert", tls_cert),
    STR("devices", "tls_key", tls_key),
    ENUM("devices", "placement", placement, placements),
    UINT_MIN("devices", "handshake_timeout_ms", handshake_timeout_ms, 100, 600000),
    UINT_MIN("devices", "ping_s", ping_s, 1, 3600),
    UINT("devices", "keepalive_timeout_s", keepalive_timeout_s, 36000),
    ENUM("devices", "duplicate", duplicate, duplicates),
    UINT_MIN("devices", "max_frame", max_frame, 256, 65536),
    UINT_MIN("devices", "max_bad_frames", max_bad_frames, 1, 65535),
    UINT_MIN("devices", "output_limit", output_limit, 1, 1u << 30),
    UINT_MIN("devices", "auth_fail_limit", auth_fail_limit, 1, 100000),
    UINT_MIN("devices", "max_in_flight", max_in_flight, 1, 65535),
    UINT_MIN("devices", "max_timeout_ms", max_timeout_ms, 1, 3600000),
    ENUM("devices", "login_plain", login_plain, yes_no),
    ENUM("relay", "audit", relay_audit, audits),
    UINT("relay", "audit_retention_days", relay_audit_retention_days, 36500),
    UINT("events", "retention_days", events_retention_days, 36500),
    UINT_MIN("events", "spool_max_mb", events_spool_max_mb, 1, 1u << 20),
    UINT_MIN("events", "queue", events_queue, 1, 1u << 24),
    UINT_MIN("events", "batch_max", events_batch_max, 1, 100000),
    UINT_MIN("events", "flush_ms", events_flush_ms, 1, 10000),
    UINT_MIN("events", "lease_max_s", events_lease_max_s, 1, 86400 * 7),
    UINT_MIN("events", "subscriber_backlog_kb", events_backlog_kb, 1, 1u << 20),
    ADDR("web", "listen", web_listen),
    ADDR("web", "tls_listen", web_tls_listen),
    STR("web", "tls_cert", web_tls_cert),
    STR("web", "tls_key", web_tls_key),
    STR("web", "root", web_root),
    ENUM("web", "metrics", web_metrics, on_off),
    STR("web", "metrics_allow", web_metrics_allow),
    STR("web", "allowed_origins", web_allowed_origins),
    UINT_MIN("web", "head_timeout_ms", web_head_timeout_ms, 100, 600000),
    UINT_MIN("web", "idle_timeout_s", web_idle_timeout_s, 1, 86400),
    UINT_MIN("web", "session_ttl_s", web_session_ttl_s, 1, 86400 * 365),
    STR("database", "url", db_url),
    STR("database", "password_file", db_password_file),
    UINT("database", "threads", db_threads, 64),
    UINT("database", "queue", db_queue, 1u << 24),
    UINT_MIN("database", "timeout_ms", db_timeout_ms, 100, 600000),
    UINT_MIN("database", "statement_timeout_s", db_statement_timeout_s, 1, 86400),
    STR("cluster", "nats", cluster_nats),
    STR("cluster", "node", cluster_node),
    UINT_MIN("cluster", "heartbeat_ms", cluster_heartbeat_ms, 50, 60000),
    UINT_MIN("cluster", "node_timeout_ms", cluster_node_timeout_ms, 150, 600000),
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

/* Whether value is "host:port", "[v6]:port", ":port" or "*:port" with a port of 0..65535 (what
 * the listeners accept), or empty (off). */
static bool address_valid(const char *value)
{
    if (!value[0])
        return true;
    const char *colon = strrchr(value, ':');
    if (!colon)
        return false;
    size_t host_len = (size_t)(colon - value);
    if (value[0] == '[' ? host_len < 3 || value[host_len - 1] != ']'
                        : memchr(value, ':', host_len) != NULL)
        return false; /* an IPv6 address must be in brackets */
    const char *port = colon + 1;
    size_t digits = strspn(port, "0123456789");
    return digits >= 1 && digits <= 5 && port[digits] == '\0' && strtoul(port, NULL, 10) <= 65535;
}

/* Set key k of cfg from its text. IOT_OK, or IOT_EINVAL / IOT_ENOMEM with a sentence in err
 * that names the key and quotes the value (escaped: a config file may hold anything). */
static int set_key(struct iotd_config *cfg, const struct config_key *k, const char *value,
                   char *err, size_t errlen)
{
    void *field = (char *)cfg + k->offset;
    char shown[200];
    iot_text_escape(shown, sizeof(shown), value, strlen(value));
    switch (k->kind) {
    case KEY_ENUM:
        for (size_t i = 0; k->allowed[i]; i++)
            if (strcmp(value, k->allowed[i]) == 0)
                goto string;
        {
            char list[200] = "";
            for (size_t i = 0, n = 0; k->allowed[i] && n < sizeof(list); i++)
                n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s", i ? "|" : "",
                                      k->allowed[i]);
            snprintf(err, errlen, "[%s] %s: expected %s, got '%s'", k->section, k->name, list,
                     shown);
        }
        return IOT_EINVAL;
    case KEY_ADDRESS:
        if (!address_valid(value)) {
            snprintf(err, errlen,
                     "[%s] %s: expected host:port with a port of 0..65535 ([v6]:port, *:port, or "
                     "empty for off), got '%s'",
                     k->section, k->name, shown);
            return IOT_EINVAL;
        }
        goto string;
    case KEY_STRING:
    string:
        if (set_string(field, value))
            return IOT_OK;
        snprintf(err, errlen, "out of memory");
        return IOT_ENOMEM;
    case KEY_UINT:
    case KEY_MODE: {
        int base = k->kind == KEY_MODE ? 8 : 10;
        char *end = NULL;
        errno = 0;
        unsigned long v = strtoul(value, &end, base);
        /* strtoul takes a sign and leading blanks; a setting is digits only. */
        bool digits =
            value[0] && strspn(value, base == 8 ? "01234567" : "0123456789") == strlen(value);
        if (!digits || *end || errno || v < k->min || v > k->max) {
            snprintf(err, errlen, "[%s] %s: expected %s from %u to %u, got '%s'", k->section,
                     k->name, k->kind == KEY_MODE ? "an octal mode" : "a number", k->min, k->max,
                     shown);
            return IOT_EINVAL;
        }
        *(unsigned *)field = (unsigned)v;
        return IOT_OK;
    }
    }
    return IOT_EINVAL;
}

static const struct config_key *find_key(const char *section, const char *name)
{
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (strcmp(keys[i].section, section) == 0 && strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

int config_set(struct iotd_config *cfg, const char *section, const char *name, const char *value,
               char *err, size_t errlen)
{
    const struct config_key *k = find_key(section, name);
    if (!k) {
        snprintf(err, errlen, "unknown key '%s' in section [%s]", name, section);
        return IOT_EINVAL;
    }
    return set_key(cfg, k, value, err, errlen);
}

/* libinih callback: returns 1 to continue, 0 to stop with the sentence left in st->err. */
static int on_key(void *user, const char *section, const char *name, const char *value)
{
    struct parse_state *st = user;
    if (st->err[0])
        return 0; /* libinih goes on after an error; keep the sentence of the first one */
    return config_set(st->cfg, section, name, value, st->err, st->errlen) == IOT_OK;
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
    cfg->db_timeout_ms = 5000;
    cfg->db_statement_timeout_s = 30;
    cfg->inbox_capacity = 65536;
    cfg->cluster_heartbeat_ms = 1000;
    cfg->cluster_node_timeout_ms = 3000;
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

/* The largest configuration file read: far beyond any real one, small enough to read whole. */
#define CONFIG_MAX_BYTES (1u << 20)

int config_load(struct iotd_config *cfg, const char *path, char *err, size_t errlen)
{
    struct parse_state st = {cfg, err, errlen, path};
    struct stat sb;
    char *text = NULL;
    int rc = IOT_EINVAL;
    FILE *f = fopen(path, "r");

    err[0] = '\0';
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        goto out;
    }
    /* libinih would read a directory as an empty file and a NUL as the end of its line. */
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        goto out;
    }
    if (sb.st_size > CONFIG_MAX_BYTES) {
        snprintf(err, errlen, "%s: larger than %u bytes", path, CONFIG_MAX_BYTES);
        goto out;
    }
    text = malloc((size_t)sb.st_size + 1);
    if (!text) {
        snprintf(err, errlen, "%s: out of memory", path);
        rc = IOT_ENOMEM;
        goto out;
    }
    size_t len = fread(text, 1, (size_t)sb.st_size, f);
    if (ferror(f)) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        goto out;
    }
    text[len] = '\0';
    const char *nul = memchr(text, '\0', len);
    if (nul) {
        int line = 1;
        for (const char *p = text; p < nul; p++)
            line += *p == '\n';
        snprintf(err, errlen, "%s:%d: a NUL byte", path, line);
        goto out;
    }
    rc = finish_parse(&st, ini_parse_string(text, on_key, &st));
out:
    free(text);
    if (f)
        fclose(f);
    return rc;
}

int config_load_string(struct iotd_config *cfg, const char *text, char *err, size_t errlen)
{
    struct parse_state st = {cfg, err, errlen, "<string>"};
    err[0] = '\0';
    return finish_parse(&st, ini_parse_string(text, on_key, &st));
}

/* A node name: [a-z0-9_-]{1,32}, so that it is a NATS subject token and a log word. */
static bool node_name_valid(const char *name)
{
    size_t n = strlen(name);
    return n >= 1 && n <= 32 && strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

/* [cluster]: nothing to check without nats (a single node, whatever else the section says);
 * with it, every server is a nats:// or tls:// URL, the node has a valid name (the host name by
 * default) and a node is declared dead only after more than one missed heartbeat. */
static int cluster_finish(struct iotd_config *cfg, char *err, size_t errlen)
{
    if (!cfg->cluster_nats || !cfg->cluster_nats[0])
        return IOT_OK;
    char *list = strdup(cfg->cluster_nats), *save = NULL;
    if (!list)
        return IOT_ENOMEM;
    int rc = IOT_OK;
    for (char *url = strtok_r(list, ", \t", &save); url; url = strtok_r(NULL, ", \t", &save)) {
        if (strncmp(url, "nats://", 7) != 0 && strncmp(url, "tls://", 6) != 0) {
            char shown[200];
            iot_text_escape(shown, sizeof(shown), url, strlen(url));
            snprintf(err, errlen, "[cluster] nats: expected nats://host:port (or tls://), got '%s'",
                     shown);
            rc = IOT_EINVAL;
            break;
        }
    }
    free(list);
    if (rc != IOT_OK)
        return rc;
    if (!cfg->cluster_node || !cfg->cluster_node[0]) {
        char host[256] = "";
        gethostname(host, sizeof(host) - 1);
        host[strcspn(host, ".")] = '\0'; /* the short name, lower case */
        for (char *c = host; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        free(cfg->cluster_node);
        if (!(cfg->cluster_node = strdup(host)))
            return IOT_ENOMEM;
    }
    if (!node_name_valid(cfg->cluster_node)) {
        char shown[200];
        iot_text_escape(shown, sizeof(shown), cfg->cluster_node, strlen(cfg->cluster_node));
        snprintf(err, errlen,
                 "[cluster] node: expected 1 to 32 of a-z 0-9 _ - (the host name by default), "
                 "got '%s'",
                 shown);
        return IOT_EINVAL;
    }
    if (cfg->cluster_node_timeout_ms < 2 * cfg->cluster_heartbeat_ms) {
        snprintf(err, errlen,
                 "[cluster] node_timeout_ms must be at least twice heartbeat_ms (one lost "
                 "heartbeat must not declare a node dead)");
        return IOT_EINVAL;
    }
    return IOT_OK;
}

int config_finish(struct iotd_config *cfg, char *err, size_t errlen)
{
    /* Values and ranges were checked line by line (set_key); what is left spans keys. */
    if (!cfg->state_dir || cfg->state_dir[0] != '/') {
        snprintf(err, errlen, "[iotd] state_dir must be an absolute path");
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
    /* The web's TLS uses the device port's certificate unless it has its own: one host name,
     * one certificate is the common case. */
    if (cfg->web_tls_listen && cfg->web_tls_listen[0]) {
        if (!cfg->web_tls_cert && cfg->tls_cert && !(cfg->web_tls_cert = strdup(cfg->tls_cert)))
            return IOT_ENOMEM;
        if (!cfg->web_tls_key && cfg->tls_key && !(cfg->web_tls_key = strdup(cfg->tls_key)))
            return IOT_ENOMEM;
        if (!cfg->web_tls_cert || !cfg->web_tls_key) {
            snprintf(err, errlen,
                     "[web] tls_listen needs tls_cert and tls_key (in [web], or [devices]')");
            return IOT_EINVAL;
        }
    }
    return cluster_finish(cfg, err, errlen);
}

void config_free(struct iotd_config *cfg)
{
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (keys[i].kind == KEY_STRING || keys[i].kind == KEY_ENUM || keys[i].kind == KEY_ADDRESS)
            free(*(char **)((char *)cfg + keys[i].offset));
    *cfg = (struct iotd_config){0};
}
