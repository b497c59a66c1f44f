/*
 * test_outbox.c - the device's event queue (iotp_outbox): push and ACK, out-of-order ACKs,
 * permanent and transient ERRORs, resending after a reconnect, a full ring, wrap-around of the
 * storage, sequence-number reservation across a simulated reboot, and frames that parse back
 * with the library's parser to exactly what was pushed.
 *
 * A "session" here is a list of frames the test pretends to send: send_all() takes every frame
 * the outbox hands out, marks it sent and records its seq, so each test can say which seqs went
 * out in which order.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "iotp/iotp.h"

#define DEV "thermo-1"

static const struct iotp_event_field temp_fields[] = {{"value", "21.5"}, {"unit", "C"}};

/* An outbox with a reservation already made, over storage. */
static void open_outbox(struct iotp_outbox *ob, uint8_t *storage, size_t len)
{
    uint32_t hw;

    assert_int_equal(iotp_outbox_init(ob, storage, len, 0, 0), 0);
    assert_int_equal(iotp_outbox_reserve_needed(ob, &hw), 1);
    assert_int_equal(hw, IOTP_OUTBOX_RESERVE_BLOCK);
    assert_int_equal(iotp_outbox_reserved(ob, hw), 0);
}

static uint32_t push_temp(struct iotp_outbox *ob)
{
    uint32_t seq = 0;

    assert_int_equal(iotp_outbox_push(ob, IOTP_EVENT, DEV, "temperature", 2, temp_fields, &seq), 0);
    return seq;
}

/* Send everything the outbox hands out; the seqs go to out (space for max), the count is
 * returned. */
static unsigned send_all(struct iotp_outbox *ob, uint32_t *out, unsigned max)
{
    const uint8_t *frame;
    unsigned n = 0;
    size_t len;
    uint32_t seq;

    while (iotp_outbox_next(ob, &frame, &len, &seq) == 1) {
        assert_true(n < max);
        assert_true(len > 0 && frame[len - 1] == IOTP_EOT);
        out[n++] = seq;
        assert_int_equal(iotp_outbox_mark_sent(ob, seq), 0);
    }
    return n;
}

static void assert_seqs(const uint32_t *got, unsigned n, unsigned want_n, ...)
{
    va_list ap;

    assert_int_equal(n, want_n);
    va_start(ap, want_n);
    for (unsigned i = 0; i < want_n; i++)
        assert_int_equal(got[i], va_arg(ap, unsigned));
    va_end(ap);
}

/* Parse one whole frame. */
static const struct iotp_frame *parse(struct iotp_parser *p, uint8_t *buf, size_t cap,
                                      const uint8_t *data, size_t len)
{
    const struct iotp_frame *f = NULL;
    size_t used;

    assert_int_equal(iotp_parser_init(p, buf, cap, 0, 0), 0);
    assert_int_equal(iotp_parser_feed(p, data, len, &used, &f, NULL), 1);
    assert_int_equal(used, len);
    return f;
}

static void push_and_ack(void **state)
{
    uint8_t storage[1024];
    struct iotp_outbox ob;
    uint32_t sent[8];
    unsigned n;

    (void)state;
    open_outbox(&ob, storage, sizeof(storage));
    assert_int_equal(push_temp(&ob), 1);
    assert_int_equal(push_temp(&ob), 2);
    assert_int_equal(push_temp(&ob), 3);
    assert_int_equal(iotp_outbox_pending(&ob), 3);
    assert_int_equal(iotp_outbox_unsent(&ob), 3);
    n = send_all(&ob, sent, 8);
    assert_seqs(sent, n, 3, 1, 2, 3);
    assert_int_equal(iotp_outbox_in_flight(&ob), 3);
    assert_int_equal(iotp_outbox_unsent(&ob), 0);

    assert_int_equal(iotp_outbox_on_ack(&ob, 1), 0);
    assert_int_equal(iotp_outbox_on_ack(&ob, 2), 0);
    assert_int_equal(iotp_outbox_pending(&ob), 1);
    assert_int_equal(iotp_outbox_in_flight(&ob), 1);
    /* A duplicate ACK and an ACK for a seq never pushed change nothing. */
    assert_int_equal(iotp_outbox_on_ack(&ob, 2), IOTP_ENOTFOUND);
    assert_int_equal(iotp_outbox_on_ack(&ob, 99), IOTP_ENOTFOUND);
    assert_int_equal(iotp_outbox_on_ack(&ob, 3), 0);
    assert_int_equal(iotp_outbox_pending(&ob), 0);
    assert_int_equal(iotp_outbox_in_flight(&ob), 0);

    /* Sending more after everything was acknowledged. */
    assert_int_equal(push_temp(&ob), 4);
    n = send_all(&ob, sent, 8);
    assert_seqs(sent, n, 1, 4);
    assert_int_equal(iotp_outbox_last_seq(&ob), 4);
}

