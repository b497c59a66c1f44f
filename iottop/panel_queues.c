/*
 * panel_queues.c - the Queues panel: inboxes, the db job queue, the connection log and later
 * subscriber queues. A filling queue or any drop means a consumer is not keeping up.
 */
#include "panel.h"

#include <string.h>

static enum theme_style queue_cell_style(const struct model_table *t, const struct model_row *row,
                                         size_t column)
{
    const char *key = t->columns[column].key;
    const struct model_cell *cell = &row->cells[column];
    if (!cell->present)
        return STYLE_DIM;
    if (strcmp(key, "fill_percent") == 0)
        return cell->number >= 80 ? STYLE_BAD : cell->number >= 50 ? STYLE_WARN : STYLE_GOOD;
    if (strcmp(key, "drops") == 0 || strcmp(key, "drops_per_s") == 0)
        return cell->number > 0 ? STYLE_BAD : STYLE_NORMAL;
    if (strcmp(key, "name") == 0)
        return STYLE_TITLE;
    return STYLE_NORMAL;
}

const struct panel panel_queues = {
    .table = MODEL_QUEUES,
    .name = "Queues",
    .cell_style = queue_cell_style,
    .follows_tail = false,
};
