/*
 * ctl_page.c - paging arguments and cursors of the control socket's lists (see ctl_page.h).
 */
#include "ctl_page.h"

#include "ctl_commands.h"
#include "ctl_proto.h"
#include "iot_error.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

int ctl_page_args(const cJSON *args, unsigned default_limit, struct ctl_page *page, char *err,
                  size_t errlen)
{
    long long limit = ctl_get_int(args, "limit", default_limit);
    page->limit = default_limit;
    page->after = ctl_get_string(args, "after");
    if (limit < 1 || limit > CTL_PAGE_MAX) {
        snprintf(err, errlen, "--limit must be between 1 and %d", CTL_PAGE_MAX);
        return IOT_EINVAL;
    }
    page->limit = (unsigned)limit;
    return IOT_OK;
}

bool ctl_cursor_parse(const char *cursor, unsigned long long *out, size_t n)
{
    const char *p = cursor;
    if (!p)
        return false;
    for (size_t i = 0; i < n; i++) {
        char *end = NULL;
        if (!isdigit((unsigned char)*p))
            return false;
        errno = 0;
        out[i] = strtoull(p, &end, 10);
        if (errno != 0 || end - p > 19)
            return false;
        p = end;
        if (i + 1 < n && *p++ != '.')
            return false;
    }
    return *p == '\0';
}

void ctl_cursor_format(char *buf, size_t len, const unsigned long long *v, size_t n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%llu", i ? "." : "", v[i]);
}

int ctl_page_set_next(cJSON *result, const char *cursor)
{
    return cJSON_AddStringToObject(result, "next", cursor) ? IOT_OK : IOT_ENOMEM;
}
