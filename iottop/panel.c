/*
 * panel.c - drawing a panel's table (see panel.h).
 *
 * Cells are laid out left to right with one blank between columns; text is left-aligned and cut
 * to its column (the last column may use the rest of the line), numbers are right-aligned. The
 * sorted column's title carries an arrow (^ ascending, v descending) and its own colour, like
 * htop's highlighted sort column.
 */
#include "panel.h"

#include "format.h"

#include <curses.h>
#include <stdio.h>
#include <string.h>

const struct panel *panel_by_index(int index)
{
    static const struct panel *const panels[MODEL_PANEL_COUNT] = {
        &panel_threads, &panel_queues, &panel_sessions, &panel_requests, &panel_events};
    return index >= 0 && index < MODEL_PANEL_COUNT ? panels[index] : NULL;
}

/* Room for the title and a sort arrow, so that sorting never shifts the columns. */
static int column_width(const struct model_column *col)
{
    int title = (int)strlen(col->title) + 1;
    return col->width > title ? col->width : title;
}

/* Write text at (y, x) padded or cut to width, aligned left or right; returns the next x. */
static int put_cell(int y, int x, int limit, const char *text, int width, bool left, attr_t attr)
{
    char buf[512];
    if (x >= limit)
        return x;
    if (width > limit - x)
        width = limit - x;
    int len = (int)strlen(text);
    if (len > width)
        snprintf(buf, sizeof(buf), "%.*s", width, left ? text : text + (len - width));
    else
        snprintf(buf, sizeof(buf), left ? "%-*s" : "%*s", width, text);
    attron(attr);
    mvaddstr(y, x, buf);
    attroff(attr);
    return x + width;
}

static void draw_header(const struct model_table *t, const struct theme *theme, int y, int width)
{
    char title[64];
    int x = 0;
    attr_t header = theme_attr(theme, STYLE_COLUMN_HEADER);
    move(y, 0);
    attron(header);
    hline(' ', width);
    attroff(header);
    for (size_t c = 0; c < t->column_count && x < width; c++) {
        const struct model_column *col = &t->columns[c];
        bool sorted = (int)c == t->sort_column;
        bool left = col->format == MODEL_FMT_TEXT;
        snprintf(title, sizeof(title), "%s%s", col->title,
                 sorted ? (t->sort_descending ? "v" : "^") : "");
        x = put_cell(y, x, width, title, column_width(col), left,
                     theme_attr(theme, sorted ? STYLE_COLUMN_SORTED : STYLE_COLUMN_HEADER));
        x = put_cell(y, x, width, " ", 1, true, header);
    }
}

static void draw_row(const struct panel *panel, const struct model_table *t,
                     const struct model_row *row, const struct theme *theme, int y, int width)
{
    char text[512];
    int x = 0;
    for (size_t c = 0; c < t->column_count && x < width; c++) {
        const struct model_column *col = &t->columns[c];
        bool left = col->format == MODEL_FMT_TEXT;
        int w = column_width(col);
        if (c + 1 == t->column_count && left)
            w = width - x;
        format_cell(col, &row->cells[c], w, text, sizeof(text));
        enum theme_style style = panel->cell_style ? panel->cell_style(t, row, c) : STYLE_NORMAL;
        x = put_cell(y, x, width, text, w, left, theme_attr(theme, style));
        x = put_cell(y, x, width, " ", 1, true, 0);
    }
}

size_t panel_draw(const struct panel *panel, const struct model_table *t, const struct theme *theme,
                  int top, int height, int width, size_t scroll)
{
    if (height < 1 || width < 1)
        return 0;
    draw_header(t, theme, top, width);
    int rows = height - 1;
    size_t last_start = t->view_count > (size_t)rows ? t->view_count - (size_t)rows : 0;
    size_t first = scroll > last_start ? last_start : scroll;
    for (int i = 0; i < rows && first + (size_t)i < t->view_count; i++)
        draw_row(panel, t, model_view_row(t, first + (size_t)i), theme, top + 1 + i, width);
    if (t->view_count == 0) {
        attron(theme_attr(theme, STYLE_DIM));
        mvaddstr(top + 1, 1, "(nothing to show)");
        attroff(theme_attr(theme, STYLE_DIM));
    }
    return first;
}
