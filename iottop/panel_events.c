/*
 * panel_events.c - the Events panel: a tail of connects, disconnects, authentication failures,
 * device events and alarms, newest at the bottom (it keeps following the newest unless the
 * operator scrolls up; End follows again).
 */
#include "panel.h"

#include <string.h>

static enum theme_style event_cell_style(const struct model_table *t, const struct model_row *row,
                                         size_t column)
{
    const struct model_cell *cell = &row->cells[column];
    if (!cell->present)
        return STYLE_DIM;
    if (strcmp(t->columns[column].key, "kind") != 0 || !cell->text)
        return STYLE_NORMAL;
    if (strcmp(cell->text, "auth_failure") == 0 || strcmp(cell->text, "alarm") == 0)
        return STYLE_BAD;
    if (strcmp(cell->text, "disconnect") == 0)
        return STYLE_WARN;
    if (strcmp(cell->text, "connect") == 0)
        return STYLE_GOOD;
    return STYLE_NORMAL;
}

const struct panel panel_events = {
    .table = MODEL_EVENTS,
    .name = "Events",
    .cell_style = event_cell_style,
    .follows_tail = true,
};