static void frames_parse_back(void **state)
{
    static const struct iotp_event_field alarm_fields[] = {{"value", "35.5"},
                                                           {"unit", "C"},
                                                           {"state", "raised"},
                                                           {"severity", "major"},
                                                           {"msg", "too hot: check the fan"}};
    uint8_t storage[1024], pbuf[IOTP_MAX_FRAME];
    struct iotp_parser p;
    const struct iotp_frame *f;
    struct iotp_outbox ob;
    const uint8_t *frame;
    size_t len;
    uint32_t seq;

    (void)state;
    open_outbox(&ob, storage, sizeof(storage));
    push_temp(&ob);
    assert_int_equal(iotp_outbox_push(&ob, IOTP_ALARM, DEV, "temperature", 5, alarm_fields, &seq),
                     0);
    assert_int_equal(seq, 2);
    assert_int_equal(iotp_outbox_push(&ob, IOTP_EVENT, DEV, "door_opened", 0, NULL, &seq), 0);

    assert_int_equal(iotp_outbox_next(&ob, &frame, &len, &seq), 1);
    assert_int_equal(seq, 1);
    f = parse(&p, pbuf, sizeof(pbuf), frame, len);
    assert_string_equal(f->from, DEV);
    assert_string_equal(f->to, "iotd");
    assert_string_equal(f->type, "EVENT");
    assert_int_equal(f->id, 1);
    assert_int_equal(f->nargs, 3);
    assert_string_equal(f->args[0], "temperature");
    assert_string_equal(iotp_frame_arg(f, "value"), "21.5");
    assert_string_equal(iotp_frame_arg(f, "unit"), "C");
    /* The exact bytes, so that iotd and a device agree without this library too. */
    assert_int_equal(len, strlen(DEV "\x1fiotd\x1f"
                                     "EVENT\x1f"
                                     "1\x1ftemperature\x1fvalue=21.5\x1funit=C\x04"));
    assert_memory_equal(frame,
                        DEV "\x1fiotd\x1f"
                            "EVENT\x1f"
                            "1\x1ftemperature\x1fvalue=21.5\x1funit=C\x04",
                        len);
    assert_int_equal(iotp_outbox_mark_sent(&ob, 1), 0);

    assert_int_equal(iotp_outbox_next(&ob, &frame, &len, &seq), 1);
    f = parse(&p, pbuf, sizeof(pbuf), frame, len);
    assert_string_equal(f->type, "ALARM");
    assert_int_equal(f->id, 2);
    assert_int_equal(f->nargs, 6);
    assert_string_equal(f->args[0], "temperature");
    assert_string_equal(iotp_frame_arg(f, "state"), "raised");
    assert_string_equal(iotp_frame_arg(f, "severity"), "major");
    assert_string_equal(iotp_frame_arg(f, "msg"), "too hot: check the fan");
    assert_int_equal(iotp_outbox_mark_sent(&ob, 2), 0);

    assert_int_equal(iotp_outbox_next(&ob, &frame, &len, &seq), 1);
    f = parse(&p, pbuf, sizeof(pbuf), frame, len);
    assert_string_equal(f->type, "EVENT");
    assert_int_equal(f->id, 3);
    assert_int_equal(f->nargs, 1);
    assert_string_equal(f->args[0], "door_opened");

    /* iotp_outbox_get finds a pending frame by seq. */
    assert_int_equal(iotp_outbox_get(&ob, 2, &frame, &len), 0);
    f = parse(&p, pbuf, sizeof(pbuf), frame, len);
    assert_string_equal(f->type, "ALARM");
    assert_int_equal(iotp_outbox_get(&ob, 9, &frame, &len), IOTP_ENOTFOUND);
}

