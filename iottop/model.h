/*
 * model.h - what iottop knows, computed from iotd's "stats" samples, with no drawing in it.
 *
 * Every sample (one "item" of the stats stream) is turned into one table per panel: threads,
 * queues, sessions, requests and events. A table is a fixed list of columns and rows of cells;
 * a cell is either a number or a text, or absent (the daemon did not send the field: shown as
 * "-"). Counters arrive cumulative, so the rates (CPU %, frames/s, ...) are deltas against the
 * previous sample divided by the time between the two samples' time_ms. A counter that went
 * down (iotd restarted, a session was replaced) gives an absent rate, never a negative one.
 *
 * Each table keeps a view: the indexes of the rows that pass the filter, in sort order. The
 * ncurses panels (panel_*.c), the batch printer (report.c) and the unit tests all read the same
 * tables, so what the screen shows and what scripts see cannot disagree.
 *
 * The events table is a tail: each sample carries the events since the previous one; the model
 * appends them and keeps the newest MODEL_EVENTS_MAX.
 */
#ifndef IOTTOP_MODEL_H
#define IOTTOP_MODEL_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

enum model_panel {
    MODEL_THREADS,
    MODEL_QUEUES,
    MODEL_SESSIONS,
    MODEL_REQUESTS,
    MODEL_EVENTS,
    MODEL_PANEL_COUNT
};

/* How a cell's number is shown (format.h); also decides text vs number cells. */
enum model_format {
    MODEL_FMT_TEXT,        /* a string */
    MODEL_FMT_COUNT,       /* an integer */
    MODEL_FMT_RATE,        /* per second */
    MODEL_FMT_PERCENT,     /* 0..100 (a thread's CPU % may exceed 100 only by clock skew) */
    MODEL_FMT_BYTES,       /* a size in bytes */
    MODEL_FMT_BYTE_RATE,   /* bytes per second */
    MODEL_FMT_DURATION_MS, /* a length of time in milliseconds */
    MODEL_FMT_CLOCK_MS,    /* a wall-clock time, milliseconds since the epoch */
};

#define MODEL_MAX_COLUMNS 16
#define MODEL_EVENTS_MAX  1000
#define MODEL_FILTER_MAX  128

struct model_column {
    const char *key;   /* name in JSON output ("cpu_percent") */
    const char *title; /* column header ("CPU%") */
    enum model_format format;
    int width;               /* display width in characters */
    bool searchable;         /* the filter looks at this column */
    const char *server_sort; /* sessions: the stats "sort" that picks the top N by this column */
};

struct model_cell {
    bool present;
    double number; /* numeric formats */
    char *text;    /* MODEL_FMT_TEXT, owned by the table; NULL when absent */
};

struct model_row {
    struct model_cell cells[MODEL_MAX_COLUMNS];
};

struct model_table {
    const struct model_column *columns;
    size_t column_count;
    struct model_row *rows; /* all rows, in the order the daemon sent them */
    size_t row_count, row_cap;
    size_t *view; /* indexes into rows: filtered, then sorted */
    size_t view_count;
    int sort_column;      /* -1: the daemon's order */
    bool sort_descending; /* meaningless when sort_column is -1 */
};

/* A header value: present or "-". */
struct model_value {
    bool present;
    double value;
};

struct model_summary {
    struct model_value time_ms, uptime_s, pid, rss_bytes;
    struct model_value connections;    /* sum of totals.connections */
    struct model_value sessions_total; /* sessions.total */
    struct model_value requests_per_s; /* rate of the sum of totals.outcomes */
    struct model_value events_per_s;   /* rate of totals.events_stored */
    struct model_value errors_per_s;   /* rate of auth_failures + every outcome but "ok" */
    struct model_value interval_ms;    /* time between the last two samples */
    char version[32];
    char connections_detail[160]; /* "device 1000, control 1" */
    char sessions_sort[32];       /* the daemon's sort of sessions.top */
    /* The cluster line, "" for a single node: "node a, NATS connected; nodes a 1, b 1, c 0;
     * requests to other nodes 5 (0.8 ms avg), timeouts 0, from them 6; events out 3, in 2"
     * (devices online per node; counts since the node started). */
    char cluster[320];
    unsigned samples; /* samples taken since the model was created */
};

typedef struct model model_t;

/* A model with no sample yet: every table empty, every summary value absent. NULL on ENOMEM. */
model_t *model_new(void);
void model_free(model_t *model);

/*
 * Take one stats item. Rebuilds every table (rates against the previous item), appends the
 * item's events to the events tail, then re-applies filter and sort. Fields of the wrong type
 * count as absent. Returns IOT_EINVAL when item is not an object (the model is unchanged),
 * IOT_ENOMEM when a table could not grow (the model stays consistent but may lack rows).
 */
int model_update(model_t *model, const cJSON *item);

/* The next item starts a new stream on a new connection: the daemon replays its recent events
 * then, so events already in the tail are not appended twice. */
void model_stream_restarted(model_t *model);

const struct model_table *model_table(const model_t *model, enum model_panel panel);
const struct model_summary *model_summary(const model_t *model);
/* The view's i-th row (i < view_count). */
const struct model_row *model_view_row(const struct model_table *table, size_t i);

/* Sort a panel by column (-1: the daemon's order). Re-sorts the view at once. */
void model_set_sort(model_t *model, enum model_panel panel, int column, bool descending);
/* Move the sort column by step (+1 right, -1 left), wrapping through "the daemon's order";
 * a new column starts descending for numbers and ascending for text, as top does. */
void model_step_sort(model_t *model, enum model_panel panel, int step);
void model_reverse_sort(model_t *model, enum model_panel panel);
/* The stats "sort" the sessions panel's current column asks of the daemon, or NULL. */
const char *model_sessions_server_sort(const model_t *model);

/* Keep only rows where some searchable column contains text (case-insensitive); "" or NULL
 * shows everything. Text longer than MODEL_FILTER_MAX - 1 is cut. */
void model_set_filter(model_t *model, const char *text);
const char *model_filter(const model_t *model);

/* The last item taken (for the raw totals in batch output), or NULL before the first. */
const cJSON *model_last_item(const model_t *model);

/* Events appended by the last model_update (they are the last rows of the events table). */
size_t model_new_events(const model_t *model);

/* "Threads", "Queues", ... */
const char *model_panel_name(enum model_panel panel);
/* Index of the column with that key, or -1. */
int model_column_index(const struct model_table *table, const char *key);

#endif
