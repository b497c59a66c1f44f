/*
 * hub_fixture.c - a hub on its own loop with a registry built in memory and fake sessions
 * (see hub_fixture.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "hub_fixture.h"

#include "iot_error.h"
#include "registry_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ACME = 1, BETA = 2 };
enum { THERMO = 10, BTHERMO = 12 };
enum { ALICE = 1, DAVE = 2 };

/* ---- the fake session layer ---- */

static struct fake_sessions *fake_of(sessions_t *s)
{
    return (struct fake_sessions *)(void *)s;
}

static void fake_ack(sessions_t *s, struct event *const *events, size_t n)
{
    (void)events;
    fake_of(s)->acked += n;
}

static int fake_deliver(sessions_t *s, unsigned io, struct event *item,
                        const struct session_target *targets, size_t n)
{
    struct fake_sessions *fake = fake_of(s);
    assert_true(io < FAKE_IO);
    if (io == fake->full_io)
        return IOT_EBUSY;
    fake->delivered[io] += n;
    for (size_t i = 0; i < n && fake->ndelivered_to < FAKE_MAX; i++) {
        snprintf(fake->delivered_what[fake->ndelivered_to], sizeof(fake->delivered_what[0]),
                 "%s:%s:%s", event_kind_name(item->kind), item->device,
                 item->nfields ? event_field_at(item, 0) : "");
        fake->delivered_to[fake->ndelivered_to++] = targets[i].serial;
    }
    return IOT_OK;
}

static void fake_reply(sessions_t *s, unsigned io, uint32_t slot, uint64_t serial, uint32_t id,
                       const char *code, const char *key, const char *value)
{
    struct fake_sessions *fake = fake_of(s);
    (void)io, (void)slot, (void)id;
    assert_true(fake->nreplies < FAKE_MAX);
    struct fake_reply *r = &fake->replies[fake->nreplies++];
    r->serial = serial;
    snprintf(r->code, sizeof(r->code), "%s", code ? code : "ok");
    snprintf(r->key, sizeof(r->key), "%s", key ? key : "");
    snprintf(r->value, sizeof(r->value), "%s", value ? value : "");
}

/* The relay as the hub sees it: the request is on its way and its answer comes back through
 * the origin's inbox, or it is refused and the hub keeps the request. */
static enum relay_outcome fake_relay(sessions_t *s, int current, struct relay_request *req)
{
    struct fake_sessions *fake = fake_of(s);
    assert_int_equal(current, -1); /* the hub is on the main loop, not an io thread */
    assert_true(fake->ncommands < FAKE_MAX);
    snprintf(fake->commands[fake->ncommands++], sizeof(fake->commands[0]), "%s %s", req->type,
             req->device);
    if (fake->relay_outcome != RELAY_OK)
        return fake->relay_outcome;
    struct relay_answer *a = relay_answer_new(&req->origin, RELAY_OK, req->device, "", 0, NULL);
    assert_non_null(a);
    assert_int_equal(inbox_push(req->origin.inbox, &a->msg), IOT_OK);
    free(req);
    return RELAY_OK;
}

/* ---- the registry ---- */

static void add_message(registry_snapshot_t *s, uint32_t id, uint32_t type, const char *name,
                        enum reg_direction dir, const char *start, const char *stop)
{
    struct reg_message m = {.id = id,
                            .type_id = type,
                            .name = name,
                            .direction = dir,
                            .args = "",
                            .timeout_ms = 5000,
                            .start_message = start,
                            .stop_message = stop};
    assert_int_equal(snapshot_add_message(s, &m), IOT_OK);
}

static void add_device(registry_snapshot_t *s, const char *id, uint32_t tenant, uint32_t type)
{
    struct reg_device d = {.id = id,
                           .tenant_id = tenant,
                           .type_id = type,
                           .enabled = true,
                           .sealed_len = REG_SEALED_LEN};
    memset(d.sealed, 0xAB, sizeof(d.sealed));
    assert_int_equal(snapshot_add_device(s, &d), IOT_OK);
}

static void add_user(registry_snapshot_t *s, uint32_t id, const char *name)
{
    struct reg_user u = {.id = id,
                         .tenant_id = ACME,
                         .name = name,
                         .role = REG_ROLE_VIEWER,
                         .password_hash = "$argon2id$v=19$m=65536,t=3,p=1$c2FsdA$aGFzaA"};
    assert_int_equal(snapshot_add_user(s, &u), IOT_OK);
}

