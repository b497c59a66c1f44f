/*
 * thermo_board.h - what the thermometer example needs from its board. A port implements these
 * over its WiFi module, timer, TRNG (or the ATECC508A's random command), flash, sensor and LEDs.
 */
#ifndef THERMO_BOARD_H
#define THERMO_BOARD_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int board_net_open(void); /* 0 once connected */
void board_net_close(void);
int32_t board_net_send(const uint8_t *buf, size_t len); /* bytes sent, 0, or < 0 */
int32_t board_net_recv(uint8_t *buf, size_t len);       /* bytes read, 0, or < 0: closed */
uint64_t board_millis(void);
int board_random(uint8_t *buf, size_t len);
int board_flash_store(uint32_t word); /* 0 once durable */
uint32_t board_flash_load(void);
const char *board_device_id(void);
const uint8_t *board_device_key(void); /* 32 bytes */
int board_temperature_tenths(void);
int board_set_pixel(uint32_t x, uint32_t y, const char *colour);
int board_running(void);
void board_sleep_ms(uint32_t ms); /* wake early on network input */

#endif
