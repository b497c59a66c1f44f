/*
 * IotpEspAtClient.h - an Arduino Client over an ESP8266 running Espressif's AT firmware on a
 * serial port (a Mega 2560 or a MKR board with an ESP-01 on Serial1), built on the library's
 * AT transport (iotp_esp_at.h): so IotpDevice, or any code that takes a Client, runs over it.
 *
 *   IotpEspAtClient net(Serial1, true);              // true: AT+CIPSTART="SSL"
 *   Serial1.begin(115200);
 *   net.command("ATE0");                             // once: echo off, join the network
 *   net.command("AT+CWJAP=\"ssid\",\"password\"", 20000);
 *
 * One connection at a time (AT+CIPMUX=0). Writes block on the modem's prompt and SEND OK; bytes
 * the modem pushes (+IPD) go to a ring of two frames inside the object.
 */
#ifndef IOTP_ESP_AT_CLIENT_H
#define IOTP_ESP_AT_CLIENT_H

#include <Arduino.h>
#include <Client.h>

#include "IotpClock.h"

extern "C" {
#include "iotp/iotp.h"
}

class IotpEspAtClient : public Client
{
  public:
    IotpEspAtClient(Stream &uart, bool ssl);

    /* Send an AT command (without CR LF) and wait up to timeoutMs for OK. */
    bool command(const char *cmd, uint32_t timeoutMs = IOTP_ESP_AT_COMMAND_TIMEOUT_MS);

    int connect(IPAddress ip, uint16_t port);
    int connect(const char *host, uint16_t port);
    size_t write(uint8_t b);
    size_t write(const uint8_t *buf, size_t size);
    int available();
    int read();
    int read(uint8_t *buf, size_t size);
    int peek();
    void flush();
    void stop();
    uint8_t connected();
    operator bool();

  private:
    static int32_t uartSend(void *ctx, const uint8_t *buf, size_t len);
    static int32_t uartRecv(void *ctx, uint8_t *buf, size_t len);
    static uint64_t clockMs(void *ctx);
    static void uartWait(void *ctx, uint32_t ms);

    Stream &uart_;
    bool ssl_;
    int peeked_; /* a byte peek() took from the ring, or -1 */
    IotpClock clock_;
    struct iotp_esp_at at_;
    struct iotp_transport conn_;
    uint8_t ring_[2 * IOTP_MAX_FRAME];
};

#endif
