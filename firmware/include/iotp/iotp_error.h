/*
 * iotp_error.h - error codes of the iotp library.
 *
 * Functions return 0 (or a count) on success and a negative IOTP_E* code on failure.
 * iotp_strerror gives a sentence for logs; iotp_error_wire_code gives the `code=` value a server
 * answers a malformed frame with (bad_frame, too_large, ...), so iotd does not keep its own table.
 */
#ifndef IOTP_ERROR_H
#define IOTP_ERROR_H

#include "iotp_config_defaults.h"

enum iotp_error {
    IOTP_OK = 0,
    IOTP_EINVAL = -1,          /* a function was called with an invalid argument */
    IOTP_ENOSPC = -2,          /* the caller's output buffer is too small */
    IOTP_EEMPTY_FIELD = -3,    /* FROM, TO, TYPE or ID is empty */
    IOTP_EFIELD_TOO_LONG = -4, /* FROM, TO or TYPE longer than its limit */
    IOTP_EBAD_ID = -5,         /* ID not decimal 0..4294967295 (junk, leading zero, overflow) */
    IOTP_ETOO_MANY_ARGS = -6,  /* more ARG fields than the limit */
    IOTP_ECONTROL = -7,        /* a control byte inside a field */
    IOTP_ETOO_LARGE = -8,      /* frame longer than the limit */
    IOTP_ETOO_FEW_FIELDS = -9, /* fewer than the 4 fields FROM TO TYPE ID */
    IOTP_EBAD_ARGS = -10,      /* a handshake frame lacks an argument or has a malformed one */
    IOTP_EPROTO = -11,         /* unexpected frame type, sender, receiver or id */
    IOTP_EAUTH = -12,          /* authentication failed (either direction) */
    IOTP_ESTATE = -13,         /* call not valid in the current state */
    IOTP_ERANDOM = -14,        /* the random source failed */
    IOTP_ECHIP = -15,          /* the crypto chip (or its emulation) failed */
    IOTP_EIO = -16,            /* the transport failed or the peer closed */
    IOTP_ETIMEOUT = -17,       /* a deadline passed */
    IOTP_EPEER = -18,          /* the peer answered ERROR with a code other than auth */
    IOTP_ENOTFOUND = -19,      /* no such argument */
};
#define IOTP_ERROR_COUNT 20

/* Whether iotp_strerror has sentences; a device that logs nothing, or only the names, sets 0
 * and keeps some 600 bytes of flash (iotp_strerror then returns the name). */
#ifndef IOTP_ERROR_SENTENCES
#define IOTP_ERROR_SENTENCES 1
#endif

/* A sentence describing code ("control byte inside a field"); "unknown error" for others (with
 * IOTP_ERROR_SENTENCES 0: the name, "control_byte", "unknown"). */
const char *iotp_strerror(int code);

/* Machine name of the code ("too_many_args"), stable, for logs and counters. */
const char *iotp_error_name(int code);

/* The wire `code=` a server answers a frame error with: "too_large" for IOTP_ETOO_LARGE,
 * "bad_frame" for the other frame errors, "bad_args" for IOTP_EBAD_ARGS, "auth" for
 * IOTP_EAUTH, "internal" otherwise. */
const char *iotp_error_wire_code(int code);

#endif
