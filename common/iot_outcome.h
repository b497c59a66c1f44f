/*
 * iot_outcome.h - the names of a relayed request's outcomes, the one vocabulary of the wire's
 * code=, the audit's rows, the stats and iotctl's --outcome (iot-protocol(7)).
 *
 * The relay's enum relay_outcome (iotd/relay/relay.h) numbers them in this order; the list
 * lives here, below both the relay and the registry (whose audit listing checks a requested
 * outcome), so that there is one copy of it.
 */
#ifndef IOT_OUTCOME_H
#define IOT_OUTCOME_H

#include <stdbool.h>

#define IOT_OUTCOME_COUNT 9

/* The name of outcome number i ("ok", "denied", ..., "internal"); "internal" out of range. */
const char *iot_outcome_name(unsigned i);
/* Whether name is one of the outcomes. */
bool iot_outcome_known(const char *name);

#endif
