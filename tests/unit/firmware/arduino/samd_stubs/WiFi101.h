/* WiFi101.h - the MKR1000's WiFi library, the part the example uses (stub of the API):
 * WiFi.begin and WiFiSSLClient, a Client whose TLS runs in the WINC1500. */
#ifndef WIFI101_H_STUB
#define WIFI101_H_STUB

#include "Client.h"

class WiFiClass
{
  public:
    int begin(const char *ssid, const char *pass);
};
extern WiFiClass WiFi;

class WiFiSSLClient : public Client
{
  public:
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
};

#endif
