/*
 * stats_schema.c - the table of stats sample fields (see stats_schema.h).
 *
 * Help sentences describe what iotd counts, for an operator who sees the number in iottop or
 * on a metrics page without the source at hand; they say where a value comes from when the
 * name alone could mislead (a queue's "drops" is a refusal or a failure, never a silent loss).
 */
#include "stats_schema.h"

#include <string.h>

static const struct stats_section_info sections[STATS_SECTION_COUNT] = {
    [STATS_SECTION_SAMPLE] = {NULL, STATS_SECTION_SAMPLE, STATS_OBJECT, true,
                              "One sample of the running iotd process."},
    [STATS_SECTION_THREADS] = {"threads", STATS_SECTION_SAMPLE, STATS_ROWS, true,
                               "The daemon's threads: main, io (one event loop each) and db."},
    [STATS_SECTION_QUEUES] = {"queues", STATS_SECTION_SAMPLE, STATS_ROWS, true,
                              "The bounded queues between threads and to MariaDB."},
    [STATS_SECTION_TOTALS] = {"totals", STATS_SECTION_SAMPLE, STATS_OBJECT, true,
                              "Daemon-wide totals summed over every io thread."},
    [STATS_SECTION_CONNECTIONS] = {"connections", STATS_SECTION_TOTALS, STATS_OBJECT, true,
                                   "Open connections by kind of peer."},
    [STATS_SECTION_EVENT_TOTALS] = {"events", STATS_SECTION_TOTALS, STATS_OBJECT, true,
                                    "What the event store, the hub and the subscribers did."},
    [STATS_SECTION_SESSIONS] = {"sessions", STATS_SECTION_SAMPLE, STATS_OBJECT, true,
                                "The sessions table: how many, and the top rows."},
    [STATS_SECTION_SESSION_ROWS] = {"top", STATS_SECTION_SESSIONS, STATS_ROWS, false,
                                    "The top sessions by the subscriber's sort key."},
    [STATS_SECTION_REQUESTS] = {"requests", STATS_SECTION_SAMPLE, STATS_ROWS, false,
                                "Requests relayed to a device and waiting for its answer."},
    [STATS_SECTION_EVENTS] = {"events", STATS_SECTION_SAMPLE, STATS_ROWS, false,
                              "Connection events, device events and alarm changes since the "
                              "subscriber's previous sample."},
    [STATS_SECTION_CLUSTER] = {"cluster", STATS_SECTION_SAMPLE, STATS_OBJECT, true,
                               "The cluster this node is part of (only with [cluster])."},
    [STATS_SECTION_CLUSTER_NODES] = {"nodes", STATS_SECTION_CLUSTER, STATS_ROWS, true,
                                     "The live nodes, this one included, by name."},
    [STATS_SECTION_CLUSTER_TRAFFIC] = {"traffic", STATS_SECTION_CLUSTER, STATS_OBJECT, true,
                                       "What crossed between this node and the others."},
};

#define NUMBER(section, kind, unit, key, help)                                                     \
    {                                                                                              \
        key, STATS_SECTION_##section, STATS_##kind, STATS_NUMBER, STATS_UNIT_##unit, NULL, help    \
    }
#define TEXT(section, key, help)                                                                   \
    {                                                                                              \
        key, STATS_SECTION_##section, STATS_LABEL, STATS_TEXT, STATS_UNIT_NONE, NULL, help         \
    }

