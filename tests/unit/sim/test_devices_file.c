/*
 * test_devices_file.c - loading iotsim's device list: JSON lines, concatenated pretty-printed
 * objects (iotctl --json output appended), an array, {"devices": [...]}, atecc508a entries,
 * and the errors: bad secret length, non-hex secret, missing id or secret, bad auth, missing
 * serial, bad JSON, duplicates, no type; -n and --type; reading a file from disk.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "sim_devices_file.h"

#define SECRET_A "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define SECRET_B "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"

static int parse(struct sim_device_list *list, const char *text, char *err, size_t errlen)
{
    return sim_devices_parse(list, text, strlen(text), "test", err, errlen);
}

static void json_lines(void **state)
{
    struct sim_device_list list = {0};
    char err[256];
    const char *text =
        "{\"id\":\"dev1\",\"tenant\":\"acme\",\"type\":\"thermo\",\"secret\":\"" SECRET_A "\"}\n"
        "\n"
        "{\"id\":\"dev2\",\"type\":\"lamp\",\"secret\":\"" SECRET_B "\"}\n";

    (void)state;
    assert_int_equal(parse(&list, text, err, sizeof(err)), 0);
    assert_int_equal(list.count, 2);
    assert_string_equal(list.entries[0].id, "dev1");
    assert_string_equal(list.entries[0].type, "thermo");
    assert_int_equal(list.entries[0].alg, IOTP_ALG_HMAC_SHA256);
    assert_int_equal(list.entries[0].key[0], 0x00);
    assert_int_equal(list.entries[0].key[31], 0x1f);
    assert_string_equal(list.entries[1].id, "dev2");
    assert_int_equal(list.entries[1].key[0], 0xff);
    assert_int_equal(sim_devices_finish(&list, 0, NULL, err, sizeof(err)), 0);
    sim_devices_free(&list);
    assert_int_equal(list.count, 0);
}

static void pretty_concatenated(void **state)
{
    struct sim_device_list list = {0};
    char err[256];
    const char *text =
        "{\n\t\"id\":\t\"dev1\",\n\t\"type\":\t\"thermo\",\n\t\"secret\":\t\"" SECRET_A
        "\"\n}\n{\n\t\"id\":\t\"dev2\",\n\t\"type\":\t\"thermo\",\n\t\"secret\":\t\"" SECRET_B
        "\"\n}\n";

    (void)state;
    assert_int_equal(parse(&list, text, err, sizeof(err)), 0);
    assert_int_equal(list.count, 2);
    assert_string_equal(list.entries[1].id, "dev2");
    sim_devices_free(&list);
}

static void array_and_devices_object(void **state)
{
    struct sim_device_list list = {0};
    char err[256];

    (void)state;
    assert_int_equal(parse(&list,
                           "[{\"id\":\"a\",\"type\":\"t\",\"secret\":\"" SECRET_A "\"},"
                           " {\"id\":\"b\",\"type\":\"t\",\"secret\":\"" SECRET_B "\"}]",
                           err, sizeof(err)),
                     0);
    assert_int_equal(list.count, 2);
    assert_int_equal(parse(&list,
                           "{\"devices\":[{\"id\":\"c\",\"secret\":\"" SECRET_A
                           "\",\"type\":\"t\"}], \"count\": 1}",
                           err, sizeof(err)),
                     0);
    assert_int_equal(list.count, 3);
    assert_string_equal(list.entries[2].id, "c");
    sim_devices_free(&list);
}

static void atecc_entry(void **state)
{
    struct sim_device_list list = {0};
    char err[256];

    (void)state;
    assert_int_equal(parse(&list,
                           "{\"id\":\"chip1\",\"type\":\"t\",\"auth\":\"atecc508a\",\"serial\":"
                           "\"0123a1b2c3d4e5f6ee\",\"secret\":\"" SECRET_A "\"}",
                           err, sizeof(err)),
                     0);
    assert_int_equal(list.entries[0].alg, IOTP_ALG_ATECC508A_MAC);
    assert_int_equal(list.entries[0].serial[0], 0x01);
    assert_int_equal(list.entries[0].serial[8], 0xee);
    /* atecc508a without a serial cannot answer the MAC the server expects. */
    assert_int_equal(
        parse(&list,
              "{\"id\":\"chip2\",\"type\":\"t\",\"auth\":\"atecc508a\",\"secret\":\"" SECRET_A
              "\"}",
              err, sizeof(err)),
        -1);
    assert_non_null(strstr(err, "serial"));
    assert_int_equal(
        parse(&list, "{\"id\":\"x\",\"type\":\"t\",\"auth\":\"rsa\",\"secret\":\"" SECRET_A "\"}",
              err, sizeof(err)),
        -1);
    assert_non_null(strstr(err, "auth"));
    sim_devices_free(&list);
}

