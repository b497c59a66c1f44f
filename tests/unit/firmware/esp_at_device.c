/*
 * esp_at_device.c - a thermometer on the ESP8266 AT transport, for the integration test
 * (tests/integration/test_esp_at.sh): iotp_device + iotp_esp_at + a POSIX "UART" over a file
 * descriptor that a simulated modem (esp_at_modem.py) holds the other end of.
 *
 *   esp_at_device UART_FD DEVICE_ID KEY_HEX HOST PORT EVENTS
 *
 * It queues EVENTS temperature events at start, answers read_temp with `21.5 C` and queues one
 * more temperature event per read_temp, and prints what happens (online, close, answered,
 * acked, lost) one line each on stdout. SIGTERM: BYE, close, exit 0.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "iotp/iotp.h"
#include "iotp_posix.h"

static volatile sig_atomic_t stopping;

struct uart {
    int fd;
};

static int32_t uart_write(void *ctx, const uint8_t *buf, size_t len)
{
    struct uart *u = ctx;
    ssize_t n = write(u->fd, buf, len);

    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : IOTP_EIO;
    return (int32_t)n;
}

static int32_t uart_read(void *ctx, uint8_t *buf, size_t len)
{
    struct uart *u = ctx;
    ssize_t n = read(u->fd, buf, len);

    if (n == 0)
        return IOTP_EIO; /* the modem is gone */
    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : IOTP_EIO;
    return (int32_t)n;
}

static void uart_wait(void *ctx, uint32_t ms)
{
    struct uart *u = ctx;
    struct pollfd p = {u->fd, POLLIN, 0};

    poll(&p, 1, ms > 1000 ? 1000 : (int)ms);
}

static void on_term(int sig)
{
    (void)sig;
    stopping = 1;
}

static void note(void *ctx, struct iotp_device *dev, const struct iotp_device_note *n)
{
    (void)ctx;
    (void)dev;
    switch (n->kind) {
    case IOTP_DEVICE_NOTE_ONLINE:
        printf("online ping=%u\n", (unsigned)n->value);
        break;
    case IOTP_DEVICE_NOTE_CLOSE:
        printf("close %s\n", iotp_error_name(n->error));
        break;
    case IOTP_DEVICE_NOTE_ANSWERED:
        printf("answered %u\n", (unsigned)n->id);
        break;
    case IOTP_DEVICE_NOTE_EVENT_ACKED:
        printf("acked %u\n", (unsigned)n->id);
        break;
    case IOTP_DEVICE_NOTE_EVENT_SENT:
        printf("sent %u%s\n", (unsigned)n->id, n->value ? " again" : "");
        break;
    default:
        break;
    }
    fflush(stdout);
}

static int read_temp(void *ctx, struct iotp_device *dev, const struct iotp_frame *req,
                     struct iotp_device_answer *answer)
{
    struct iotp_event_field f = {"value", "21.5"};

    (void)ctx;
    (void)req;
    answer->args[answer->nargs++] = "21.5";
    answer->args[answer->nargs++] = "C";
    iotp_device_event(dev, IOTP_EVENT, "temperature", 1, &f, NULL);
    return IOTP_DEVICE_REPLY;
}

static const struct iotp_device_handler handlers[] = {{"read_temp", read_temp, NULL}};

