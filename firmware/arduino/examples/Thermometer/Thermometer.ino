/*
 * Thermometer - the demo's thermometer as an iotd device: it answers read_temp (the
 * temperature and its unit) and set_pixel <x> <y> <colour> (an 8x8 LED matrix), and sends a
 * temperature event every minute, kept until iotd acknowledges it.
 *
 * The network is any Arduino Client:
 *   - MKR1000: WiFi101's WiFiSSLClient (TLS in the WINC1500);
 *   - ESP8266 boards: WiFiClientSecure (BearSSL: give it the server's CA, see setup());
 *   - any other board (a Mega 2560): an ESP8266 with Espressif's AT firmware on Serial1.
 * The sensor is a TMP36 on A1 (10 mV per degree, 500 mV at 0 C); the matrix is a frame buffer
 * here: drive your LEDs from drawPixel().
 */
#include <Iotp.h>

#include "arduino_secrets.h"

#if defined(ARDUINO_SAMD_MKR1000)
#include <WiFi101.h>
WiFiSSLClient net;
#elif defined(ESP8266)
#include <ESP8266WiFi.h>
#include <WiFiClientSecure.h>
WiFiClientSecure net;
#else
IotpEspAtClient net(Serial1, true); /* AT+CIPSTART="SSL" */
#endif

IotpDevice device(net);

const unsigned long EVENT_PERIOD_MS = 60000UL;
unsigned long lastEvent;
bool eventDue = true;

/* The LED matrix: 0xRRGGBB per pixel. */
uint32_t pixels[8][8];

void drawPixel(uint8_t x, uint8_t y, uint32_t rgb)
{
    pixels[y][x] = rgb;
    /* e.g. matrix.drawPixel(x, y, rgb); matrix.show(); */
}

/* Tenths of a degree from the TMP36. */
int readTenths()
{
    long mv = analogRead(A1) * 3300L / 1023; /* 3.3 V reference */
    return (int)(mv - 500);
}

void readTemp(const IotpRequest &req, IotpAnswer &answer)
{
    static char value[13]; /* must outlive the handler's return */

    (void)req;
    iotp_format_fixed(readTenths(), 1, value); /* "21.5", without printf */
    answer.add(value);
    answer.add("C");
}

/* set_pixel <x> <y> <colour>: colour is off, red, green, blue, white or #rrggbb. */
void setPixel(const IotpRequest &req, IotpAnswer &answer)
{
    static const struct {
        const char *name;
        uint32_t rgb;
    } colours[] = {{"off", 0},
                   {"red", 0xff0000},
                   {"green", 0x00ff00},
                   {"blue", 0x0000ff},
                   {"white", 0xffffff}};
    uint32_t x, y, rgb = 0;
    uint8_t bytes[3];
    const char *c = req.arg(2);
    bool known = false;

    if (req.count() != 3 || iotp_parse_u32(req.arg(0), strlen(req.arg(0)), &x) < 0 ||
        iotp_parse_u32(req.arg(1), strlen(req.arg(1)), &y) < 0 || x > 7 || y > 7) {
        answer.error("bad_args", "set_pixel <x 0-7> <y 0-7> <colour>");
        return;
    }
    for (uint8_t i = 0; i < sizeof(colours) / sizeof(colours[0]) && !known; i++)
        if (strcmp(c, colours[i].name) == 0) {
            rgb = colours[i].rgb;
            known = true;
        }
    if (!known && c[0] == '#' && strlen(c) == 7 && iotp_hex_decode(c + 1, 6, bytes, 3) == 3) {
        rgb = (uint32_t)bytes[0] << 16 | (uint32_t)bytes[1] << 8 | bytes[2];
        known = true;
    }
    if (!known) {
        answer.error("bad_args", "colour: off, red, green, blue, white or #rrggbb");
        return;
    }
    drawPixel(x, y, rgb);
}

/*
 * The handshake's nonces must be unpredictable. Use the board's TRNG where it has one (the
 * MKR1000's ATECC508A: ECCX08.random(); an ESP8266: os_get_random or RANDOM_REG32). This
 * fallback hashes the noise of an unconnected analog pin and the timing of the reads; it is
 * better than random(), not a substitute for a TRNG.
 */
bool fillRandom(uint8_t *buf, size_t len)
{
    static uint8_t pool[IOTP_SHA256_LEN];
    struct iotp_sha256 h;

    while (len > 0) {
        iotp_sha256_init(&h);
        iotp_sha256_update(&h, pool, sizeof(pool));
        for (uint8_t i = 0; i < 32; i++) {
            int a = analogRead(A0);
            unsigned long t = micros();
            iotp_sha256_update(&h, &a, sizeof(a));
            iotp_sha256_update(&h, &t, sizeof(t));
        }
        iotp_sha256_final(&h, pool);
        size_t n = len < 16 ? len : 16; /* hand out half, keep the rest secret in the pool */
        memcpy(buf, pool, n);
        buf += n;
        len -= n;
        pool[0] ^= 0x5a;
    }
    return true;
}

void noted(const struct iotp_device_note &note)
{
    if (note.kind == IOTP_DEVICE_NOTE_ONLINE) {
        Serial.print(F("online at "));
        Serial.println(device.server()->host);
    } else if (note.kind == IOTP_DEVICE_NOTE_CLOSE) {
        Serial.print(F("closed: "));
        Serial.println(iotp_error_name(note.error));
    }
}

void setup()
{
    Serial.begin(115200);
#if defined(ARDUINO_SAMD_MKR1000) || defined(ESP8266)
    WiFi.begin(SECRET_WIFI_SSID, SECRET_WIFI_PASS);
#if defined(ESP8266)
    /* net.setTrustAnchors(&ca); with the CA that signed iotd's certificate */
#endif
#else
    Serial1.begin(115200);
    net.command("ATE0");
    net.command("AT+CWMODE=1");
    net.command("AT+CWJAP=\"" SECRET_WIFI_SSID "\",\"" SECRET_WIFI_PASS "\"", 20000);
#endif
    device.addServer(SECRET_SERVER_1, SECRET_SERVER_PORT);
    device.addServer(SECRET_SERVER_2, SECRET_SERVER_PORT);
    device.on("read_temp", readTemp);
    device.on("set_pixel", setPixel);
    device.setRandom(fillRandom);
    device.onNote(noted);
    if (!device.begin(SECRET_DEVICE_ID, "thermo", "1.0", SECRET_DEVICE_KEY))
        Serial.println(F("iotp: begin failed (key, servers?)"));
}

void loop()
{
    device.loop();
    if (eventDue || millis() - lastEvent >= EVENT_PERIOD_MS) {
        char value[13];
        iotp_format_fixed(readTenths(), 1, value);
        IotpField fields[2] = {{"value", value}, {"unit", "C"}};
        device.event("temperature", 2, fields); /* kept until ACK, also while offline */
        lastEvent = millis();
        eventDue = false;
    }
}