static void push_refuses_bad_fields(void **state)
{
    uint8_t storage[1024];
    struct iotp_outbox ob;
    struct iotp_event_field f[IOTP_MAX_ARGS];
    char big[IOTP_MAX_FRAME + 1];
    uint32_t seq;

    (void)state;
    open_outbox(&ob, storage, sizeof(storage));
    f[0].key = "value";
    f[0].value = "2\x1f";
    assert_int_equal(iotp_outbox_push(&ob, IOTP_EVENT, DEV, "t", 1, f, &seq), IOTP_ECONTROL);
    f[0].key = "va=lue";
    f[0].value = "2";
    assert_int_equal(iotp_outbox_push(&ob, IOTP_EVENT, DEV, "t", 1, f, &seq), IOTP_EINVAL);
    f[0].key = NULL;
    assert_int_equal(iotp_outbox_push(&ob, IOTP_EVENT, DEV, "t", 1, f, &seq), IOTP_EINVAL);
    assert_int_equal(iotp_outbox_push(&ob, IOTP_EVENT, DEV, "", 0, NULL, &seq), IOTP_EINVAL);
    assert_int_equal(iotp_outbox_push(&ob, IOTP_EVENT, "", "t", 0, NULL, &seq), IOTP_EEMPTY_FIELD);
    for (unsigned i = 0; i < IOTP_MAX_ARGS; i++) {
        f[i].key = "k";
        f[i].value = "v";
    }
    assert_int_equal(iotp_outbox_push(&ob, IOTP_EVENT, DEV, "t", IOTP_MAX_ARGS, f, &seq),
                     IOTP_ETOO_MANY_ARGS);
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    f[0].value = big;
    assert_int_equal(iotp_outbox_push(&ob, IOTP_EVENT, DEV, "t", 1, f, &seq), IOTP_ETOO_LARGE);
    /* Nothing was queued and no number was used. */
    assert_int_equal(iotp_outbox_pending(&ob), 0);
    assert_int_equal(push_temp(&ob), 1);
}

static void out_of_order_ack(void **state)
{
    uint8_t storage[1024];
    struct iotp_outbox ob;
    uint32_t sent[8];
    unsigned n;

    (void)state;
    open_outbox(&ob, storage, sizeof(storage));
    for (int i = 0; i < 4; i++)
        push_temp(&ob);
    n = send_all(&ob, sent, 8);
    assert_seqs(sent, n, 4, 1, 2, 3, 4);
    /* 3 and 2 answered before 1: they leave, 1 and 4 stay. */
    assert_int_equal(iotp_outbox_on_ack(&ob, 3), 0);
    assert_int_equal(iotp_outbox_on_ack(&ob, 2), 0);
    assert_int_equal(iotp_outbox_pending(&ob), 2);
    assert_int_equal(iotp_outbox_in_flight(&ob), 2);
    assert_int_equal(iotp_outbox_on_ack(&ob, 3), IOTP_ENOTFOUND);

    /* A reconnect resends only what is still pending, oldest first. */
    iotp_outbox_session_reset(&ob);
    assert_int_equal(iotp_outbox_unsent(&ob), 2);
    n = send_all(&ob, sent, 8);
    assert_seqs(sent, n, 2, 1, 4);
    assert_int_equal(iotp_outbox_on_ack(&ob, 1), 0);
    assert_int_equal(iotp_outbox_on_ack(&ob, 4), 0);
    assert_int_equal(iotp_outbox_pending(&ob), 0);

    /* An ACK for an entry not yet sent in this session (sent on the previous one). */
    push_temp(&ob); /* 5 */
    push_temp(&ob); /* 6 */
    push_temp(&ob); /* 7 */
    n = send_all(&ob, sent, 8);
    iotp_outbox_session_reset(&ob);
    assert_int_equal(iotp_outbox_on_ack(&ob, 6), 0);
    n = send_all(&ob, sent, 8);
    assert_seqs(sent, n, 2, 5, 7);
    assert_int_equal(iotp_outbox_in_flight(&ob), 2);
}

