/* iotp_error.c - names, sentences and wire codes of the IOTP_E* codes (see iotp_error.h). */
#include "iotp/iotp_error.h"

#include <string.h>

/* Indexed by -code, the last one for any other code: each string NUL-terminated, packed into
 * one array (no table of pointers, 8 bytes an entry on a 32-bit device). Looked up by walking,
 * which only logs do. */
static const char names[] = "ok\0"
                            "invalid\0"
                            "no_space\0"
                            "empty_field\0"
                            "field_too_long\0"
                            "bad_id\0"
                            "too_many_args\0"
                            "control_byte\0"
                            "too_large\0"
                            "too_few_fields\0"
                            "bad_args\0"
                            "protocol\0"
                            "auth\0"
                            "state\0"
                            "random\0"
                            "chip\0"
                            "io\0"
                            "timeout\0"
                            "peer\0"
                            "not_found\0"
                            "unknown\0";

#if IOTP_ERROR_SENTENCES
static const char sentences[] = "success\0"
                                "invalid argument\0"
                                "output buffer too small\0"
                                "empty FROM, TO, TYPE or ID field\0"
                                "FROM, TO or TYPE field too long\0"
                                "ID is not a decimal number 0..4294967295\0"
                                "too many arguments\0"
                                "control byte inside a field\0"
                                "frame too large\0"
                                "frame has fewer than 4 fields\0"
                                "missing or malformed argument\0"
                                "unexpected frame\0"
                                "authentication failed\0"
                                "call not valid in this state\0"
                                "random source failed\0"
                                "crypto chip failed\0"
                                "transport failed\0"
                                "timed out\0"
                                "peer answered with an error\0"
                                "no such argument\0"
                                "unknown error\0";
#endif

/* The index-th string of the packed list. */
static const char *nth(const char *list, int code)
{
    unsigned i = code > 0 || code <= -IOTP_ERROR_COUNT ? IOTP_ERROR_COUNT : (unsigned)-code;

    while (i-- > 0)
        list += strlen(list) + 1;
    return list;
}

const char *iotp_strerror(int code)
{
#if IOTP_ERROR_SENTENCES
    return nth(sentences, code);
#else
    return nth(names, code);
#endif
}

const char *iotp_error_name(int code)
{
    return nth(names, code);
}

const char *iotp_error_wire_code(int code)
{
    switch (code) {
    case IOTP_ETOO_LARGE:
        return "too_large";
    case IOTP_EEMPTY_FIELD:
    case IOTP_EFIELD_TOO_LONG:
    case IOTP_EBAD_ID:
    case IOTP_ETOO_MANY_ARGS:
    case IOTP_ECONTROL:
    case IOTP_ETOO_FEW_FIELDS:
    case IOTP_EPROTO:
        return "bad_frame";
    case IOTP_EBAD_ARGS:
        return "bad_args";
    case IOTP_EAUTH:
        return "auth";
    default:
        return "internal";
    }
}