static const struct stats_field_info fields[STATS_FIELD_COUNT] = {
    [STATS_TIME_MS] = NUMBER(SAMPLE, GAUGE, EPOCH_MS, "time_ms",
                             "Wall-clock time iotd took the sample; rates divide by its deltas."),
    [STATS_UPTIME_S] = NUMBER(SAMPLE, GAUGE, SECONDS, "uptime_s",
                              "Seconds since iotd started; going backwards means a restart."),
    [STATS_VERSION] = TEXT(SAMPLE, "version", "Version of the running iotd."),
    [STATS_PID] = {"pid", STATS_SECTION_SAMPLE, STATS_LABEL, STATS_NUMBER, STATS_UNIT_NONE, NULL,
                   "Process id of iotd; a new pid means a new process and new counters."},
    [STATS_RSS_BYTES] =
        NUMBER(SAMPLE, GAUGE, BYTES, "rss_bytes", "Resident memory of the iotd process."),

    [STATS_THREAD_NAME] = TEXT(THREADS, "name", "Thread name: main, io0..ioN-1, db0..dbN-1."),
    [STATS_THREAD_ROLE] = TEXT(THREADS, "role", "What the thread does: main, io or db."),
    [STATS_THREAD_TID] = {"tid", STATS_SECTION_THREADS, STATS_LABEL, STATS_NUMBER, STATS_UNIT_NONE,
                          NULL, "Kernel thread id (as in top -H)."},
    [STATS_THREAD_CPU_NS] = NUMBER(THREADS, COUNTER, NANOSECONDS, "cpu_ns",
                                   "CPU time the thread has used, from the kernel's schedstat."),
    [STATS_THREAD_BUSY_NS] = NUMBER(THREADS, COUNTER, NANOSECONDS, "busy_ns",
                                    "Time the thread spent working rather than waiting for "
                                    "input (its loop's or its job queue's)."),
    [STATS_THREAD_SESSIONS] = NUMBER(THREADS, GAUGE, NONE, "sessions",
                                     "Sessions open on this io thread (io threads only)."),
    [STATS_THREAD_FRAMES_IN] = NUMBER(THREADS, COUNTER, NONE, "frames_in",
                                      "Frames received by this io thread's sessions."),
    [STATS_THREAD_FRAMES_OUT] =
        NUMBER(THREADS, COUNTER, NONE, "frames_out", "Frames sent by this io thread's sessions."),
    [STATS_THREAD_BYTES_IN] = NUMBER(THREADS, COUNTER, BYTES, "bytes_in",
                                     "Bytes read from this io thread's connections."),
    [STATS_THREAD_BYTES_OUT] = NUMBER(THREADS, COUNTER, BYTES, "bytes_out",
                                      "Bytes written to this io thread's connections."),

    [STATS_QUEUE_NAME] = TEXT(QUEUES, "name",
                              "Queue name: inbox:THREAD, db:jobs, conn_log, relay_audit, events, "
                              "alarm_writer."),
    [STATS_QUEUE_DEPTH] = NUMBER(QUEUES, GAUGE, NONE, "depth", "Items waiting in the queue."),
    [STATS_QUEUE_HIGH_WATER] = NUMBER(QUEUES, GAUGE, NONE, "high_water",
                                      "Deepest the queue has been (0 when not tracked)."),
    [STATS_QUEUE_CAPACITY] = NUMBER(QUEUES, GAUGE, NONE, "capacity",
                                    "Bound of the queue; 0 means unbounded or not known."),
    [STATS_QUEUE_ENQUEUED] = NUMBER(QUEUES, COUNTER, NONE, "enqueued",
                                    "Items offered to the queue, refused ones included."),
    [STATS_QUEUE_DEQUEUED] =
        NUMBER(QUEUES, COUNTER, NONE, "dequeued", "Items taken from the queue and handled."),
    [STATS_QUEUE_DROPS] = NUMBER(QUEUES, COUNTER, NONE, "drops",
                                 "Items refused because the queue was full, or that failed."),

    [STATS_AUTH_FAILURES] =
        NUMBER(TOTALS, COUNTER, NONE, "auth_failures", "Failed device handshakes and user logins."),
    [STATS_RATE_LIMITED] = NUMBER(TOTALS, COUNTER, NONE, "rate_limited",
                                  "Frames refused because their session exceeded its rate limit."),
    [STATS_OUTCOMES] = {"outcomes", STATS_SECTION_TOTALS, STATS_COUNTER, STATS_MAP, STATS_UNIT_NONE,
                        "outcome",
                        "Relayed requests by outcome (ok, denied, timeout, ...; iotd's own "
                        "failures count as internal)."},
    [STATS_EVENTS_STORED] = NUMBER(TOTALS, COUNTER, NONE, "events_stored",
                                   "Device events made durable, in MariaDB or in the spool."),

    [STATS_CONNECTIONS_DEVICE] =
        NUMBER(CONNECTIONS, GAUGE, NONE, "device", "Authenticated device sessions."),
    [STATS_CONNECTIONS_USER] = NUMBER(CONNECTIONS, GAUGE, NONE, "user",
                                      "Logged-in user sessions (TCP, TLS or WebSocket)."),
    [STATS_CONNECTIONS_CONTROL] = NUMBER(CONNECTIONS, GAUGE, NONE, "control",
                                         "Clients of the control socket (iotctl, iottop)."),

    [STATS_STORE_STATE] = TEXT(EVENT_TOTALS, "state",
                               "Where the event store writes: db, spool (MariaDB unreachable) "
                               "or replay (spool being replayed)."),
    [STATS_STORE_STORED] = NUMBER(EVENT_TOTALS, COUNTER, NONE, "stored",
                                  "Events inserted into MariaDB, replayed ones included."),
    [STATS_STORE_DUPLICATES] = NUMBER(EVENT_TOTALS, COUNTER, NONE, "duplicates",
                                      "Events a device sent again: acknowledged, not stored "
                                      "twice."),
    [STATS_STORE_BATCHES] = NUMBER(EVENT_TOTALS, COUNTER, NONE, "batches",
                                   "Transactions the event store committed (group commit)."),
    [STATS_STORE_SPOOLED] = NUMBER(EVENT_TOTALS, COUNTER, NONE, "spooled",
                                   "Events written to the spool file while MariaDB was "
                                   "unreachable."),
    [STATS_STORE_SPOOL_BYTES] =
        NUMBER(EVENT_TOTALS, GAUGE, BYTES, "spool_bytes", "Size of the spool file."),
    [STATS_STORE_REPLAYED] = NUMBER(EVENT_TOTALS, COUNTER, NONE, "replayed",
                                    "Spooled events stored in MariaDB by replay."),
    [STATS_STORE_BUSY] = NUMBER(EVENT_TOTALS, COUNTER, NONE, "busy",
                                "Events refused because the store's queue was full (the "
                                "device retransmits)."),
    [STATS_HUB_ALARM_CHANGES] = NUMBER(EVENT_TOTALS, COUNTER, NONE, "alarm_changes",
                                       "Alarm state changes the hub published."),
    [STATS_HUB_SUBSCRIBERS] =
        NUMBER(EVENT_TOTALS, GAUGE, NONE, "subscribers", "Subscriptions to events and alarms."),
    [STATS_HUB_LEASES] =
        NUMBER(EVENT_TOTALS, GAUGE, NONE, "leases",
               "Leases held on periodic device events (started when the first holder asks)."),
    [STATS_ITEMS_DELIVERED] = NUMBER(EVENT_TOTALS, COUNTER, NONE, "delivered",
                                     "Events and alarm changes handed to subscribers."),
    [STATS_ITEMS_DROPPED] = NUMBER(EVENT_TOTALS, COUNTER, NONE, "dropped",
                                   "Events and alarm changes a subscriber missed (its queue or "
                                   "its thread's inbox was full)."),

    [STATS_SESSIONS_TOTAL] = NUMBER(SESSIONS, GAUGE, NONE, "total",
                                    "Sessions open on every io thread (the top rows are a "
                                    "part)."),
    [STATS_SESSIONS_SORT] = TEXT(SESSIONS, "sort", "The sort key that chose the top sessions."),

    [STATS_SESSION_PRINCIPAL] =
        TEXT(SESSION_ROWS, "principal", "Device id or user name of the session."),
    [STATS_SESSION_TENANT] = TEXT(SESSION_ROWS, "tenant", "Tenant of the session's principal."),
    [STATS_SESSION_KIND] = TEXT(SESSION_ROWS, "kind", "device or user."),
    [STATS_SESSION_STATE] = TEXT(SESSION_ROWS, "state", "handshake or online."),
    [STATS_SESSION_TRANSPORT] =
        TEXT(SESSION_ROWS, "transport", "tcp or tls (a WebSocket runs on either)."),
    [STATS_SESSION_ADDRESS] = TEXT(SESSION_ROWS, "address", "Peer address and port."),
    [STATS_SESSION_SINCE_MS] =
        NUMBER(SESSION_ROWS, GAUGE, EPOCH_MS, "since_ms", "When the session connected."),
    [STATS_SESSION_LAST_ACTIVITY_MS] = NUMBER(SESSION_ROWS, GAUGE, EPOCH_MS, "last_activity_ms",
                                              "When the session last received a frame."),
    [STATS_SESSION_IN_FLIGHT] = NUMBER(SESSION_ROWS, GAUGE, NONE, "in_flight",
                                       "Requests of or to this session waiting for an answer."),
    [STATS_SESSION_OUTPUT_BYTES] = NUMBER(SESSION_ROWS, GAUGE, BYTES, "output_bytes",
                                          "Bytes queued for the peer, not yet written."),
    [STATS_SESSION_BYTES_OUT] =
        NUMBER(SESSION_ROWS, COUNTER, BYTES, "bytes_out", "Bytes written to the peer."),
    [STATS_SESSION_FRAMES_IN] =
        NUMBER(SESSION_ROWS, COUNTER, NONE, "frames_in", "Frames received from the peer."),
    [STATS_SESSION_FRAMES_OUT] =
        NUMBER(SESSION_ROWS, COUNTER, NONE, "frames_out", "Frames sent to the peer."),

    [STATS_REQUEST_ORIGIN] = TEXT(REQUESTS, "origin", "Who sent the request."),
    [STATS_REQUEST_DEVICE] = TEXT(REQUESTS, "device", "The device that must answer."),
    [STATS_REQUEST_TYPE] = TEXT(REQUESTS, "type", "The message type asked of the device."),
    [STATS_REQUEST_AGE_MS] =
        NUMBER(REQUESTS, GAUGE, MILLISECONDS, "age_ms", "How long the request has waited."),
    [STATS_REQUEST_DEADLINE_MS] = NUMBER(REQUESTS, GAUGE, MILLISECONDS, "deadline_ms",
                                         "Time left before the request times out."),

    [STATS_EVENT_TIME_MS] = NUMBER(EVENTS, GAUGE, EPOCH_MS, "time_ms", "When iotd saw the event."),
    [STATS_EVENT_KIND] = TEXT(EVENTS, "kind",
                              "connect, disconnect, auth_failure, ... for connections; event or "
                              "alarm for devices."),
    [STATS_EVENT_PRINCIPAL] = TEXT(EVENTS, "principal", "The device or user concerned."),
    [STATS_EVENT_TENANT] = TEXT(EVENTS, "tenant", "Tenant of a device event or alarm."),
    [STATS_EVENT_ADDRESS] = TEXT(EVENTS, "address", "Peer address of a connection event."),
    [STATS_EVENT_REASON] = TEXT(EVENTS, "reason", "Why a connection event happened."),
    [STATS_EVENT_MESSAGE] =
        TEXT(EVENTS, "message", "A device event or alarm: its name and key=value fields."),

    [STATS_CLUSTER_NODE] = TEXT(CLUSTER, "node", "This node's name."),
    [STATS_CLUSTER_NATS] = TEXT(CLUSTER, "nats", "The NATS link: connected or disconnected."),
    [STATS_CLUSTER_NODE_NAME] = TEXT(CLUSTER_NODES, "node", "The node's name."),
    [STATS_CLUSTER_NODE_DEVICES] =
        NUMBER(CLUSTER_NODES, GAUGE, NONE, "devices", "Devices online on the node."),
    [STATS_CLUSTER_NODE_AGE_MS] = NUMBER(CLUSTER_NODES, GAUGE, MILLISECONDS, "age_ms",
                                         "Time since the node was last heard from."),
    [STATS_CLUSTER_REQUESTS_OUT] = NUMBER(CLUSTER_TRAFFIC, COUNTER, NONE, "requests_out",
                                          "Requests sent to devices on other nodes."),
    [STATS_CLUSTER_ANSWERS_IN] =
        NUMBER(CLUSTER_TRAFFIC, COUNTER, NONE, "answers_in", "Answers to them that came back."),
    [STATS_CLUSTER_TIMEOUTS] = NUMBER(CLUSTER_TRAFFIC, COUNTER, NONE, "timeouts",
                                      "Requests to other nodes that got no answer in time."),
    [STATS_CLUSTER_NODE_GONE] = NUMBER(CLUSTER_TRAFFIC, COUNTER, NONE, "node_gone",
                                       "Requests ended because their node died."),
    [STATS_CLUSTER_LATENCY_MS_AVG] =
        NUMBER(CLUSTER_TRAFFIC, GAUGE, MILLISECONDS, "latency_ms_avg",
               "Mean time from sending a request to another node to its answer."),
    [STATS_CLUSTER_REQUESTS_IN] =
        NUMBER(CLUSTER_TRAFFIC, COUNTER, NONE, "requests_in", "Requests run here for other nodes."),
    [STATS_CLUSTER_EVENTS_OUT] = NUMBER(CLUSTER_TRAFFIC, COUNTER, NONE, "events_out",
                                        "Device events streamed to the other nodes."),
    [STATS_CLUSTER_EVENTS_IN] = NUMBER(CLUSTER_TRAFFIC, COUNTER, NONE, "events_in",
                                       "Device events streamed here from other nodes."),
    [STATS_CLUSTER_CHANGES_OUT] = NUMBER(CLUSTER_TRAFFIC, COUNTER, NONE, "changes_out",
                                         "Registry changes announced to the other nodes."),
    [STATS_CLUSTER_CHANGES_IN] = NUMBER(CLUSTER_TRAFFIC, COUNTER, NONE, "changes_in",
                                        "Registry changes announced here by other nodes."),
};

