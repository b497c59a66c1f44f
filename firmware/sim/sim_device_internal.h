/*
 * sim_device_internal.h - how the three parts of a simulated device call each other: the
 * connection (sim_device.c), the engine's platform and notes (sim_device_engine.c) and its
 * events (sim_device_events.c). Not for the fleet or the tests: sim_device.h is the device's
 * face.
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

/* End the current connection: count and log why, tell the engine, then close. auth says the
 * server refused the device (or failed to prove the key), which counts as an auth failure
 * rather than a connect failure. A no-op if the connection is already going away. */
void sim_device_drop(struct sim_device *dev, int auth, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Send bytes on the connection (through TLS when configured). Returns 0 or a UV_E* code; the
 * caller decides what a failure ends. */
int sim_device_write(struct sim_device *dev, const uint8_t *data, size_t len);

/* Set the device's timer to what the engine waits for next (after every call into it). */
void sim_device_arm_timer(struct sim_device *dev);

/* ---- sim_device_engine.c: the engine's platform, notes and requests ---- */

/* Prepare dev->engine for dev->entry. Returns 0 or a negative IOTP_E* code. */
int sim_device_engine_init(struct sim_device *dev);

/* ---- sim_device_events.c: events and alarms ---- */

/* start_events / stop_events (the device's sim_device_control). */
int sim_device_control_set_events(void *ctx, int on, uint32_t period_ms);

/* Every WELCOME: begin generating at the first, count a device with nothing left as settled. */
void sim_device_events_on_session(struct sim_device *dev);

/* The engine's notes about events: sent, acknowledged, refused, busy. */
void sim_device_events_note(struct sim_device *dev, const struct iotp_device_note *note);

/* Make a --state-dir high-water mark durable (the engine's persist store). */
int sim_device_store_high_water(void *dev, uint32_t high_water);

#endif
