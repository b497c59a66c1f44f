/*
 * io_thread.c - io threads (see io_thread.h).
 *
 * Stopping: the stop message travels through the inbox like any other, so everything queued
 * before it is handled first; its handler closes the inbox and walks the loop closing every
 * remaining handle, and uv_run returns once the last close callback has run.
 */
#include "loop/io_thread.h"

#include "ctl_time.h"
#include "iot_error.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

/* After the poll's callbacks: their stretch of the pass ends here. The clocks are read again by
 * whatever comes next (closing callbacks, then the next iteration's timers), because libuv runs
 * the timers before the prepare: a timer that used the poll's clocks would see a time older
 * than the loop time that made it fire, by as long as the poll's callbacks took. The busy time
 * goes on counting from here to the prepare. */
static void on_check(uv_check_t *check)
{
    struct loop_meter *m = check->data;
    uint64_t now = uv_hrtime();
    if (m->pass_ns)
        atomic_fetch_add_explicit(&m->busy_ns, now - m->pass_ns, memory_order_relaxed);
    m->after_poll_ns = now;
    m->pass_ns = 0;
    m->pass_wall_ms = 0;
}

static void on_prepare(uv_prepare_t *prepare)
{
    struct loop_meter *m = prepare->data;
    uint64_t now = uv_hrtime();
    if (m->after_poll_ns)
        atomic_fetch_add_explicit(&m->busy_ns, now - m->after_poll_ns, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->iterations, 1, memory_order_relaxed);
    m->after_poll_ns = 0;
    m->pass_ns = 0;
    m->pass_wall_ms = 0;
}

void loop_meter_start(uv_loop_t *loop, struct loop_meter *m)
{
    uv_prepare_init(loop, &m->prepare);
    uv_check_init(loop, &m->check);
    m->prepare.data = m->check.data = m;
    uv_prepare_start(&m->prepare, on_prepare);
    uv_check_start(&m->check, on_check);
    uv_unref((uv_handle_t *)&m->prepare);
    uv_unref((uv_handle_t *)&m->check);
}

void loop_meter_stop(struct loop_meter *m)
{
    uv_close((uv_handle_t *)&m->prepare, NULL);
    uv_close((uv_handle_t *)&m->check, NULL);
}

uint64_t loop_pass_ns(struct loop_meter *m)
{
    if (!m->pass_ns)
        m->pass_ns = uv_hrtime();
    return m->pass_ns;
}

int64_t loop_pass_wall_ms(struct loop_meter *m)
{
    if (!m->pass_wall_ms)
        m->pass_wall_ms = ctl_wall_ms();
    return m->pass_wall_ms;
}

/* Last-resort close of whatever is still open on a stopping loop: the thread's own meter
 * (embedded, nothing to free); other modules close their handles (with their callbacks)
 * before. */
static void close_any(uv_handle_t *handle, void *arg)
{
    (void)arg;
    if (!uv_is_closing(handle))
        uv_close(handle, NULL);
}

static void on_stop(inbox_msg_t *msg, void *loop_data)
{
    io_thread_t *t = loop_data;
    (void)msg;
    inbox_close(&t->inbox, NULL);
    uv_walk(&t->loop, close_any, t);
}

struct sync_call {
    inbox_msg_t msg;
    int (*fn)(io_thread_t *t, void *arg);
    void *arg;
    int result;
    uv_sem_t done;
};

static void on_sync_call(inbox_msg_t *msg, void *loop_data)
{
    struct sync_call *call = container_of(msg, struct sync_call, msg);
    call->result = call->fn(loop_data, call->arg);
    uv_sem_post(&call->done);
}

int io_thread_call(io_thread_t *t, int (*fn)(io_thread_t *t, void *arg), void *arg)
{
    struct sync_call call = {.msg.handle = on_sync_call, .fn = fn, .arg = arg};
    if (uv_sem_init(&call.done, 0) != 0)
        return IOT_ENOMEM;
    int rc = inbox_push_wait(&t->inbox, &call.msg);
    if (rc == 0) {
        uv_sem_wait(&call.done);
        rc = call.result;
    }
    uv_sem_destroy(&call.done);
    return rc;
}

static void io_thread_main(void *arg)
{
    io_thread_t *t = arg;
    atomic_store(&t->os_tid, (int)syscall(SYS_gettid));
    pthread_setname_np(pthread_self(), t->name);
    uv_sem_post(&t->started);
    uv_run(&t->loop, UV_RUN_DEFAULT);
}

int io_thread_start(io_thread_t *t, unsigned index, size_t inbox_capacity)
{
    int rc;
    t->index = index;
    snprintf(t->name, sizeof(t->name), "io%u", index);
    if (uv_loop_init(&t->loop) != 0)
        return IOT_ENOMEM;
    if ((rc = inbox_init(&t->inbox, &t->loop, inbox_capacity, t)) != 0)
        goto fail_loop;
    loop_meter_start(&t->loop, &t->meter);
    t->stop_msg.handle = on_stop;
    if (uv_sem_init(&t->started, 0) != 0) {
        rc = IOT_ENOMEM;
        goto fail_handles;
    }
    if (uv_thread_create(&t->thread, io_thread_main, t) != 0) {
        rc = IOT_ENOMEM;
        uv_sem_destroy(&t->started);
        goto fail_handles;
    }
    uv_sem_wait(&t->started);
    uv_sem_destroy(&t->started);
    return IOT_OK;

fail_handles:
    /* The thread never ran: close the handles on this thread instead. */
    inbox_close(&t->inbox, NULL);
    uv_walk(&t->loop, close_any, t);
    uv_run(&t->loop, UV_RUN_DEFAULT);
fail_loop:
    uv_loop_close(&t->loop);
    return rc;
}

void io_thread_stop(io_thread_t *t)
{
    if (inbox_push_wait(&t->inbox, &t->stop_msg) == 0)
        uv_thread_join(&t->thread);
    uv_loop_close(&t->loop);
}
