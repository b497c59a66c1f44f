/*
 * iotp_esp_at.c - an ESP8266 AT modem as an iotp transport (see iotp_esp_at.h).
 *
 * One byte-at-a-time parser reads everything the modem says, so that +IPD payload arriving in
 * the middle of a command's reply lands in the receive ring whatever the driver waits for.
 * Commands are written, then the driver pumps the UART until a wanted flag, a failing flag, a
 * busy (the command is written again after a pause) or the deadline.
 */
#include "iotp/iotp_esp_at.h"

#include <string.h>

#include "iotp/iotp_error.h"

/* UART writes that take nothing tolerated in a row (a FIFO that stays full). */
#define WRITE_IDLE 1000u
/* UART reads per pump: enough to drain a FIFO, bounded so a babbling modem cannot hold us. */
#define PUMP_READS 64u

static const char ipd_prefix[] = "+IPD,";

/* Result lines: exact text, or a prefix when prefix is set. */
static const struct {
    const char *text;
    unsigned flag;
    int prefix;
} results[] = {
    {"OK", IOTP_ESP_AT_OK, 0},
    {"ERROR", IOTP_ESP_AT_ERROR, 0},
    {"FAIL", IOTP_ESP_AT_ERROR, 0},
    {"SEND OK", IOTP_ESP_AT_SEND_OK, 0},
    {"SEND FAIL", IOTP_ESP_AT_SEND_FAIL, 0},
    {"CLOSED", IOTP_ESP_AT_CLOSED, 0},
    {"busy ", IOTP_ESP_AT_BUSY, 1},
};

/* The connection kinds AT+CIPSTART takes. */
static const char *const kinds[] = {"TCP", "SSL"};

/* The connection is unusable from now on: sends fail, recv fails once the ring is read. */
static void broken(struct iotp_esp_at *at, int error)
{
    at->connected = 0;
    if (at->error == 0)
        at->error = error;
}

static void end_line(struct iotp_esp_at *at)
{
    size_t len = at->line_len;

    for (size_t i = 0; i < sizeof(results) / sizeof(results[0]); i++) {
        size_t tl = strlen(results[i].text);
        if ((results[i].prefix ? len >= tl : len == tl) &&
            memcmp(at->line, results[i].text, tl) == 0) {
            at->seen |= results[i].flag;
            if (results[i].flag == IOTP_ESP_AT_CLOSED)
                broken(at, IOTP_EIO);
            break;
        }
    }
    at->line_len = 0;
}

/* The line so far is `+IPD,[<id>,]<len>`: start taking len payload bytes. */
static void start_ipd(struct iotp_esp_at *at)
{
    size_t i = at->line_len, start;
    uint32_t n = 0;

    while (i > sizeof(ipd_prefix) - 1 && at->line[i - 1] != ',')
        i--;
    start = i;
    if (start == at->line_len || at->line_len >= sizeof(at->line))
        return; /* no digits, or the line was cut: not a header we can trust */
    for (; i < at->line_len; i++) {
        if (at->line[i] < '0' || at->line[i] > '9' || n > (UINT32_MAX - 9) / 10)
            return;
        n = n * 10 + (uint32_t)(at->line[i] - '0');
    }
    at->line_len = 0;
    if (n == 0)
        return;
    at->in_ipd = 1;
    at->ipd_left = n;
    if (!at->overflow && n > at->rx_cap - at->rx_len) {
        at->overflow = 1; /* the modem cannot be told to wait: these bytes are lost */
        broken(at, IOTP_ENOSPC);
    }
}

static void parse_byte(struct iotp_esp_at *at, uint8_t c)
{
    if (at->in_ipd) {
        if (!at->overflow) {
            at->rx[(at->rx_head + at->rx_len) % at->rx_cap] = c;
            at->rx_len++;
        }
        if (--at->ipd_left == 0)
            at->in_ipd = 0;
        return;
    }
    if (c == '\n') {
        end_line(at);
        return;
    }
    if (c == '\r' || (c == ' ' && at->line_len == 0))
        return; /* nothing starts with a space: this is the one after CIPSEND's `>` */
    if (c == '>' && at->line_len == 0) {
        at->seen |= IOTP_ESP_AT_PROMPT; /* CIPSEND's "> ": no line end follows */
        return;
    }
    if (c == ':' && at->line_len > sizeof(ipd_prefix) - 1 &&
        memcmp(at->line, ipd_prefix, sizeof(ipd_prefix) - 1) == 0) {
        start_ipd(at);
        if (at->in_ipd || at->line_len == 0)
            return;
    }
    if (at->line_len < sizeof(at->line))
        at->line[at->line_len] = (char)c;
    if (at->line_len < sizeof(at->line))
        at->line_len++;
}

