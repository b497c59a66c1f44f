/*
 * presence.h - moved: presence is the relay's (relay/presence.h). This forward keeps the
 * modules that still include the old place building until they include the new one.
 */
#ifndef IOTD_SESSION_PRESENCE_H
#define IOTD_SESSION_PRESENCE_H

#include "relay/presence.h"

#endif
