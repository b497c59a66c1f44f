/*
 * test_dispatch.c - the executor table (control_commands.c) and control_route.
 *
 * The table test walks every command of common/ctl_commands.h: it must have an executor whose
 * kind matches where it runs, a stream command must run as a stream and a change on a db thread
 * through the registry, and exactly one executor module may claim it: the registry's queries,
 * its administrative commands, the events commands, or (claimed by none of those) the control
 * server's own function named in the table. The routing tests feed request lines to
 * control_route with a fake table and check the error replies and the executor chosen.
 */
#include "control/control_dispatch.h"
#include "control/control_events.h"
#include "ctl_commands.h"
#include "iot_error.h"
#include "registry/admin.h"
#include "registry/registry.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static void test_every_command_has_one_executor(void **state)
{
    (void)state;
    for (int id = 0; id < CTL_COMMAND_COUNT; id++) {
        const struct ctl_command *cmd = &ctl_commands[id];
        const struct control_executor *e = &control_executors[id];
        assert_int_equal(cmd->id, id);
        print_message("%s\n", cmd->name);

        /* Where it runs, and only the function of that kind. */
        switch (e->where) {
        case CONTROL_ON_LOOP:
            assert_non_null(e->answer);
            assert_null(e->start);
            assert_null(e->run);
            break;
        case CONTROL_STREAM:
            assert_non_null(e->start);
            assert_null(e->answer);
            assert_null(e->run);
            break;
        case CONTROL_ON_DB:
            assert_non_null(e->run);
            assert_null(e->answer);
            assert_null(e->start);
            break;
        default:
            fail_msg("%s has no executor", cmd->name);
        }
        if (e->after)
            assert_int_equal(e->where, CONTROL_ON_DB);
        /* A change that ends sessions names them by a required positional parameter of its
         * command (the device id or user@tenant), and says why in BYE's reason. */
        if (e->ends) {
            bool found = false;
            assert_int_equal(e->where, CONTROL_ON_DB);
            assert_true(cmd->flags & CTL_MUTATES);
            assert_non_null(e->ends_reason);
            for (size_t i = 0; i < ctl_command_param_count(cmd); i++)
                found |= strcmp(cmd->params[i].key, e->ends) == 0 && cmd->params[i].required &&
                         !cmd->params[i].flag;
            assert_true(found);
        }

        /* The command's flags agree. */
        assert_int_equal(!!(cmd->flags & CTL_STREAM), e->where == CONTROL_STREAM);
        if (cmd->flags & CTL_MUTATES)
            assert_ptr_equal(e->run, control_run_admin);

        /* Exactly one executor: the module the table routes to claims it, no other does. */
        bool query = registry_answers(cmd), admin = admin_handles(cmd),
             events = control_events_handles(cmd);
        assert_true(query + admin + events <= 1);
        assert_int_equal(query, e->answer == control_registry_query);
        assert_int_equal(admin, e->run == control_run_admin);
        assert_int_equal(events, e->run == control_run_events);
        assert_int_equal(events, e->after == control_after_events);
    }
}

/* ---- routing, with fake executors ---- */

static const struct ctl_command *answered, *started, *ran;

static void fake_answer(struct control_conn *conn, uint32_t id, const struct ctl_command *cmd,
                        const cJSON *args)
{
    (void)conn, (void)id, (void)args;
    answered = cmd;
}

static void fake_start(struct control_conn *conn, uint32_t id, const struct ctl_command *cmd,
                       cJSON *args)
{
    (void)conn, (void)id;
    started = cmd;
    cJSON_Delete(args);
}

static int fake_run(MYSQL *db, const struct control_call *call, cJSON **result, char *err,
                    size_t errlen)
{
    (void)db, (void)result, (void)err, (void)errlen;
    ran = call->cmd;
    return IOT_OK;
}

