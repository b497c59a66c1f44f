/*
 * ctl_page.h - keyset paging of the control socket's lists (events, audit, device list, alarm
 * list, changes list; see iotctl(8), PAGING).
 *
 * A list request carries "limit" (1 to CTL_PAGE_MAX rows, the command's default when absent)
 * and "after" (a cursor, absent for the first page). Its result carries "next" when more rows
 * follow the page: the cursor of its last row, which the next request passes as "after". A
 * cursor is the last row's place in the list's order, never an offset, so a page costs the
 * same however deep it is and rows added meanwhile are neither skipped nor shown twice.
 * Cursors of database lists are dot-separated unsigned numbers ("1733580000123.42"); that
 * of device list is the last device id.
 */
#ifndef CTL_PAGE_H
#define CTL_PAGE_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

struct ctl_page {
    unsigned limit;
    const char *after; /* NULL: the first page */
};

/* Read "limit" (default_limit when absent) and "after" from a list request's args. IOT_EINVAL
 * with a sentence in err when the limit is out of range. */
int ctl_page_args(const cJSON *args, unsigned default_limit, struct ctl_page *page, char *err,
                  size_t errlen);

/* Parse a cursor of exactly n dot-separated unsigned numbers into out[0..n). */
bool ctl_cursor_parse(const char *cursor, unsigned long long *out, size_t n);

/* Write n numbers as a cursor ("N.N.N") into buf. */
void ctl_cursor_format(char *buf, size_t len, const unsigned long long *v, size_t n);

/* Add "next": cursor to a list result. IOT_OK or IOT_ENOMEM. */
int ctl_page_set_next(cJSON *result, const char *cursor);

/* The sentence for a cursor a list cannot read, for IOT_EINVAL answers. */
#define CTL_CURSOR_BAD "--after: not a cursor of this list (use the \"next\" of its last page)"

#endif
