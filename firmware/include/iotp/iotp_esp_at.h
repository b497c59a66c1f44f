/*
 * iotp_esp_at.h - a TCP (or "SSL") connection through an ESP8266 running Espressif's AT
 * firmware, presented to iotp_device as its transport.
 *
 * The modem sits on a UART. The port gives the UART as a struct iotp_transport (write and read
 * bytes; 0 means "nothing now"), the clock, and optionally a wait function that sleeps until
 * input arrives or a time passes; the driver allocates nothing and does no I/O of its own.
 * Single-connection mode (AT+CIPMUX=0, the firmware's default), normal transfer mode:
 *
 *   iotp_esp_at_connect   AT+CIPSTART="TCP"|"SSL","host",port   -> CONNECT, OK
 *   transport send        AT+CIPSEND=<n>  -> OK, "> "; the n bytes -> Recv n bytes, SEND OK
 *   transport recv        what +IPD,<len>:<bytes> brought, in order
 *   iotp_esp_at_close     AT+CIPCLOSE     -> CLOSED, OK (ERROR when it was already closed)
 *
 * The modem's output is one stream: result lines (OK, ERROR, SEND OK, SEND FAIL, CLOSED,
 * busy p..., busy s...), the CIPSEND prompt `>` at the start of a line, and +IPD blocks whose
 * payload is raw bytes, which may arrive at any moment, also while a command waits for its
 * OK. Every byte read goes through one parser: payload goes to the caller's receive ring, lines
 * set result flags, whatever else (the echo of a command, `Recv 5 bytes`, WIFI GOT IP) is
 * skipped. `busy p...`/`busy s...` mean the modem ignored the command: it is sent again after
 * IOTP_ESP_AT_BUSY_PAUSE_MS, within the command's deadline.
 *
 * Sends block (waiting on the modem through the wait function) for at most
 * IOTP_ESP_AT_SEND_TIMEOUT_MS; connect for IOTP_ESP_AT_CONNECT_TIMEOUT_MS. A connection the
 * modem reports CLOSED, a SEND FAIL, an ERROR to CIPSEND, a timeout or a payload larger than the
 * free space of the receive ring (the modem cannot be paused: bytes would be lost) make every
 * later send and, once the received bytes are read, every recv fail with a negative code, so the
 * engine ends its session and the port closes and reconnects.
 */
#ifndef IOTP_ESP_AT_H
#define IOTP_ESP_AT_H

#include <stddef.h>
#include <stdint.h>

#include "iotp_platform.h"

#ifndef IOTP_ESP_AT_CONNECT_TIMEOUT_MS
#define IOTP_ESP_AT_CONNECT_TIMEOUT_MS 15000
#endif
#ifndef IOTP_ESP_AT_SEND_TIMEOUT_MS
#define IOTP_ESP_AT_SEND_TIMEOUT_MS 5000
#endif
#ifndef IOTP_ESP_AT_COMMAND_TIMEOUT_MS
#define IOTP_ESP_AT_COMMAND_TIMEOUT_MS 2000
#endif
/* After a busy p.../busy s..., wait this long before sending the command again. */
#ifndef IOTP_ESP_AT_BUSY_PAUSE_MS
#define IOTP_ESP_AT_BUSY_PAUSE_MS 100
#endif
/* The most one AT+CIPSEND carries (the AT firmware's limit is 2048). */
#ifndef IOTP_ESP_AT_MAX_SEND
#define IOTP_ESP_AT_MAX_SEND 2048
#endif
/* Result lines longer than this are cut (only their start is compared). */
#ifndef IOTP_ESP_AT_LINE
#define IOTP_ESP_AT_LINE 24
#endif