int main(int argc, char **argv)
{
    static struct iotp_device dev;
    static struct iotp_esp_at at;
    static uint8_t rx[IOTP_MAX_FRAME], tx[IOTP_MAX_FRAME], ring[2 * IOTP_MAX_FRAME];
    static uint8_t outbox[4096];
    struct iotp_device_params p;
    struct iotp_device_platform pl;
    struct iotp_transport uart_t;
    struct uart u;
    uint8_t key[IOTP_KEY_LEN];
    char values[8][16];
    int nevents, r, rc = 1;
    unsigned tries;

    if (argc != 7) {
        fprintf(stderr, "usage: esp_at_device UART_FD DEVICE_ID KEY_HEX HOST PORT EVENTS\n");
        return 2;
    }
    signal(SIGTERM, on_term);
    signal(SIGPIPE, SIG_IGN);
    u.fd = atoi(argv[1]);
    nevents = atoi(argv[6]);
    if (iotp_hex_decode(argv[3], strlen(argv[3]), key, sizeof(key)) != IOTP_KEY_LEN ||
        nevents < 0 || nevents > 8) {
        fprintf(stderr, "esp_at_device: bad key or event count\n");
        return 2;
    }
    memset(&uart_t, 0, sizeof(uart_t));
    uart_t.ctx = &u;
    uart_t.send = uart_write;
    uart_t.recv = uart_read;
    memset(&pl, 0, sizeof(pl));
    iotp_posix_clock(&pl.clock);
    iotp_posix_random(&pl.random);
    if (iotp_esp_at_init(&at, &uart_t, &pl.clock, uart_wait, &u, ring, sizeof(ring)) < 0)
        goto out;
    iotp_esp_at_transport(&at, &pl.transport);

    memset(&p, 0, sizeof(p));
    p.device_id = argv[2];
    p.device_type = "thermo";
    p.fw_version = "esp-at-test";
    p.key = key;
    p.handlers = handlers;
    p.nhandlers = 1;
    p.note = note;
    p.backoff.base_ms = 200;
    p.backoff.cap_ms = 1000;
    if (iotp_device_init(&dev, &p, &pl, rx, sizeof(rx), tx, sizeof(tx)) < 0 ||
        iotp_device_attach_outbox(&dev, outbox, sizeof(outbox), 0) < 0)
        goto out;
    for (int i = 0; i < nevents; i++) {
        struct iotp_event_field f = {"value", values[i]};
        snprintf(values[i], sizeof(values[i]), "20.%d", i);
        if (iotp_device_event(&dev, IOTP_EVENT, "temperature", 1, &f, NULL) < 0)
            goto out;
    }
    /* The modem answers AT once it is up (bounded: 20 tries). */
    for (tries = 0; tries < 20 && iotp_esp_at_command(&at, "AT", 500) != 0; tries++)
        ;
    if (tries == 20) {
        fprintf(stderr, "esp_at_device: the modem does not answer AT\n");
        goto out;
    }
    while (!stopping) {
        switch (iotp_device_state(&dev)) {
        case IOTP_DEVICE_CONNECT:
            iotp_device_connecting(&dev);
            r = iotp_esp_at_connect(&at, "TCP", argv[4], (uint16_t)atoi(argv[5]));
            if (r == 0) {
                iotp_device_transport_up(&dev);
            } else {
                printf("connect %s\n", iotp_error_name(r));
                iotp_device_transport_down(&dev);
            }
            break;
        case IOTP_DEVICE_CLOSING:
            iotp_esp_at_close(&at);
            iotp_device_transport_down(&dev);
            break;
        default:
            r = iotp_device_poll(&dev);
            if (r < 0) { /* the modem said CLOSED, or the UART failed */
                printf("lost %s\n", iotp_error_name(r));
                iotp_esp_at_close(&at);
            }
            break;
        }
        fflush(stdout);
        if (iotp_esp_at_pump(&at) < 0)
            break; /* the modem is gone */
        if (iotp_esp_at_unread(&at) == 0 && iotp_device_state(&dev) != IOTP_DEVICE_CONNECT &&
            iotp_device_state(&dev) != IOTP_DEVICE_CLOSING)
            uart_wait(&u, iotp_device_next_timeout_ms(&dev));
    }
    if (iotp_device_stop(&dev))
        iotp_esp_at_close(&at);
    rc = 0;
out:
    if (rc != 0)
        fprintf(stderr, "esp_at_device: set-up failed\n");
    return rc;
}
