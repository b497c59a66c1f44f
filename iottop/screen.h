/*
 * screen.h - the screen manager: the curses session, the layout (title, meters, status line,
 * panel tabs, the current panel, the keys footer, the help page) and the keys.
 *
 * The screen draws the model and edits only view state (panel, scroll, sort, filter, pause,
 * interval); what needs the daemon (a new interval or session sort) is left to the caller, who
 * compares screen_wanted_* with what it subscribed to.
 */
#ifndef IOTTOP_SCREEN_H
#define IOTTOP_SCREEN_H

#include "model.h"
#include "theme.h"

#include <stdbool.h>
#include <stddef.h>

enum screen_action {
    SCREEN_NOTHING, /* the key did nothing visible */
    SCREEN_REDRAW,  /* view state changed */
    SCREEN_QUIT,
};

struct screen {
    model_t *model;          /* borrowed */
    const char *socket_path; /* shown in the title */
    struct theme theme;
    int panel; /* 0..MODEL_PANEL_COUNT-1 */
    size_t scroll[MODEL_PANEL_COUNT];
    size_t shown_first[MODEL_PANEL_COUNT]; /* first row drawn last time */
    int page_rows;                         /* table rows that fit, last time */
    int interval_ms;
    bool help, paused, editing_filter, started;
    char status[256]; /* connection trouble, shown in red; "" when all is well */
};

/* Take over the terminal (initscr, keypad, no echo, colours unless NO_COLOR). IOT_EIO when
 * stdin/stdout is not a terminal curses can drive. */
int screen_start(struct screen *screen, model_t *model, const char *socket_path, int interval_ms);
/* Give the terminal back exactly as it was (endwin). Safe to call twice. */
void screen_stop(struct screen *screen);

/* Act on one key from getch(). */
enum screen_action screen_key(struct screen *screen, int key);
void screen_draw(struct screen *screen);
/* Set or clear ("" / NULL) the status line. */
void screen_set_status(struct screen *screen, const char *text);

#endif
