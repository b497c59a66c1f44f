/*
 * test_handlers.c - iotsim's message table: `ping` is answered `OK <id> pong` to the sender,
 * an unknown type `ERROR <id> code=unknown_type`, and the answers parse back as frames.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sim_handlers.h"

/* Answer a request frame and parse the answer back. */
static const struct iotp_frame *answer(const char *type, uint32_t id, struct iotp_parser *p,
                                       uint8_t *pbuf)
{
    const struct iotp_frame *f = NULL;
    struct iotp_frame req;
    uint8_t out[IOTP_MAX_FRAME];
    size_t used;
    int n;

    memset(&req, 0, sizeof(req));
    req.from = "alice@acme";
    req.to = "dev1";
    req.type = type;
    req.id = id;
    n = sim_handle_request("dev1", &req, out, sizeof(out));
    assert_true(n > 0);
    assert_int_equal(iotp_parser_init(p, pbuf, IOTP_MAX_FRAME, 0, 0), 0);
    assert_int_equal(iotp_parser_feed(p, out, (size_t)n, &used, &f, NULL), 1);
    assert_int_equal(used, (size_t)n);
    return f;
}

static void ping_is_answered(void **state)
{
    static uint8_t pbuf[IOTP_MAX_FRAME];
    struct iotp_parser p;
    const struct iotp_frame *f = answer("ping", 913, &p, pbuf);

    (void)state;
    assert_string_equal(f->from, "dev1");
    assert_string_equal(f->to, "alice@acme");
    assert_string_equal(f->type, "OK");
    assert_int_equal(f->id, 913);
    assert_int_equal(f->nargs, 1);
    assert_string_equal(f->args[0], "pong");
    assert_non_null(sim_handler_find("ping"));
}

static void unknown_type_is_an_error(void **state)
{
    static uint8_t pbuf[IOTP_MAX_FRAME];
    struct iotp_parser p;
    const struct iotp_frame *f = answer("frobnicate", 6, &p, pbuf);

    (void)state;
    assert_string_equal(f->type, "ERROR");
    assert_int_equal(f->id, 6);
    assert_string_equal(f->to, "alice@acme");
    assert_string_equal(iotp_frame_arg(f, "code"), "unknown_type");
    assert_null(sim_handler_find("frobnicate"));
}

static void answer_args(void **state)
{
    struct sim_answer a;

    (void)state;
    memset(&a, 0, sizeof(a));
    sim_answer_addf(&a, "%.1f", 21.5);
    sim_answer_addf(&a, "%s", "C");
    assert_int_equal(a.nargs, 2);
    assert_string_equal(a.args[0], "21.5");
    assert_string_equal(a.args[1], "C");
    for (int i = 0; i < 20; i++)
        sim_answer_addf(&a, "%d", i);
    assert_int_equal(a.nargs, SIM_ANSWER_MAX_ARGS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ping_is_answered),
        cmocka_unit_test(unknown_type_is_an_error),
        cmocka_unit_test(answer_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
