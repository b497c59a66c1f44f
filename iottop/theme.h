/*
 * theme.h - what a piece of the screen means (a style) -> how it looks (curses attributes).
 *
 * Drawing code names styles only, so colour and monochrome terminals share all of it: with
 * colours each style is a colour pair, without (no colour support, or NO_COLOR set to any
 * value) it is bold, reverse or underline.
 */
#ifndef IOTTOP_THEME_H
#define IOTTOP_THEME_H

#include <curses.h>
#include <stdbool.h>

enum theme_style {
    STYLE_NORMAL,
    STYLE_DIM,
    STYLE_GOOD,
    STYLE_WARN,
    STYLE_BAD,
    STYLE_TITLE,
    STYLE_COLUMN_HEADER,
    STYLE_COLUMN_SORTED,
    STYLE_TAB,
    STYLE_TAB_ACTIVE,
    STYLE_METER_LABEL,
    STYLE_METER_VALUE,
    STYLE_STATUS_BAD,
    STYLE_FOOTER_KEY,
    STYLE_FOOTER_TEXT,
    STYLE_COUNT
};

struct theme {
    attr_t attrs[STYLE_COUNT];
    bool colour;
};

/* After initscr: pick colours when the terminal has them and NO_COLOR is unset. */
void theme_init(struct theme *theme);

static inline attr_t theme_attr(const struct theme *theme, enum theme_style style)
{
    return theme->attrs[style];
}

#endif