const struct stats_field_info *stats_field_info(enum stats_field field)
{
    return (unsigned)field < STATS_FIELD_COUNT ? &fields[field] : NULL;
}

const struct stats_section_info *stats_section_info(enum stats_section section)
{
    return (unsigned)section < STATS_SECTION_COUNT ? &sections[section] : NULL;
}

const char *stats_key(enum stats_field field)
{
    return (unsigned)field < STATS_FIELD_COUNT ? fields[field].key : "";
}

const char *stats_section_key(enum stats_section section)
{
    return (unsigned)section < STATS_SECTION_COUNT ? sections[section].key : NULL;
}

enum stats_field stats_field_lookup(enum stats_section section, const char *key)
{
    for (int f = 0; key && f < STATS_FIELD_COUNT; f++)
        if (fields[f].section == section && strcmp(fields[f].key, key) == 0)
            return (enum stats_field)f;
    return STATS_FIELD_COUNT;
}

const char *stats_kind_name(enum stats_kind kind)
{
    switch (kind) {
    case STATS_COUNTER:
        return "counter";
    case STATS_GAUGE:
        return "gauge";
    case STATS_LABEL:
        return "label";
    }
    return "?";
}

const char *stats_unit_name(enum stats_unit unit)
{
    switch (unit) {
    case STATS_UNIT_NONE:
        return "";
    case STATS_UNIT_BYTES:
        return "bytes";
    case STATS_UNIT_SECONDS:
        return "seconds";
    case STATS_UNIT_MILLISECONDS:
        return "milliseconds";
    case STATS_UNIT_NANOSECONDS:
        return "nanoseconds";
    case STATS_UNIT_EPOCH_MS:
        return "epoch_milliseconds";
    }
    return "?";
}
