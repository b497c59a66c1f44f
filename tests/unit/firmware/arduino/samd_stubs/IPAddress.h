/* IPAddress.h - Arduino's IPAddress, the part a Client uses (stub of the API, see Arduino.h). */
#ifndef IPADDRESS_H_STUB
#define IPADDRESS_H_STUB

#include <stdint.h>

class IPAddress
{
  public:
    IPAddress(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
    {
        bytes_[0] = a;
        bytes_[1] = b;
        bytes_[2] = c;
        bytes_[3] = d;
    }
    uint8_t operator[](int i) const
    {
        return bytes_[i];
    }

  private:
    uint8_t bytes_[4];
};

#endif
