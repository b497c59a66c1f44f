/*
 * ctl_time.h - times given on the command line: "--since", "--until".
 */
#ifndef CTL_TIME_H
#define CTL_TIME_H

/* A UTC time (2026-05-01, 2026-05-01T12:00:00[Z], "2026-05-01 12:00:00") or an age before now
 * (30s, 15m, 2h, 3d). Returns Unix seconds, or -1 if the text is neither. */
long long ctl_parse_time(const char *text);

#endif
