/*
 * iotp_hex.h - hex encoding of nonces and MACs on the wire: lower case out, either case in.
 */
#ifndef IOTP_HEX_H
#define IOTP_HEX_H

#include <stddef.h>
#include <stdint.h>

/* Write 2*len lower-case hex digits and a NUL into out (which must hold 2*len + 1 bytes). */
void iotp_hex_encode(const uint8_t *bytes, size_t len, char *out);

/* Decode exactly hex_len digits (an even number) into out (out_cap >= hex_len / 2). Returns the
 * number of bytes written, or IOTP_EINVAL for an odd length, a non-hex digit or a too-small
 * out. out may be partially written on error. */
int iotp_hex_decode(const char *hex, size_t hex_len, uint8_t *out, size_t out_cap);

#endif
