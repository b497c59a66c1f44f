/*
 * sim_device_internal.h - how the three parts of a simulated device call each other: the
 * connection (sim_device.c), the frames it receives (sim_device_frames.c) and its events
 * (sim_device_events.c). Not for the fleet or the tests: sim_device.h is the device's face.
 *
 * Everything here runs on the fleet's loop, like the rest of the device.
 */
#ifndef SIM_DEVICE_INTERNAL_H
#define SIM_DEVICE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "sim_device.h"

/* ---- sim_device.c: the connection ---- */

/* Change state and keep the fleet's gauges in step with it. */
void sim_device_set_state(struct sim_device *dev, enum sim_device_state next);

/* End the current connection: count and log why, then close. auth says the server refused
 * the device (or failed to prove the key), which counts as an auth failure rather than a
 * connect failure. A no-op if the connection is already going away. */
void sim_device_drop(struct sim_device *dev, int auth, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Send one frame (through TLS when configured); drops the connection on failure, so the
 * caller checks dev->tcp_closing when it must know. */
void sim_device_send_frame(struct sim_device *dev, const uint8_t *frame, size_t len);

/* WELCOME arrived: start the keepalive and the events of the new session. */
void sim_device_authenticated(struct sim_device *dev);

/* ---- sim_device_frames.c: what the device does with frames ---- */

/* Send HELLO (the connection, and TLS if any, is up). */
void sim_device_start_handshake(struct sim_device *dev);

/* Feed received plaintext to the parser and act on each complete frame. */
void sim_device_on_bytes(struct sim_device *dev, const uint8_t *data, size_t len);

/* Send `device iotd TYPE id` (PING, PONG, BYE); drops the connection on failure. */
void sim_device_send_system(struct sim_device *dev, enum iotp_type type, uint32_t id);

/* The keepalive timer fired while authenticated: send the next PING, or drop the connection
 * when the previous one got no PONG. */
void sim_device_ping(struct sim_device *dev);

/* ---- sim_device_events.c: events and alarms ---- */

/* start_events / stop_events (the device's sim_device_control). */
int sim_device_control_set_events(void *ctx, int on, uint32_t period_ms);

/* Every WELCOME: begin generating at the first, resend what was not acknowledged. */
void sim_device_events_on_session(struct sim_device *dev);

/* `iotd <dev> ACK <seq>`. */
void sim_device_on_event_ack(struct sim_device *dev, uint32_t seq);

/* `iotd <dev> ERROR <seq> code=...`: 0 if seq was a pending event's (handled), else -1. */
int sim_device_on_event_error(struct sim_device *dev, const struct iotp_frame *f);

#endif