static void permanent_error_drops(void **state)
{
    uint8_t storage[1024];
    struct iotp_outbox ob;
    uint32_t sent[8];
    unsigned n;

    (void)state;
    open_outbox(&ob, storage, sizeof(storage));
    for (int i = 0; i < 3; i++)
        push_temp(&ob);
    n = send_all(&ob, sent, 8);
    assert_int_equal(n, 3);
    assert_int_equal(iotp_outbox_on_error(&ob, 1, "unknown_type"), IOTP_OUTBOX_DROPPED);
    assert_int_equal(iotp_outbox_on_error(&ob, 2, "bad_args"), IOTP_OUTBOX_DROPPED);
    assert_int_equal(iotp_outbox_on_error(&ob, 2, "bad_args"), IOTP_ENOTFOUND);
    assert_int_equal(iotp_outbox_on_error(&ob, 3, NULL), IOTP_EINVAL);
    assert_int_equal(iotp_outbox_pending(&ob), 1);
    assert_false(iotp_outbox_paused(&ob));
    /* Nothing dropped is ever sent again. */
    iotp_outbox_session_reset(&ob);
    n = send_all(&ob, sent, 8);
    assert_seqs(sent, n, 1, 3);
}

static void busy_rewinds_and_pauses(void **state)
{
    uint8_t storage[1024];
    struct iotp_outbox ob;
    const uint8_t *frame;
    uint32_t sent[16], seq;
    size_t len;
    unsigned n;

    (void)state;
    open_outbox(&ob, storage, sizeof(storage));
    for (int i = 0; i < 5; i++)
        push_temp(&ob);
    n = send_all(&ob, sent, 16);
    assert_int_equal(n, 5);
    assert_int_equal(iotp_outbox_on_ack(&ob, 1), 0);
    /* 2 is refused for now; 3..5 were already on their way. */
    assert_int_equal(iotp_outbox_on_error(&ob, 2, "busy"), IOTP_OUTBOX_PAUSED);
    assert_true(iotp_outbox_paused(&ob));
    assert_int_equal(iotp_outbox_in_flight(&ob), 0);
    assert_int_equal(iotp_outbox_unsent(&ob), 4);
    assert_int_equal(iotp_outbox_next(&ob, &frame, &len, &seq), 0);
    assert_int_equal(iotp_outbox_mark_sent(&ob, 2), IOTP_ESTATE);
    /* Answers to the frames already in flight still count; new events queue up. */
    assert_int_equal(iotp_outbox_on_error(&ob, 3, "busy"), IOTP_OUTBOX_PAUSED);
    assert_int_equal(iotp_outbox_on_ack(&ob, 4), 0);
    push_temp(&ob); /* 6 */
    /* A reconnect during the pause does not end it. */
    iotp_outbox_session_reset(&ob);
    assert_int_equal(iotp_outbox_next(&ob, &frame, &len, &seq), 0);

    /* After the retry delay: everything pending, in order, from the refused one. */
    iotp_outbox_resume(&ob);
    n = send_all(&ob, sent, 16);
    assert_seqs(sent, n, 4, 2, 3, 5, 6);
    for (unsigned i = 0; i < n; i++)
        assert_int_equal(iotp_outbox_on_ack(&ob, sent[i]), 0);
    assert_int_equal(iotp_outbox_pending(&ob), 0);

    /* internal is transient too. */
    push_temp(&ob);
    n = send_all(&ob, sent, 16);
    assert_int_equal(iotp_outbox_on_error(&ob, sent[0], "internal"), IOTP_OUTBOX_PAUSED);
}

static void session_reset_resends_in_order(void **state)
{
    uint8_t storage[2048];
    struct iotp_outbox ob;
    uint32_t sent[32];
    unsigned n;

    (void)state;
    open_outbox(&ob, storage, sizeof(storage));
    for (int i = 0; i < 6; i++)
        push_temp(&ob);
    /* Three went out before the connection dropped; one was acknowledged. */
    for (int i = 0; i < 3; i++) {
        const uint8_t *frame;
        size_t len;
        uint32_t seq;
        assert_int_equal(iotp_outbox_next(&ob, &frame, &len, &seq), 1);
        assert_int_equal(iotp_outbox_mark_sent(&ob, seq), 0);
    }
    assert_int_equal(iotp_outbox_mark_sent(&ob, 6), IOTP_ESTATE); /* not the next one */
    assert_int_equal(iotp_outbox_on_ack(&ob, 1), 0);
    iotp_outbox_session_reset(&ob);
    assert_int_equal(iotp_outbox_in_flight(&ob), 0);
    push_temp(&ob); /* 7, made while reconnecting */
    n = send_all(&ob, sent, 32);
    assert_seqs(sent, n, 6, 2, 3, 4, 5, 6, 7);
    /* Twice in a row: the same again. */
    iotp_outbox_session_reset(&ob);
    n = send_all(&ob, sent, 32);
    assert_seqs(sent, n, 6, 2, 3, 4, 5, 6, 7);
}