static void add_user_rule(registry_snapshot_t *s, long long id, uint32_t user,
                          const char *target_device, const char *message)
{
    struct reg_rule r = {.id = id,
                         .tenant_id = ACME,
                         .message = message,
                         .created_by = "test",
                         .subject_kind = REG_SUBJECT_USER,
                         .subject_id = user,
                         .target_kind = target_device ? REG_TARGET_DEVICE : REG_TARGET_ANY,
                         .target_device_id = target_device};
    assert_int_equal(snapshot_add_rule(s, &r), IOT_OK);
}

static registry_snapshot_t *build(void)
{
    registry_snapshot_t *s = snapshot_builder_new();
    assert_non_null(s);
    struct reg_tenant acme = {.id = ACME, .name = "acme"}, beta = {.id = BETA, .name = "beta"};
    assert_int_equal(snapshot_add_tenant(s, &acme), IOT_OK);
    assert_int_equal(snapshot_add_tenant(s, &beta), IOT_OK);
    struct reg_type thermo = {.id = THERMO, .tenant_id = ACME, .name = "thermo"};
    struct reg_type bthermo = {.id = BTHERMO, .tenant_id = BETA, .name = "bthermo"};
    assert_int_equal(snapshot_add_type(s, &thermo), IOT_OK);
    assert_int_equal(snapshot_add_type(s, &bthermo), IOT_OK);
    add_message(s, 1, THERMO, "temp_changed", REG_DIR_EVENT, "start_temp", "stop_temp");
    add_message(s, 2, THERMO, "humidity", REG_DIR_EVENT, NULL, NULL);
    add_message(s, 3, THERMO, "start_temp", REG_DIR_COMMAND, NULL, NULL);
    add_message(s, 4, THERMO, "stop_temp", REG_DIR_COMMAND, NULL, NULL);
    add_message(s, 5, BTHERMO, "temp_changed", REG_DIR_EVENT, NULL, NULL);
    add_device(s, "t1", ACME, THERMO);
    add_device(s, "t2", ACME, THERMO);
    add_device(s, "b1", BETA, BTHERMO);
    add_user(s, ALICE, "alice");
    add_user(s, DAVE, "dave");
    add_user_rule(s, 1, ALICE, "t1", "temp_changed");
    add_user_rule(s, 2, DAVE, NULL, "humidity");
    char err[200] = "";
    if (snapshot_finish(s, err, sizeof(err)) != IOT_OK)
        fail_msg("snapshot_finish: %s", err);
    return s;
}

/* ---- the fixture ---- */

int hub_fixture_setup(void **state)
{
    struct hub_fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->fake.full_io = FAKE_IO;
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(inbox_init(&f->inbox, &f->loop, 256, NULL), IOT_OK);
    assert_int_equal(registry_new(&f->registry), IOT_OK);
    registry_publish(f->registry, build());
    assert_int_equal(presence_new(&f->presence), IOT_OK);
    struct hub_deps deps = {.loop = &f->loop,
                            .inbox = &f->inbox,
                            .registry = f->registry,
                            .presence = f->presence,
                            .port = {fake_ack, fake_deliver, fake_reply, fake_relay}};
    struct hub_options opts = {.lease_max_s = 600};
    assert_int_equal(hub_start(&f->hub, &deps, &opts), IOT_OK);
    hub_set_sessions(f->hub, (sessions_t *)(void *)&f->fake);
    *state = f;
    return 0;
}

int hub_fixture_teardown(void **state)
{
    struct hub_fixture *f = *state;
    hub_fixture_run(f); /* answers still queued give their references back */
    hub_stop(f->hub);
    inbox_close(&f->inbox, NULL);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    hub_free(f->hub);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    presence_free(f->presence);
    registry_free(f->registry);
    free(f);
    return 0;
}

void hub_fixture_run(struct hub_fixture *f)
{
    for (int i = 0; i < 4; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
}

void hub_fixture_request(struct hub_fixture *f, const struct session_sub_request *r)
{
    struct session_event_hooks hooks = hub_session_hooks(f->hub);
    hooks.request(hooks.arg, r);
    hub_fixture_run(f);
}

struct event *hub_fixture_event(const char *tenant, const char *device, const char *type,
                                const char *name, uint32_t seq)
{
    const char *fields[] = {"value=21.5"};
    struct event *ev = event_new(EVENT_KIND_EVENT, tenant, device, type, name, seq, 0, 1, fields);
    assert_non_null(ev);
    return ev;
}
