/*
 * theme.c - styles as colour pairs or monochrome attributes (see theme.h).
 *
 * Colours follow htop's habits: cyan labels, green for healthy, yellow for pressure, red for
 * trouble, headers on a green bar. use_default_colors keeps the operator's own background.
 */
#include "theme.h"

#include <stdlib.h>

void theme_init(struct theme *theme)
{
    static const struct {
        short fg, bg;
        attr_t extra;
        attr_t mono;
    } styles[STYLE_COUNT] = {
        [STYLE_NORMAL] = {-1, -1, 0, 0},
        [STYLE_DIM] = {-1, -1, A_DIM, A_DIM},
        [STYLE_GOOD] = {COLOR_GREEN, -1, 0, 0},
        [STYLE_WARN] = {COLOR_YELLOW, -1, A_BOLD, A_BOLD},
        [STYLE_BAD] = {COLOR_RED, -1, A_BOLD, A_BOLD | A_UNDERLINE},
        [STYLE_TITLE] = {COLOR_CYAN, -1, A_BOLD, A_BOLD},
        [STYLE_COLUMN_HEADER] = {COLOR_BLACK, COLOR_GREEN, 0, A_REVERSE},
        [STYLE_COLUMN_SORTED] = {COLOR_BLACK, COLOR_CYAN, A_BOLD, A_REVERSE | A_BOLD},
        [STYLE_TAB] = {-1, -1, 0, 0},
        [STYLE_TAB_ACTIVE] = {COLOR_BLACK, COLOR_CYAN, A_BOLD, A_REVERSE | A_BOLD},
        [STYLE_METER_LABEL] = {COLOR_CYAN, -1, 0, 0},
        [STYLE_METER_VALUE] = {-1, -1, A_BOLD, A_BOLD},
        [STYLE_STATUS_BAD] = {COLOR_WHITE, COLOR_RED, A_BOLD, A_REVERSE | A_BOLD},
        [STYLE_FOOTER_KEY] = {-1, -1, A_BOLD, A_BOLD},
        [STYLE_FOOTER_TEXT] = {COLOR_BLACK, COLOR_CYAN, 0, A_REVERSE},
    };
    theme->colour = getenv("NO_COLOR") == NULL && has_colors();
    if (theme->colour && start_color() != OK)
        theme->colour = false;
    if (theme->colour)
        use_default_colors();
    for (int s = 0; s < STYLE_COUNT; s++) {
        if (!theme->colour) {
            theme->attrs[s] = styles[s].mono;
            continue;
        }
        /* pair 0 is the terminal's default and cannot be redefined */
        init_pair((short)(s + 1), styles[s].fg, styles[s].bg);
        theme->attrs[s] = COLOR_PAIR(s + 1) | styles[s].extra;
    }
}
