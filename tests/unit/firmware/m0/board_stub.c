/*
 * board_stub.c - a do-nothing board for linking the thermometer example into a Cortex-M0+
 * image whose size the suite reports (m0_size.sh): the library part of that image is what is
 * measured, so the board is as small as a board can be. Not run.
 */
#include "thermo_board.h"

static volatile uint32_t ticks, flash_word;

int board_net_open(void)
{
    return -1;
}
void board_net_close(void)
{
}
int32_t board_net_send(const uint8_t *buf, size_t len)
{
    (void)buf;
    return (int32_t)len;
}
int32_t board_net_recv(uint8_t *buf, size_t len)
{
    (void)buf;
    (void)len;
    return 0;
}
uint64_t board_millis(void)
{
    return ticks;
}
int board_random(uint8_t *buf, size_t len)
{
    while (len--)
        buf[len] = (uint8_t)ticks;
    return 0;
}
int board_flash_store(uint32_t word)
{
    flash_word = word;
    return 0;
}
uint32_t board_flash_load(void)
{
    return flash_word;
}
const char *board_device_id(void)
{
    return "thermo-1";
}
const uint8_t *board_device_key(void)
{
    static const uint8_t key[32];
    return key;
}
int board_temperature_tenths(void)
{
    return 215;
}
int board_set_pixel(uint32_t x, uint32_t y, const char *colour)
{
    return x < 8 && y < 8 && colour[0] ? 0 : -1;
}
int board_running(void)
{
    return ticks < 1000;
}
void board_sleep_ms(uint32_t ms)
{
    ticks += ms > 1000 ? 1000 : ms;
}
