/*
 * test_esp_at.c - the ESP8266 AT transport (iotp_esp_at.h) against a scripted modem.
 *
 * The modem is a script of steps: each names the command line the driver must write and the
 * bytes the modem answers; a step with data_len then takes that many payload bytes (CIPSEND's
 * data) and answers again. What the modem says is read back through a UART that can stop at
 * any byte position (the read there returns "nothing now" once), so that every test can be run
 * with the modem's output split at every byte; the clock moves only when the driver waits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "iotp/iotp_error.h"
#include "iotp/iotp_esp_at.h"

struct step {
    const char *expect;     /* the command line the driver writes (without CR LF) */
    const char *reply;      /* what the modem answers to it */
    size_t data_len;        /* then this many payload bytes are taken... */
    const char *after_data; /* ...and answered with this */
};

struct modem {
    const struct step *steps;
    unsigned nsteps, next;
    char cmd[64];
    size_t cmd_len;
    size_t data_left;
    const char *after_data;
    char data[256]; /* payload the driver sent through CIPSEND (the first 256 bytes kept) */
    size_t data_len;
    char out[512]; /* what the modem said, delivered up to out_read */
    size_t out_len, out_read;
    size_t split_at; /* the read reaching this byte position pauses once */
    int paused;
    size_t chunk; /* bytes per read at most */
    uint64_t now;
    unsigned waits;
};

static void modem_say(struct modem *m, const char *s)
{
    size_t n = strlen(s);

    assert_true(m->out_len + n <= sizeof(m->out));
    memcpy(m->out + m->out_len, s, n);
    m->out_len += n;
}

static void modem_command(struct modem *m)
{
    const struct step *s;

    assert_true(m->next < m->nsteps);
    s = &m->steps[m->next++];
    m->cmd[m->cmd_len] = '\0';
    assert_string_equal(m->cmd, s->expect);
    modem_say(m, s->reply);
    m->data_left = s->data_len;
    m->after_data = s->after_data;
}

static int32_t uart_write(void *ctx, const uint8_t *buf, size_t len)
{
    struct modem *m = ctx;

    for (size_t i = 0; i < len; i++) {
        if (m->data_left > 0) {
            if (m->data_len < sizeof(m->data))
                m->data[m->data_len] = (char)buf[i];
            m->data_len++;
            if (--m->data_left == 0)
                modem_say(m, m->after_data);
        } else if (buf[i] == '\n') {
            assert_true(m->cmd_len > 0 && m->cmd[m->cmd_len - 1] == '\r');
            m->cmd_len--;
            modem_command(m);
            m->cmd_len = 0;
        } else {
            assert_true(m->cmd_len < sizeof(m->cmd) - 1);
            m->cmd[m->cmd_len++] = (char)buf[i];
        }
    }
    return (int32_t)len;
}

static int32_t uart_read(void *ctx, uint8_t *buf, size_t len)
{
    struct modem *m = ctx;
    size_t n = m->out_len - m->out_read;

    if (!m->paused && m->out_read <= m->split_at && m->out_read + n > m->split_at) {
        if (m->out_read == m->split_at) {
            m->paused = 1;
            return 0;
        }
        n = m->split_at - m->out_read;
    }
    if (n > len)
        n = len;
    if (n > m->chunk)
        n = m->chunk;
    memcpy(buf, m->out + m->out_read, n);
    m->out_read += n;
    return (int32_t)n;
}

static uint64_t clock_now(void *ctx)
{
    return ((struct modem *)ctx)->now;
}

/* The driver waits: time passes (the modem says nothing unprompted). */
static void modem_wait(void *ctx, uint32_t ms)
{
    struct modem *m = ctx;

    m->waits++;
    m->now += ms < 10 ? ms : 10;
}

struct rig {
    struct modem m;
    struct iotp_esp_at at;
    struct iotp_transport t;
    uint8_t ring[64];
};

