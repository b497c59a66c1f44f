/*
 * panel_sessions.c - the Sessions panel: the daemon's top N sessions (devices, users,
 * websockets, control clients) with their traffic. A session whose output buffer grows is a
 * slow reader; one idle for long may be a half-dead link.
 */
#include "panel.h"

#include <string.h>

#define IDLE_WARN_MS 60000

static enum theme_style session_cell_style(const struct model_table *t, const struct model_row *row,
                                           size_t column)
{
    const char *key = t->columns[column].key;
    const struct model_cell *cell = &row->cells[column];
    if (!cell->present)
        return STYLE_DIM;
    if (strcmp(key, "output_bytes") == 0)
        return cell->number > 0 ? STYLE_WARN : STYLE_NORMAL;
    if (strcmp(key, "in_flight") == 0)
        return cell->number > 0 ? STYLE_GOOD : STYLE_NORMAL;
    if (strcmp(key, "idle_ms") == 0)
        return cell->number >= IDLE_WARN_MS ? STYLE_DIM : STYLE_NORMAL;
    if (strcmp(key, "principal") == 0)
        return STYLE_TITLE;
    return STYLE_NORMAL;
}

const struct panel panel_sessions = {
    .table = MODEL_SESSIONS,
    .name = "Sessions",
    .cell_style = session_cell_style,
    .follows_tail = false,
};
