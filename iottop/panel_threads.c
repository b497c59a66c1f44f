/*
 * panel_threads.c - the Threads panel: main, io and db threads with CPU %, loop busy %,
 * sessions and traffic. A thread near 100 % CPU or busy is where the pressure is.
 */
#include "panel.h"

#include <string.h>

static enum theme_style thread_cell_style(const struct model_table *t, const struct model_row *row,
                                          size_t column)
{
    const char *key = t->columns[column].key;
    const struct model_cell *cell = &row->cells[column];
    if (!cell->present)
        return STYLE_DIM;
    if (strcmp(key, "cpu_percent") == 0 || strcmp(key, "busy_percent") == 0)
        return cell->number >= 90 ? STYLE_BAD : cell->number >= 60 ? STYLE_WARN : STYLE_GOOD;
    if (strcmp(key, "name") == 0)
        return STYLE_TITLE;
    return STYLE_NORMAL;
}

const struct panel panel_threads = {
    .table = MODEL_THREADS,
    .name = "Threads",
    .cell_style = thread_cell_style,
    .follows_tail = false,
};
