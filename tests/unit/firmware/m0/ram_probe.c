/* ram_probe.c - objects whose sizes (read with nm -S) are the RAM the engine needs on the
 * target: its struct, compiled with the target's ABI and the device's configuration. */
#include "iotp/iotp.h"

struct iotp_device probe_engine;
struct iotp_outbox probe_outbox;
struct iotp_parser probe_parser;
struct iotp_device_hs probe_handshake;
struct iotp_esp_at probe_esp_at;
