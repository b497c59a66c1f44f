/*
 * fuzz_frame.c - libFuzzer target for the iotp frame parser and writer.
 *
 * The input is fed to two parsers (default limits, and tiny limits) in chunks whose sizes
 * come from the input itself, so the fuzzer explores split points too. Every frame the parser
 * accepts must be accepted by the writer and must parse back to the same fields: what iotd
 * reads it can always write, and the other way round. Then the input is cut at US bytes into
 * candidate fields for the writer: whatever the writer accepts must parse back identically.
 * Any disagreement aborts, which libFuzzer reports as a crash.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "iotp/iotp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
    if (!ok)
        abort();
}

static void same_frame(const struct iotp_frame *a, const struct iotp_frame *b)
{
    unsigned i;

    check(strcmp(a->from, b->from) == 0);
    check(strcmp(a->to, b->to) == 0);
    check(strcmp(a->type, b->type) == 0);
    check(a->id == b->id);
    check(a->nargs == b->nargs);
    for (i = 0; i < a->nargs; i++)
        check(strcmp(a->args[i], b->args[i]) == 0);
}

/* Write f, parse the bytes back and compare. */
static void round_trip(const struct iotp_frame *f, size_t max_frame)
{
    static uint8_t out[IOTP_MAX_FRAME], again_buf[IOTP_MAX_FRAME];
    struct iotp_parser again;
    const struct iotp_frame *g = NULL;
    size_t used = 0;
    int len;

    len = iotp_frame_write(f, out, sizeof(out));
    check(len > 0 && (size_t)len <= max_frame);
    check(out[len - 1] == IOTP_EOT);
    check(iotp_parser_init(&again, again_buf, sizeof(again_buf), 0, 0) == 0);
    check(iotp_parser_feed(&again, out, (size_t)len, &used, &g, NULL) == 1);
    check(used == (size_t)len);
    same_frame(f, g);
}

static void parse_all(const uint8_t *data, size_t size, size_t max_frame, unsigned max_args)
{
    static uint8_t buf[IOTP_MAX_FRAME];
    struct iotp_parser p;
    size_t off = 0, chunk = size ? (size_t)data[0] % 17 + 1 : 1;

    check(iotp_parser_init(&p, buf, max_frame, max_frame, max_args) == 0);
    while (off < size) {
        size_t n = size - off < chunk ? size - off : chunk;
        while (n > 0) {
            const struct iotp_frame *f = NULL;
            uint32_t err_id = 0;
            size_t used = 0;
            int r = iotp_parser_feed(&p, data + off, n, &used, &f, &err_id);
            check(used <= n);
            if (r == 1) {
                check(f->nargs <= max_args);
                round_trip(f, max_frame);
            } else if (r < 0) {
                check(r >= IOTP_ETOO_FEW_FIELDS && r <= IOTP_EEMPTY_FIELD);
                check(used > 0);
            } else {
                check(used == n);
            }
            off += used;
            n -= used;
        }
    }
}

/* Cut the input at US into fields for the writer. */
static void write_fields(const uint8_t *data, size_t size)
{
    static char store[IOTP_MAX_FRAME + 64];
    const char *fields[4 + IOTP_MAX_ARGS + 1];
    struct iotp_frame f;
    size_t n = 0, start = 0, i, len;
    unsigned k;
    uint8_t out[IOTP_MAX_FRAME];

    if (size > IOTP_MAX_FRAME)
        size = IOTP_MAX_FRAME;
    memcpy(store, data, size);
    store[size] = '\0';
    for (i = 0; i <= size && n < sizeof(fields) / sizeof(fields[0]); i++) {
        if (i == size || store[i] == IOTP_US) {
            store[i] = '\0';
            fields[n++] = store + start;
            start = i + 1;
        }
    }
    if (n < 4)
        return;
    memset(&f, 0, sizeof(f));
    f.from = fields[0];
    f.to = fields[1];
    f.type = fields[2];
    len = strlen(fields[3]);
    f.id = 0;
    for (i = 0; i < len && i < 4; i++)
        f.id = f.id * 251 + (uint8_t)fields[3][i];
    f.nargs = (unsigned)(n - 4);
    for (k = 0; k < f.nargs && k < IOTP_MAX_ARGS; k++)
        f.args[k] = fields[4 + k];
    if (iotp_frame_write(&f, out, sizeof(out)) > 0)
        round_trip(&f, IOTP_MAX_FRAME);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    parse_all(data, size, IOTP_MAX_FRAME, IOTP_MAX_ARGS);
    parse_all(data, size, 64, 3);
    write_fields(data, size);
    return 0;
}
