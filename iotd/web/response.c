/*
 * response.c - response heads (see response.h): the status table and the common headers.
 */
#include "web/response.h"

#include <string.h>

struct status_reason {
    int status;
    const char *reason;
};

static const struct status_reason reasons[] = {
    {101, "Switching Protocols"},
    {200, "OK"},
    {301, "Moved Permanently"},
    {304, "Not Modified"},
    {400, "Bad Request"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {408, "Request Timeout"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {426, "Upgrade Required"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {503, "Service Unavailable"},
    {505, "HTTP Version Not Supported"},
};

const char *http_status_reason(int status)
{
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
        if (reasons[i].status == status)
            return reasons[i].reason;
    return "Unknown";
}

void http_response_head(struct web_buf *b, const struct http_response *r)
{
    char date[64];
    struct tm tm;
    gmtime_r(&r->now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    web_buf_printf(b, "HTTP/1.1 %d %s\r\nServer: %s\r\nDate: %s\r\n", r->status,
                   http_status_reason(r->status), r->server, date);
    web_buf_puts(b, WEB_SECURITY_HEADERS);
    if (r->content_type)
        web_buf_printf(b, "Content-Type: %s\r\n", r->content_type);
    if (r->status != 304)
        web_buf_printf(b, "Content-Length: %zu\r\n", r->content_length);
    web_buf_puts(b, r->keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n");
    if (r->extra)
        web_buf_puts(b, r->extra);
    web_buf_puts(b, "\r\n");
}

void http_response_text(struct web_buf *b, struct http_response *r, const char *text,
                        bool head_only)
{
    r->content_type = "text/plain; charset=utf-8";
    r->content_length = strlen(text);
    http_response_head(b, r);
    if (!head_only)
        web_buf_puts(b, text);
}
