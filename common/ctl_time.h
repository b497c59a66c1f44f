/*
 * ctl_time.h - times on the control protocol: read from the command line ("--since",
 * "--until") and written into results (RFC 3339 UTC with milliseconds).
 */
#ifndef CTL_TIME_H
#define CTL_TIME_H

#include <stddef.h>
#include <stdint.h>

/* Now, in milliseconds since the epoch (the wall clock: what records and results carry). */
int64_t ctl_wall_ms(void);

/* A UTC time (2026-05-01, 2026-05-01T12:00:00[Z], "2026-05-01 12:00:00") or an age before now
 * (30s, 15m, 2h, 3d). Returns Unix seconds, or -1 if the text is neither. */
long long ctl_parse_time(const char *text);

/* Milliseconds since the epoch as "2026-05-01T12:00:00.123Z" (CTL_TIME_LEN bytes hold it). */
#define CTL_TIME_LEN 64
void ctl_format_time_ms(long long ms, char *out, size_t outlen);

#endif
