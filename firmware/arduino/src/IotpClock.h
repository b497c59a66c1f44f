/*
 * IotpClock.h - millis() extended to 64 bits: it wraps every 49.7 days, while the library's
 * clocks are monotonic (a deadline computed before a wrap must still come after it). Each
 * user keeps its own; now() must be called at least once per wrap period, which a loop does.
 */
#ifndef IOTP_CLOCK_H
#define IOTP_CLOCK_H

#include <Arduino.h>

class IotpClock
{
  public:
    IotpClock() : last_(0), high_(0)
    {
    }
    uint64_t now()
    {
        uint32_t ms = millis();

        if (ms < last_)
            high_++;
        last_ = ms;
        return (uint64_t)high_ << 32 | ms;
    }

  private:
    uint32_t last_, high_;
};

#endif
