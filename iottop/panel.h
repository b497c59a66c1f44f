/*
 * panel.h - one switchable view of a model table (Threads, Queues, Sessions, Requests, Events).
 *
 * A panel module only says what is particular to it: its table, its key, and which cells
 * deserve attention (cell_style). panel.c draws any panel the same way: a header row that marks
 * the sort column, then the rows of the table's view from a scroll offset, cut to the width.
 */
#ifndef IOTTOP_PANEL_H
#define IOTTOP_PANEL_H

#include "model.h"
#include "theme.h"

#include <stdbool.h>
#include <stddef.h>

struct panel {
    enum model_panel table;
    const char *name;
    /* The style of one cell: STYLE_NORMAL unless the value calls for attention. */
    enum theme_style (*cell_style)(const struct model_table *table, const struct model_row *row,
                                   size_t column);
    /* Keep the last rows in sight as they arrive (a log tail), unless scrolled up. */
    bool follows_tail;
};

extern const struct panel panel_threads, panel_queues, panel_sessions, panel_requests, panel_events;

/* The panels in key order (1..5). */
const struct panel *panel_by_index(int index);

/*
 * Draw the panel in the screen rectangle (top, 0)..(top + height, width): the header row, then
 * the view's rows from index scroll on (clamped so the last page stays full; SIZE_MAX: the last
 * page, which is how a tail follows). Returns the index of the first row drawn.
 */
size_t panel_draw(const struct panel *panel, const struct model_table *table,
                  const struct theme *theme, int top, int height, int width, size_t scroll);

#endif
