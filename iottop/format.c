/*
 * format.c - cells and values as short human text (see format.h).
 *
 * Every formatter writes with snprintf into the caller's buffer, so a value that does not fit
 * is cut, never overflowing; the column width only chooses between a precise and a compact
 * form.
 */
#include "format.h"

#include "iot_text.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* 1234567 -> "1.2M"; below 1000 the plain integer. */
static void format_compact(double value, char *buf, size_t len)
{
    static const char suffix[] = "KMGTP";
    double v = value;
    int unit = -1;
    while (fabs(v) >= 1000 && unit < (int)sizeof(suffix) - 2) {
        v /= 1000;
        unit++;
    }
    if (unit < 0)
        snprintf(buf, len, "%.0f", value);
    else
        snprintf(buf, len, v < 100 ? "%.1f%c" : "%.0f%c", v, suffix[unit]);
}

void format_bytes(double bytes, char *buf, size_t len)
{
    static const char suffix[] = "KMGTP";
    double v = bytes;
    int unit = -1;
    while (v >= 1024 && unit < (int)sizeof(suffix) - 2) {
        v /= 1024;
        unit++;
    }
    if (unit < 0)
        snprintf(buf, len, "%.0f", bytes);
    else
        snprintf(buf, len, v < 100 ? "%.1f%c" : "%.0f%c", v, suffix[unit]);
}

void format_duration_ms(double ms, char *buf, size_t len)
{
    if (ms < 0)
        ms = 0;
    if (ms < 1000) {
        snprintf(buf, len, "%.0fms", ms);
        return;
    }
    double s = ms / 1000;
    long long whole = (long long)s;
    if (s < 60)
        snprintf(buf, len, "%.1fs", s);
    else if (whole < 3600)
        snprintf(buf, len, "%lldm%02llds", whole / 60, whole % 60);
    else if (whole < 86400)
        snprintf(buf, len, "%lldh%02lldm", whole / 3600, whole % 3600 / 60);
    else
        snprintf(buf, len, "%lldd%02lldh", whole / 86400, whole % 86400 / 3600);
}

void format_rate(double per_second, char *buf, size_t len)
{
    if (per_second < 100)
        snprintf(buf, len, "%.1f", per_second);
    else
        format_compact(per_second, buf, len);
}

void format_uptime(double seconds, char *buf, size_t len)
{
    long long s = seconds > 0 ? (long long)seconds : 0;
    if (s >= 86400)
        snprintf(buf, len, "%lldd %02lld:%02lld:%02lld", s / 86400, s % 86400 / 3600, s % 3600 / 60,
                 s % 60);
    else
        snprintf(buf, len, "%02lld:%02lld:%02lld", s / 3600, s % 3600 / 60, s % 60);
}

static void format_clock(double ms, char *buf, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!localtime_r(&t, &tm)) {
        snprintf(buf, len, "?");
        return;
    }
    strftime(buf, len, "%H:%M:%S", &tm);
}

void format_cell(const struct model_column *column, const struct model_cell *cell, int width,
                 char *buf, size_t len)
{
    if (!cell->present) {
        snprintf(buf, len, "-");
        return;
    }
    switch (column->format) {
    case MODEL_FMT_TEXT:
        /* Session names and peers come from the network: escaped, never drawn raw. */
        if (cell->text)
            iot_text_escape(buf, len, cell->text, strlen(cell->text));
        else
            snprintf(buf, len, "-");
        break;
    case MODEL_FMT_COUNT:
        snprintf(buf, len, "%.0f", cell->number);
        if (width > 0 && strlen(buf) > (size_t)width)
            format_compact(cell->number, buf, len);
        break;
    case MODEL_FMT_RATE:
        format_rate(cell->number, buf, len);
        break;
    case MODEL_FMT_PERCENT:
        snprintf(buf, len, "%.1f", cell->number);
        break;
    case MODEL_FMT_BYTES:
    case MODEL_FMT_BYTE_RATE:
        format_bytes(cell->number, buf, len);
        break;
    case MODEL_FMT_DURATION_MS:
        format_duration_ms(cell->number, buf, len);
        break;
    case MODEL_FMT_CLOCK_MS:
        format_clock(cell->number, buf, len);
        break;
    }
}