int iotp_esp_at_pump(struct iotp_esp_at *at)
{
    uint8_t chunk[32];

    for (unsigned i = 0; i < PUMP_READS; i++) {
        int32_t n = at->uart.recv(at->uart.ctx, chunk, sizeof(chunk));
        if (n < 0) {
            broken(at, IOTP_EIO);
            return (int)n;
        }
        if (n == 0)
            break;
        for (int32_t j = 0; j < n; j++)
            parse_byte(at, chunk[j]);
    }
    return 0;
}

/* Pump until a flag of mask is seen (0), the deadline (IOTP_ETIMEOUT), a UART error, or, with
 * need_conn, the connection is gone (IOTP_EIO). */
static int wait_for(struct iotp_esp_at *at, unsigned mask, uint64_t deadline, int need_conn)
{
    for (;;) {
        int r = iotp_esp_at_pump(at);
        uint64_t now;

        if (r < 0)
            return r;
        if (need_conn && !at->connected)
            return IOTP_EIO; /* first: lost bytes outweigh a SEND OK read in the same pump */
        if (at->seen & mask)
            return 0;
        now = at->clock.now_ms(at->clock.ctx);
        if (now >= deadline)
            return IOTP_ETIMEOUT;
        if (at->wait)
            at->wait(at->wait_ctx,
                     (uint32_t)(deadline - now > 0xffffffffu ? 0xffffffffu : deadline - now));
    }
}

static int write_str(struct iotp_esp_at *at, const char *s)
{
    return iotp_transport_send_all(&at->uart, (const uint8_t *)s, strlen(s), WRITE_IDLE);
}

/* Write the NULL-terminated parts of a command and wait for want (0), fail (IOTP_EPEER) or the
 * deadline; a busy modem gets the command again after a pause. */
static int exchange(struct iotp_esp_at *at, const char *const *parts, unsigned want, unsigned fail,
                    uint32_t timeout_ms, int need_conn)
{
    uint64_t deadline = at->clock.now_ms(at->clock.ctx) + timeout_ms;

    for (;;) {
        int r = 0;

        at->seen = 0;
        for (unsigned i = 0; parts[i] && r == 0; i++)
            r = write_str(at, parts[i]);
        if (r == 0)
            r = wait_for(at, want | fail | IOTP_ESP_AT_BUSY, deadline, need_conn);
        if (r < 0)
            return r;
        if (at->seen & want)
            return 0;
        if (at->seen & fail)
            return IOTP_EPEER;
        /* busy: let the modem finish, reading what it says meanwhile */
        {
            uint64_t pause = at->clock.now_ms(at->clock.ctx) + IOTP_ESP_AT_BUSY_PAUSE_MS;
            r = wait_for(at, 0, pause < deadline ? pause : deadline, need_conn);
            if (r != IOTP_ETIMEOUT)
                return r;
            if (at->clock.now_ms(at->clock.ctx) >= deadline)
                return IOTP_ETIMEOUT;
        }
    }
}

/* Decimal of v into buf (at least 11 bytes). */
static const char *u32_dec(uint32_t v, char *buf)
{
    char *p = buf + 10;

    *p = '\0';
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    return p;
}

int iotp_esp_at_init(struct iotp_esp_at *at, const struct iotp_transport *uart,
                     const struct iotp_clock *clock, void (*wait)(void *ctx, uint32_t ms),
                     void *wait_ctx, uint8_t *rx, size_t rx_cap)
{
    if (!at || !uart || !uart->send || !uart->recv || !clock || !clock->now_ms || !rx ||
        rx_cap == 0)
        return IOTP_EINVAL;
    memset(at, 0, sizeof(*at));
    at->uart = *uart;
    at->clock = *clock;
    at->wait = wait;
    at->wait_ctx = wait_ctx;
    at->rx = rx;
    at->rx_cap = rx_cap;
    return 0;
}

int iotp_esp_at_command(struct iotp_esp_at *at, const char *cmd, uint32_t timeout_ms)
{
    const char *parts[] = {cmd, "\r\n", NULL};

    if (!at || !cmd)
        return IOTP_EINVAL;
    return exchange(at, parts, IOTP_ESP_AT_OK, IOTP_ESP_AT_ERROR, timeout_ms, 0);
}