/* The size of one temperature entry (header + frame) for seqs of the given digit count. */
static size_t temp_entry_size(unsigned digits)
{
    return IOTP_OUTBOX_ENTRY_OVERHEAD + strlen(DEV) + 1 + 4 + 1 + 5 + 1 + digits + 1 +
           strlen("temperature") + 1 + strlen("value=21.5") + 1 + strlen("unit=C") + 1;
}

static void full_ring_refuses(void **state)
{
    uint8_t storage[512];
    struct iotp_outbox ob;
    size_t entry = temp_entry_size(1);
    uint32_t seq, dropped;
    unsigned fit = (unsigned)(sizeof(storage) / entry);

    (void)state;
    assert_true(fit >= 3 && fit <= 9); /* seqs stay one digit */
    open_outbox(&ob, storage, sizeof(storage));
    for (unsigned i = 0; i < fit; i++)
        assert_int_equal(push_temp(&ob), i + 1);
    assert_int_equal(iotp_outbox_push(&ob, IOTP_EVENT, DEV, "temperature", 2, temp_fields, &seq),
                     IOTP_ENOSPC);
    assert_int_equal(iotp_outbox_pending(&ob), fit);
    assert_int_equal(iotp_outbox_last_seq(&ob), fit); /* the refused push used no number */

    /* The caller may prefer fresh data: drop the oldest, push again. */
    assert_int_equal(iotp_outbox_drop_oldest(&ob, &dropped), 0);
    assert_int_equal(dropped, 1);
    assert_int_equal(push_temp(&ob), fit + 1);
    assert_int_equal(iotp_outbox_pending(&ob), fit);

    /* A frame that could never fit this storage says so even when the ring is not empty. */
    {
        static char value[600];
        struct iotp_event_field f = {"blob", value};
        memset(value, 'x', sizeof(value) - 1);
        assert_int_equal(iotp_outbox_push(&ob, IOTP_EVENT, DEV, "blob", 1, &f, &seq),
                         IOTP_ETOO_LARGE);
    }
    while (iotp_outbox_drop_oldest(&ob, NULL) == 0)
        ;
    assert_int_equal(iotp_outbox_pending(&ob), 0);
    assert_int_equal(iotp_outbox_drop_oldest(&ob, NULL), IOTP_ENOTFOUND);
    assert_int_equal(iotp_outbox_init(&ob, storage, IOTP_OUTBOX_ENTRY_OVERHEAD, 0, 0), IOTP_EINVAL);
}

/* Many rounds of push / send / ack with a storage that is not a multiple of the entry size, so
 * entries wrap at every possible point; an odd storage offset checks unaligned headers. Each
 * frame must parse back with its own seq and values. */
static void wrap_around(void **state)
{
    static uint8_t raw[1 + 700];
    uint8_t *storage = raw + 1;
    uint8_t pbuf[IOTP_MAX_FRAME];
    struct iotp_parser p;
    struct iotp_outbox ob;
    uint32_t expect_next_ack = 1, pushed = 0, seq;
    char value[32];
    unsigned rng = 12345, wrapped_rounds = 0;

    (void)state;
    open_outbox(&ob, storage, 700);
    for (int round = 0; round < 2000; round++) {
        const uint8_t *frame;
        size_t len;
        /* Push a random number of events of random size until full. */
        unsigned want = (rng = rng * 1103515245u + 12345u) >> 16 & 7;
        for (unsigned i = 0; i < want; i++) {
            struct iotp_event_field f = {"value", value};
            unsigned width = (rng = rng * 1103515245u + 12345u) >> 16 & 15;
            int r;
            snprintf(value, sizeof(value), "%0*u", (int)width + 1, (unsigned)(pushed + 1));
            r = iotp_outbox_push(&ob, IOTP_EVENT, DEV, "n", 1, &f, &seq);
            if (r == IOTP_ENOSPC)
                break;
            assert_int_equal(r, 0);
            assert_int_equal(seq, ++pushed);
            if (iotp_outbox_reserve_needed(&ob, &seq))
                iotp_outbox_reserved(&ob, seq);
        }
        /* Send all, check, ack a random prefix in order. */
        while (iotp_outbox_next(&ob, &frame, &len, &seq) == 1) {
            const struct iotp_frame *f = parse(&p, pbuf, sizeof(pbuf), frame, len);
            assert_int_equal(f->id, seq);
            assert_int_equal(strtoul(iotp_frame_arg(f, "value"), NULL, 10), seq);
            assert_int_equal(iotp_outbox_mark_sent(&ob, seq), 0);
        }
        unsigned acks = (rng = rng * 1103515245u + 12345u) >> 16 & 7;
        for (unsigned i = 0; i < acks && expect_next_ack <= pushed; i++)
            assert_int_equal(iotp_outbox_on_ack(&ob, expect_next_ack++), 0);
        assert_int_equal(iotp_outbox_pending(&ob), pushed - expect_next_ack + 1);
        wrapped_rounds += ob.wrapped;
        /* Now and then a reconnect: everything pending comes again, in order. */
        if (round % 97 == 0) {
            uint32_t want_seq = expect_next_ack;
            iotp_outbox_session_reset(&ob);
            while (iotp_outbox_next(&ob, &frame, &len, &seq) == 1) {
                assert_int_equal(seq, want_seq++);
                assert_int_equal(iotp_outbox_mark_sent(&ob, seq), 0);
            }
            assert_int_equal(want_seq, pushed + 1);
        }
    }
    assert_true(pushed > 1000);
    assert_true(wrapped_rounds > 100); /* the storage really wrapped, many times */
}

