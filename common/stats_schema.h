/*
 * stats_schema.h - the fields of a stats sample: one table that iotd writes its samples from
 * and iottop reads them by, so that renaming a key changes both sides at once.
 *
 * A sample (the items the control server's "stats" command streams) is a JSON object made of
 * sections: the sample itself, rows of threads and queues, totals with nested objects, the
 * sessions table, the requests waiting at devices and the tail of events. Every field belongs
 * to one section and is named there by its key; the same key may appear in two sections
 * ("frames_in" of a thread and of a session) but never twice in one.
 *
 * Each field also says what it measures: a counter (cumulative, only goes up while iotd runs:
 * readers divide deltas by time), a gauge (a level at sampling time) or a label (a text or an
 * id that names or describes a row), its unit and a help sentence. iottop's rates, and the
 * TYPE and HELP lines of a Prometheus page, come from there. Sections whose rows are records
 * (one per session, request or event) rather than series say so (metrics = false): a metrics
 * exporter skips them.
 *
 * Adding a field: a row here and in stats_schema.c, the line in iotd/stats that writes it, and
 * whatever reads it in iottop. test_stats_schema checks the table; the stats unit test checks
 * that iotd writes exactly these keys.
 */
#ifndef IOT_STATS_SCHEMA_H
#define IOT_STATS_SCHEMA_H

#include <stdbool.h>

/* The sample's JSON containers, each inside its parent (the sample itself has none). */
enum stats_section {
    STATS_SECTION_SAMPLE,          /* the top-level object */
    STATS_SECTION_THREADS,         /* threads: one row per thread */
    STATS_SECTION_QUEUES,          /* queues: one row per queue */
    STATS_SECTION_TOTALS,          /* totals */
    STATS_SECTION_CONNECTIONS,     /* totals.connections */
    STATS_SECTION_EVENT_TOTALS,    /* totals.events */
    STATS_SECTION_SESSIONS,        /* sessions */
    STATS_SECTION_SESSION_ROWS,    /* sessions.top: one row per session */
    STATS_SECTION_REQUESTS,        /* requests: one row per request waiting at a device */
    STATS_SECTION_EVENTS,          /* events: connection events, device events, alarm changes */
    STATS_SECTION_CLUSTER,         /* cluster: only with [cluster] (iotd-cluster(7)) */
    STATS_SECTION_CLUSTER_NODES,   /* cluster.nodes: one row per live node */
    STATS_SECTION_CLUSTER_TRAFFIC, /* cluster.traffic */
    STATS_SECTION_COUNT
};

enum stats_shape {
    STATS_OBJECT, /* one JSON object */
    STATS_ROWS,   /* an array of objects with the same fields */
};

struct stats_section_info {
    const char *key;           /* key in the parent; NULL for the sample itself */
    enum stats_section parent; /* meaningless for the sample itself */
    enum stats_shape shape;
    bool metrics; /* false: rows are records (a session, an event), not time series */
    const char *help;
};

enum stats_kind {
    STATS_COUNTER, /* cumulative since iotd started; rates are deltas over time */
    STATS_GAUGE,   /* a level when the sample was taken */
    STATS_LABEL,   /* names or describes its row (text, or an id such as a pid) */
};

enum stats_unit {
    STATS_UNIT_NONE,         /* a count of things */
    STATS_UNIT_BYTES,        /* bytes */
    STATS_UNIT_SECONDS,      /* a length of time in seconds */
    STATS_UNIT_MILLISECONDS, /* a length of time in milliseconds */
    STATS_UNIT_NANOSECONDS,  /* a length of time in nanoseconds */
    STATS_UNIT_EPOCH_MS,     /* a wall-clock time: milliseconds since 1970-01-01 UTC */
};

enum stats_value {
    STATS_NUMBER, /* a JSON number */
    STATS_TEXT,   /* a JSON string */
    STATS_MAP,    /* an object of numbers, one per value of the field's map_label */
};

