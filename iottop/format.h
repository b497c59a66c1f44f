/*
 * format.h - a model cell as text, for the screen and the batch tables alike.
 *
 * Numbers are squeezed into the column's width the way top does it: a count too wide for its
 * column becomes 12.3K / 4.5M / 6.7G, bytes are shown as 512 / 1.5K / 23.4M, durations as
 * 850ms / 4.9s / 3m12s / 2h05m / 3d04h, wall-clock times as local HH:MM:SS.
 */
#ifndef IOTTOP_FORMAT_H
#define IOTTOP_FORMAT_H

#include "model.h"

#include <stddef.h>

/* Write the cell as text into buf (always NUL-terminated); absent cells are "-". width is the
 * column width the text should fit in (0: no limit); text cells are not cut here. */
void format_cell(const struct model_column *column, const struct model_cell *cell, int width,
                 char *buf, size_t len);

/* Building blocks, also used by the header meters. */
void format_bytes(double bytes, char *buf, size_t len);
void format_duration_ms(double ms, char *buf, size_t len);
void format_rate(double per_second, char *buf, size_t len);
/* Uptime as "3d 04:05:06" or "04:05:06". */
void format_uptime(double seconds, char *buf, size_t len);

#endif
