/*
 * iotdev_cmds.c - run the programs of the commands dir for requests and answer with what they
 * print (see iotdev_cmds.h). Each running program has a slot; the main loop polls its pipes.
 */
#include "iotdev_cmds.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

void iotdev_cmds_init(struct iotdev_cmds *c, const char *dir, const char *device_id,
                      unsigned timeout_s, const struct iotp_clock *clock)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->dir, sizeof(c->dir), "%s", dir);
    snprintf(c->device_id, sizeof(c->device_id), "%s", device_id);
    c->timeout_s = timeout_s;
    c->clock = *clock;
}

/* A message type names a file in the commands dir only if it is a plain name. */
static int plain_name(const char *s)
{
    if (*s == '\0' || *s == '.')
        return 0;
    for (; *s; s++)
        if (*s == '/')
            return 0;
    return 1;
}

/* Start path with the request's args; the child's stdout and stderr are pipes. */
static int spawn(struct iotdev_cmds *c, struct iotdev_cmd *s, const char *path,
                 const struct iotp_frame *req)
{
    char *argv[IOTP_MAX_ARGS + 2];
    int out[2] = {-1, -1}, err[2] = {-1, -1};
    pid_t pid;

    argv[0] = (char *)path;
    for (unsigned i = 0; i < req->nargs; i++)
        argv[i + 1] = (char *)req->args[i];
    argv[req->nargs + 1] = NULL;
    if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0)
        goto fail;
    pid = fork();
    if (pid < 0)
        goto fail;
    if (pid == 0) {
        int null = open("/dev/null", O_RDONLY);
        if (null < 0 || dup2(null, 0) < 0 || dup2(out[1], 1) < 0 || dup2(err[1], 2) < 0)
            _exit(127);
        setenv("IOTDEV_ID", c->device_id, 1);
        setenv("IOTDEV_FROM", req->from, 1);
        signal(SIGPIPE, SIG_DFL);
        execv(path, argv);
        dprintf(2, "cannot run %s: %s\n", path, strerror(errno));
        _exit(127);
    }
    close(out[1]);
    close(err[1]);
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    fcntl(err[0], F_SETFL, O_NONBLOCK);
    memset(s, 0, sizeof(*s));
    s->pid = pid;
    s->out_fd = out[0];
    s->err_fd = err[0];
    return 0;
fail:
    for (int i = 0; i < 2; i++) {
        if (out[i] >= 0)
            close(out[i]);
        if (err[i] >= 0)
            close(err[i]);
    }
    return -1;
}

int iotdev_cmds_handle(void *ctx, struct iotp_device *dev, const struct iotp_frame *req,
                       struct iotp_device_answer *answer)
{
    struct iotdev_cmds *c = ctx;
    struct iotdev_cmd *s = NULL;
    char path[4400];

    (void)dev;
    snprintf(path, sizeof(path), "%s/%s", c->dir, req->type);
    if (!plain_name(req->type) || access(path, X_OK) < 0) {
        answer->error_code = "unknown_type";
        return IOTP_DEVICE_REPLY;
    }
    for (unsigned i = 0; i < IOTDEV_CMDS_MAX && !s; i++)
        if (c->slot[i].pid == 0)
            s = &c->slot[i];
    if (!s) {
        answer->error_code = "busy";
        answer->error_msg = "too many commands running";
        return IOTP_DEVICE_REPLY;
    }
    if (spawn(c, s, path, req) < 0) {
        answer->error_code = "failed";
        answer->error_msg = "cannot start the command";
        return IOTP_DEVICE_REPLY;
    }
    snprintf(s->from, sizeof(s->from), "%s", req->from);
    s->id = req->id;
    s->deadline_ms = c->clock.now_ms(c->clock.ctx) + (uint64_t)c->timeout_s * 1000u;
    return IOTP_DEVICE_NO_REPLY;
}

unsigned iotdev_cmds_fds(struct iotdev_cmds *c, struct pollfd *fds, unsigned cap)
{
    unsigned n = 0;

    for (unsigned i = 0; i < IOTDEV_CMDS_MAX; i++) {
        struct iotdev_cmd *s = &c->slot[i];
        if (s->pid == 0)
            continue;
        if (s->out_fd >= 0 && n < cap)
            fds[n++] = (struct pollfd){s->out_fd, POLLIN, 0};
        if (s->err_fd >= 0 && n < cap)
            fds[n++] = (struct pollfd){s->err_fd, POLLIN, 0};
    }
    return n;
}

/* Read what fd has into buf (cap bytes kept, the rest counted as overflow); close it at EOF. */
static void drain(int *fd, char *buf, size_t *len, size_t cap, int *overflow)
{
    char chunk[512];

    while (*fd >= 0) {
        ssize_t n = read(*fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            close(*fd);
            *fd = -1;
            return;
        }
        if (*len + (size_t)n > cap) {
            *overflow = 1;
            n = (ssize_t)(cap - *len);
        }
        memcpy(buf + *len, chunk, (size_t)n);
        *len += (size_t)n;
    }
}

