/*
 * stubs.cpp - definitions behind the stub Arduino API (Arduino.h): a board that never connects,
 * a clock that advances on every call, and the core's main() (setup, then loop for ever). Only
 * there so that the example links into a Cortex-M0+ image whose size is reported.
 */
#include "Arduino.h"
#include "WiFi101.h"

static volatile unsigned long ticks;

unsigned long millis(void)
{
    return ticks++;
}
unsigned long micros(void)
{
    return ticks * 1000u;
}
void yield(void)
{
}
void delay(unsigned long ms)
{
    ticks += ms;
}
int analogRead(uint8_t pin)
{
    return (int)(pin + ticks) & 1023;
}

void SerialStub::begin(unsigned long baud)
{
    (void)baud;
}
size_t SerialStub::write(uint8_t b)
{
    (void)b;
    return 1;
}
int SerialStub::available()
{
    return 0;
}
int SerialStub::read()
{
    return -1;
}
int SerialStub::peek()
{
    return -1;
}
size_t SerialStub::print(const char *s)
{
    return write(reinterpret_cast<const uint8_t *>(s), strlen(s));
}
size_t SerialStub::print(const __FlashStringHelper *s)
{
    return print(reinterpret_cast<const char *>(s));
}
size_t SerialStub::println(const char *s)
{
    return print(s) + write('\n');
}
size_t SerialStub::println(const __FlashStringHelper *s)
{
    return println(reinterpret_cast<const char *>(s));
}
SerialStub Serial, Serial1;

int WiFiClass::begin(const char *ssid, const char *pass)
{
    return ssid && pass ? 0 : -1;
}
WiFiClass WiFi;

int WiFiSSLClient::connect(IPAddress ip, uint16_t port)
{
    (void)ip;
    (void)port;
    return 0;
}
int WiFiSSLClient::connect(const char *host, uint16_t port)
{
    (void)host;
    (void)port;
    return 0;
}
size_t WiFiSSLClient::write(uint8_t b)
{
    (void)b;
    return 0;
}
size_t WiFiSSLClient::write(const uint8_t *buf, size_t size)
{
    (void)buf;
    (void)size;
    return 0;
}
int WiFiSSLClient::available()
{
    return 0;
}
int WiFiSSLClient::read()
{
    return -1;
}
int WiFiSSLClient::read(uint8_t *buf, size_t size)
{
    (void)buf;
    (void)size;
    return -1;
}
int WiFiSSLClient::peek()
{
    return -1;
}
void WiFiSSLClient::flush()
{
}
void WiFiSSLClient::stop()
{
}
uint8_t WiFiSSLClient::connected()
{
    return 0;
}
WiFiSSLClient::operator bool()
{
    return false;
}

int main(void)
{
    setup();
    for (;;)
        loop();
}

/* What the core's abi.cpp gives: the image links with gcc, without libstdc++. */
extern "C" void __cxa_pure_virtual(void)
{
    for (;;)
        ;
}
