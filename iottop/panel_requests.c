/*
 * panel_requests.c - the Requests panel: messages relayed to devices and still waiting for
 * their answer, oldest first. One close to its deadline is about to time out.
 */
#include "panel.h"

#include <string.h>

#define DEADLINE_WARN_MS 1000

static enum theme_style request_cell_style(const struct model_table *t, const struct model_row *row,
                                           size_t column)
{
    const char *key = t->columns[column].key;
    const struct model_cell *cell = &row->cells[column];
    if (!cell->present)
        return STYLE_DIM;
    if (strcmp(key, "deadline_ms") == 0)
        return cell->number < DEADLINE_WARN_MS ? STYLE_WARN : STYLE_NORMAL;
    return STYLE_NORMAL;
}

const struct panel panel_requests = {
    .table = MODEL_REQUESTS,
    .name = "Requests",
    .cell_style = request_cell_style,
    .follows_tail = false,
};