static void rig_init(struct rig *r, const struct step *steps, unsigned nsteps, size_t split_at,
                     size_t chunk)
{
    struct iotp_transport uart = {0};
    struct iotp_clock clk = {0};

    memset(r, 0, sizeof(*r));
    r->m.steps = steps;
    r->m.nsteps = nsteps;
    r->m.split_at = split_at;
    r->m.chunk = chunk;
    r->m.now = 1000;
    uart.ctx = &r->m;
    uart.send = uart_write;
    uart.recv = uart_read;
    clk.ctx = &r->m;
    clk.now_ms = clock_now;
    assert_int_equal(
        iotp_esp_at_init(&r->at, &uart, &clk, modem_wait, &r->m, r->ring, sizeof(r->ring)), 0);
    iotp_esp_at_transport(&r->at, &r->t);
}

/* Read what recv gives until it fails or gives nothing twice in a row; returns the last code. */
static int32_t drain(struct rig *r, char *buf, size_t cap, size_t *len)
{
    int32_t n = 0;
    unsigned idle = 0;

    *len = 0;
    for (unsigned i = 0; i < 1000 && idle < 2; i++) {
        n = r->t.recv(r->t.ctx, (uint8_t *)buf + *len, cap - *len);
        if (n < 0)
            return n;
        idle = n == 0 ? idle + 1 : 0;
        *len += (size_t)n;
    }
    return n;
}

#define NSTEPS(a) (sizeof(a) / sizeof((a)[0]))

static const struct step connect_ok = {"AT+CIPSTART=\"TCP\",\"iotd.example\",4100",
                                       "CONNECT\r\n\r\nOK\r\n", 0, NULL};

static void connect_tcp_and_ssl(void **state)
{
    static const struct step steps[] = {
        {"AT+CIPSTART=\"TCP\",\"iotd.example\",4100",
         "AT+CIPSTART=\"TCP\",\"iotd.example\",4100\r\r\nCONNECT\r\n\r\nOK\r\n", 0, NULL},
        {"AT+CIPCLOSE", "CLOSED\r\n\r\nOK\r\n", 0, NULL},
        {"AT+CIPSTART=\"SSL\",\"10.0.0.1\",443", "CONNECT\r\n\r\nOK\r\n", 0, NULL},
    };
    struct rig r;

    (void)state;
    rig_init(&r, steps, NSTEPS(steps), SIZE_MAX, 64);
    assert_false(iotp_esp_at_connected(&r.at));
    /* The echo of the command (ATE1, the firmware's default) is skipped like any other line. */
    assert_int_equal(iotp_esp_at_connect(&r.at, "TCP", "iotd.example", 4100), 0);
    assert_true(iotp_esp_at_connected(&r.at));
    assert_int_equal(iotp_esp_at_close(&r.at), 0);
    assert_false(iotp_esp_at_connected(&r.at));
    assert_int_equal(iotp_esp_at_connect(&r.at, "SSL", "10.0.0.1", 443), 0);
    assert_true(iotp_esp_at_connected(&r.at));
    assert_int_equal(r.m.next, NSTEPS(steps));
}

static void connect_refused_bad_args_and_timeout(void **state)
{
    static const struct step steps[] = {
        {"AT+CIPSTART=\"TCP\",\"iotd.example\",4100", "ERROR\r\nCLOSED\r\n", 0, NULL},
        {"AT+CIPSTART=\"TCP\",\"iotd.example\",4100", "DNS Fail\r\n\r\nERROR\r\n", 0, NULL},
        {"AT+CIPSTART=\"TCP\",\"iotd.example\",4100", "", 0, NULL},
    };
    struct rig r;
    uint64_t t0;

    (void)state;
    rig_init(&r, steps, NSTEPS(steps), SIZE_MAX, 64);
    assert_int_equal(iotp_esp_at_connect(&r.at, "TCP", "iotd.example", 4100), IOTP_EPEER);
    assert_false(iotp_esp_at_connected(&r.at));
    assert_int_equal(iotp_esp_at_connect(&r.at, "TCP", "iotd.example", 4100), IOTP_EPEER);
    /* Nothing written for arguments the modem cannot take. */
    assert_int_equal(iotp_esp_at_connect(&r.at, "UDP", "iotd.example", 4100), IOTP_EINVAL);
    assert_int_equal(iotp_esp_at_connect(&r.at, "TCP", "a\"b", 4100), IOTP_EINVAL);
    assert_int_equal(iotp_esp_at_connect(&r.at, "TCP", "", 4100), IOTP_EINVAL);
    assert_int_equal(iotp_esp_at_connect(&r.at, "TCP", "iotd.example", 0), IOTP_EINVAL);
    assert_int_equal(r.m.next, 2);
    t0 = r.m.now;
    assert_int_equal(iotp_esp_at_connect(&r.at, "TCP", "iotd.example", 4100), IOTP_ETIMEOUT);
    assert_true(r.m.now - t0 >= IOTP_ESP_AT_CONNECT_TIMEOUT_MS);
    assert_true(r.m.now - t0 < IOTP_ESP_AT_CONNECT_TIMEOUT_MS + 100);
    assert_false(iotp_esp_at_connected(&r.at));
}