/* Every field of the sample; the values index the table (stats_field_info). */
enum stats_field {
    /* the sample */
    STATS_TIME_MS,
    STATS_UPTIME_S,
    STATS_VERSION,
    STATS_PID,
    STATS_RSS_BYTES,
    /* threads[] */
    STATS_THREAD_NAME,
    STATS_THREAD_ROLE,
    STATS_THREAD_TID,
    STATS_THREAD_CPU_NS,
    STATS_THREAD_BUSY_NS,
    STATS_THREAD_SESSIONS,
    STATS_THREAD_FRAMES_IN,
    STATS_THREAD_FRAMES_OUT,
    STATS_THREAD_BYTES_IN,
    STATS_THREAD_BYTES_OUT,
    /* queues[] */
    STATS_QUEUE_NAME,
    STATS_QUEUE_DEPTH,
    STATS_QUEUE_HIGH_WATER,
    STATS_QUEUE_CAPACITY,
    STATS_QUEUE_ENQUEUED,
    STATS_QUEUE_DEQUEUED,
    STATS_QUEUE_DROPS,
    /* totals */
    STATS_AUTH_FAILURES,
    STATS_RATE_LIMITED,
    STATS_OUTCOMES,
    STATS_EVENTS_STORED,
    /* totals.connections */
    STATS_CONNECTIONS_DEVICE,
    STATS_CONNECTIONS_USER,
    STATS_CONNECTIONS_CONTROL,
    /* totals.events */
    STATS_STORE_STATE,
    STATS_STORE_STORED,
    STATS_STORE_DUPLICATES,
    STATS_STORE_BATCHES,
    STATS_STORE_SPOOLED,
    STATS_STORE_SPOOL_BYTES,
    STATS_STORE_REPLAYED,
    STATS_STORE_BUSY,
    STATS_HUB_ALARM_CHANGES,
    STATS_HUB_SUBSCRIBERS,
    STATS_HUB_LEASES,
    STATS_ITEMS_DELIVERED,
    STATS_ITEMS_DROPPED,
    /* sessions */
    STATS_SESSIONS_TOTAL,
    STATS_SESSIONS_SORT,
    /* sessions.top[] */
    STATS_SESSION_PRINCIPAL,
    STATS_SESSION_TENANT,
    STATS_SESSION_KIND,
    STATS_SESSION_STATE,
    STATS_SESSION_TRANSPORT,
    STATS_SESSION_ADDRESS,
    STATS_SESSION_SINCE_MS,
    STATS_SESSION_LAST_ACTIVITY_MS,
    STATS_SESSION_IN_FLIGHT,
    STATS_SESSION_OUTPUT_BYTES,
    STATS_SESSION_BYTES_OUT,
    STATS_SESSION_FRAMES_IN,
    STATS_SESSION_FRAMES_OUT,
    /* requests[] */
    STATS_REQUEST_ORIGIN,
    STATS_REQUEST_DEVICE,
    STATS_REQUEST_TYPE,
    STATS_REQUEST_AGE_MS,
    STATS_REQUEST_DEADLINE_MS,
    /* events[] */
    STATS_EVENT_TIME_MS,
    STATS_EVENT_KIND,
    STATS_EVENT_PRINCIPAL,
    STATS_EVENT_TENANT,
    STATS_EVENT_ADDRESS,
    STATS_EVENT_REASON,
    STATS_EVENT_MESSAGE,
    /* cluster */
    STATS_CLUSTER_NODE,
    STATS_CLUSTER_NATS,
    /* cluster.nodes[] */
    STATS_CLUSTER_NODE_NAME,
    STATS_CLUSTER_NODE_DEVICES,
    STATS_CLUSTER_NODE_AGE_MS,
    /* cluster.traffic */
    STATS_CLUSTER_REQUESTS_OUT,
    STATS_CLUSTER_ANSWERS_IN,
    STATS_CLUSTER_TIMEOUTS,
    STATS_CLUSTER_NODE_GONE,
    STATS_CLUSTER_LATENCY_MS_AVG,
    STATS_CLUSTER_REQUESTS_IN,
    STATS_CLUSTER_EVENTS_OUT,
    STATS_CLUSTER_EVENTS_IN,
    STATS_CLUSTER_CHANGES_OUT,
    STATS_CLUSTER_CHANGES_IN,
    STATS_FIELD_COUNT
};

struct stats_field_info {
    const char *key; /* the JSON key inside its section */
    enum stats_section section;
    enum stats_kind kind;
    enum stats_value value;
    enum stats_unit unit;
    const char *map_label; /* STATS_MAP: what the map's keys are ("outcome"); else NULL */
    const char *help;      /* one sentence for iottop's and a metrics page's readers */
};

/* The row of a field or a section; NULL when out of range. */
const struct stats_field_info *stats_field_info(enum stats_field field);
const struct stats_section_info *stats_section_info(enum stats_section section);

/* The field's JSON key (never NULL for a field in range; "" out of range). */
const char *stats_key(enum stats_field field);
/* The section's key in its parent; NULL for STATS_SECTION_SAMPLE and out of range. */
const char *stats_section_key(enum stats_section section);

/* The field with that key in that section, or STATS_FIELD_COUNT. */
enum stats_field stats_field_lookup(enum stats_section section, const char *key);

/* "counter", "gauge", "label"; "seconds", "bytes", ... ("" for STATS_UNIT_NONE). */
const char *stats_kind_name(enum stats_kind kind);
const char *stats_unit_name(enum stats_unit unit);

#endif