/* What the parser has seen since a command was written (bits of struct iotp_esp_at.seen). */
#define IOTP_ESP_AT_OK        0x01u /* OK, also ALREADY CONNECTED */
#define IOTP_ESP_AT_ERROR     0x02u /* ERROR, FAIL */
#define IOTP_ESP_AT_PROMPT    0x04u /* `>` at the start of a line */
#define IOTP_ESP_AT_SEND_OK   0x08u
#define IOTP_ESP_AT_SEND_FAIL 0x10u
#define IOTP_ESP_AT_BUSY      0x20u /* busy p... or busy s...: the command was ignored */
#define IOTP_ESP_AT_CLOSED    0x40u /* the connection is gone (CLOSED, or the ring overflowed) */

struct iotp_esp_at {
    struct iotp_transport uart;
    struct iotp_clock clock;
    /* Sleep until the UART has input or ms have passed (may return earlier); NULL: poll. */
    void (*wait)(void *ctx, uint32_t ms);
    void *wait_ctx;
    /* Received payload, a ring the caller owns. */
    uint8_t *rx;
    size_t rx_cap, rx_head, rx_len;
    /* Parser. */
    char line[IOTP_ESP_AT_LINE];
    unsigned line_len;
    uint32_t ipd_left; /* payload bytes of the current +IPD still to come */
    int in_ipd;
    int overflow;  /* a +IPD did not fit: its bytes were lost */
    unsigned seen; /* IOTP_ESP_AT_* flags */
    int connected; /* CIPSTART answered OK and no CLOSED since */
    int error;     /* why the connection broke (0: it did not) */
};

/* Prepare at over a UART (copied), a clock and a receive ring of rx_cap bytes (at least the
 * largest +IPD the server's frames produce: the frame limit is enough, two of them is safer).
 * wait may be NULL. Returns 0 or IOTP_EINVAL. */
int iotp_esp_at_init(struct iotp_esp_at *at, const struct iotp_transport *uart,
                     const struct iotp_clock *clock, void (*wait)(void *ctx, uint32_t ms),
                     void *wait_ctx, uint8_t *rx, size_t rx_cap);

/* Send `cmd` CR LF (e.g. "ATE0", "AT+CWMODE=1") and wait up to timeout_ms for OK, resending
 * after busy. Returns 0, IOTP_EPEER (ERROR or FAIL), IOTP_ETIMEOUT or the UART's error. */
int iotp_esp_at_command(struct iotp_esp_at *at, const char *cmd, uint32_t timeout_ms);

/* AT+CIPSTART="<kind>","<host>",<port>; kind is "TCP" or "SSL". Forgets what an earlier
 * connection left unread. Returns 0 (connected), IOTP_EINVAL (kind, host or port),
 * IOTP_EPEER (the modem refused: no route, DNS, TLS), IOTP_ETIMEOUT or the UART's error. */
int iotp_esp_at_connect(struct iotp_esp_at *at, const char *kind, const char *host, uint16_t port);

/* AT+CIPCLOSE (an ERROR because it was closed already counts as closed). Returns 0,
 * IOTP_ETIMEOUT or the UART's error; the connection counts as closed in any case. */
int iotp_esp_at_close(struct iotp_esp_at *at);

/* Read what the UART has now and parse it (payload into the ring). Returns 0 or the UART's
 * error. recv does this itself; a port may call it to react to CLOSED sooner. */
int iotp_esp_at_pump(struct iotp_esp_at *at);

/* 1 while connected (no CLOSED, failure or overflow since connect). */
int iotp_esp_at_connected(const struct iotp_esp_at *at);

/* Received bytes not yet taken by recv. A port that sleeps until the UART has input checks this
 * first: a send may have pumped the server's bytes into the ring while the UART went quiet. */
size_t iotp_esp_at_unread(const struct iotp_esp_at *at);

/* Fill *t with the transport iotp_device uses: send = CIPSEND (returns n once SEND OK came;
 * at most IOTP_ESP_AT_MAX_SEND bytes a call), recv = the ring (0: nothing now; IOTP_EIO once
 * it is empty and the connection is gone). */
void iotp_esp_at_transport(struct iotp_esp_at *at, struct iotp_transport *t);

#endif