static void busy_means_send_again(void **state)
{
    static const struct step steps[] = {
        {"AT+CIPSTART=\"TCP\",\"iotd.example\",4100", "busy p...\r\n", 0, NULL},
        connect_ok,
        {"AT+CIPSEND=3", "busy s...\r\n", 0, NULL},
        {"AT+CIPSEND=3", "busy p...\r\n", 0, NULL},
        {"AT+CIPSEND=3", "\r\nOK\r\n> ", 3, "\r\nRecv 3 bytes\r\n\r\nSEND OK\r\n"},
    };
    struct rig r;
    uint64_t t0;

    (void)state;
    rig_init(&r, steps, NSTEPS(steps), SIZE_MAX, 64);
    t0 = r.m.now;
    assert_int_equal(iotp_esp_at_connect(&r.at, "TCP", "iotd.example", 4100), 0);
    /* Sent again only after the pause. */
    assert_true(r.m.now - t0 >= IOTP_ESP_AT_BUSY_PAUSE_MS);
    assert_int_equal(r.t.send(r.t.ctx, (const uint8_t *)"abc", 3), 3);
    assert_int_equal(r.m.next, NSTEPS(steps));
    assert_int_equal(r.m.data_len, 3);
    assert_memory_equal(r.m.data, "abc", 3);
}

static void busy_until_the_deadline(void **state)
{
    static struct step steps[200];
    struct rig r;

    (void)state;
    for (unsigned i = 0; i < NSTEPS(steps); i++) {
        steps[i].expect = "AT";
        steps[i].reply = "busy p...\r\n";
    }
    rig_init(&r, steps, NSTEPS(steps), SIZE_MAX, 64);
    assert_int_equal(iotp_esp_at_command(&r.at, "AT", 1000), IOTP_ETIMEOUT);
    /* Once per pause: about 1000 / 100 attempts, not a storm. */
    assert_true(r.m.next >= 9 && r.m.next <= 12);
}

/* Connect, send "hello" while the server's bytes arrive in the middle of both replies (with
 * payload that looks like result lines and a prompt), then read them. */
static const struct step interleaved[] = {
    {"AT+CIPSTART=\"TCP\",\"iotd.example\",4100", "CONNECT\r\n\r\n+IPD,4:OK\r\n\r\nOK\r\n", 0,
     NULL},
    {"AT+CIPSEND=5", "\r\n+IPD,7:ERROR\n>\r\nOK\r\n> ", 5,
     "\r\n+IPD,0,3:\r\n>\r\nRecv 5 bytes\r\n+IPD,2:hi\r\nSEND OK\r\n"},
};
static const char interleaved_payload[] = "OK\r\nERROR\n>\r\n>hi";

