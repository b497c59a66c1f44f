/*
 * config.h - iotd's configuration: an INI file (documented in iotd.conf(5)) parsed with libinih
 * into one struct with every default filled in. Unknown sections or keys are errors with their
 * line number: a typo in a config file should stop the daemon, not be silently ignored.
 */
#ifndef IOTD_CONFIG_H
#define IOTD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

struct iotd_config {
    /* [iotd] */
    char *state_dir;       /* default /var/lib/iotd */
    char *control_socket;  /* default $state_dir/control.sock */
    char *control_group;   /* group allowed on the control socket besides root/our uid; NULL */
    unsigned control_mode; /* socket file mode, default 0600 (0660 when control_group is set) */
    unsigned threads;      /* io threads; 0 = one per core */
    char *log_level;       /* error|warn|info|debug, default info */
    char *log_target;      /* stderr|syslog, default stderr */
    unsigned inbox_capacity;
    /* [devices] */
    char *listen;     /* host:port or empty (off); default 0.0.0.0:7800 */
    char *tls_listen; /* host:port or empty (off) */
    char *tls_cert, *tls_key;
    unsigned handshake_timeout_ms; /* HELLO..WELCOME deadline, default 10000 */
    unsigned ping_s;               /* keepalive period asked of devices, default 30 */
    unsigned keepalive_timeout_s;  /* silence before a device is dropped, default 75 */
    char *duplicate;               /* second connection of a device: replace|refuse */
    unsigned max_frame;            /* frame limit in bytes, default 4096 */
    unsigned max_bad_frames;       /* malformed frames before a disconnect, default 8 */
    unsigned output_limit;         /* per-connection output bound in bytes, default 1 MiB */
    unsigned auth_fail_limit;      /* failures per minute before an address/id is blocked */
    unsigned max_in_flight;        /* relayed requests waiting at one device, default 16 */
    unsigned max_timeout_ms;       /* bound of any request's timeout, default 60000 */
    char *login_plain;             /* "yes": LOGIN over plain TCP from non-loopback peers */
    char *placement;               /* tenant|spread: io thread of a plain TCP connection */
    /* [relay] */
    char *relay_audit;                   /* all|denied|none, default all */
    unsigned relay_audit_retention_days; /* days of audit kept (partitions dropped), 0 = forever */
    /* [events] */
    unsigned events_retention_days; /* days of events kept (partitions dropped), 0 = forever */
    unsigned events_spool_max_mb;   /* spool bound while MariaDB is away, default 256 */
    unsigned events_queue;          /* events waiting in memory for the store, default 65536 */
    unsigned events_batch_max;      /* events per transaction, default 1000 */
    unsigned events_flush_ms;       /* longest a batch stays open, default 5 */
    unsigned events_lease_max_s;    /* longest lease a client may hold, default 3600 */
    unsigned events_backlog_kb;     /* output a subscriber may leave unread before items drop */
    /* [web] */
    char *web_listen;                 /* host:port or empty (off, the default) */
    char *web_tls_listen;             /* host:port for HTTPS and WSS, or empty (off, the default) */
    char *web_tls_cert, *web_tls_key; /* its PEM files; unset: [devices] tls_cert/tls_key */
    char *web_root;                   /* static files, default the installed share/iotd/web */
    char *web_metrics;                /* on|off: serve /metrics, default on */
    char *web_metrics_allow;          /* addresses/networks allowed /metrics; NULL or empty: any */
    char *web_allowed_origins;        /* Origins allowed on /ws; NULL or empty: the own origin */
    unsigned web_head_timeout_ms;     /* a request head must arrive within this, default 10000 */
    unsigned web_idle_timeout_s;      /* idle keep-alive connections are closed after, default 60 */
    unsigned web_session_ttl_s; /* a browser's session cookie lives this long, default 86400 */
    /* [database] */
    char *db_url; /* "local" or mariadb://... */
    char *db_password_file;
    unsigned db_threads;    /* default 2 */
    unsigned db_queue;      /* db job queue bound, default 4096 */
    unsigned db_timeout_ms; /* deadline of database work (connect, event batches), default 5000 */
    unsigned db_statement_timeout_s; /* a hung server fails a statement after this, default 30 */
    /* [cluster] (iotd-cluster(7)); no nats: a single node, no NATS at all */
    char *cluster_nats;               /* NATS servers, comma-separated nats:// URLs, or NULL */
    char *cluster_node;               /* this node's name, default the short host name */
    unsigned cluster_heartbeat_ms;    /* how often this node announces itself, default 1000 */
    unsigned cluster_node_timeout_ms; /* silence after which a node is dead, default 3000 */
};

/* Set every default (state_dir /var/lib/iotd, listen 0.0.0.0:7800, url local...). */
void config_defaults(struct iotd_config *cfg);
/* Parse path over the defaults. IOT_EINVAL with "file:line: sentence" in err. */
int config_load(struct iotd_config *cfg, const char *path, char *err, size_t errlen);
/* Parse an in-memory INI text (for tests and -c -). */
int config_load_string(struct iotd_config *cfg, const char *text, char *err, size_t errlen);
/* Fill the derived defaults (control_socket from state_dir) and check values. */
/* Set one key as a line of the file would (the same checks); for command-line overrides such
 * as iotd -l. IOT_OK, or IOT_EINVAL / IOT_ENOMEM with a sentence in err. */
int config_set(struct iotd_config *cfg, const char *section, const char *name, const char *value,
               char *err, size_t errlen);
int config_finish(struct iotd_config *cfg, char *err, size_t errlen);
void config_free(struct iotd_config *cfg);

#endif
