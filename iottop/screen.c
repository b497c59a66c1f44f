/*
 * screen.c - layout and keys of the interactive view (see screen.h).
 *
 * Layout, top to bottom, recomputed at every draw so a resize (KEY_RESIZE, which curses turns
 * SIGWINCH into) only needs a redraw:
 *   title bar      iottop, the daemon's version and socket, the clock, PAUSED
 *   meters         one to three rows (meters.c)
 *   status line    connection trouble in red, or the filter being typed / in force
 *   tabs           1 Threads  2 Queues  3 Sessions  4 Requests  5 Events, and the row count
 *   panel          header and rows (panel.c), or the help page
 *   footer         the main keys
 * Everything is drawn into stdscr and pushed with one refresh, so the terminal never shows a
 * half-drawn frame.
 */
#include "screen.h"

#include "iot_error.h"
#include "iot_text.h"
#include "meters.h"
#include "panel.h"

#include <curses.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define KEY_ESCAPE   27
#define KEY_CTRL_L   12
#define METER_ROWS   3
#define ESCAPE_DELAY 25 /* ms: Esc alone must feel instant, arrows still parse */

/* The intervals +/- step through, in milliseconds (the daemon accepts 100..60000). */
static const int intervals[] = {100, 200, 500, 1000, 2000, 3000, 5000, 10000, 30000, 60000};
#define INTERVAL_COUNT (int)(sizeof(intervals) / sizeof(intervals[0]))

static const char *const help_lines[] = {
    "iottop: a live view of iotd's threads, queues, sessions, requests and events",
    "",
    "  1-5, Tab, S-Tab   switch panel (Threads, Queues, Sessions, Requests, Events)",
    "  < >  or  s        sort by the previous / next column (s cycles); r reverses",
    "  /                 filter rows by tenant, principal or address (Enter keeps, Esc clears)",
    "  Esc               clear the filter",
    "  space             pause / resume (samples keep coming, the view stays still)",
    "  + -               longer / shorter sample interval",
    "  arrows PgUp PgDn  scroll; Home / End go to the top / bottom (End follows the events)",
    "  Ctrl-L            redraw the screen",
    "  h ?               this help (any key closes it)",
    "  q                 quit",
    "",
    "Rates are per second over the last interval; '-' means iotd did not report the value.",
    "Sessions shows the daemon's top N by the sort column; the filter applies to those.",
};

int screen_start(struct screen *s, model_t *model, const char *socket_path, int interval_ms)
{
    memset(s, 0, sizeof(*s));
    s->model = model;
    s->socket_path = socket_path;
    s->interval_ms = interval_ms;
    for (int p = 0; p < MODEL_PANEL_COUNT; p++)
        s->scroll[p] = panel_by_index(p)->follows_tail ? SIZE_MAX : 0;
    if (!initscr())
        return IOT_EIO;
    s->started = true;
    cbreak();
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    nodelay(stdscr, TRUE);
    set_escdelay(ESCAPE_DELAY);
    curs_set(0);
    theme_init(&s->theme);
    return IOT_OK;
}

void screen_stop(struct screen *s)
{
    if (!s->started)
        return;
    s->started = false;
    curs_set(1);
    endwin();
}

void screen_set_status(struct screen *s, const char *text)
{
    snprintf(s->status, sizeof(s->status), "%s", text ? text : "");
}

static int interval_index(int ms)
{
    int best = 0;
    for (int i = 0; i < INTERVAL_COUNT; i++)
        if (intervals[i] <= ms)
            best = i;
    return best;
}

/* '+' goes to the next ladder step above the interval, '-' to the next below (an odd -d value
 * such as 1.5 s joins the ladder at its neighbours). */
static void step_interval(struct screen *s, int step)
{
    int i = interval_index(s->interval_ms); /* the largest step <= the interval */
    if (step > 0)
        i++;
    else if (intervals[i] == s->interval_ms)
        i--;
    if (i < 0)
        i = 0;
    if (i >= INTERVAL_COUNT)
        i = INTERVAL_COUNT - 1;
    s->interval_ms = intervals[i];
}

static void scroll_by(struct screen *s, long delta)
{
    const struct panel *panel = panel_by_index(s->panel);
    const struct model_table *t = model_table(s->model, panel->table);
    long first = (long)s->shown_first[s->panel] + delta;
    long last_start = (long)t->view_count - s->page_rows;
    if (last_start < 0)
        last_start = 0;
    if (first < 0)
        first = 0;
    if (first >= last_start)
        s->scroll[s->panel] = panel->follows_tail ? SIZE_MAX : (size_t)last_start;
    else
        s->scroll[s->panel] = (size_t)first;
}