static void run_interleaved(size_t split_at, size_t chunk)
{
    struct rig r;
    char got[64];
    size_t len;

    rig_init(&r, interleaved, NSTEPS(interleaved), split_at, chunk);
    assert_int_equal(iotp_esp_at_connect(&r.at, "TCP", "iotd.example", 4100), 0);
    assert_int_equal(r.t.send(r.t.ctx, (const uint8_t *)"hello", 5), 5);
    assert_int_equal(r.m.data_len, 5);
    assert_memory_equal(r.m.data, "hello", 5);
    assert_int_equal(drain(&r, got, sizeof(got), &len), 0);
    assert_int_equal(len, strlen(interleaved_payload));
    assert_memory_equal(got, interleaved_payload, len);
    assert_true(iotp_esp_at_connected(&r.at));
    assert_int_equal(r.m.out_read, r.m.out_len);
}

static void ipd_inside_replies(void **state)
{
    (void)state;
    run_interleaved(SIZE_MAX, 512);
}

static void split_at_every_byte(void **state)
{
    size_t total = 0;

    (void)state;
    for (unsigned i = 0; i < NSTEPS(interleaved); i++)
        total += strlen(interleaved[i].reply) +
                 (interleaved[i].after_data ? strlen(interleaved[i].after_data) : 0);
    for (size_t at = 0; at <= total; at++) {
        run_interleaved(at, 512);
        run_interleaved(at, 1);
        run_interleaved(at, 5);
    }
}

static void send_failures(void **state)
{
    static const struct step fail[] = {
        connect_ok,
        {"AT+CIPSEND=2", "\r\nOK\r\n> ", 2, "\r\nRecv 2 bytes\r\n\r\nSEND FAIL\r\n"},
    };
    static const struct step error[] = {
        connect_ok,
        {"AT+CIPSEND=2", "link is not valid\r\n\r\nERROR\r\n", 0, NULL},
    };
    static const struct step closed[] = {
        connect_ok,
        {"AT+CIPSEND=2", "+IPD,3:bye\r\nCLOSED\r\n", 0, NULL},
    };
    static const struct step silent[] = {
        connect_ok,
        {"AT+CIPSEND=2", "\r\nOK\r\n> ", 2, "\r\nRecv 2 bytes\r\n"},
    };
    const struct step *cases[] = {fail, error, closed, silent};
    struct rig r;
    char got[16];
    size_t len;

    (void)state;
    for (unsigned c = 0; c < 4; c++) {
        uint64_t t0;

        rig_init(&r, cases[c], 2, SIZE_MAX, 64);
        assert_int_equal(iotp_esp_at_connect(&r.at, "TCP", "iotd.example", 4100), 0);
        t0 = r.m.now;
        assert_int_equal(r.t.send(r.t.ctx, (const uint8_t *)"xy", 2), IOTP_EIO);
        if (cases[c] == silent)
            assert_true(r.m.now - t0 >= IOTP_ESP_AT_SEND_TIMEOUT_MS);
        assert_false(iotp_esp_at_connected(&r.at));
        /* No second command: the connection is known broken. */
        assert_int_equal(r.t.send(r.t.ctx, (const uint8_t *)"xy", 2), IOTP_EIO);
        /* What arrived before the end is still read, then the end. */
        assert_int_equal(drain(&r, got, sizeof(got), &len), IOTP_EIO);
        if (cases[c] == closed) {
            assert_int_equal(len, 3);
            assert_memory_equal(got, "bye", 3);
        } else {
            assert_int_equal(len, 0);
        }
    }
}

static void closed_while_idle(void **state)
{
    static const struct step steps[] = {
        {"AT+CIPSTART=\"TCP\",\"iotd.example\",4100", "CONNECT\r\n\r\nOK\r\n+IPD,5:last!CLOSED\r\n",
         0, NULL},
        {"AT+CIPCLOSE", "ERROR\r\n", 0, NULL},
    };
    struct rig r;
    char got[16];
    size_t len;

    (void)state;
    rig_init(&r, steps, NSTEPS(steps), SIZE_MAX, 3);
    assert_int_equal(iotp_esp_at_connect(&r.at, "TCP", "iotd.example", 4100), 0);
    assert_int_equal(drain(&r, got, sizeof(got), &len), IOTP_EIO);
    assert_int_equal(len, 5);
    assert_memory_equal(got, "last!", 5);
    /* Closing what the server closed: the modem's ERROR is not a failure. */
    assert_int_equal(iotp_esp_at_close(&r.at), 0);
}