/* Acks in a random order on a wrapping ring: the reclaimed space must always be reusable and
 * no frame may ever be corrupted. */
static void wrap_around_random_acks(void **state)
{
    static uint8_t storage[600];
    uint8_t pbuf[IOTP_MAX_FRAME];
    struct iotp_parser p;
    struct iotp_outbox ob;
    uint32_t pend[64], seq;
    unsigned npend = 0, rng = 777, wrapped_rounds = 0;
    char value[16];

    (void)state;
    open_outbox(&ob, storage, sizeof(storage));
    for (int round = 0; round < 5000; round++) {
        struct iotp_event_field f = {"value", value};
        const uint8_t *frame;
        size_t len;
        rng = rng * 1103515245u + 12345u;
        if ((rng >> 16) % 3 != 0) {
            snprintf(value, sizeof(value), "%u", (unsigned)(iotp_outbox_last_seq(&ob) + 1));
            int r = iotp_outbox_push(&ob, IOTP_EVENT, DEV, "n", 1, &f, &seq);
            if (r == 0) {
                assert_true(npend < 64);
                pend[npend++] = seq;
            } else {
                assert_int_equal(r, IOTP_ENOSPC);
                assert_true(npend > 0);
            }
            if (iotp_outbox_reserve_needed(&ob, &seq))
                iotp_outbox_reserved(&ob, seq);
        } else if (npend > 0) {
            unsigned k = (rng >> 8) % npend;
            assert_int_equal(iotp_outbox_on_ack(&ob, pend[k]), 0);
            memmove(&pend[k], &pend[k + 1], (npend - k - 1) * sizeof(pend[0]));
            npend--;
        }
        assert_int_equal(iotp_outbox_pending(&ob), npend);
        if (round % 13 == 0)
            iotp_outbox_session_reset(&ob);
        unsigned i = 0;
        while (iotp_outbox_next(&ob, &frame, &len, &seq) == 1) {
            const struct iotp_frame *fr = parse(&p, pbuf, sizeof(pbuf), frame, len);
            assert_int_equal(strtoul(iotp_frame_arg(fr, "value"), NULL, 10), seq);
            assert_int_equal(iotp_outbox_mark_sent(&ob, seq), 0);
            i++;
        }
        assert_true(i <= npend);
        for (unsigned j = 0; j < npend; j++)
            assert_int_equal(iotp_outbox_get(&ob, pend[j], &frame, &len), 0);
        assert_int_equal(iotp_outbox_in_flight(&ob), npend);
        wrapped_rounds += ob.wrapped;
    }
    assert_true(wrapped_rounds > 100);
}

/* The device's non-volatile memory, as the port would keep it. */
struct nvm {
    uint32_t high_water;
    unsigned writes;
};

/* What a device's main loop does before every push. */
static void persist_if_needed(struct iotp_outbox *ob, struct nvm *nvm)
{
    uint32_t hw;

    if (iotp_outbox_reserve_needed(ob, &hw)) {
        nvm->high_water = hw; /* written and flushed before the outbox may use it */
        nvm->writes++;
        iotp_outbox_reserved(ob, hw);
    }
}

