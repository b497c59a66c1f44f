/*
 * Iotp.cpp - IotpDevice: the engine's platform made of an Arduino Client, millis() and the
 * sketch's random source and store, and loop() as the port's process loop (iotp_device.h).
 */
#include "Iotp.h"

#include <string.h>

bool IotpAnswer::add(const char *value)
{
    if (answer_.nargs >= IOTP_DEVICE_ANSWER_ARGS)
        return false;
    answer_.args[answer_.nargs++] = value;
    return true;
}

void IotpAnswer::error(const char *code, const char *msg)
{
    answer_.error_code = code;
    answer_.error_msg = msg;
}

IotpDevice::IotpDevice(Client &client)
    : client_(client), nservers_(0), nhandlers_(0), random_(NULL), store_(NULL), note_(NULL),
      storedMark_(0), begun_(false)
{
    memset(&dev_, 0, sizeof(dev_));
    dev_.state = IOTP_DEVICE_STOPPED; /* until begin() */
}

bool IotpDevice::addServer(const char *host, uint16_t port)
{
    if (begun_ || !host || !*host || port == 0 || nservers_ >= IOTP_ARDUINO_MAX_SERVERS)
        return false;
    servers_[nservers_].host = host;
    servers_[nservers_].port = port;
    nservers_++;
    return true;
}

bool IotpDevice::on(const char *type, IotpHandler handler)
{
    if (begun_ || !handler || nhandlers_ >= IOTP_ARDUINO_MAX_HANDLERS)
        return false;
    slots_[nhandlers_].owner = this;
    slots_[nhandlers_].handler = handler;
    table_[nhandlers_].type = type;
    table_[nhandlers_].fn = dispatch;
    table_[nhandlers_].ctx = &slots_[nhandlers_];
    nhandlers_++;
    return true;
}

void IotpDevice::setStore(IotpStoreFn store, uint32_t storedMark)
{
    store_ = store;
    storedMark_ = storedMark;
}

bool IotpDevice::begin(const char *id, const char *type, const char *fw, const uint8_t key[32],
                       unsigned firstServer)
{
    struct iotp_device_params p;
    struct iotp_device_platform pl;

    if (begun_ || nservers_ == 0 || !random_ || !key)
        return false;
    memcpy(key_, key, sizeof(key_));
    memset(&p, 0, sizeof(p));
    p.device_id = id;
    p.device_type = type;
    p.fw_version = fw;
    p.key = key_;
    p.handlers = table_;
    p.nhandlers = nhandlers_;
    p.note = noted;
    p.note_ctx = this;
    p.servers = servers_;
    p.nservers = nservers_;
    p.first_server = firstServer;
    memset(&pl, 0, sizeof(pl));
    pl.transport.ctx = pl.clock.ctx = pl.random.ctx = pl.persist.ctx = this;
    pl.transport.send = netSend;
    pl.transport.recv = netRecv;
    pl.clock.now_ms = clockMs;
    pl.random.fill = randomFill;
    if (store_)
        pl.persist.store_high_water = storeMark;
    if (iotp_device_init(&dev_, &p, &pl, rx_, sizeof(rx_), tx_, sizeof(tx_)) < 0)
        return false;
#if IOTP_ARDUINO_OUTBOX > 0
    if (iotp_device_attach_outbox(&dev_, outbox_, sizeof(outbox_), storedMark_) < 0)
        return false;
#endif
    begun_ = true;
    return true;
}

bool IotpDevice::begin(const char *id, const char *type, const char *fw, const char *keyHex,
                       unsigned firstServer)
{
    uint8_t key[IOTP_KEY_LEN];
    bool ok;

    ok = keyHex && strlen(keyHex) == 2 * IOTP_KEY_LEN &&
         iotp_hex_decode(keyHex, 2 * IOTP_KEY_LEN, key, sizeof(key)) == IOTP_KEY_LEN &&
         begin(id, type, fw, key, firstServer);
    iotp_wipe(key, sizeof(key));
    return ok;
}