static const struct control_executor fakes[CTL_COMMAND_COUNT] = {
    [CTL_TENANT_LIST] = {.where = CONTROL_ON_LOOP, .answer = fake_answer},
    [CTL_STATS] = {.where = CONTROL_STREAM, .start = fake_start},
    [CTL_TENANT_ADD] = {.where = CONTROL_ON_DB, .run = fake_run},
};

/* Route line through the fakes; on failure check the reply's id, code and message. */
static int route(const char *line, struct control_route *out, uint32_t want_id,
                 const char *want_code, const char *want_message)
{
    cJSON *reply = NULL;
    int rc = control_route(line, strlen(line), fakes, out, &reply);
    if (rc == IOT_OK) {
        assert_null(reply);
        assert_non_null(out->executor);
        return rc;
    }
    assert_null(out->executor);
    assert_null(out->args);
    assert_non_null(reply);
    const cJSON *error = cJSON_GetObjectItemCaseSensitive(reply, "error");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(reply, "id")->valuedouble, want_id);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(reply, "ok")));
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(error, "code")->valuestring, want_code);
    if (want_message)
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(error, "message")->valuestring,
                            want_message);
    cJSON_Delete(reply);
    return rc;
}

static void test_unknown_command(void **state)
{
    struct control_route r;
    (void)state;
    assert_int_equal(route("{\"id\":7,\"cmd\":\"tenant.frobnicate\"}", &r, 7,
                           iot_error_name(IOT_EPROTO), "unknown command 'tenant.frobnicate'"),
                     IOT_EPROTO);
    assert_int_equal(route("{\"id\":8}", &r, 8, iot_error_name(IOT_EPROTO), "unknown command ''"),
                     IOT_EPROTO);
}

/* What the server echoes of a request is escaped, and a request that a parser would cut (an
 * escaped NUL) or that is not UTF-8 is refused before it is parsed. */
static void test_hostile_requests(void **state)
{
    struct control_route r;
    (void)state;
    assert_int_equal(route("{\"id\":9,\"cmd\":\"x\\u001b[31m\"}", &r, 9, iot_error_name(IOT_EPROTO),
                           "unknown command 'x\\x1b[31m'"),
                     IOT_EPROTO);
    assert_int_equal(route("{\"id\":1,\"cmd\":\"tenant.add\",\"args\":{\"name\":\"a\\u0000b\"}}",
                           &r, 0, iot_error_name(IOT_EINVAL), NULL),
                     IOT_EINVAL);
    assert_int_equal(route("{\"id\":1,\"cmd\":\"tenant.add\",\"args\":{\"name\":\"a\xff\"}}", &r, 0,
                           iot_error_name(IOT_EINVAL), NULL),
                     IOT_EINVAL);
}

static void test_malformed_requests(void **state)
{
    struct control_route r;
    (void)state;
    assert_int_equal(
        route("not json", &r, 0, iot_error_name(IOT_EPROTO), "request is not a JSON object"),
        IOT_EPROTO);
    assert_int_equal(route("[1,2]", &r, 0, iot_error_name(IOT_EPROTO), NULL), IOT_EPROTO);
    assert_int_equal(route("{\"id\":-1,\"cmd\":\"status\"}", &r, 0, iot_error_name(IOT_EPROTO),
                           "\"id\" must be an integer from 0 to 4294967295"),
                     IOT_EPROTO);
    assert_int_equal(
        route("{\"id\":1.5,\"cmd\":\"status\"}", &r, 0, iot_error_name(IOT_EPROTO), NULL),
        IOT_EPROTO);
}

static void test_bad_args(void **state)
{
    struct control_route r;
    (void)state;
    /* tenant.add needs its name; tenant.list takes no "colour". */
    assert_int_equal(route("{\"id\":3,\"cmd\":\"tenant.add\",\"args\":{}}", &r, 3,
                           iot_error_name(IOT_EINVAL), NULL),
                     IOT_EINVAL);
    assert_int_equal(route("{\"id\":4,\"cmd\":\"tenant.list\",\"args\":{\"colour\":\"red\"}}", &r,
                           4, iot_error_name(IOT_EINVAL), NULL),
                     IOT_EINVAL);
}

