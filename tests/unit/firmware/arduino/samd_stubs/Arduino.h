/*
 * Arduino.h - the part of the Arduino API the Iotp library and its examples use, as declared by
 * the Arduino cores (ArduinoCore-samd for the MKR1000): enough to compile and link them for a
 * Cortex-M0+ in the suite without the board package, which Debian does not ship. stubs.cpp
 * defines the functions; the image is linked, not run.
 */
#ifndef ARDUINO_H_STUB
#define ARDUINO_H_STUB

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "Client.h"
#include "Print.h"
#include "Stream.h"

#define A0 15
#define A1 16

extern "C" {
unsigned long millis(void);
unsigned long micros(void);
void yield(void);
void delay(unsigned long ms);
int analogRead(uint8_t pin);
}

class __FlashStringHelper;
#define F(s) (reinterpret_cast<const __FlashStringHelper *>(s))

class SerialStub : public Stream
{
  public:
    void begin(unsigned long baud);
    using Print::write;
    size_t write(uint8_t b);
    int available();
    int read();
    int peek();
    size_t print(const char *s);
    size_t print(const __FlashStringHelper *s);
    size_t println(const char *s);
    size_t println(const __FlashStringHelper *s);
};
extern SerialStub Serial;
extern SerialStub Serial1;

void setup(void);
void loop(void);

#endif
