/*
 * Iotp.h - an iotd device on Arduino: the library's device engine (iotp_device) over any
 * Arduino Client.
 *
 * The Client is the connection: WiFi101's WiFiSSLClient on a MKR1000, WiFiClientSecure on an
 * ESP8266, an EthernetClient, or IotpEspAtClient (an ESP8266 AT modem on a serial port). The
 * engine does the rest: the mutual handshake, keepalive, requests dispatched to handlers by
 * message type, answers, events kept until the server acknowledges them and sent again after a
 * reconnect, and reconnecting with jittered backoff, in turn over the servers added.
 *
 *   IotpDevice device(net);
 *   device.addServer("iotd.example.com", 7011);
 *   device.on("read_temp", readTemp);
 *   device.setRandom(fillRandom);                  // the board's TRNG
 *   device.begin("thermo-1", "thermo", "1.0", KEY_HEX);
 *   ...
 *   void loop() { device.loop(); }                  // never blocks but to connect
 *
 * Everything lives in the object (no heap): the engine, a receive and a transmit buffer of
 * IOTP_MAX_FRAME bytes each (512 on Arduino, see iotp_config_defaults.h) and
 * IOTP_ARDUINO_OUTBOX bytes of event storage. The object must not move after begin().
 */
#ifndef IOTP_ARDUINO_H
#define IOTP_ARDUINO_H

#include <Arduino.h>
#include <Client.h>

#include "IotpClock.h"

extern "C" {
#include "iotp/iotp.h"
}

/* Request types that may have a handler. */
#ifndef IOTP_ARDUINO_MAX_HANDLERS
#define IOTP_ARDUINO_MAX_HANDLERS 8
#endif
/* Server addresses addServer() keeps. */
#ifndef IOTP_ARDUINO_MAX_SERVERS
#define IOTP_ARDUINO_MAX_SERVERS 3
#endif
/* Bytes of event storage (each event kept takes its frame plus 8 bytes); 0: no events. */
#ifndef IOTP_ARDUINO_OUTBOX
#define IOTP_ARDUINO_OUTBOX 1024
#endif

typedef struct iotp_event_field IotpField;

/* A request from the server, valid during the handler's call. */
class IotpRequest
{
  public:
    explicit IotpRequest(const struct iotp_frame &frame) : frame_(frame)
    {
    }
    const char *from() const
    {
        return frame_.from;
    } /* the sender: user@tenant, a device */
    const char *type() const
    {
        return frame_.type;
    }
    uint32_t id() const
    {
        return frame_.id;
    }
    unsigned count() const
    {
        return frame_.nargs;
    }
    /* The i-th argument, NULL past the last. */
    const char *arg(unsigned i) const
    {
        return i < frame_.nargs ? frame_.args[i] : NULL;
    }
    /* The value of the first key=value argument with this key, or NULL. */
    const char *get(const char *key) const
    {
        return iotp_frame_arg(&frame_, key);
    }
    const struct iotp_frame &frame() const
    {
        return frame_;
    }

  private:
    const struct iotp_frame &frame_;
};

/* The answer a handler fills: OK with the values added, or ERROR code= [msg=]. The strings must
 * stay valid until the handler returns (static buffers for formatted numbers). */
class IotpAnswer
{
  public:
    explicit IotpAnswer(struct iotp_device_answer &answer) : answer_(answer)
    {
    }
    /* Append a positional value; false when IOTP_DEVICE_ANSWER_ARGS are there already. */
    bool add(const char *value);
    /* Answer ERROR code=<code> (bad_args, busy, ...) with an optional msg=. */
    void error(const char *code, const char *msg = NULL);

  private:
    struct iotp_device_answer &answer_;
};

typedef void (*IotpHandler)(const IotpRequest &request, IotpAnswer &answer);
/* Fill buf with len cryptographically strong random bytes; false on failure. */
typedef bool (*IotpRandomFn)(uint8_t *buf, size_t len);
/* Make the event sequence high-water mark durable (EEPROM, flash); false on failure. */
typedef bool (*IotpStoreFn)(uint32_t mark);
/* What happened (online, closed and why, ACKs...): for logs and LEDs. */
typedef void (*IotpNoteFn)(const struct iotp_device_note &note);

