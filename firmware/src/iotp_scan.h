/*
 * iotp_scan.h - private to firmware/src: find the run of ordinary bytes at the start of a
 * buffer, for the frame parser and writer.
 *
 * An ordinary byte is any byte a field may hold: everything but the control bytes 0x00-0x1F
 * (which include US and EOT) and 0x7F. Bytes >= 0x80 are ordinary. The scan reads one machine
 * word (size_t) at a time, loaded with memcpy so that any alignment is fine, and computes a
 * mask with the top bit of each control byte set, using only per-byte additions that can never
 * carry into the next byte: with L = the low seven bits of a byte (0..0x7F),
 *   L + 0x60 has its top bit clear  exactly when L < 0x20 (at most 0xDF: no carry out),
 *   L + 0x01 has its top bit set    exactly when L == 0x7F (at most 0x80: no carry out),
 * and a byte is a control byte exactly when its own top bit is clear and one of those holds.
 * So the mask is exact for every byte of the word, not only as a yes/no answer (the classic
 * subtracting "has less than" trick can flag bytes above a true hit through its borrows). The
 * first flagged word is then finished byte by byte, which keeps the code independent of byte
 * order; the word loop only has to skip words with no control byte at all.
 */
#ifndef IOTP_SCAN_H
#define IOTP_SCAN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "iotp/iotp_config_defaults.h"

#define IOTP_SCAN_ONES ((size_t)-1 / 0xFF) /* 0x01 in every byte of a word */

static inline int iotp_scan_is_control(uint8_t c)
{
    return c < 0x20 || c == 0x7F;
}

/* A word with the top bit (0x80) of each control byte of x set, and no other bit. */
static inline size_t iotp_scan_control_mask(size_t x)
{
    size_t low = x & (IOTP_SCAN_ONES * 0x7F);
    size_t at_least_space = low + IOTP_SCAN_ONES * 0x60;
    size_t is_del = low + IOTP_SCAN_ONES * 0x01;

    return (~at_least_space | is_del) & ~x & (IOTP_SCAN_ONES * 0x80);
}

/* Length of the longest prefix of s[0..len) without a control byte: len when there is none,
 * otherwise the offset of the first one. s may be unaligned; nothing past s[len - 1] is read. */
static inline size_t iotp_scan_plain(const uint8_t *s, size_t len)
{
    size_t i = 0;

#if IOTP_SCAN_WORDS
    while (len - i >= sizeof(size_t)) {
        size_t x;
        memcpy(&x, s + i, sizeof(x));
        if (iotp_scan_control_mask(x))
            break;
        i += sizeof(x);
    }
#endif
    while (i < len && !iotp_scan_is_control(s[i]))
        i++;
    return i;
}

#endif