static void seq_reservation_across_reboot(void **state)
{
    uint8_t storage[1024];
    struct iotp_outbox ob;
    struct nvm nvm = {0, 0};
    uint32_t seq, hw, last = 0;

    (void)state;
    /* No reservation yet: no number may be handed out. */
    assert_int_equal(iotp_outbox_init(&ob, storage, sizeof(storage), 0, 16), 0);
    assert_int_equal(iotp_outbox_push(&ob, IOTP_EVENT, DEV, "t", 0, NULL, &seq), IOTP_ESTATE);

    /* First life: 40 events, acknowledged at once. A new mark is persisted once less than half
     * a block is left, so 16-blocks cost a write every 8 events. */
    for (int i = 0; i < 40; i++) {
        persist_if_needed(&ob, &nvm);
        assert_int_equal(iotp_outbox_push(&ob, IOTP_EVENT, DEV, "t", 0, NULL, &seq), 0);
        assert_true(seq > last);
        assert_true(seq <= nvm.high_water); /* never beyond what is durable */
        last = seq;
        assert_int_equal(iotp_outbox_on_ack(&ob, seq), 0);
    }
    assert_int_equal(last, 40);
    assert_true(nvm.writes >= 4 && nvm.writes <= 6);
    assert_true(nvm.high_water >= 40 && nvm.high_water <= 40 + 16);

    /* Reboot: RAM is gone, the mark survived. Numbering resumes above it. */
    assert_int_equal(iotp_outbox_init(&ob, storage, sizeof(storage), nvm.high_water, 16), 0);
    assert_int_equal(iotp_outbox_last_seq(&ob), nvm.high_water);
    persist_if_needed(&ob, &nvm);
    assert_int_equal(iotp_outbox_push(&ob, IOTP_EVENT, DEV, "t", 0, NULL, &seq), 0);
    assert_true(seq > last);
    assert_true(seq - last <= 16 + 1); /* at most a block skipped */

    /* A mark lower than the current one is ignored. */
    iotp_outbox_reserved(&ob, 1);
    assert_int_equal(iotp_outbox_push(&ob, IOTP_EVENT, DEV, "t", 0, NULL, &seq), 0);

    /* Without a new reservation the block runs out. */
    assert_int_equal(iotp_outbox_init(&ob, storage, sizeof(storage), 100, 4), 0);
    assert_int_equal(iotp_outbox_reserve_needed(&ob, &hw), 1);
    assert_int_equal(hw, 104);
    iotp_outbox_reserved(&ob, hw);
    for (int i = 0; i < 4; i++)
        assert_int_equal(iotp_outbox_push(&ob, IOTP_EVENT, DEV, "t", 0, NULL, &seq), 0);
    assert_int_equal(seq, 104);
    assert_int_equal(iotp_outbox_push(&ob, IOTP_EVENT, DEV, "t", 0, NULL, &seq), IOTP_ESTATE);

    /* The end of the number space: the last seq is 4294967295, then nothing. */
    assert_int_equal(iotp_outbox_init(&ob, storage, sizeof(storage), UINT32_MAX - 2, 0), 0);
    assert_int_equal(iotp_outbox_reserve_needed(&ob, &hw), 1);
    assert_int_equal(hw, UINT32_MAX);
    iotp_outbox_reserved(&ob, hw);
    assert_int_equal(iotp_outbox_reserve_needed(&ob, &hw), 0);
    assert_int_equal(iotp_outbox_push(&ob, IOTP_EVENT, DEV, "t", 0, NULL, &seq), 0);
    assert_int_equal(iotp_outbox_push(&ob, IOTP_EVENT, DEV, "t", 0, NULL, &seq), 0);
    assert_int_equal(seq, UINT32_MAX);
    assert_int_equal(iotp_outbox_push(&ob, IOTP_EVENT, DEV, "t", 0, NULL, &seq), IOTP_ESTATE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(push_and_ack),
        cmocka_unit_test(frames_parse_back),
        cmocka_unit_test(push_refuses_bad_fields),
        cmocka_unit_test(out_of_order_ack),
        cmocka_unit_test(permanent_error_drops),
        cmocka_unit_test(busy_rewinds_and_pauses),
        cmocka_unit_test(session_reset_resends_in_order),
        cmocka_unit_test(full_ring_refuses),
        cmocka_unit_test(wrap_around),
        cmocka_unit_test(wrap_around_random_acks),
        cmocka_unit_test(seq_reservation_across_reboot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
