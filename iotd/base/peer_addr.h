/*
 * peer_addr.h - a connection's remote address kept as the socket gave it (20 bytes), printed
 * only when someone reads it.
 *
 * Why: every idle device's conn and presence entry held its address as text, 48 bytes each
 * ("[ipv6]:port" at most), about a tenth of what a device cost. The binary form is kept and
 * peer_addr_format prints the same text conn.c used to store: "203.0.113.7:51234",
 * "[2001:db8::1]:51234", IPv4-mapped IPv6 shown as IPv4.
 */
#ifndef IOTD_PEER_ADDR_H
#define IOTD_PEER_ADDR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

/* family 0: unknown (printed "unknown"), or empty (peer_addr_parse of ""; printed ""). */
struct peer_addr {
    uint8_t ip[16]; /* IPv4 in the first 4 bytes */
    uint16_t port;  /* host order */
    uint8_t family; /* AF_INET, AF_INET6 or 0 */
    bool empty;     /* family 0 and printed "" rather than "unknown" */
};

/* The longest text, NUL included: 39 characters of IPv6 as glibc prints it (the embedded-IPv4
 * forms are compressed), brackets, colon, 5 digits. */
#define PEER_ADDR_TEXT 48

/* From a socket address (an IPv4-mapped IPv6 one becomes IPv4); family 0 if neither. */
void peer_addr_from_sockaddr(struct peer_addr *out, const struct sockaddr *sa);
/* 127.0.0.0/8 or ::1. */
bool peer_addr_is_loopback(const struct peer_addr *a);
/* The text into out (PEER_ADDR_TEXT bytes); returns out. */
const char *peer_addr_format(const struct peer_addr *a, char out[PEER_ADDR_TEXT]);
/* Back from that text ("" gives an empty address); false, and *out unknown, if it is not such
 * a text. */
bool peer_addr_parse(struct peer_addr *out, const char *text);

#endif
