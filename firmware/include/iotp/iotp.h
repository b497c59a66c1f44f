/*
 * iotp.h - the iotd wire protocol library in one include: frames, SHA-256/HMAC, hex, the
 * ATECC508A MAC, the handshake state machines, the event outbox, the platform interfaces, the
 * reconnect backoff and the device engine that ties them together.
 */
#ifndef IOTP_H
#define IOTP_H

#include "iotp_config_defaults.h"
#include "iotp_error.h"
#include "iotp_frame.h"
#include "iotp_types.h"
#include "iotp_sha256.h"
#include "iotp_hex.h"
#include "iotp_platform.h"
#include "iotp_atecc.h"
#include "iotp_atecc_i2c.h"
#include "iotp_handshake.h"
#include "iotp_outbox.h"
#include "iotp_backoff.h"
#include "iotp_device.h"
#include "iotp_esp_at.h"

#endif
