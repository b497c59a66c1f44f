/*
 * ctl_time.c - times given on the command line (see ctl_time.h).
 */
#include "ctl_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* A UTC time (2026-05-01, 2026-05-01T12:00:00[Z], "2026-05-01 12:00:00") or an age
 * (30s, 15m, 2h, 3d). Returns the cutoff in Unix seconds, or -1 if it is neither. */
long long ctl_parse_time(const char *text)
{
    char *end = NULL;
    long long n = strtoll(text, &end, 10);
    if (end && end != text && end[0] && !end[1] && n >= 0) {
        static const struct {
            char unit;
            long long seconds;
        } units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}};
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
            if (end[0] == units[i].unit)
                return (long long)time(NULL) - n * units[i].seconds;
    }
    static const char *const formats[] = {"%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S",
                                          "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"};
    for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
        struct tm tm = {0};
        const char *rest = strptime(text, formats[i], &tm);
        if (rest && !*rest)
            return (long long)timegm(&tm);
    }
    return -1;
}

void ctl_format_time_ms(long long ms, char *out, size_t outlen)
{
    time_t secs = (time_t)(ms / 1000);
    int frac = (int)(ms % 1000);
    struct tm tm;
    if (frac < 0) { /* before 1970: the fraction counts up from the earlier second */
        frac += 1000;
        secs--;
    }
    if (!gmtime_r(&secs, &tm)) {
        snprintf(out, outlen, "invalid");
        return;
    }
    snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

int64_t ctl_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