void IotpDevice::loop()
{
    const struct iotp_server *srv;

    switch (iotp_device_state(&dev_)) {
    case IOTP_DEVICE_CONNECT:
        iotp_device_connecting(&dev_);
        srv = iotp_device_server(&dev_);
        if (client_.connect(srv->host, srv->port)) {
            iotp_device_transport_up(&dev_); /* sends HELLO */
        } else {
            client_.stop();
            iotp_device_transport_down(&dev_); /* backoff, then the next server */
        }
        break;
    case IOTP_DEVICE_CLOSING: /* the engine ended the session */
        client_.stop();
        iotp_device_transport_down(&dev_);
        break;
    case IOTP_DEVICE_STOPPED:
        break;
    default:
        if (iotp_device_poll(&dev_) < 0) /* the connection was lost: the engine backs off */
            client_.stop();
        break;
    }
}

int IotpDevice::event(const char *name, unsigned nfields, const IotpField *fields)
{
    return begun_ ? iotp_device_event(&dev_, IOTP_EVENT, name, nfields, fields, NULL)
                  : (int)IOTP_ESTATE;
}

int IotpDevice::event(const char *name, const char *key, const char *value)
{
    IotpField f;

    f.key = key;
    f.value = value;
    return event(name, 1, &f);
}

int IotpDevice::alarm(const char *name, unsigned nfields, const IotpField *fields)
{
    return begun_ ? iotp_device_event(&dev_, IOTP_ALARM, name, nfields, fields, NULL)
                  : (int)IOTP_ESTATE;
}

void IotpDevice::stop()
{
    iotp_device_stop(&dev_);
    client_.stop();
}

/* ---- the engine's platform ---- */

int32_t IotpDevice::netSend(void *ctx, const uint8_t *buf, size_t len)
{
    IotpDevice *d = static_cast<IotpDevice *>(ctx);
    size_t n;

    if (!d->client_.connected())
        return IOTP_EIO;
    /* A Client's write blocks until it took the bytes; 0 is its only way to say it failed. */
    n = d->client_.write(buf, len);
    return n > 0 ? (int32_t)n : (int32_t)IOTP_EIO;
}

int32_t IotpDevice::netRecv(void *ctx, uint8_t *buf, size_t len)
{
    IotpDevice *d = static_cast<IotpDevice *>(ctx);
    int avail = d->client_.available(), n;

    if (avail <= 0) /* connected() stays true while unread bytes remain */
        return d->client_.connected() ? 0 : (int)IOTP_EIO;
    if ((size_t)avail < len)
        len = (size_t)avail;
    n = d->client_.read(buf, len);
    return n > 0 ? (int32_t)n : 0;
}

uint64_t IotpDevice::clockMs(void *ctx)
{
    return static_cast<IotpDevice *>(ctx)->clock_.now();
}

int IotpDevice::randomFill(void *ctx, uint8_t *buf, size_t len)
{
    return static_cast<IotpDevice *>(ctx)->random_(buf, len) ? 0 : (int)IOTP_ERANDOM;
}

int IotpDevice::storeMark(void *ctx, uint32_t mark)
{
    return static_cast<IotpDevice *>(ctx)->store_(mark) ? 0 : (int)IOTP_EIO;
}

int IotpDevice::dispatch(void *ctx, struct iotp_device *dev, const struct iotp_frame *request,
                         struct iotp_device_answer *answer)
{
    Slot *slot = static_cast<Slot *>(ctx);
    IotpRequest req(*request);
    IotpAnswer ans(*answer);

    (void)dev;
    slot->handler(req, ans);
    return IOTP_DEVICE_REPLY;
}

void IotpDevice::noted(void *ctx, struct iotp_device *dev, const struct iotp_device_note *note)
{
    IotpDevice *d = static_cast<IotpDevice *>(ctx);

    (void)dev;
    if (d->note_)
        d->note_(*note);
}
