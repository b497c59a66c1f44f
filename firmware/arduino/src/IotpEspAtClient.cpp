/*
 * IotpEspAtClient.cpp - the Client calls mapped onto iotp_esp_at: the UART is the Stream, the
 * clock millis(), and waiting for the modem is yield() until the Stream has input.
 */
#include "IotpEspAtClient.h"

IotpEspAtClient::IotpEspAtClient(Stream &uart, bool ssl) : uart_(uart), ssl_(ssl), peeked_(-1)
{
    struct iotp_transport t;
    struct iotp_clock c;

    t.ctx = this;
    t.send = uartSend;
    t.recv = uartRecv;
    c.ctx = this;
    c.now_ms = clockMs;
    iotp_esp_at_init(&at_, &t, &c, uartWait, this, ring_, sizeof(ring_));
    iotp_esp_at_transport(&at_, &conn_);
}

bool IotpEspAtClient::command(const char *cmd, uint32_t timeoutMs)
{
    return iotp_esp_at_command(&at_, cmd, timeoutMs) == 0;
}

int IotpEspAtClient::connect(IPAddress ip, uint16_t port)
{
    char host[16];
    unsigned n = 0;

    for (uint8_t i = 0; i < 4; i++) { /* dotted quad, without printf */
        uint8_t b = ip[i];
        if (b >= 100)
            host[n++] = (char)('0' + b / 100);
        if (b >= 10)
            host[n++] = (char)('0' + b / 10 % 10);
        host[n++] = (char)('0' + b % 10);
        host[n++] = i < 3 ? '.' : '\0';
    }
    return connect(host, port);
}

int IotpEspAtClient::connect(const char *host, uint16_t port)
{
    peeked_ = -1;
    return iotp_esp_at_connect(&at_, ssl_ ? "SSL" : "TCP", host, port) == 0;
}

size_t IotpEspAtClient::write(uint8_t b)
{
    return write(&b, 1);
}

size_t IotpEspAtClient::write(const uint8_t *buf, size_t size)
{
    size_t done = 0;

    while (done < size) { /* one CIPSEND carries at most IOTP_ESP_AT_MAX_SEND bytes */
        int32_t n = conn_.send(conn_.ctx, buf + done, size - done);
        if (n <= 0)
            break;
        done += (size_t)n;
    }
    return done;
}

int IotpEspAtClient::available()
{
    iotp_esp_at_pump(&at_);
    return (int)iotp_esp_at_unread(&at_) + (peeked_ >= 0);
}

int IotpEspAtClient::read()
{
    uint8_t b;

    return read(&b, 1) == 1 ? b : -1;
}

int IotpEspAtClient::read(uint8_t *buf, size_t size)
{
    size_t done = 0;
    int32_t n;

    if (size == 0)
        return 0;
    if (peeked_ >= 0) {
        buf[done++] = (uint8_t)peeked_;
        peeked_ = -1;
    }
    n = done < size ? conn_.recv(conn_.ctx, buf + done, size - done) : 0;
    if (n > 0)
        done += (size_t)n;
    return done > 0 ? (int)done : -1;
}

int IotpEspAtClient::peek()
{
    uint8_t b;

    if (peeked_ < 0 && conn_.recv(conn_.ctx, &b, 1) == 1)
        peeked_ = b;
    return peeked_;
}

void IotpEspAtClient::flush()
{
    /* Writes return once the modem said SEND OK: nothing is left to flush. */
}

void IotpEspAtClient::stop()
{
    peeked_ = -1;
    iotp_esp_at_close(&at_);
}

uint8_t IotpEspAtClient::connected()
{
    iotp_esp_at_pump(&at_);
    return iotp_esp_at_connected(&at_) || iotp_esp_at_unread(&at_) > 0 || peeked_ >= 0;
}

IotpEspAtClient::operator bool()
{
    return true;
}

int32_t IotpEspAtClient::uartSend(void *ctx, const uint8_t *buf, size_t len)
{
    size_t n = static_cast<IotpEspAtClient *>(ctx)->uart_.write(buf, len);

    return n > 0 ? (int32_t)n : (int32_t)IOTP_EIO;
}

int32_t IotpEspAtClient::uartRecv(void *ctx, uint8_t *buf, size_t len)
{
    Stream &uart = static_cast<IotpEspAtClient *>(ctx)->uart_;
    size_t n = 0;

    while (n < len && uart.available() > 0) {
        int c = uart.read();
        if (c < 0)
            break;
        buf[n++] = (uint8_t)c;
    }
    return (int32_t)n;
}

uint64_t IotpEspAtClient::clockMs(void *ctx)
{
    return static_cast<IotpEspAtClient *>(ctx)->clock_.now();
}

void IotpEspAtClient::uartWait(void *ctx, uint32_t ms)
{
    Stream &uart = static_cast<IotpEspAtClient *>(ctx)->uart_;
    uint32_t start = millis();

    while (uart.available() <= 0 && millis() - start < ms)
        yield();
}
