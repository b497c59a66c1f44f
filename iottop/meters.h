/*
 * meters.h - the header meters: uptime, connections, req/s, events/s, errors/s, RSS.
 *
 * Each meter is a label and a function that renders its value from the model summary; the
 * meters flow left to right and wrap onto more lines on a narrow terminal.
 */
#ifndef IOTTOP_METERS_H
#define IOTTOP_METERS_H

#include "model.h"
#include "theme.h"

/* Draw the meters from row top within width; returns the number of rows used (at most
 * max_rows). */
int meters_draw(const struct model_summary *summary, const struct theme *theme, int top, int width,
                int max_rows);

#endif
