/*
 * meters.c - the header meters (see meters.h), one small function each.
 *
 * A meter only renders text and chooses a style; placing is meters_draw's job. Errors/s shows
 * red as soon as it is above zero: at 3 a.m. any error rate is worth a look.
 */
#include "meters.h"

#include "format.h"

#include <curses.h>
#include <stdio.h>
#include <string.h>

struct meter {
    const char *label;
    enum theme_style (*render)(const struct model_summary *s, char *buf, size_t len);
};

static enum theme_style absent(char *buf, size_t len)
{
    snprintf(buf, len, "-");
    return STYLE_DIM;
}

static enum theme_style uptime_meter(const struct model_summary *s, char *buf, size_t len)
{
    if (!s->uptime_s.present)
        return absent(buf, len);
    format_uptime(s->uptime_s.value, buf, len);
    return STYLE_METER_VALUE;
}

static enum theme_style connections_meter(const struct model_summary *s, char *buf, size_t len)
{
    if (!s->connections.present)
        return absent(buf, len);
    if (s->connections_detail[0])
        snprintf(buf, len, "%.0f (%s)", s->connections.value, s->connections_detail);
    else
        snprintf(buf, len, "%.0f", s->connections.value);
    return STYLE_METER_VALUE;
}

static enum theme_style sessions_meter(const struct model_summary *s, char *buf, size_t len)
{
    if (!s->sessions_total.present)
        return absent(buf, len);
    snprintf(buf, len, "%.0f", s->sessions_total.value);
    return STYLE_METER_VALUE;
}

static enum theme_style rate_meter(struct model_value v, char *buf, size_t len)
{
    if (!v.present)
        return absent(buf, len);
    format_rate(v.value, buf, len);
    return STYLE_METER_VALUE;
}

static enum theme_style requests_meter(const struct model_summary *s, char *buf, size_t len)
{
    return rate_meter(s->requests_per_s, buf, len);
}

static enum theme_style events_meter(const struct model_summary *s, char *buf, size_t len)
{
    return rate_meter(s->events_per_s, buf, len);
}

static enum theme_style errors_meter(const struct model_summary *s, char *buf, size_t len)
{
    enum theme_style style = rate_meter(s->errors_per_s, buf, len);
    return s->errors_per_s.present && s->errors_per_s.value > 0 ? STYLE_BAD : style;
}

static enum theme_style rss_meter(const struct model_summary *s, char *buf, size_t len)
{
    if (!s->rss_bytes.present)
        return absent(buf, len);
    format_bytes(s->rss_bytes.value, buf, len);
    return STYLE_METER_VALUE;
}

static const struct meter meters[] = {
    {"Uptime", uptime_meter},  {"Connections", connections_meter}, {"Sessions", sessions_meter},
    {"Req/s", requests_meter}, {"Events/s", events_meter},         {"Errors/s", errors_meter},
    {"RSS", rss_meter},
};

int meters_draw(const struct model_summary *s, const struct theme *theme, int top, int width,
                int max_rows)
{
    char value[192];
    int row = 0, x = 1;
    if (max_rows < 1)
        return 0;
    for (size_t i = 0; i < sizeof(meters) / sizeof(meters[0]); i++) {
        enum theme_style style = meters[i].render(s, value, sizeof(value));
        int need = (int)(strlen(meters[i].label) + 2 + strlen(value) + 3);
        if (x > 1 && x + need > width) {
            if (row + 1 >= max_rows)
                break;
            row++;
            x = 1;
        }
        attron(theme_attr(theme, STYLE_METER_LABEL));
        mvaddnstr(top + row, x, meters[i].label, width - x);
        attroff(theme_attr(theme, STYLE_METER_LABEL));
        x += (int)strlen(meters[i].label);
        if (x + 2 < width)
            mvaddstr(top + row, x, ": ");
        x += 2;
        if (x < width) {
            attron(theme_attr(theme, style));
            mvaddnstr(top + row, x, value, width - x);
            attroff(theme_attr(theme, style));
        }
        x += (int)strlen(value) + 3;
    }
    return row + 1;
}
