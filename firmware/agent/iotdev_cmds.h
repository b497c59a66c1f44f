/*
 * iotdev_cmds.h - iotdev's requests run as programs: a request of type T with args A... runs
 * COMMANDS_DIR/T A... (stdin /dev/null; IOTDEV_ID and IOTDEV_FROM in its environment). Its
 * stdout is the answer: several lines are one field each (empty ones skipped), a single line is
 * split at spaces. A non-zero exit (or a signal) is `ERROR code=failed msg=<stderr's first
 * line>`, a program still running after the timeout is killed and answered `ERROR code=timeout`.
 */
#ifndef IOTDEV_CMDS_H
#define IOTDEV_CMDS_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "iotp/iotp.h"

#define IOTDEV_CMDS_MAX 8    /* programs running at once; more requests are answered busy */
#define IOTDEV_CMD_OUT  1024 /* stdout kept (more is an error: an answer is one frame) */
#define IOTDEV_CMD_ERR  256  /* stderr kept (its first line is the msg) */

struct iotdev_cmd {
    pid_t pid; /* 0: slot free */
    int out_fd, err_fd;
    char from[IOTP_MAX_ADDRESS_LEN + 1];
    uint32_t id;
    uint64_t deadline_ms;
    int killed;
    char out[IOTDEV_CMD_OUT + 1];
    size_t out_len;
    char err[IOTDEV_CMD_ERR + 1];
    size_t err_len;
    int overflow;
};

struct iotdev_cmds {
    char dir[4096];
    char device_id[64];
    unsigned timeout_s;
    struct iotp_clock clock;
    struct iotdev_cmd slot[IOTDEV_CMDS_MAX];
};

void iotdev_cmds_init(struct iotdev_cmds *c, const char *dir, const char *device_id,
                      unsigned timeout_s, const struct iotp_clock *clock);

/* The catch-all request handler (struct iotp_device_handler with type NULL, ctx = the cmds). */
int iotdev_cmds_handle(void *ctx, struct iotp_device *dev, const struct iotp_frame *req,
                       struct iotp_device_answer *answer);

/* Add the pipes of running programs to fds (at most cap); returns how many were added. */
unsigned iotdev_cmds_fds(struct iotdev_cmds *c, struct pollfd *fds, unsigned cap);

/* Read their output, reap the finished, kill the late, answer through dev. */
void iotdev_cmds_run(struct iotdev_cmds *c, struct iotp_device *dev, uint64_t now_ms);

/* Milliseconds until a program's deadline (UINT32_MAX: none running). */
uint32_t iotdev_cmds_next_ms(const struct iotdev_cmds *c, uint64_t now_ms);

/* Kill and reap every program (at exit). */
void iotdev_cmds_stop(struct iotdev_cmds *c);

#endif
