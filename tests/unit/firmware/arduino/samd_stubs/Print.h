/* Print.h - Arduino's Print (stub of the API, see Arduino.h). */
#ifndef PRINT_H_STUB
#define PRINT_H_STUB

#include <stddef.h>
#include <stdint.h>

class Print
{
  public:
    virtual size_t write(uint8_t) = 0;
    virtual size_t write(const uint8_t *buf, size_t size)
    {
        size_t n = 0;
        while (n < size && write(buf[n]))
            n++;
        return n;
    }
    virtual void flush()
    {
    }
};

#endif
