/* Stream.h - Arduino's Stream (stub of the API, see Arduino.h). */
#ifndef STREAM_H_STUB
#define STREAM_H_STUB

#include "Print.h"

class Stream : public Print
{
  public:
    virtual int available() = 0;
    virtual int read() = 0;
    virtual int peek() = 0;
};

#endif
