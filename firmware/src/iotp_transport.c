/* iotp_transport.c - helpers over the transport interface (see iotp_platform.h). */
#include "iotp/iotp_error.h"
#include "iotp/iotp_platform.h"

int iotp_transport_send_all(const struct iotp_transport *t, const uint8_t *buf, size_t len,
                            unsigned max_idle)
{
    unsigned idle = 0;

    if (!t || !t->send || (!buf && len))
        return IOTP_EINVAL;
    while (len > 0) {
        int32_t n = t->send(t->ctx, buf, len);
        if (n < 0)
            return n;
        if (n == 0) {
            if (++idle > max_idle)
                return IOTP_ETIMEOUT;
            continue;
        }
        if ((size_t)n > len)
            return IOTP_EIO; /* a transport that claims more than it was given is broken */
        idle = 0;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}