/* Fill the answer from the program's stdout: several lines are a field each, one line is
 * split at spaces. Returns 0, or -1 with the reason in *why. */
static int parse_output(struct iotdev_cmd *s, struct iotp_device_answer *a, const char **why)
{
    char *p = s->out, *end;
    int lines = 0;

    s->out[s->out_len] = '\0';
    if (strlen(s->out) != s->out_len) {
        *why = "output holds a NUL byte";
        return -1;
    }
    while (s->out_len > 0 && s->out[s->out_len - 1] == '\n')
        s->out[--s->out_len] = '\0';
    for (size_t i = 0; i < s->out_len; i++)
        lines += s->out[i] == '\n';
    end = s->out + s->out_len;
    while (p < end) {
        char *f = p;
        if (lines > 0) {
            p = strchr(p, '\n');
            p = p ? p : end;
        } else {
            while (*f == ' ')
                f++;
            if (f == end)
                break;
            p = strchr(f, ' ');
            p = p ? p : end;
        }
        *p++ = '\0';
        if (*f == '\0')
            continue; /* an empty line */
        for (char *q = f; *q; q++) {
            if ((unsigned char)*q < 0x20 || *q == 0x7f) {
                *why = "output holds a control byte";
                return -1;
            }
        }
        if (a->nargs == IOTP_DEVICE_ANSWER_ARGS) {
            *why = "more answer fields than the agent can send";
            return -1;
        }
        a->args[a->nargs++] = f;
    }
    return 0;
}

static void finish(struct iotdev_cmd *s, struct iotp_device *dev, int status)
{
    struct iotp_device_answer a;
    const char *why = NULL;
    char *nl;

    memset(&a, 0, sizeof(a));
    s->err[s->err_len] = '\0';
    nl = strchr(s->err, '\n');
    if (nl)
        *nl = '\0';
    for (char *q = s->err; *q; q++)
        if ((unsigned char)*q < 0x20 || *q == 0x7f)
            *q = ' ';
    if (s->killed) {
        a.error_code = "timeout";
        a.error_msg = "the command ran too long and was killed";
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        a.error_code = "failed";
        a.error_msg = s->err[0] ? s->err : "the command failed without a message";
    } else if (s->overflow) {
        a.error_code = "failed";
        a.error_msg = "the command printed more than an answer can hold";
    } else if (parse_output(s, &a, &why) < 0) {
        memset(&a, 0, sizeof(a));
        a.error_code = "failed";
        a.error_msg = why;
    }
    /* IOTP_ESTATE: the session that asked is gone, and the request with it. */
    iotp_device_answer(dev, s->from, s->id, &a);
    s->pid = 0;
}

void iotdev_cmds_run(struct iotdev_cmds *c, struct iotp_device *dev, uint64_t now_ms)
{
    for (unsigned i = 0; i < IOTDEV_CMDS_MAX; i++) {
        struct iotdev_cmd *s = &c->slot[i];
        int status, err_cut = 0;
        pid_t r;

        if (s->pid == 0)
            continue;
        drain(&s->out_fd, s->out, &s->out_len, IOTDEV_CMD_OUT, &s->overflow);
        drain(&s->err_fd, s->err, &s->err_len, IOTDEV_CMD_ERR, &err_cut); /* msg: its start */
        if (!s->killed && now_ms >= s->deadline_ms) {
            kill(s->pid, SIGKILL);
            s->killed = 1;
        }
        if (s->out_fd >= 0 || s->err_fd >= 0) {
            if (!s->killed)
                continue;
            /* killed: a grandchild may hold the pipes; stop reading them */
            if (s->out_fd >= 0)
                close(s->out_fd);
            if (s->err_fd >= 0)
                close(s->err_fd);
            s->out_fd = s->err_fd = -1;
        }
        r = waitpid(s->pid, &status, s->killed ? 0 : WNOHANG);
        if (r == s->pid)
            finish(s, dev, status);
    }
}

uint32_t iotdev_cmds_next_ms(const struct iotdev_cmds *c, uint64_t now_ms)
{
    uint64_t next = UINT32_MAX;

    for (unsigned i = 0; i < IOTDEV_CMDS_MAX; i++) {
        const struct iotdev_cmd *s = &c->slot[i];
        if (s->pid != 0 && s->out_fd < 0 && s->err_fd < 0)
            next = next < 10 ? next : 10; /* pipes closed, exit not yet seen: look again soon */
        else if (s->pid != 0 && !s->killed)
            next = s->deadline_ms <= now_ms
                       ? 0
                       : (s->deadline_ms - now_ms < next ? s->deadline_ms - now_ms : next);
    }
    return (uint32_t)next;
}

void iotdev_cmds_stop(struct iotdev_cmds *c)
{
    for (unsigned i = 0; i < IOTDEV_CMDS_MAX; i++) {
        struct iotdev_cmd *s = &c->slot[i];
        if (s->pid == 0)
            continue;
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        if (s->out_fd >= 0)
            close(s->out_fd);
        if (s->err_fd >= 0)
            close(s->err_fd);
        s->pid = 0;
    }
}