static enum screen_action filter_key(struct screen *s, int key)
{
    char text[MODEL_FILTER_MAX];
    snprintf(text, sizeof(text), "%s", model_filter(s->model));
    size_t len = strlen(text);
    if (key == KEY_ESCAPE) {
        s->editing_filter = false;
        model_set_filter(s->model, "");
    } else if (key == '\n' || key == '\r' || key == KEY_ENTER) {
        s->editing_filter = false;
    } else if (key == KEY_BACKSPACE || key == 127 || key == 8) {
        if (len > 0)
            text[len - 1] = '\0';
        model_set_filter(s->model, text);
    } else if (key >= 32 && key < 127 && len + 1 < sizeof(text)) {
        text[len] = (char)key;
        text[len + 1] = '\0';
        model_set_filter(s->model, text);
    } else {
        return SCREEN_NOTHING;
    }
    return SCREEN_REDRAW;
}

enum screen_action screen_key(struct screen *s, int key)
{
    enum model_panel table = panel_by_index(s->panel)->table;
    if (key == KEY_RESIZE || key == KEY_CTRL_L) {
        clearok(curscr, TRUE);
        return SCREEN_REDRAW;
    }
    if (s->editing_filter)
        return filter_key(s, key);
    if (s->help) {
        if (key == 'q' || key == 'Q')
            return SCREEN_QUIT;
        s->help = false;
        return SCREEN_REDRAW;
    }
    switch (key) {
    case 'q':
    case 'Q':
        return SCREEN_QUIT;
    case 'h':
    case '?':
    case KEY_F(1):
        s->help = true;
        break;
    case '\t':
        s->panel = (s->panel + 1) % MODEL_PANEL_COUNT;
        break;
    case KEY_BTAB:
        s->panel = (s->panel + MODEL_PANEL_COUNT - 1) % MODEL_PANEL_COUNT;
        break;
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
        s->panel = key - '1';
        break;
    case '<':
    case ',':
        model_step_sort(s->model, table, -1);
        break;
    case '>':
    case '.':
    case 's':
        model_step_sort(s->model, table, +1);
        break;
    case 'r':
    case 'I':
        model_reverse_sort(s->model, table);
        break;
    case '/':
        s->editing_filter = true;
        break;
    case KEY_ESCAPE:
        model_set_filter(s->model, "");
        break;
    case ' ':
        s->paused = !s->paused;
        break;
    case '+':
    case '=':
        step_interval(s, +1);
        break;
    case '-':
    case '_':
        step_interval(s, -1);
        break;
    case KEY_UP:
    case 'k':
        scroll_by(s, -1);
        break;
    case KEY_DOWN:
    case 'j':
        scroll_by(s, +1);
        break;
    case KEY_PPAGE:
        scroll_by(s, -(long)(s->page_rows > 1 ? s->page_rows - 1 : 1));
        break;
    case KEY_NPAGE:
        scroll_by(s, s->page_rows > 1 ? s->page_rows - 1 : 1);
        break;
    case KEY_HOME:
    case 'g':
        s->scroll[s->panel] = 0;
        break;
    case KEY_END:
    case 'G':
        s->scroll[s->panel] = SIZE_MAX;
        break;
    default:
        return SCREEN_NOTHING;
    }
    return SCREEN_REDRAW;
}

/* A full-width bar with text on the left and right_text on the right. */
static void draw_bar(int y, int width, attr_t attr, const char *raw_text, const char *right_text)
{
    /* The title quotes the daemon's version, the status line its error messages. */
    char text[IOT_TEXT_ESCAPED_MAX(384)];
    iot_text_escape(text, sizeof(text), raw_text, strnlen(raw_text, 384));
    move(y, 0);
    attron(attr);
    hline(' ', width);
    mvaddnstr(y, 0, text, width);
    int right = right_text ? (int)strlen(right_text) : 0;
    if (right && right + (int)strlen(text) + 1 < width)
        mvaddstr(y, width - right, right_text);
    attroff(attr);
}

static void draw_title(struct screen *s, int width)
{
    const struct model_summary *sum = model_summary(s->model);
    char left[384], right[96], clock[16] = "";
    time_t now = time(NULL);
    struct tm tm;
    if (localtime_r(&now, &tm))
        strftime(clock, sizeof(clock), "%H:%M:%S", &tm);
    snprintf(left, sizeof(left), " iottop - iotd %s%s%.0f at %s",
             sum->version[0] ? sum->version : "", sum->pid.present ? " pid " : "",
             sum->pid.present ? sum->pid.value : 0, s->socket_path);
    if (!sum->pid.present)
        snprintf(left, sizeof(left), " iottop - iotd at %s", s->socket_path);
    snprintf(right, sizeof(right), "%severy %.1fs  %s ", s->paused ? "PAUSED  " : "",
             s->interval_ms / 1000.0, clock);
    draw_bar(0, width, theme_attr(&s->theme, STYLE_TITLE) | A_REVERSE, left, right);
}