class IotpDevice
{
  public:
    explicit IotpDevice(Client &client);

    /* Before begin(): where to connect, tried in turn (the next after every attempt that ends).
     * host must outlive the object. False when full or invalid. */
    bool addServer(const char *host, uint16_t port);
    /* Before begin(): the handler of a request type (NULL: every type without its own). */
    bool on(const char *type, IotpHandler handler);
    /* Required before begin(): the random source of the handshake's nonces and the jitter. */
    void setRandom(IotpRandomFn fill)
    {
        random_ = fill;
    }
    /* Optional, before begin(): where the sequence mark goes, and the one stored at boot.
     * Without it, numbering restarts at 1 after a reboot. */
    void setStore(IotpStoreFn store, uint32_t storedMark);
    void onNote(IotpNoteFn note)
    {
        note_ = note;
    }

    /* Start: the device's id, type (HELLO type=), firmware version and its 32-byte key, as
     * bytes or as the 64 hex digits iotctl device add printed. firstServer: where the first
     * attempt goes (a fleet spreads by giving device i the start i). False when something is
     * missing (a server, the random source, a key). */
    bool begin(const char *id, const char *type, const char *fw, const uint8_t key[32],
               unsigned firstServer = 0);
    bool begin(const char *id, const char *type, const char *fw, const char *keyHex,
               unsigned firstServer = 0);

    /* Call from loop(): connects when it is time (client.connect blocks as long as the Client
     * does), reads, answers, keeps alive, sends events, backs off. */
    void loop();
    /* Milliseconds until loop() has something timed to do (new bytes aside). */
    uint32_t idleMs() const
    {
        return iotp_device_next_timeout_ms(&dev_);
    }

    /* Queue an EVENT or an ALARM; sent at once when online, else after the next handshake.
     * Returns 0 or a negative IOTP_E* code (IOTP_ENOSPC: the storage is full). */
    int event(const char *name, unsigned nfields, const IotpField *fields);
    int event(const char *name, const char *key, const char *value);
    int alarm(const char *name, unsigned nfields, const IotpField *fields);

    /* BYE when online, close, and stay stopped. */
    void stop();
    bool online() const
    {
        return iotp_device_state(&dev_) == IOTP_DEVICE_ONLINE;
    }
    const char *stateName() const
    {
        return iotp_device_state_name(iotp_device_state(&dev_));
    }
    /* The address the current or next attempt uses. */
    const struct iotp_server *server() const
    {
        return iotp_device_server(&dev_);
    }
    /* The engine itself, for what the class does not wrap (iotp_device_answer later). */
    struct iotp_device &engine()
    {
        return dev_;
    }

  private:
    struct Slot {
        IotpDevice *owner;
        IotpHandler handler;
    };
    static int32_t netSend(void *ctx, const uint8_t *buf, size_t len);
    static int32_t netRecv(void *ctx, uint8_t *buf, size_t len);
    static uint64_t clockMs(void *ctx);
    static int randomFill(void *ctx, uint8_t *buf, size_t len);
    static int storeMark(void *ctx, uint32_t mark);
    static int dispatch(void *ctx, struct iotp_device *dev, const struct iotp_frame *request,
                        struct iotp_device_answer *answer);
    static void noted(void *ctx, struct iotp_device *dev, const struct iotp_device_note *note);

    Client &client_;
    struct iotp_device dev_;
    struct iotp_server servers_[IOTP_ARDUINO_MAX_SERVERS];
    unsigned nservers_;
    struct iotp_device_handler table_[IOTP_ARDUINO_MAX_HANDLERS];
    Slot slots_[IOTP_ARDUINO_MAX_HANDLERS];
    unsigned nhandlers_;
    IotpRandomFn random_;
    IotpStoreFn store_;
    IotpNoteFn note_;
    uint32_t storedMark_;
    uint8_t key_[IOTP_KEY_LEN];
    bool begun_;
    IotpClock clock_;
    uint8_t rx_[IOTP_MAX_FRAME];
    uint8_t tx_[IOTP_MAX_FRAME];
#if IOTP_ARDUINO_OUTBOX > 0
    uint8_t outbox_[IOTP_ARDUINO_OUTBOX];
#endif
};

#include "IotpEspAtClient.h"

#endif
