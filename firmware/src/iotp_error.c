/* iotp_error.c - names, sentences and wire codes of the IOTP_E* codes (see iotp_error.h). */
#include "iotp/iotp_error.h"

struct error_info {
    const char *name;
    const char *sentence;
};

/* Indexed by -code. */
static const struct error_info errors[IOTP_ERROR_COUNT] = {
    {"ok", "success"},
    {"invalid", "invalid argument"},
    {"no_space", "output buffer too small"},
    {"empty_field", "empty FROM, TO, TYPE or ID field"},
    {"field_too_long", "FROM, TO or TYPE field too long"},
    {"bad_id", "ID is not a decimal number 0..4294967295"},
    {"too_many_args", "too many arguments"},
    {"control_byte", "control byte inside a field"},
    {"too_large", "frame too large"},
    {"too_few_fields", "frame has fewer than 4 fields"},
    {"bad_args", "missing or malformed argument"},
    {"protocol", "unexpected frame"},
    {"auth", "authentication failed"},
    {"state", "call not valid in this state"},
    {"random", "random source failed"},
    {"chip", "crypto chip failed"},
    {"io", "transport failed"},
    {"timeout", "timed out"},
    {"peer", "peer answered with an error"},
    {"not_found", "no such argument"},
};

static const struct error_info *lookup(int code)
{
    static const struct error_info unknown = {"unknown", "unknown error"};

    if (code > 0 || code <= -IOTP_ERROR_COUNT)
        return &unknown;
    return &errors[-code];
}

const char *iotp_strerror(int code)
{
    return lookup(code)->sentence;
}

const char *iotp_error_name(int code)
{
    return lookup(code)->name;
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