static void test_command_without_executor(void **state)
{
    struct control_route r;
    (void)state;
    assert_int_equal(route("{\"id\":5,\"cmd\":\"tenant.show\",\"args\":{\"name\":\"acme\"}}", &r, 5,
                           iot_error_name(IOT_EINVAL), "tenant.show has no executor in this iotd"),
                     IOT_EINVAL);
}

static void test_routed_to_its_executor(void **state)
{
    struct control_route r;
    (void)state;
    answered = started = ran = NULL;

    assert_int_equal(route("{\"id\":11,\"cmd\":\"tenant.list\"}", &r, 0, NULL, NULL), IOT_OK);
    assert_int_equal(r.id, 11);
    assert_int_equal(r.cmd->id, CTL_TENANT_LIST);
    assert_ptr_equal(r.executor, &fakes[CTL_TENANT_LIST]);
    assert_true(cJSON_IsObject(r.args)); /* absent args are an empty object */
    r.executor->answer(NULL, r.id, r.cmd, r.args);
    assert_ptr_equal(answered, r.cmd);
    cJSON_Delete(r.args);

    assert_int_equal(
        route("{\"id\":12,\"cmd\":\"stats\",\"args\":{\"count\":2}}", &r, 0, NULL, NULL), IOT_OK);
    assert_ptr_equal(r.executor, &fakes[CTL_STATS]);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(r.args, "count")->valuedouble, 2);
    r.executor->start(NULL, r.id, r.cmd, r.args); /* takes the args */
    assert_ptr_equal(started, &ctl_commands[CTL_STATS]);

    assert_int_equal(
        route("{\"id\":13,\"cmd\":\"tenant.add\",\"args\":{\"name\":\"acme\"}}", &r, 0, NULL, NULL),
        IOT_OK);
    assert_ptr_equal(r.executor, &fakes[CTL_TENANT_ADD]);
    struct control_call call = {.cmd = r.cmd, .args = r.args};
    cJSON *result = NULL;
    char err[64];
    assert_int_equal(r.executor->run(NULL, &call, &result, err, sizeof(err)), IOT_OK);
    assert_ptr_equal(ran, &ctl_commands[CTL_TENANT_ADD]);
    cJSON_Delete(r.args);
}

/* The daemon's own table sends each kind of command where the table says. */
static void test_real_table_routes(void **state)
{
    static const struct {
        const char *line;
        enum control_where where;
    } cases[] = {
        {"{\"id\":1,\"cmd\":\"status\"}", CONTROL_ON_LOOP},
        {"{\"id\":2,\"cmd\":\"tenant.list\"}", CONTROL_ON_LOOP},
        {"{\"id\":3,\"cmd\":\"tenant.add\",\"args\":{\"name\":\"acme\"}}", CONTROL_ON_DB},
        {"{\"id\":4,\"cmd\":\"watch\"}", CONTROL_STREAM},
        {"{\"id\":5,\"cmd\":\"alarm.list\",\"args\":{\"tenant\":\"acme\"}}", CONTROL_ON_DB},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct control_route r;
        cJSON *reply = NULL;
        assert_int_equal(
            control_route(cases[i].line, strlen(cases[i].line), control_executors, &r, &reply),
            IOT_OK);
        assert_int_equal(r.executor->where, cases[i].where);
        assert_ptr_equal(r.executor, &control_executors[r.cmd->id]);
        cJSON_Delete(r.args);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_command_has_one_executor),
        cmocka_unit_test(test_unknown_command),
        cmocka_unit_test(test_hostile_requests),
        cmocka_unit_test(test_malformed_requests),
        cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_command_without_executor),
        cmocka_unit_test(test_routed_to_its_executor),
        cmocka_unit_test(test_real_table_routes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
