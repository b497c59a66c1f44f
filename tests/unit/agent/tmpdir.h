/*
 * tmpdir.h - a temporary directory per test binary of tests/unit/agent, made by the group
 * setup and removed with its contents by the group teardown.
 */
#ifndef AGENT_TEST_TMPDIR_H
#define AGENT_TEST_TMPDIR_H

#include <stdio.h>
#include <stdlib.h>

static char tmp_dir[] = "/tmp/iotdev-test.XXXXXX";

static int tmpdir_make(void)
{
    return mkdtemp(tmp_dir) ? 0 : -1;
}

static int tmpdir_remove(void **state)
{
    char cmd[64];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp_dir);
    return system(cmd);
}

#endif