static void bad_entries(void **state)
{
    struct sim_device_list list = {0};
    char err[256];

    (void)state;
    /* A secret one digit short: the error names the file and line. */
    assert_int_equal(parse(&list,
                           "{\"id\":\"ok\",\"type\":\"t\",\"secret\":\"" SECRET_A "\"}\n"
                           "{\"id\":\"short\",\"type\":\"t\",\"secret\":\"0011\"}\n",
                           err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "test:2"));
    assert_non_null(strstr(err, "64 hex"));
    assert_int_equal(list.count, 1); /* what came before the bad line is kept */
    /* Right length, not hex. */
    assert_int_equal(parse(&list,
                           "{\"id\":\"x\",\"secret\":\"zz0102030405060708090a0b0c0d0e0f101112131415"
                           "161718191a1b1c1d1e1f\"}",
                           err, sizeof(err)),
                     -1);
    assert_int_equal(parse(&list, "{\"type\":\"t\",\"secret\":\"" SECRET_A "\"}", err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "id"));
    assert_int_equal(parse(&list, "{\"id\":\"nosecret\",\"type\":\"t\"}", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "secret"));
    assert_int_equal(parse(&list, "{\"id\":\"\",\"secret\":\"" SECRET_A "\"}", err, sizeof(err)),
                     -1);
    assert_int_equal(
        parse(&list, "{\"id\":\"a\x01\",\"secret\":\"" SECRET_A "\"}", err, sizeof(err)), -1);
    assert_int_equal(parse(&list, "{\"id\":\"x\",", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "JSON"));
    assert_int_equal(parse(&list, "[1, 2]", err, sizeof(err)), -1);
    assert_int_equal(list.count, 1);
    sim_devices_free(&list);
}

static void finish_limit_type_duplicates(void **state)
{
    struct sim_device_list list = {0};
    char err[256];
    const char *three = "{\"id\":\"a\",\"secret\":\"" SECRET_A "\",\"type\":\"t\"}\n"
                        "{\"id\":\"b\",\"secret\":\"" SECRET_A "\"}\n"
                        "{\"id\":\"c\",\"secret\":\"" SECRET_A "\"}\n";

    (void)state;
    /* -n 1 keeps only "a", which has a type. */
    assert_int_equal(parse(&list, three, err, sizeof(err)), 0);
    assert_int_equal(sim_devices_finish(&list, 1, NULL, err, sizeof(err)), 0);
    assert_int_equal(list.count, 1);
    assert_string_equal(list.entries[0].id, "a");
    sim_devices_free(&list);

    /* All three: b has no type and there is no --type. */
    assert_int_equal(parse(&list, three, err, sizeof(err)), 0);
    assert_int_equal(sim_devices_finish(&list, 0, NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "--type"));
    sim_devices_free(&list);

    /* --type fills (and overrides) every type; -n larger than the list keeps all. */
    assert_int_equal(parse(&list, three, err, sizeof(err)), 0);
    assert_int_equal(sim_devices_finish(&list, 10, "lamp", err, sizeof(err)), 0);
    assert_int_equal(list.count, 3);
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(list.entries[i].type, "lamp");
    sim_devices_free(&list);

    /* The same id twice would make two connections replace each other forever. */
    assert_int_equal(parse(&list, three, err, sizeof(err)), 0);
    assert_int_equal(parse(&list, "{\"id\":\"b\",\"secret\":\"" SECRET_B "\"}", err, sizeof(err)),
                     0);
    assert_int_equal(sim_devices_finish(&list, 0, "t", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "twice"));
    sim_devices_free(&list);

    assert_int_equal(sim_devices_finish(&list, 0, "t", err, sizeof(err)), -1); /* empty */
}

static void load_from_file(void **state)
{
    struct sim_device_list list = {0};
    char path[] = "/tmp/test_sim_devicesXXXXXX";
    char err[256];
    int fd = mkstemp(path);
    FILE *fp;

    (void)state;
    assert_true(fd >= 0);
    fp = fdopen(fd, "w");
    assert_non_null(fp);
    for (int i = 0; i < 1000; i++)
        fprintf(fp, "{\"id\":\"dev%d\",\"type\":\"t\",\"secret\":\"%s\"}\n", i, SECRET_A);
    fclose(fp);
    assert_int_equal(sim_devices_load_file(&list, path, err, sizeof(err)), 0);
    assert_int_equal(list.count, 1000);
    assert_int_equal(sim_devices_finish(&list, 250, NULL, err, sizeof(err)), 0);
    assert_int_equal(list.count, 250);
    assert_string_equal(list.entries[249].id, "dev249");
    sim_devices_free(&list);
    unlink(path);
    assert_int_equal(sim_devices_load_file(&list, path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, path));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_lines),
        cmocka_unit_test(pretty_concatenated),
        cmocka_unit_test(array_and_devices_object),
        cmocka_unit_test(atecc_entry),
        cmocka_unit_test(bad_entries),
        cmocka_unit_test(finish_limit_type_duplicates),
        cmocka_unit_test(load_from_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
