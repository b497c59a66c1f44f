/*
 * allowlist.h - which peers may read /metrics: a list of addresses and networks
 * ("127.0.0.1, 10.0.0.0/8, ::1, fd00::/8"), parsed once at start and then read-only, so any
 * io thread may consult it.
 */
#ifndef IOTD_WEB_ALLOWLIST_H
#define IOTD_WEB_ALLOWLIST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct web_allowlist web_allowlist_t;

/* Parse a comma-separated list. IOT_EINVAL with a sentence in err for an entry that is not an
 * address or address/prefix; IOT_ENOMEM. An empty text gives an empty list (nobody). */
int web_allowlist_parse(const char *text, web_allowlist_t **out, char *err, size_t errlen);
/* Is peer ("203.0.113.7:51234" or "[2001:db8::1]:51234", as in struct conn_info) in the
 * list? IPv4-mapped IPv6 peers are already shown as IPv4 by the net module. */
bool web_allowlist_permits(const web_allowlist_t *l, const char *peer);
void web_allowlist_free(web_allowlist_t *l);

#endif
