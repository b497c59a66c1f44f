/*
 * thermo.c - the demo's thermometer as a bare-metal device: the smallest whole use of
 * iotp_device, and the image whose size the suite reports for a Cortex-M0+.
 *
 * It answers read_temp (the temperature and its unit) and set_pixel <x> <y> <colour> (a LED
 * matrix), and pushes a temperature EVENT every 60 s. The board provides the functions
 * declared in thermo_board.h: a network connection (a WiFi module's TCP socket, an AT modem),
 * milliseconds, random bytes, a flash word for the sequence high-water mark, the sensor and the
 * LEDs. Everything the engine needs lives in static storage sized at compile time: no heap.
 */
#include "iotp/iotp.h"
#include "thermo_board.h"

#define EVENT_PERIOD_MS 60000u

static struct iotp_device device;
static uint8_t rx[IOTP_MAX_FRAME];
static uint8_t tx[IOTP_MAX_FRAME];
static uint8_t outbox[1024];

static int32_t net_send(void *ctx, const uint8_t *buf, size_t len)
{
    (void)ctx;
    return board_net_send(buf, len);
}

static int32_t net_recv(void *ctx, uint8_t *buf, size_t len)
{
    (void)ctx;
    return board_net_recv(buf, len);
}

static uint64_t millis(void *ctx)
{
    (void)ctx;
    return board_millis();
}

static int random_fill(void *ctx, uint8_t *buf, size_t len)
{
    (void)ctx;
    return board_random(buf, len) == 0 ? 0 : IOTP_ERANDOM;
}

static int store_mark(void *ctx, uint32_t high_water)
{
    (void)ctx;
    return board_flash_store(high_water) == 0 ? 0 : IOTP_EIO;
}

static int read_temp(void *ctx, struct iotp_device *dev, const struct iotp_frame *req,
                     struct iotp_device_answer *answer)
{
    static char value[13];

    (void)ctx;
    (void)dev;
    (void)req;
    iotp_format_fixed(board_temperature_tenths(), 1, value);
    answer->args[answer->nargs++] = value;
    answer->args[answer->nargs++] = "C";
    return IOTP_DEVICE_REPLY;
}

static int set_pixel(void *ctx, struct iotp_device *dev, const struct iotp_frame *req,
                     struct iotp_device_answer *answer)
{
    uint32_t x, y;

    (void)ctx;
    (void)dev;
    if (req->nargs != 3 || iotp_parse_u32(req->args[0], strlen(req->args[0]), &x) < 0 ||
        iotp_parse_u32(req->args[1], strlen(req->args[1]), &y) < 0 ||
        board_set_pixel(x, y, req->args[2]) < 0) {
        answer->error_code = "bad_args";
        return IOTP_DEVICE_REPLY;
    }
    return IOTP_DEVICE_REPLY; /* OK without args */
}

static const struct iotp_device_handler handlers[] = {
    {"read_temp", read_temp, 0},
    {"set_pixel", set_pixel, 0},
};

int main(void)
{
    struct iotp_device_params p;
    struct iotp_device_platform pl;
    uint64_t next_event = 0;
    char value[13];

    memset(&p, 0, sizeof(p));
    p.device_id = board_device_id();
    p.device_type = "thermo";
    p.fw_version = "1.0";
    p.key = board_device_key();
    p.handlers = handlers;
    p.nhandlers = sizeof(handlers) / sizeof(handlers[0]);
    memset(&pl, 0, sizeof(pl));
    pl.transport.send = net_send;
    pl.transport.recv = net_recv;
    pl.clock.now_ms = millis;
    pl.random.fill = random_fill;
    pl.persist.store_high_water = store_mark;
    if (iotp_device_init(&device, &p, &pl, rx, sizeof(rx), tx, sizeof(tx)) < 0 ||
        iotp_device_attach_outbox(&device, outbox, sizeof(outbox), board_flash_load()) < 0)
        return 1;
    while (board_running()) {
        switch (iotp_device_state(&device)) {
        case IOTP_DEVICE_CONNECT:
            iotp_device_connecting(&device);
            if (board_net_open() == 0)
                iotp_device_transport_up(&device);
            else
                iotp_device_transport_down(&device);
            break;
        case IOTP_DEVICE_CLOSING:
            board_net_close();
            iotp_device_transport_down(&device);
            break;
        default:
            if (iotp_device_poll(&device) < 0)
                board_net_close();
            break;
        }
        if (board_millis() >= next_event) {
            struct iotp_event_field f[2] = {{"value", 0}, {"unit", "C"}};
            iotp_format_fixed(board_temperature_tenths(), 1, value);
            f[0].value = value;
            iotp_device_event(&device, IOTP_EVENT, "temperature", 2, f, 0);
            next_event = board_millis() + EVENT_PERIOD_MS;
        }
        board_sleep_ms(iotp_device_next_timeout_ms(&device));
    }
    iotp_device_stop(&device);
    board_net_close();
    return 0;
}