/* A host the modem's quoted argument can hold: no quote, backslash or control byte. */
static int quotable(const char *s)
{
    for (; *s; s++)
        if (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20)
            return 0;
    return 1;
}

int iotp_esp_at_connect(struct iotp_esp_at *at, const char *kind, const char *host, uint16_t port)
{
    char num[11];
    const char *parts[] = {"AT+CIPSTART=\"",   kind,   "\",\"", host, "\",",
                           u32_dec(port, num), "\r\n", NULL};
    unsigned k;
    int r;

    if (!at || !kind || !host || !*host || !quotable(host) || port == 0)
        return IOTP_EINVAL;
    for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]) && strcmp(kinds[k], kind) != 0; k++)
        ;
    if (k == sizeof(kinds) / sizeof(kinds[0]))
        return IOTP_EINVAL;
    at->rx_head = at->rx_len = 0;
    at->overflow = 0;
    at->error = 0;
    at->connected = 0;
    r = exchange(at, parts, IOTP_ESP_AT_OK, IOTP_ESP_AT_ERROR, IOTP_ESP_AT_CONNECT_TIMEOUT_MS, 0);
    if (r < 0) {
        broken(at, r);
        return r;
    }
    /* A CLOSED after the OK (a server that hung up at once) leaves it closed. */
    at->connected = !(at->seen & IOTP_ESP_AT_CLOSED) && !at->overflow;
    return 0;
}

int iotp_esp_at_close(struct iotp_esp_at *at)
{
    static const char *const parts[] = {"AT+CIPCLOSE\r\n", NULL};
    int r;

    if (!at)
        return IOTP_EINVAL;
    r = exchange(at, parts, IOTP_ESP_AT_OK, IOTP_ESP_AT_ERROR, IOTP_ESP_AT_COMMAND_TIMEOUT_MS, 0);
    broken(at, IOTP_EIO);
    return r == IOTP_EPEER ? 0 : r; /* ERROR: there was no connection to close */
}

int iotp_esp_at_connected(const struct iotp_esp_at *at)
{
    return at->connected;
}

size_t iotp_esp_at_unread(const struct iotp_esp_at *at)
{
    return at->rx_len;
}

static int32_t at_send(void *ctx, const uint8_t *buf, size_t len)
{
    struct iotp_esp_at *at = ctx;
    char num[11];
    const char *parts[] = {"AT+CIPSEND=", NULL, "\r\n", NULL};
    uint64_t deadline;
    int r;

    if (!at->connected)
        return IOTP_EIO;
    if (len == 0)
        return 0;
    if (len > IOTP_ESP_AT_MAX_SEND)
        len = IOTP_ESP_AT_MAX_SEND;
    parts[1] = u32_dec((uint32_t)len, num);
    deadline = at->clock.now_ms(at->clock.ctx) + IOTP_ESP_AT_SEND_TIMEOUT_MS;
    r = exchange(at, parts, IOTP_ESP_AT_PROMPT, IOTP_ESP_AT_ERROR | IOTP_ESP_AT_SEND_FAIL,
                 IOTP_ESP_AT_SEND_TIMEOUT_MS, 1);
    if (r == 0) {
        at->seen = 0;
        r = iotp_transport_send_all(&at->uart, buf, len, WRITE_IDLE);
    }
    if (r == 0)
        r = wait_for(at, IOTP_ESP_AT_SEND_OK | IOTP_ESP_AT_SEND_FAIL | IOTP_ESP_AT_ERROR, deadline,
                     1);
    if (r == 0 && !(at->seen & IOTP_ESP_AT_SEND_OK))
        r = IOTP_EPEER;
    if (r < 0) {
        broken(at, r);
        return IOTP_EIO;
    }
    return (int32_t)len;
}

static int32_t at_recv(void *ctx, uint8_t *buf, size_t len)
{
    struct iotp_esp_at *at = ctx;
    size_t n = 0;
    int r = iotp_esp_at_pump(at);

    if (r < 0)
        return IOTP_EIO;
    while (n < len && at->rx_len > 0) {
        buf[n++] = at->rx[at->rx_head];
        at->rx_head = (at->rx_head + 1) % at->rx_cap;
        at->rx_len--;
    }
    if (n == 0 && !at->connected)
        return IOTP_EIO;
    return (int32_t)n;
}

void iotp_esp_at_transport(struct iotp_esp_at *at, struct iotp_transport *t)
{
    t->ctx = at;
    t->send = at_send;
    t->recv = at_recv;
}