static void overflow_is_an_error(void **state)
{
    static const struct step steps[] = {
        {"AT+CIPSTART=\"TCP\",\"iotd.example\",4100", "CONNECT\r\n\r\nOK\r\n", 0, NULL},
        {"AT+CIPSEND=1",
         "+IPD,10:0123456789\r\n+IPD,60:"
         "012345678901234567890123456789012345678901234567890123456789\r\nOK\r\n> ",
         1, "\r\nSEND OK\r\n"},
    };
    struct rig r;
    char got[80];
    size_t len;

    (void)state;
    rig_init(&r, steps, NSTEPS(steps), SIZE_MAX, 64);
    assert_int_equal(iotp_esp_at_connect(&r.at, "TCP", "iotd.example", 4100), 0);
    /* 70 bytes for a 64-byte ring: the second block is lost, so the connection is over. */
    assert_int_equal(r.t.send(r.t.ctx, (const uint8_t *)"x", 1), IOTP_EIO);
    assert_int_equal(r.at.error, IOTP_ENOSPC);
    assert_int_equal(drain(&r, got, sizeof(got), &len), IOTP_EIO);
    assert_int_equal(len, 10);
    assert_memory_equal(got, "0123456789", 10);
}

static void big_sends_are_cut(void **state)
{
    static const struct step steps[] = {
        connect_ok,
        {"AT+CIPSEND=2048", "\r\nOK\r\n> ", 2048, "\r\nSEND OK\r\n"},
    };
    static uint8_t big[3000];
    struct rig r;

    (void)state;
    memset(big, 'z', sizeof(big));
    rig_init(&r, steps, NSTEPS(steps), SIZE_MAX, 64);
    assert_int_equal(iotp_esp_at_connect(&r.at, "TCP", "iotd.example", 4100), 0);
    /* One CIPSEND carries what the firmware takes; the engine sends the rest next. */
    assert_int_equal(r.t.send(r.t.ctx, big, sizeof(big)), IOTP_ESP_AT_MAX_SEND);
    assert_int_equal(r.m.data_len, IOTP_ESP_AT_MAX_SEND);
}

static void commands(void **state)
{
    static const struct step steps[] = {
        {"ATE0", "ATE0\r\r\n\r\nOK\r\n", 0, NULL},
        {"AT+CWJAP=\"net\",\"pw\"", "WIFI CONNECTED\r\nWIFI GOT IP\r\n\r\nFAIL\r\n", 0, NULL},
        {"AT+CIPMUX=0", "\r\nERROR\r\n", 0, NULL},
    };
    struct rig r;

    (void)state;
    rig_init(&r, steps, NSTEPS(steps), SIZE_MAX, 64);
    assert_int_equal(iotp_esp_at_command(&r.at, "ATE0", 1000), 0);
    assert_int_equal(iotp_esp_at_command(&r.at, "AT+CWJAP=\"net\",\"pw\"", 1000), IOTP_EPEER);
    assert_int_equal(iotp_esp_at_command(&r.at, "AT+CIPMUX=0", 1000), IOTP_EPEER);
    assert_int_equal(iotp_esp_at_init(&r.at, NULL, NULL, NULL, NULL, r.ring, 1), IOTP_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(connect_tcp_and_ssl),
        cmocka_unit_test(connect_refused_bad_args_and_timeout),
        cmocka_unit_test(busy_means_send_again),
        cmocka_unit_test(busy_until_the_deadline),
        cmocka_unit_test(ipd_inside_replies),
        cmocka_unit_test(split_at_every_byte),
        cmocka_unit_test(send_failures),
        cmocka_unit_test(closed_while_idle),
        cmocka_unit_test(overflow_is_an_error),
        cmocka_unit_test(big_sends_are_cut),
        cmocka_unit_test(commands),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