static void draw_status(struct screen *s, int y, int width)
{
    char line[384];
    const char *filter = model_filter(s->model);
    move(y, 0);
    clrtoeol();
    if (s->status[0]) {
        snprintf(line, sizeof(line), " %s", s->status);
        draw_bar(y, width, theme_attr(&s->theme, STYLE_STATUS_BAD), line, NULL);
    } else if (s->editing_filter) {
        snprintf(line, sizeof(line), " Filter: %s_   (Enter keeps it, Esc clears it)", filter);
        attron(theme_attr(&s->theme, STYLE_WARN));
        mvaddnstr(y, 0, line, width);
        attroff(theme_attr(&s->theme, STYLE_WARN));
    } else if (filter[0]) {
        snprintf(line, sizeof(line), " Filter: %s   (/ edits, Esc clears)", filter);
        attron(theme_attr(&s->theme, STYLE_WARN));
        mvaddnstr(y, 0, line, width);
        attroff(theme_attr(&s->theme, STYLE_WARN));
    }
}

static void draw_tabs(struct screen *s, int y, int width)
{
    char tab[32], count[64];
    int x = 0;
    move(y, 0);
    clrtoeol();
    for (int p = 0; p < MODEL_PANEL_COUNT && x < width; p++) {
        snprintf(tab, sizeof(tab), " %d %s ", p + 1, panel_by_index(p)->name);
        attr_t attr = theme_attr(&s->theme, p == s->panel ? STYLE_TAB_ACTIVE : STYLE_TAB);
        attron(attr);
        mvaddnstr(y, x, tab, width - x);
        attroff(attr);
        x += (int)strlen(tab) + 1;
    }
    const struct model_table *t = model_table(s->model, panel_by_index(s->panel)->table);
    const struct model_summary *sum = model_summary(s->model);
    if (s->panel == MODEL_SESSIONS && sum->sessions_total.present)
        snprintf(count, sizeof(count), "%zu shown of %.0f ", t->view_count,
                 sum->sessions_total.value);
    else
        snprintf(count, sizeof(count), "%zu of %zu ", t->view_count, t->row_count);
    if (x + (int)strlen(count) < width)
        mvaddstr(y, width - (int)strlen(count), count);
}

static void draw_help(struct screen *s, int top, int height, int width)
{
    for (int i = 0; i < height && i < (int)(sizeof(help_lines) / sizeof(help_lines[0])); i++) {
        attr_t attr = theme_attr(&s->theme, i == 0 ? STYLE_TITLE : STYLE_NORMAL);
        attron(attr);
        mvaddnstr(top + i, 1, help_lines[i], width - 1);
        attroff(attr);
    }
}

static void draw_footer(struct screen *s, int y, int width)
{
    static const char *const keys[][2] = {
        {"q", "Quit"},    {"h", "Help"},   {"Tab", "Panel"},   {"<>", "Sort"},
        {"r", "Reverse"}, {"/", "Filter"}, {"Space", "Pause"}, {"+-", "Interval"},
    };
    int x = 0;
    move(y, 0);
    clrtoeol();
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]) && x < width; i++) {
        attron(theme_attr(&s->theme, STYLE_FOOTER_KEY));
        mvaddnstr(y, x, keys[i][0], width - x);
        attroff(theme_attr(&s->theme, STYLE_FOOTER_KEY));
        x += (int)strlen(keys[i][0]);
        if (x >= width)
            break;
        attron(theme_attr(&s->theme, STYLE_FOOTER_TEXT));
        mvaddnstr(y, x, keys[i][1], width - x);
        attroff(theme_attr(&s->theme, STYLE_FOOTER_TEXT));
        x += (int)strlen(keys[i][1]) + 1;
    }
}

void screen_draw(struct screen *s)
{
    int height = LINES, width = COLS;
    erase();
    if (height < 8 || width < 20) {
        mvaddnstr(0, 0, "iottop: terminal too small", width);
        refresh();
        return;
    }
    draw_title(s, width);
    int y = 1;
    y += meters_draw(model_summary(s->model), &s->theme, y, width, METER_ROWS);
    if (model_summary(s->model)->cluster[0]) {
        /* A node of a cluster (iotd-cluster(7)): the nodes and what crossed between them. */
        char line[384];
        snprintf(line, sizeof(line), " Cluster: %s", model_summary(s->model)->cluster);
        mvaddnstr(y++, 0, line, width);
    }
    draw_status(s, y++, width);
    draw_tabs(s, y++, width);
    int panel_height = height - 1 - y;
    if (s->help) {
        draw_help(s, y, panel_height, width);
    } else {
        const struct panel *panel = panel_by_index(s->panel);
        s->page_rows = panel_height - 1;
        s->shown_first[s->panel] = panel_draw(panel, model_table(s->model, panel->table), &s->theme,
                                              y, panel_height, width, s->scroll[s->panel]);
    }
    draw_footer(s, height - 1, width);
    refresh();
}
